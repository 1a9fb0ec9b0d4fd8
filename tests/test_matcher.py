"""The pure matcher: earliest match, ties, captures, consumption, chunking, bounded buffer."""

from __future__ import annotations

import regex

from amiscript.engine.matcher import Found, Searcher, StreamBuffer


def searcher(*patterns: str) -> Searcher:
    return Searcher([regex.compile(p) for p in patterns])


def feed_and_search(chunks: list[bytes], *patterns: str) -> tuple[Found | None, str]:
    buffer = StreamBuffer()
    search = searcher(*patterns)
    found = None
    for chunk in chunks:
        buffer.feed(chunk)
        found = search.search(buffer)
        if found:
            break
    return found, buffer.text


def test_earliest_match_in_the_text_wins_over_list_order() -> None:
    found, _ = feed_and_search([b"Response: Success\r\nResponse: Error\r\n"], "Error", "Success")
    assert found is not None and found.index == 1 and found.text == "Success"


def test_tie_at_the_same_position_goes_to_the_pattern_listed_first() -> None:
    found, _ = feed_and_search([b"Response: Success\r\n"], r"Response: \w+", "Response")
    assert found is not None and found.index == 0 and found.text == "Response: Success"
    found, _ = feed_and_search([b"Response: Success\r\n"], "Response", r"Response: \w+")
    assert found is not None and found.index == 0 and found.text == "Response"


def test_named_groups_become_captures_and_unmatched_groups_are_empty() -> None:
    found, _ = feed_and_search([b"NewMessages: 2\r\n"], r"NewMessages:\s*(?P<new>\d+)(?P<never>x)?")
    assert found is not None and found.groups == {"new": "2", "never": ""}


def test_match_consumes_text_up_to_its_end_so_the_next_expect_sees_what_follows() -> None:
    buffer = StreamBuffer()
    buffer.feed(b"NewMessages: 2\r\nOldMessages: 1\r\nNewMessages: 9\r\n")
    first = searcher(r"NewMessages: (?P<n>\d)").search(buffer)
    assert first is not None and first.groups == {"n": "2"}
    assert buffer.text.startswith("\r\nOldMessages")
    second = searcher(r"OldMessages: (?P<o>\d)").search(buffer)
    assert second is not None and second.groups == {"o": "1"}
    third = searcher(r"NewMessages: (?P<n>\d)").search(buffer)
    assert third is not None and third.groups == {"n": "9"}
    assert searcher("NewMessages").search(buffer) is None


def test_result_does_not_depend_on_where_the_chunks_were_cut() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\nResponse: Error\r\nMessage: Authentication failed\r\n\r\n"
    patterns = (r"Response:\s*Success", r"Response:\s*Error", r"Message: (?P<m>[^\r]+)", r"Message:\s*(?P<n>\w*)")
    whole, _ = feed_and_search([data], *patterns)
    for cut in range(1, len(data)):
        assert feed_and_search([data[:cut], data[cut:]], *patterns)[0] == whole, cut
    one_by_one, _ = feed_and_search([data[i : i + 1] for i in range(len(data))], *patterns)
    assert one_by_one == whole


def test_a_match_running_into_the_end_of_a_line_not_yet_complete_is_deferred() -> None:
    buffer = StreamBuffer()
    search = searcher(r"NewMessages:\s*(?P<new>\d*)")
    buffer.feed(b"Response: Success\r\nNewMessages: ")
    assert search.search(buffer) is None and search.deferred
    buffer.feed(b"12")
    assert search.search(buffer) is None and search.deferred
    buffer.feed(b"\r\nOldMessages: 1\r\n")
    found = search.search(buffer)
    assert found is not None and found.groups == {"new": "12"} and not search.deferred


def test_a_deferred_match_is_taken_when_the_caller_settles() -> None:
    buffer = StreamBuffer()
    search = searcher("Password: ")
    buffer.feed(b"login ok\r\nPassword: ")
    assert search.search(buffer) is None and search.deferred
    found = search.settle(buffer)
    assert found is not None and found.text == "Password: " and buffer.text == ""


def test_word_boundary_and_end_anchor_do_not_match_at_a_chunk_cut() -> None:
    for pattern, chunks in ((r"foo\b", [b"foo", b"bar foo \n"]), (r"Success$", [b"Success", b"ful\n"])):
        buffer = StreamBuffer()
        search = searcher(pattern)
        buffer.feed(chunks[0])
        assert search.search(buffer) is None
        buffer.feed(chunks[1])
        found = search.search(buffer)
        assert found is None or found.start > 0, pattern


def test_a_pattern_that_may_still_match_earlier_makes_the_matcher_wait() -> None:
    buffer = StreamBuffer()
    search = searcher("Response: Error", "Message")
    buffer.feed(b"Response: Err")
    buffer.feed(b"")  # nothing new: still undecided
    assert search.search(buffer) is None
    buffer.feed(b"or\r\nMessage: x")
    found = search.search(buffer)
    assert found is not None and found.index == 0


def test_at_end_of_file_partial_matches_give_way_to_the_best_complete_one() -> None:
    buffer = StreamBuffer()
    search = searcher("Response: Error", "Message")
    buffer.feed(b"Message: x\r\nResponse: Err")
    found = search.search(buffer)
    assert found is not None and found.index == 1  # Message came first, nothing earlier is pending
    buffer = StreamBuffer()
    search = searcher("Response: Error", "Err")
    buffer.feed(b"Response: Err")  # a complete later match inside an incomplete earlier one
    assert search.search(buffer) is None
    buffer.feed_eof()
    found = search.settle(buffer)
    assert found is not None and found.index == 1


def test_buffer_keeps_only_the_newest_max_size_characters() -> None:
    buffer = StreamBuffer(max_size=1000)
    search = searcher("NEVER")
    for _ in range(500):
        buffer.feed(b"Event: Newexten\r\nChannel: Local/100\r\n\r\n")
        assert search.search(buffer) is None
        assert len(buffer.text) <= 1000 + 39
    assert buffer.total == 500 * 39
    assert buffer.text.endswith("Local/100\r\n\r\n")


def test_a_chunk_larger_than_the_buffer_is_searched_whole_before_trimming() -> None:
    buffer = StreamBuffer(max_size=64)
    buffer.feed(b"Response: Success\r\n" + b"x" * 200 + b"\r\n")
    found = searcher("Response: Success").search(buffer)
    assert found is not None


def test_a_match_after_the_buffer_was_trimmed_is_still_found() -> None:
    buffer = StreamBuffer(max_size=64)
    search = searcher(r"ActionID: (?P<id>\w+)")
    buffer.feed(b"x" * 1000)
    assert search.search(buffer) is None
    buffer.feed(b"ActionID: abc\r\n")
    found = search.search(buffer)
    assert found is not None and found.groups == {"id": "abc"}


class CountingPattern:
    """A real compiled regex that records how much text each search had to look at."""

    def __init__(self, pattern: str) -> None:
        self.compiled = regex.compile(pattern)
        self.scanned = 0

    def search(
        self, text: str, pos: int = 0, partial: bool = False, timeout: float | None = None
    ) -> regex.Match[str] | None:
        self.scanned += len(text) - pos
        return self.compiled.search(text, pos, partial=partial, timeout=timeout)


def test_matching_cost_grows_with_what_arrives_not_with_buffer_size_times_chunks() -> None:
    counting = [CountingPattern(r"Response:\s*Success"), CountingPattern(r"ActionID: never")]
    search = Searcher(counting)  # type: ignore[list-item]
    buffer = StreamBuffer(max_size=1 << 20)
    chunk = b"Event: VarSet\r\nResponse2: x\r\nValue: 42\r\nActionID: nev\r\n\r\n"
    for _ in range(5000):
        buffer.feed(chunk)
        assert search.search(buffer) is None
    arrived = buffer.total
    for pattern in counting:
        # each character is looked at a bounded number of times, not once per later chunk
        assert pattern.scanned < 3 * arrived


def test_undecodable_bytes_are_replaced_and_split_utf8_sequences_are_joined() -> None:
    buffer = StreamBuffer()
    data = "Name: Jürgen\r\n".encode()
    for i in range(len(data)):
        buffer.feed(data[i : i + 1])
    buffer.feed(b"Bad: \xff\xfe\r\n")
    assert buffer.text == "Name: Jürgen\r\nBad: \ufffd\ufffd\r\n"


def test_a_long_partial_match_is_not_rescanned_for_every_chunk() -> None:
    counting = CountingPattern(r"Event: Start[\s\S]*ActionID: done")
    search = Searcher([counting])  # type: ignore[list-item]
    buffer = StreamBuffer(max_size=1 << 22)
    buffer.feed(b"Event: Start\r\n")
    chunk = b"Event: VarSet\r\nValue: 42\r\n\r\n" * 40  # about 1 KB, a small read
    for _ in range(2000):
        buffer.feed(chunk)
        assert search.search(buffer) is None
    buffer.feed(b"ActionID: done\r\n")
    found = None
    for _ in range(1000):  # more events until the search comes round again
        found = search.search(buffer)
        if found:
            break
        buffer.feed(chunk)
    assert found is not None and found.start == 0
    assert counting.scanned < 5 * buffer.total  # not 2000 rescans of a growing partial match


def test_a_long_partial_match_completed_by_the_last_bytes_is_found_once_the_peer_is_quiet() -> None:
    search = searcher(r"Event: Start[\s\S]*ActionID: done")
    buffer = StreamBuffer(max_size=1 << 22)
    buffer.feed(b"Event: Start\r\n" + b"x" * 100_000)
    assert search.search(buffer) is None
    buffer.feed(b"ActionID: done\r\n")  # too little new text to search again at once...
    assert search.search(buffer) is None and search.deferred  # ...so it waits for quiet
    found = search.settle(buffer)  # the caller settles when the peer goes quiet
    assert found is not None and found.text.endswith("ActionID: done")


def test_settling_without_a_match_keeps_a_pending_partial_match_alive() -> None:
    search = searcher(r"Event: Start[\s\S]*ActionID: done")
    buffer = StreamBuffer(max_size=1 << 22)
    buffer.feed(b"Event: Start\r\n" + b"x" * 100_000)
    assert search.search(buffer) is None
    assert search.settle(buffer) is None  # the peer went quiet, nothing complete yet
    buffer.feed(b"ActionID: done\r\n")
    found = search.search(buffer)
    assert found is not None and found.start == 0
