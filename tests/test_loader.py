"""The script loader: what it builds, and each error with its file:line:col."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amiscript.errors import ScriptError
from amiscript.script import load_script, load_script_text
from amiscript.script.model import Expect, Newline, PatternKind, Print, Send

from .helpers import AMISCRIPT

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


# -- hostile files: refused fast, in bounded memory, with a clear error ------------------------

LOAD_WITHIN = 2.0  # seconds; each is measured at well under 0.3 s
PEAK_LIMIT_KIB = 64 << 10  # measured ~41 MiB each (18 of them Python and amiscript); 200k nodes took ~190 MiB


def _laughs() -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\nsteps: []\n"


HOSTILE = {
    "billion-laughs.yaml": (_laughs(), "more than 20000 YAML nodes (an alias bomb?)", "--vars-file"),
    "wide.yaml": ("steps: [" + ", ".join(["x"] * 200_000) + "]\n", "more than 20000 YAML nodes", "--vars-file"),
    "deep-flow.yaml": ("steps: " + "[" * 400_000 + "]" * 400_000 + "\n", "nested deeper than 64", "include"),
    "deep-block.yaml": ("steps:\n" + "".join("  " * i + "-\n" for i in range(1, 100)), "nested deeper", "include"),
    "huge.yaml": ("steps:\n" + "  - print: hello\n" * 140_000, "file is larger than 1024 KiB", "right file"),
    "binary.yaml": ("steps: []\n" + "\0\x01\x02" * 300_000, "binary file (contains NUL bytes)", "right file"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_yaml_is_refused_fast_with_a_clear_error(tmp_path: Path, name: str) -> None:
    text, message, hint = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ScriptError) as raised:
        load_script(path)
    assert time.monotonic() - started < LOAD_WITHIN
    assert str(raised.value.location).startswith(str(path)) and message in raised.value.message
    assert hint in raised.value.hint


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_fifo_or_device_is_refused_without_reading_it(tmp_path: Path, special: str) -> None:
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)  # reading would block forever: nobody writes
    started = time.monotonic()
    with pytest.raises(ScriptError, match="not a regular file, not a script file"):
        load_script(path)
    assert time.monotonic() - started < LOAD_WITHIN


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_yaml_is_refused_in_bounded_memory(tmp_path: Path, name: str) -> None:
    text, message, _ = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text)
    program = (
        "import resource, sys\n"
        "from amiscript.errors import ScriptError\n"
        "from amiscript.script import load_script\n"
        "try:\n"
        "    load_script(sys.argv[1])\n"
        "except ScriptError as error:\n"
        "    print(error.message)\n"
    )
    # Measured as the child of a small parent: a child's peak RSS starts from its parent's size
    # at fork, and pytest's is larger than the bound.
    measure = (
        "import resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(result.stdout.strip() + result.stderr.strip())\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    argv = [sys.executable, "-c", measure, sys.executable, "-c", program, str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    refused, peak = result.stdout.splitlines()
    assert message in refused, result.stderr
    assert int(peak) < PEAK_LIMIT_KIB, f"peak RSS {peak} KiB"


# -- where an include may come from --------------------------------------------------------------

INCLUDED = "steps:\n  - print: included\n"


def include_tree(tmp_path: Path) -> tuple[Path, Path]:
    """checks/main.yaml, and common/login.yaml beside checks/ (outside it)."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "login.yaml").write_text(INCLUDED)
    return tmp_path / "checks" / "main.yaml", tmp_path / "common"


def outside_error(path: Path, **options: object) -> ScriptError:
    with pytest.raises(ScriptError) as raised:
        load_script(path, **options)  # type: ignore[arg-type]
    assert "is outside the folders includes may come from" in raised.value.message
    assert "include_paths" in raised.value.hint and "--include-path DIR" in raised.value.hint
    return raised.value


def test_an_include_cannot_climb_out_with_dotdot_unless_include_paths_allows_the_folder(tmp_path: Path) -> None:
    main, _ = include_tree(tmp_path)
    main.write_text("steps:\n  - include: ../common/login.yaml\n")
    assert str(outside_error(main).location) == f"{main}:2:14"
    main.write_text("include_paths: [../common]\nsteps:\n  - include: ../common/login.yaml\n")
    assert load_script(main).steps[0].script.steps[0].text.raw == "included"  # type: ignore[attr-defined]


def test_include_path_on_the_command_line_allows_a_folder_too(tmp_path: Path) -> None:
    main, common = include_tree(tmp_path)
    main.write_text(f"steps:\n  - include: {common / 'login.yaml'}\n")
    outside_error(main)
    assert load_script(main, include_paths=[str(common)]).steps
    refused = subprocess.run([*AMISCRIPT, "check", str(main)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "is outside the folders includes may come from" in refused.stdout
    allowed = subprocess.run(
        [*AMISCRIPT, "check", str(main), "--include-path", str(common)], capture_output=True, text=True, timeout=60
    )
    assert (allowed.returncode, allowed.stdout) == (0, "1 script checked: 0 errors, 0 warnings\n")


def test_a_symlink_inside_the_folder_cannot_lead_an_include_out(tmp_path: Path) -> None:
    main, common = include_tree(tmp_path)
    (main.parent / "login.yaml").symlink_to(common / "login.yaml")
    (main.parent / "shared").symlink_to(common, target_is_directory=True)
    for written in ("login.yaml", "shared/login.yaml"):
        main.write_text(f"steps:\n  - include: {written}\n")
        outside_error(main)
    main.write_text("include_paths: [../common]\nsteps:\n  - include: shared/login.yaml\n")
    assert load_script(main).steps


def test_an_included_script_includes_within_the_same_folders_and_cannot_widen_them(tmp_path: Path) -> None:
    main, common = include_tree(tmp_path)
    (tmp_path / "elsewhere.yaml").write_text(INCLUDED)
    (common / "login.yaml").write_text("steps:\n  - include: ../elsewhere.yaml\n")
    main.write_text("include_paths: [../common]\nsteps:\n  - include: ../common/login.yaml\n")
    assert str(outside_error(main).location) == f"{main.parent / '../common/login.yaml'}:2:14"
    (common / "login.yaml").write_text("include_paths: [..]\nsteps:\n  - include: ../elsewhere.yaml\n")
    with pytest.raises(ScriptError, match="`include_paths` counts only in the script that is run"):
        load_script(main)


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        (
            "vars:\n  mailbox: {required: true, help: the mailbox to query, such as 123@default}\nsteps: []\n",
            "t.yaml:2:57",
            'quote the value if it contains a comma: help: "the mailbox to query, such as 123@default"',
        ),
        ("steps:\n  - {print: hello, dear world}\n", "t.yaml:2:20", 'print: "hello, dear world"'),
    ],
)
def test_text_split_at_a_comma_in_a_flow_mapping_says_to_quote_it(text: str, where: str, hint: str) -> None:
    error = error_of(text)
    assert str(error.location) == where and error.message.startswith("unknown key")
    assert hint in error.hint


@pytest.mark.parametrize(
    "text",
    [
        "vars:\n  mailbox:\n    required: true\n    such as: x\nsteps: []\n",  # block style: no comma involved
        "vars:\n  mailbox: {required: true, help: 'quoted, already', such as: x}\nsteps: []\n",
        "vars:\n  mailbox: {required: true, helpp: x}\nsteps: []\n",  # no space: a misspelling
    ],
)
def test_other_unknown_keys_get_no_comma_hint(text: str) -> None:
    assert "comma" not in error_of(text).hint
