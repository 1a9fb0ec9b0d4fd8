"""Properties that must hold for any input, checked with hypothesis (budget: tests/conftest.py).

The codec reads the same packets however the bytes are split and never raises; what the
encoder accepts decodes back; the script loader reports anything as ScriptError, never a
traceback; and no substituted value ever puts a CR or LF into a header that is sent.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from amiscript.engine import Interpreter
from amiscript.engine.variables import refuse_line_breaks
from amiscript.errors import Location, ScriptError
from amiscript.protocol import Packet, PacketReader, Signal, UnsafeHeader, encode_packet
from amiscript.protocol.codec import Event
from amiscript.script import load_script_text
from amiscript.script.template import parse_template
from amiscript.transports.memory import MemoryTransport

from .helpers import AMISCRIPT, FakeClock, Recorder, ami_peer

# -- the codec --------------------------------------------------------------------------------

# Bytes that look like AMI often enough to reach every reader state: line ends, colons, the
# legacy Command markers, blanks, bytes that are not UTF-8.
AMI_PIECES = [
    b"\r\n", b"\n", b"\r", b":", b": ", b" ", b"\t", b"Action", b"Response", b"Follows", b"Output",
    b"--END COMMAND--", b"ActionID: 1", b"Privilege: Command", b"\xff", b"\xc3", b"\x00", b"a",
]  # fmt: skip
ami_bytes = st.lists(st.sampled_from(AMI_PIECES) | st.binary(max_size=8), max_size=60).map(b"".join)
reader_options = st.fixed_dictionaries(
    {
        "expect_banner": st.booleans(),
        "legacy_follows": st.booleans(),
        "max_line": st.integers(4, 64) | st.just(1 << 20),
        "max_headers": st.integers(1, 8) | st.just(1 << 16),
    }
)


def read_all(chunks: list[bytes], options: dict[str, object]) -> list[Event]:
    """Every event of the stream, fed chunk by chunk and then closed."""
    reader = PacketReader(**options)  # type: ignore[arg-type]
    events: list[Event] = []
    for chunk in [*chunks, b""]:
        reader.receive_data(chunk)
        while (event := reader.next_event()) is not Signal.NEED_DATA:
            events.append(event)
            if event is Signal.END_OF_STREAM:
                return events
        # between chunks the reader holds at most one line in progress
        assert reader.buffered < int(options["max_line"])  # type: ignore[call-overload]
    raise AssertionError("no end of stream after b''")


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    chunks = [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]
    return [chunk for chunk in chunks if chunk]  # b"" would mean end of stream


@given(data=ami_bytes, cuts=st.lists(st.integers(0, 1 << 16), max_size=12), options=reader_options)
@example(
    data=b"Response: Follows\r\nPrivilege: Command\r\nx\n--END COMMAND--\r\n\r\n",
    cuts=[17, 30, 40],
    options={"expect_banner": False, "legacy_follows": True, "max_line": 1 << 20, "max_headers": 1 << 16},
)
def test_any_split_of_the_bytes_gives_the_same_events(data: bytes, cuts: list[int], options: dict) -> None:
    whole = read_all([data], options)
    assert read_all(split(data, cuts), options) == whole
    assert read_all([data[i : i + 1] for i in range(len(data))], options) == whole


@given(data=st.binary(max_size=400) | ami_bytes, options=reader_options)
def test_arbitrary_bytes_end_in_events_never_an_exception(data: bytes, options: dict) -> None:
    events = read_all([data], options)
    assert events[-1] is Signal.END_OF_STREAM
    assert events.count(Signal.END_OF_STREAM) == 1


header_names = st.text(min_size=1, max_size=12)
header_values = st.text(max_size=30)


@given(headers=st.lists(st.tuples(header_names, header_values), min_size=1, max_size=6))
@example(headers=[("Secret", "\ud800")])  # a lone surrogate: not encodable, refused rather than a crash
@example(headers=[("Value", " \tleading blanks")])
def test_what_the_encoder_accepts_decodes_back(headers: list[tuple[str, str]]) -> None:
    try:
        data = encode_packet(headers)
    except UnsafeHeader:
        return
    reader = PacketReader()
    reader.receive_data(data)
    # Asterisk skips the blanks after the colon, and so does the reader: that part is not kept.
    assert reader.next_event() == Packet(tuple((name, value.lstrip(" \t")) for name, value in headers))
    assert reader.next_event() is Signal.NEED_DATA


# -- the script loader --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = sorted(
    {key for line in (ROOT / "amiscript" / "script" / "schema.json").read_text().splitlines() for key in
     line.strip().split('"')[1:2] if key.isidentifier()}
)  # fmt: skip
YAML_PIECES = [
    "\n", "  ", "- ", ": ", "{", "}", "[", "]", ",", "'", '"', "#", "&a ", "*a", "!!str ", "!!python/object ",
    "<<: ", "|\n", ">-\n", "---\n", "${", "}", "${env:", "${file:", "$$", "\\", "\t", "~", "null", "1e9", "0x1F",
    "(?P<x>", ".*", "steps:\n", "vars:\n", "connect: {}\n", "  - send: ", "  - expect: ", "  - action: ",
]  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.sampled_from(VOCABULARY)


def _containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    keys = st.sampled_from(VOCABULARY) | st.text(max_size=6)
    return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5)


structures = st.recursive(scalars, _containers, max_leaves=30)
# Shaped like a script, so that many get past the first checks and reach the deeper ones.
steps = st.lists(st.dictionaries(st.sampled_from(VOCABULARY), structures, min_size=1, max_size=3), max_size=5)
scripts = st.fixed_dictionaries(
    {"steps": steps},
    optional={
        "vars": st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), structures, max_size=4),
        "connect": st.dictionaries(st.sampled_from(VOCABULARY), scalars, max_size=4),
        "timeout": scalars,
        "on": st.dictionaries(st.sampled_from(VOCABULARY), steps, max_size=2),
    },
)
pieces = st.sampled_from(YAML_PIECES + VOCABULARY) | st.text(max_size=6)


def _mutate(document: object, edits: list[tuple[int, str]]) -> str:
    text = yaml.safe_dump(document, allow_unicode=True)
    for position, piece in edits:
        at = position % (len(text) + 1)
        text = text[:at] + piece + text[at:]
    return text


# Random pieces of YAML, and scripts dumped to YAML with pieces inserted here and there.
yaml_text = st.lists(pieces, max_size=40).map("".join) | st.builds(
    _mutate, scripts, st.lists(st.tuples(st.integers(0, 1 << 16), pieces), max_size=4)
)


def load_or_refuse(text: str) -> None:
    """Loading, linting and a dry run either work or raise ScriptError: never anything else."""
    from amiscript.engine.dryrun import DryRun
    from amiscript.errors import AmiscriptError
    from amiscript.script.lint import lint

    try:
        script = load_script_text(text, str(ROOT / "tests" / "fuzz.yaml"))
    except ScriptError:
        return
    lint(script)
    with contextlib.suppress(AmiscriptError):
        DryRun(script, lambda line: None, variables={}, environ={}).run()


@given(text=yaml_text)
@example(text='steps:\n  - send: "\\ud800"\n')  # a lone surrogate once crashed the encoder at run time
@example(text="a: &a [*a]\n")
def test_any_yaml_text_loads_or_is_refused_with_a_script_error(text: str) -> None:
    load_or_refuse(text)


@given(document=scripts | structures)
def test_any_structure_dumped_to_yaml_loads_or_is_refused_with_a_script_error(document: object) -> None:
    load_or_refuse(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=scripts, text=yaml_text)
def test_check_on_the_command_line_never_shows_a_traceback(tmp_path: Path, document: object, text: str) -> None:
    dumped, written = tmp_path / "dumped.yaml", tmp_path / "written.yaml"
    dumped.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    written.write_text(text, encoding="utf-8", errors="surrogateescape")
    result = subprocess.run(
        [*AMISCRIPT, "check", str(dumped), str(written)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:backslashreplace"},
    )  # fmt: skip
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.endswith(("warning\n", "warnings\n")) and not result.stderr


# -- substitution never injects ------------------------------------------------------------------

INJECTION = """\
vars: {v: x}
connect: {}
steps:
  - login: {username: admin, secret: "${v}"}
  - action: {Action: Ping, X: "a${v}b", E: "${env:E}"}
    save: {echoed: Echo}
  - action: {Action: Ping, Z: "${echoed}"}
  - send: "Action: Ping\\nY: ${v}${echoed}\\n\\n"
"""
# each packet the script sends, and the headers it has; nothing else may reach the peer
EXPECTED = [
    ("Login", ["Action", "Username", "Secret", "ActionID"]),
    ("Ping", ["Action", "X", "E", "ActionID"]),
    ("Ping", ["Action", "Z", "ActionID"]),
    ("Ping", ["Action", "Y"]),
]
breaking = st.lists(st.sampled_from(["\r", "\n", "\r\n", "\0", ": ", "Action: Command", "x"]) | st.text(max_size=4),
                    max_size=8).map("".join)  # fmt: skip


template_text = st.lists(
    st.sampled_from(["${v}", "${env:E}", "${ v }", "$${v}", "${", "}", "$", "\r\n", "${v.k}", "${nope}", "${file:}"])
    | st.text(max_size=4),
    max_size=10,
).map("".join)


@given(text=template_text, value=breaking, env_value=breaking)
def test_a_template_adds_no_line_break_of_a_value_or_refuses(text: str, value: str, env_value: str) -> None:
    where = Location("t.yaml", 1, 1)
    try:
        template = parse_template(text, where)
        rendered = template.render({"v": value}, escape=refuse_line_breaks(where, "a header"), environ={"E": env_value})
    except ScriptError:
        return
    literal = "".join(part for part in template.parts if isinstance(part, str))
    for char in "\r\n\0":
        assert rendered.count(char) == literal.count(char)


@given(value=breaking, env_value=breaking, peer_value=st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")))
@example(value="x", env_value="y", peer_value=b"a\rAction: Command")  # a bare CR from the peer is data, captured
@example(value="x\r\nAction: Command", env_value="y", peer_value=b"z")
def test_no_substituted_value_puts_a_line_break_into_a_sent_header(
    value: str, env_value: str, peer_value: bytes
) -> None:
    def answer(packet: Packet) -> bytes:
        action_id = (packet.get("ActionID") or "").encode()
        return b"Response: Success\r\nActionID: " + action_id + b"\r\nEcho: " + peer_value + b"\r\n\r\n"

    clock = FakeClock()
    transport = MemoryTransport(b"Asterisk Call Manager/11.0.0\r\n", ami_peer(answer), on_idle=clock.advance)
    refused = False
    try:
        Interpreter(
            load_script_text(INJECTION, "injection.yaml"), lambda target: transport, Recorder(),
            variables={"v": value}, environ={"E": env_value}, clock=clock, sleep=clock.sleep,
        ).run()  # fmt: skip
    except ScriptError as error:
        assert "refusing to put it into" in error.message or "line break" in error.message, error  # or the encoder
        refused = True
    reader = PacketReader()
    reader.receive_data(b"".join(transport.sent))
    sent = []
    while isinstance(packet := reader.next_event(), Packet):
        sent.append(packet)
    assert reader.buffered == 0  # no half packet either
    assert len(sent) < len(EXPECTED) if refused else len(sent) == len(EXPECTED)
    for packet, (action, names) in zip(sent, EXPECTED[: len(sent)], strict=True):
        assert packet.get("Action") == action
        assert [name for name, _ in packet.headers] == names
        assert all("\r" not in text and "\n" not in text for _, text in packet.headers)
