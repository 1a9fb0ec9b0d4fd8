"""The AMI codec: fed one byte at a time, split at every offset, and against real captures."""

from __future__ import annotations

import pytest

from amiscript.protocol import (
    SERVER_MAX_HEADERS,
    SERVER_MAX_LINE,
    Banner,
    Malformed,
    Packet,
    PacketReader,
    Problem,
    Signal,
    UnsafeHeader,
    encode_packet,
)
from amiscript.protocol.auth import md5_key

from .capturelib import CAPTURES, capture_names

CAPTURE_NAMES = capture_names()


def drain(reader: PacketReader) -> list[object]:
    events = []
    while True:
        event = reader.next_event()
        if event is Signal.NEED_DATA or event is Signal.END_OF_STREAM:
            return events
        events.append(event)


def read_all(chunks: list[bytes], **options: object) -> list[object]:
    reader = PacketReader(**options)  # type: ignore[arg-type]
    events: list[object] = []
    for chunk in chunks:
        if not chunk:
            continue  # b"" would mean end of stream
        reader.receive_data(chunk)
        events.extend(drain(reader))
    reader.receive_data(b"")
    events.extend(drain(reader))
    assert reader.next_event() is Signal.END_OF_STREAM
    return events


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_every_capture_reads_the_same_one_byte_at_a_time_as_whole(name: str) -> None:
    data = (CAPTURES / f"{name}.bin").read_bytes()
    whole = read_all([data], expect_banner=True)
    assert whole[0] == Banner("Asterisk Call Manager/11.0.0")
    assert read_all(one_byte_at_a_time(data), expect_banner=True) == whole
    assert not any(isinstance(event, Malformed) for event in whole)


def test_mailboxcount_capture_decodes_to_its_packets() -> None:
    data = (CAPTURES / "mailboxcount-123.bin").read_bytes()
    events = read_all([data], expect_banner=True)
    responses = [e for e in events if isinstance(e, Packet) and e.kind == "response"]
    assert [r.get("ActionID") for r in responses] == ["login", "mbc-1", "mbc-2"]
    assert responses[1].get("newmessages") == "2"
    assert responses[1].get("OldMessages") == "1"
    events_only = [e.get("Event") for e in events if isinstance(e, Packet) and e.kind == "event"]
    assert events_only == ["FullyBooted", "SuccessfulAuth"]


def test_packets_split_at_every_offset_decode_identically() -> None:
    data = (CAPTURES / "ping.bin").read_bytes()
    expected = read_all([data], expect_banner=True)
    for cut in range(len(data) + 1):
        assert read_all([data[:cut], data[cut:]], expect_banner=True) == expected, cut


@pytest.mark.parametrize("name", ["bare-lf-line-endings", "header-without-colon", "pipelined-actions"])
def test_sent_captures_parse_as_asterisk_read_them(name: str) -> None:
    sent = (CAPTURES / f"{name}.sent.bin").read_bytes()
    events = read_all(one_byte_at_a_time(sent), max_line=SERVER_MAX_LINE, max_headers=SERVER_MAX_HEADERS)
    assert all(isinstance(e, Packet) for e in events)
    assert len(events) >= 3


def test_lf_only_and_mixed_line_ends_are_accepted() -> None:
    events = read_all([b"Action: Ping\nActionID: a\n\nAction: Ping\r\nActionID: b\n\r\n"])
    assert events == [
        Packet.of(("Action", "Ping"), ("ActionID", "a")),
        Packet.of(("Action", "Ping"), ("ActionID", "b")),
    ]


def test_bare_cr_is_data_not_a_line_end() -> None:
    (packet,) = read_all([b"Action: Ping\rActionID: lf-4\r\r\n\r\n"])
    assert packet == Packet.of(("Action", "Ping\rActionID: lf-4\r"))


def test_line_without_colon_is_ignored_and_value_blanks_follow_asterisk() -> None:
    (packet,) = read_all([b"Action:   Ping   \r\nThisLineHasNoColon\r\nActionID:nc-3\r\n\r\n"])
    assert packet.headers == (("Action", "Ping   "), ("ActionID", "nc-3"))


def test_header_names_compare_case_insensitively() -> None:
    (packet,) = read_all([b"action: ping\r\nactionid: nc-4\r\n\r\n"])
    assert packet.get("Action") == "ping"
    assert packet.get("ACTIONID") == "nc-4"
    assert "ActionID" in packet


def test_blank_lines_between_packets_are_skipped() -> None:
    assert read_all([b"\r\n\r\nAction: Ping\r\n\r\n\r\n"]) == [Packet.of(("Action", "Ping"))]


def test_line_over_server_limit_is_reported_with_the_headers_read_and_session_continues() -> None:
    long_line = b"X-Long: " + b"A" * 10240 + b"\r\n"
    data = b"Action: Ping\r\nActionID: long-1\r\n" + long_line + b"\r\nAction: Ping\r\nActionID: long-2\r\n\r\n"
    events = read_all(one_byte_at_a_time(data), max_line=SERVER_MAX_LINE)
    assert events == [
        Malformed(Problem.LINE_TOO_LONG, Packet.of(("Action", "Ping"), ("ActionID", "long-1"))),
        Packet.of(("Action", "Ping"), ("ActionID", "long-2")),
    ]


def test_line_just_under_server_limit_is_accepted() -> None:
    line = b"X-Long: " + b"B" * 1000 + b"\r\n"  # 1010 bytes, as in the long-header-10k capture
    (packet,) = read_all([b"Action: Ping\r\n" + line + b"\r\n"], max_line=SERVER_MAX_LINE)
    assert isinstance(packet, Packet)
    assert packet.get("X-Long") == "B" * 1000


def test_over_long_line_is_discarded_without_being_buffered() -> None:
    reader = PacketReader(max_line=SERVER_MAX_LINE)
    reader.receive_data(b"Action: Ping\r\nX: ")
    for _ in range(200):
        reader.receive_data(b"A" * 65536)
        assert reader.next_event() is Signal.NEED_DATA
        assert reader.buffered <= SERVER_MAX_LINE
    reader.receive_data(b"\r\n\r\n")
    event = reader.next_event()
    assert isinstance(event, Malformed) and event.problem is Problem.LINE_TOO_LONG


def test_too_many_headers_keeps_the_first_ones_for_the_actionid() -> None:
    lines = [b"Action: Ping", b"ActionID: many-1"] + [b"X-H%d: v" % i for i in range(140)]
    data = b"\r\n".join(lines) + b"\r\n\r\n"
    (event,) = read_all([data], max_headers=SERVER_MAX_HEADERS)
    assert isinstance(event, Malformed)
    assert event.problem is Problem.TOO_MANY_HEADERS
    assert event.packet.get("ActionID") == "many-1"
    assert len(event.packet.headers) == SERVER_MAX_HEADERS


def test_end_of_stream_inside_a_packet_is_reported_as_truncated() -> None:
    events = read_all([b"Response: Success\r\nActionID: x\r\nMess"])
    assert events == [Malformed(Problem.TRUNCATED, Packet.of(("Response", "Success"), ("ActionID", "x")))]


def test_bytes_that_are_not_utf8_round_trip_through_decode_and_encode() -> None:
    raw = b"Event: X\r\nData: \xff\xfe\x00ok\r\n\r\n"
    (packet,) = read_all([raw])
    assert encode_packet(packet.headers, allow_cr=True) == raw


def test_encode_writes_crlf_lines_and_a_blank_line() -> None:
    assert encode_packet([("Action", "Ping"), ("ActionID", "1")]) == b"Action: Ping\r\nActionID: 1\r\n\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        [("Mailbox", "123\r\nAction: Originate")],
        [("Mailbox", "123\nAction: Originate")],
        [("Mailbox", "123\rX")],
        [("Bad: name", "x")],
        [("Bad\r\nName", "x")],
        [("", "x")],
    ],
)
def test_encode_refuses_values_and_names_that_would_inject_headers(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(UnsafeHeader):
        encode_packet(headers)


def test_encode_lets_a_server_echo_bare_cr_but_never_lf() -> None:
    assert encode_packet([("Message", "a\rb")], allow_cr=True) == b"Message: a\rb\r\n\r\n"
    with pytest.raises(UnsafeHeader):
        encode_packet([("Message", "a\nb")], allow_cr=True)


FOLLOWS = (
    b"Response: Follows\r\nPrivilege: Command\r\nActionID: cmd-1\r\n"
    b"Asterisk 13.38.3 built by root @ pbx on a x86_64 running Linux\n"
    b"\n"
    b"Uptime: 1 day, 2 hours\n"
    b"--END COMMAND--\r\n\r\n"
    b"Response: Success\r\nActionID: ping\r\nPing: Pong\r\n\r\n"
)


def test_legacy_follows_body_becomes_output_headers_even_with_colons_and_blank_lines() -> None:
    events = read_all(one_byte_at_a_time(FOLLOWS), legacy_follows=True)
    assert events == [
        Packet.of(
            ("Response", "Follows"),
            ("Privilege", "Command"),
            ("ActionID", "cmd-1"),
            ("Output", "Asterisk 13.38.3 built by root @ pbx on a x86_64 running Linux"),
            ("Output", ""),
            ("Output", "Uptime: 1 day, 2 hours"),
        ),
        Packet.of(("Response", "Success"), ("ActionID", "ping"), ("Ping", "Pong")),
    ]


def test_follows_output_without_a_final_newline_runs_into_the_end_marker() -> None:
    data = b"Response: Follows\r\nPrivilege: Command\r\nNo such command 'x'--END COMMAND--\r\n\r\n"
    (packet,) = read_all([data], legacy_follows=True)
    assert packet.get_all("Output") == ["No such command 'x'"]


def test_follows_is_an_ordinary_header_unless_the_client_asks_for_legacy_bodies() -> None:
    events = read_all([b"Response: Follows\r\nActionID: 1\r\n\r\n"])
    assert events == [Packet.of(("Response", "Follows"), ("ActionID", "1"))]


def test_take_unread_hands_back_a_packet_half_read_and_allows_reading_again_after_eof() -> None:
    reader = PacketReader(legacy_follows=True)
    reader.receive_data(b"Event: A\r\n\r\nEvent: Foo\r\nBar: 1\r\n")
    assert reader.next_event() == Packet.of(("Event", "A"))
    assert reader.next_event() is Signal.NEED_DATA
    reader.receive_data(b"")
    assert reader.take_unread() == b"Event: Foo\r\nBar: 1\r\n"
    reader.receive_data(b"Event: B\r\n\r\n")  # usable again, end of stream forgotten
    assert reader.next_event() == Packet.of(("Event", "B"))


def test_follows_takes_privilege_and_actionid_once_so_look_alike_output_stays_output() -> None:
    data = b"Response: Follows\r\nPrivilege: Command\r\nActionID: 1\r\nActionID: in the output\n--END COMMAND--\r\n\r\n"
    (packet,) = read_all([data], legacy_follows=True)
    assert packet.get_all("ActionID") == ["1"]
    assert packet.get_all("Output") == ["ActionID: in the output"]


# Whole packets already buffered are framed in one pass and split into headers only when asked
# (the fast path); these pin down that it reads every odd input exactly as the line reader does.
ODD_STREAM = (
    b"Event: Plain\r\nA: 1\r\n\r\n"
    b"NoColonFirst\r\nEvent: Second line is the first header\r\n\r\n"
    b"Event: LF only\nB: 2\n\n"
    b"Event: mixed\r\nC: 3\n\r\n"
    b"\r\n\r\n"
    b"Response: Success\r\nActionID: x\rstill the value\r\r\n\r\n"
    b"Event: no value\r\nD:\r\nE: \t  tabs and blanks \r\n\r\n"
    b"junk line only\r\n\r\n"
    b"event: lower case\r\n\r\n"
    b"Eventful: not an event\r\n\r\n"
    b"Response: Follows\r\nPrivilege: Command\r\nActionID: f\r\nraw: output\n\n--END COMMAND--\r\n\r\n"
    b"Event: \xff\xfe not utf-8 \xe2\x82\r\n\r\n"
)


@pytest.mark.parametrize("legacy", [False, True])
def test_whole_buffers_read_odd_packets_exactly_as_one_byte_at_a_time(legacy: bool) -> None:
    whole = read_all([ODD_STREAM], legacy_follows=legacy)
    assert whole == read_all(one_byte_at_a_time(ODD_STREAM), legacy_follows=legacy)
    kinds = [event.kind for event in whole if isinstance(event, Packet)]
    assert kinds[:4] == ["event", "event", "event", "event"]
    assert kinds[-2] == "response" and kinds[-1] == "event"
    assert Packet.of(("Eventful", "not an event")).kind == "" and "" in kinds
    second = whole[1]
    assert isinstance(second, Packet) and second.headers == (("Event", "Second line is the first header"),)


def test_packets_near_the_limits_read_the_same_whole_as_line_by_line() -> None:
    near = b"Action: Ping\r\nX: " + b"a" * (SERVER_MAX_LINE - 5) + b"\r\n\r\n"  # the X line: exactly the limit
    over = b"Action: Ping\r\nX: " + b"b" * SERVER_MAX_LINE + b"\r\n\r\n"
    many = b"".join(b"H%d: v\r\n" % i for i in range(SERVER_MAX_HEADERS + 1)) + b"\r\n"
    data = near + over + many + b"Action: Ping\r\n\r\n"
    limits = {"max_line": SERVER_MAX_LINE, "max_headers": SERVER_MAX_HEADERS}
    whole = read_all([data], **limits)
    assert whole == read_all(one_byte_at_a_time(data), **limits)
    assert [type(event) for event in whole] == [Packet, Malformed, Malformed, Packet]


def test_take_unread_hands_back_whole_packets_not_yet_taken() -> None:
    reader = PacketReader()
    reader.receive_data(b"Event: A\r\n\r\nEvent: B\r\n\r\nEvent: C\r\n")
    assert reader.next_event() == Packet.of(("Event", "A"))
    assert reader.take_unread() == b"Event: B\r\n\r\nEvent: C\r\n"


def test_a_packet_off_the_wire_equals_and_hashes_as_the_same_headers_built_by_hand() -> None:
    (packet,) = read_all([b"Response: Success\r\nActionID: 7\r\n\r\n"])
    built = Packet.of(("Response", "Success"), ("ActionID", "7"))
    assert packet == built and hash(packet) == hash(built) and repr(packet) == repr(built)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_every_capture_reads_the_same_line_by_line_as_framed_whole(name: str) -> None:
    # With max_line just above the longest line, every packet of two lines or more is longer
    # than max_line, which the whole-packet framing leaves to the line reader.
    data = (CAPTURES / f"{name}.bin").read_bytes()
    longest = max(len(line) for line in data.split(b"\n")) + 1
    line_by_line = read_all(one_byte_at_a_time(data), expect_banner=True, max_line=longest + 1)
    assert line_by_line == read_all([data], expect_banner=True)


def test_a_buffer_larger_than_one_framing_pass_reads_the_same_as_small_reads() -> None:
    packets = [b"Event: E%d\r\nPad: %s\r\n\r\n" % (i, b"p" * (i % 700)) for i in range(2000)]
    data = b"\r\n".join(packets)  # a blank line between packets too: the line reader's part
    assert len(data) > 600_000
    whole = read_all([data])
    assert whole == read_all([data[i : i + 999] for i in range(0, len(data), 999)])
    assert len(whole) == 2000 and whole[-1] == Packet.of(("Event", "E1999"), ("Pad", "p" * (1999 % 700)))


def test_the_md5_key_is_the_one_asterisk_accepted_in_the_capture() -> None:
    """challenge-md5-login: Asterisk sent Challenge 115991323 and accepted this Key for secret5."""
    assert md5_key("115991323", "secret5") == "8df7a3824f33f695d9983d5df6f4a9c9"
