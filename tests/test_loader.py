"""The script loader: what it builds, and each error with its file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiscript.errors import ScriptError
from amiscript.script import load_script, load_script_text
from amiscript.script.model import Expect, Newline, PatternKind, Print, Send

ROOT = Path(__file__).resolve().parents[1]


def error_of(text: str, name: str = "t.yaml") -> ScriptError:
    with pytest.raises(ScriptError) as info:
        load_script_text(text, name)
    return info.value


def test_vmcount_script_loads_with_its_variables_and_handlers() -> None:
    script = load_script(ROOT / "scripts" / "vmcount.yaml")
    assert [v.name for v in script.vars] == ["host", "port", "username", "secret", "mailbox"]
    secret = script.var("secret")
    assert secret is not None and secret.secret and secret.default is not None
    mailbox = script.var("mailbox")
    assert mailbox is not None and mailbox.required and mailbox.help
    assert script.on_eof is not None and script.timeout == 10.0
    assert script.connect is not None and script.connect.transport.raw == "tcp"
    assert {"new", "old"} <= script.implicit_vars


def test_scalars_stay_exactly_as_typed() -> None:
    script = load_script_text(
        "vars:\n  events: off\n  id: 0012\n  t: 1:30\n  yes_: yes\nsteps:\n  - print: ${events}${id}${t}\n"
    )
    defaults = {v.name: v.default.raw for v in script.vars if v.default}
    assert defaults == {"events": "off", "id": "0012", "t": "1:30", "yes_": "yes"}


def test_on_as_a_key_is_the_handler_section_not_a_boolean() -> None:
    script = load_script_text("on:\n  timeout:\n    - print: slow\nsteps: []\n")
    assert script.on_timeout is not None and isinstance(script.on_timeout[0], Print)


def test_expect_alternatives_with_text_eof_and_timeout() -> None:
    script = load_script_text(
        "steps:\n"
        "  - expect:\n"
        "      - text: 'a.b'\n"
        "      - re: 'x(?P<y>\\d)'\n"
        "        then:\n"
        "          - print: ${y}\n"
        "      - eof:\n"
        "          - print: gone\n"
        "      - timeout: []\n"
        "    timeout: 2.5\n"
    )
    (step,) = script.steps
    assert isinstance(step, Expect)
    assert [p.kind for p in step.patterns] == [PatternKind.TEXT, PatternKind.REGEX]
    assert step.patterns[1].captures == ("y",)
    assert step.on_eof is not None and step.on_timeout == () and step.timeout == 2.5


def test_send_newline_mode_defaults_to_crlf_and_can_be_changed() -> None:
    script = load_script_text("newline: lf\nsteps:\n  - send: a\n  - send: b\n    newline: crlf\n")
    first, second = script.steps
    assert isinstance(first, Send) and first.newline is Newline.LF
    assert isinstance(second, Send) and second.newline is Newline.CRLF


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("steps:\n  - print: [unclosed\n", "t.yaml:2:12", "YAML syntax error"),
        ("steps:\n  - prnt: hello\n", "t.yaml:2:5", "did you mean 'print'"),
        ("stepz: []\n", "t.yaml:1:1", "did you mean 'steps'"),
        ("timeout: soon\nsteps: []\n", "t.yaml:1:10", "number of seconds"),
        ("timeout: -1\nsteps: []\n", "t.yaml:1:10", "greater than 0"),
        ("steps:\n  - expect: '(unclosed'\n", "t.yaml:2:23", "invalid regex"),
        ("steps:\n  - print: ${nobody}\n", "t.yaml:2:12", "undeclared variable 'nobody'"),
        ("vars:\n  mailbox: x\nsteps:\n  - print: ${mailbx}\n", "t.yaml:4:12", "did you mean 'mailbox'"),
        ("steps:\n  - print: !!python/object/apply:os.system [ls]\n", "t.yaml:2:12", "tag"),
        ("steps: []\nsteps: []\n", "t.yaml:2:1", "duplicate key 'steps' (first at line 1"),
        ("steps: hello\n", "t.yaml:1:8", "must be a list"),
        ("steps:\n  - print: a\n    send: b\n", "t.yaml:3:5", "one step per list item"),
        ("connect:\n  transport: carrier-pigeon\nsteps: []\n", "t.yaml:2:14", "choose one of"),
        ("connect:\n  hots: x\nsteps: []\n", "t.yaml:2:3", "did you mean 'host'"),
        ("steps:\n  - exit: 300\n", "t.yaml:2:11", "0 to 255"),
        ("vars:\n  a: {required: maybe}\nsteps: []\n", "t.yaml:2:17", "true or false"),
        ("vars:\n  a: {required: true, default: x}\nsteps: []\n", "t.yaml:2:3", "required and has a default"),
        ("steps:\n  - print: ${bad name}\n", "t.yaml:2:12", "invalid variable reference"),
        ("steps:\n  - print: ${open\n", "t.yaml:2:12", "without a closing"),
        ("name: x\n", "t.yaml:1:1", "no `steps:`"),
        ("- just a list\n", "t.yaml:1:1", "must be a mapping"),
        ("steps:\n  - expect:\n      - re: a\n        fial: [x]\n", "t.yaml:4:9", "go under `then:`"),
        ("steps:\n  - expect:\n      - re: a\n        text: b\n", "t.yaml:3:9", "exactly one of"),
        ("steps:\n  - sleep: -2\n", "t.yaml:2:12", "must not be negative"),
        ("a: &x [1]\nsteps: *x\n", "t.yaml:1:1", "unknown key 'a'"),
        ('steps:\n  - send: "\\ud800"\n', "t.yaml:2:11", "half of a UTF-16 pair"),  # found by test_fuzz
    ],
)
def test_each_script_error_names_file_line_column_and_what_is_wrong(text: str, where: str, words: str) -> None:
    error = error_of(text)
    assert str(error.location) == where, str(error)
    assert words in str(error)


def test_missing_file_is_a_script_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"nope\.yaml: no such file"):
        load_script(tmp_path / "nope.yaml")


def test_empty_file_is_a_script_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n")
    with pytest.raises(ScriptError, match="the file is empty"):
        load_script(path)


def test_binary_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"steps: []\n\x00\x01")
    with pytest.raises(ScriptError, match="binary file"):
        load_script(binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"steps:\n  - print: J\xfcrgen\n")
    with pytest.raises(ScriptError, match="not UTF-8"):
        load_script(latin)


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(ScriptError, match="alias bomb"):
        load_script_text("\n".join(lines) + "\nsteps: []\n")


def test_python_tags_never_construct_objects() -> None:
    error = error_of("steps:\n  - print: !!python/name:os.system ''\n")
    assert "python" in error.message and "not allowed" in error.message
