"""manager.conf and state-file loading for the simulator: what is accepted, and where errors point."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiscript.errors import Location, ScriptError
from amiscript.sim import (
    SimConfig,
    default_config,
    load_manager_conf,
    load_state,
    parse_manager_conf,
    parse_state,
    perms,
)
from amiscript.sim.managerconf import find_user

FIXTURES = Path(__file__).parent / "fixtures" / "sim"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- manager.conf ---------------------------------------------------------------------------


def test_books_admin_block_is_parsed_into_a_user() -> None:
    (admin,) = default_config().users
    assert admin.name == "admin"
    assert admin.secret == "secret5"
    assert admin.read == admin.write == perms.ALL
    assert admin.allows("127.0.0.1")
    assert not admin.allows("192.168.1.10")


def test_general_section_is_not_a_user_and_users_keep_file_order() -> None:
    users = load_manager_conf(FIXTURES / "manager.conf")
    assert [user.name for user in users] == ["admin", "monitor"]


def test_read_and_write_classes_are_exact_names_and_unknown_ones_are_ignored() -> None:
    (user,) = parse_manager_conf("[u]\nsecret=x\nread = system,call,bogus\nwrite = System,reporting\n", "m.conf")
    assert user.read == perms.SYSTEM | perms.CALL
    assert user.write == perms.REPORTING  # "System" is not a class name: Asterisk is case-sensitive


def test_missing_read_and_write_grant_everything_like_asterisk() -> None:
    (user,) = parse_manager_conf("[u]\nsecret = x\n", "m.conf")
    assert user.read == user.write == perms.ALL


@pytest.mark.parametrize(
    ("rules", "allowed", "refused"),
    [
        ("", ["127.0.0.1", "10.1.2.3", "::1"], []),
        ("deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255", ["127.0.0.1"], ["127.0.0.2", "10.0.0.1"]),
        ("permit = 127.0.0.1/32\ndeny = 0.0.0.0/0", [], ["127.0.0.1", "10.0.0.1"]),  # later rules win
        ("deny = 10.0.0.0/8\npermit = 10.1.0.0/16", ["10.1.2.3", "192.168.0.1"], ["10.2.0.1"]),
        ("deny = 0.0.0.0/0\npermit = 10.0.0.1, 10.0.0.2/32", ["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]),
        ("deny = 0.0.0.0/0", ["::1"], ["127.0.0.1", "::ffff:127.0.0.1"]),  # IPv4 rules skip IPv6 peers
        ("deny = ::/0\npermit = ::1/128", ["::1", "127.0.0.1"], ["2001:db8::1"]),  # and IPv6 rules IPv4
    ],
)
def test_permit_and_deny_apply_in_order_from_default_allow(rules: str, allowed: list[str], refused: list[str]) -> None:
    (user,) = parse_manager_conf(f"[u]\nsecret = x\n{rules}\n", "m.conf")
    assert [peer for peer in allowed + refused if user.allows(peer)] == allowed


def test_comments_templates_and_arrow_assignments() -> None:
    text = (
        ";-- a block comment\n[ignored]\nsecret = no\n--;\n"
        "[base](!)\nread = call ; trailing comment\nwrite => call\n"
        "[alice](base)\nsecret = semi\\;colon\n"
    )
    (alice,) = parse_manager_conf(text, "m.conf")
    assert (alice.name, alice.secret, alice.read, alice.write) == ("alice", "semi;colon", perms.CALL, perms.CALL)


def test_include_reads_a_file_next_to_the_including_one(tmp_path: Path) -> None:
    write(tmp_path, "users.conf", "[bob]\nsecret = b0b\n")
    path = write(tmp_path, "manager.conf", '[general]\nenabled = yes\n#include "users.conf"\n')
    (bob,) = load_manager_conf(path)
    assert bob.secret == "b0b"
    assert bob.location == Location(str(tmp_path / "users.conf"), 1)


def test_user_names_are_found_case_insensitively() -> None:
    users = load_manager_conf(FIXTURES / "manager.conf")
    found = find_user(users, "ADMIN")
    assert found is not None and found.name == "admin"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("secret = x\n", 1, "before any [section]"),
        ("[u]\nsecret = x\nthis line has no equals sign\n", 3, "expected 'name = value'"),
        ("[u\nsecret = x\n", 1, "without closing ']'"),
        ("[u]\n\npermit = 300.1.1.1/32\n", 3, "invalid IP address"),
        ("[u]\ndeny = 10.0.0.0/33\n", 2, "prefix length /33"),
        ("[u]\ndeny = 10.0.0.0/255.0.x.0\n", 2, "invalid netmask"),
        ("[u]\nsecret = a\n[U]\nsecret = b\n", 3, "defined twice (first at m.conf:1)"),
        ("[u](nosuch)\n", 1, "unknown template [nosuch]"),
        ("[u]\nacl = office\n", 2, "named ACLs"),
        ("#exec /bin/true\n", 1, "unsupported directive"),
    ],
)
def test_manager_conf_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_manager_conf(text, "m.conf")
    assert caught.value.location == Location("m.conf", line)
    assert message in caught.value.message


def test_missing_manager_conf_is_a_script_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    with pytest.raises(ScriptError) as caught:
        load_manager_conf(missing)
    assert caught.value.location is not None and caught.value.location.file == str(missing)
    assert "No such file" in caught.value.message
    assert caught.value.exit_code == 2


def test_include_of_a_missing_file_points_at_the_include_line(tmp_path: Path) -> None:
    path = write(tmp_path, "manager.conf", "[general]\n#include gone.conf\n")
    with pytest.raises(ScriptError) as caught:
        load_manager_conf(path)
    assert caught.value.location == Location(str(path), 2)


def test_tryinclude_of_a_name_too_long_to_exist_is_skipped_as_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "manager.conf", f"#tryinclude {'a' * 300}.conf\n[admin]\nsecret = s\n")
    assert [user.name for user in load_manager_conf(path)] == ["admin"]


def test_an_include_holding_a_nul_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "manager.conf", '[general]\n#include "a\0b.conf"\n')
    with pytest.raises(ScriptError, match="a file name cannot hold a NUL character") as caught:
        load_manager_conf(path)
    assert caught.value.location == Location(str(path), 2)


def test_manager_conf_that_is_not_utf8_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "manager.conf"
    path.write_bytes(b"[u]\nsecret = caf\xe9\n")
    with pytest.raises(ScriptError) as caught:
        load_manager_conf(path)
    assert caught.value.location == Location(str(path), 2)


# -- state ----------------------------------------------------------------------------------


def test_state_file_gives_counts_and_defaults_missing_ones_to_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "state.yaml", 'mailboxes:\n  "200@sales": {new: 5, urgent: 1}\n  "0123": {old: 4}\n')
    boxes = load_state(path)
    assert boxes["200@sales"].new == 5 and boxes["200@sales"].old == 0 and boxes["200@sales"].urgent == 1
    assert boxes["0123@default"].old == 4  # the key stays the text written; no octal surprise


def test_default_state_matches_the_book_and_has_mailboxes_with_messages() -> None:
    boxes = default_config().mailboxes
    assert (boxes["123@default"].new, boxes["123@default"].old) == (0, 0)
    assert (boxes["124@default"].new, boxes["124@default"].old) == (2, 1)
    assert (boxes["200@sales"].new, boxes["200@sales"].old, boxes["200@sales"].urgent) == (5, 3, 1)


def test_empty_state_file_means_no_mailboxes() -> None:
    assert parse_state("", "s.yaml") == {}
    assert parse_state("mailboxes:\n", "s.yaml") == {}


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("mailboxes: [1, 2]\n", 1, 12, "'mailboxes' must be a mapping"),
        ("boxes: {}\n", 1, 1, "unknown top-level key 'boxes'"),
        ("mailboxes:\n  '1@a': {new: -1}\n", 2, 16, "whole number"),
        ("mailboxes:\n  '1@a': {new: two}\n", 2, 16, "whole number"),
        ("mailboxes:\n  '1@a': {nwe: 1}\n", 2, 11, "unknown field 'nwe'"),
        ("mailboxes:\n  '1': {}\n  '1@default': {}\n", 3, 3, "listed twice (first at s.yaml:2:3)"),
        ("mailboxes:\n  '1@a': {new: 1\n", 3, 1, "not valid YAML"),
        ("mailboxes:\n  '@a': {}\n", 2, 3, "invalid mailbox name"),
    ],
)
def test_state_errors_name_file_line_and_column(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_state(text, "s.yaml")
    assert caught.value.location == Location("s.yaml", line, column)
    assert message in caught.value.message


def test_missing_state_file_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError) as caught:
        load_state(tmp_path / "nope.yaml")
    assert caught.value.location is not None and caught.value.location.file.endswith("nope.yaml")


def test_sim_config_copies_what_it_is_given() -> None:
    users = list(default_config().users)
    boxes = dict(default_config().mailboxes)
    config = SimConfig(users=users, mailboxes=boxes)
    users.clear()
    boxes.clear()
    assert len(config.users) == 1 and len(config.mailboxes) == 3
    assert (config.login_fail_delay, config.auth_timeout) == (1.0, 30.0)
