"""Stop strings over streamed text, and stop tokens."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.engine import stop
from inferplane.engine.stop import StopChecker


def stream(chunks: list[str], stops: list[str], *, include: bool = False) -> tuple[list[str], bool]:
    """Feed chunks until one finishes; the emitted pieces (flush included) and whether stopped."""
    checker = StopChecker(stops, include_stop_str_in_output=include)
    emitted = []
    for chunk in chunks:
        result = checker.feed(chunk)
        emitted.append(result.emit)
        if result.finished:
            return emitted, True
    emitted.append(checker.flush())
    return emitted, False


def test_a_stop_string_across_token_boundaries_is_cut_off() -> None:
    emitted, finished = stream(["Hello", " wor", "ld\n", "\nmore"], ["\n\n"])
    assert finished
    assert "".join(emitted) == "Hello world"


def test_the_stop_string_is_kept_when_asked() -> None:
    emitted, finished = stream(["Hello", " wor", "ld\n", "\nmore"], ["\n\n"], include=True)
    assert finished
    assert "".join(emitted) == "Hello world\n\n"


def test_a_possible_stop_prefix_is_held_back_then_released() -> None:
    checker = StopChecker(["STOP"])
    first = checker.feed("abc ST")
    assert (first.emit, first.pending, first.finished) == ("abc ", "ST", False)
    second = checker.feed("O")
    assert (second.emit, second.pending) == ("", "STO")
    third = checker.feed("x")
    assert (third.emit, third.pending) == ("STOx", "")
    assert checker.flush() == ""


def test_flush_releases_held_text_at_the_end() -> None:
    emitted, finished = stream(["abc", " S"], ["STOP"])
    assert not finished
    assert emitted == ["abc", " ", "S"]


def test_a_stop_string_inside_one_token() -> None:
    result = stop.scan("", "foo</s>bar", stop=["</s>"])
    assert (result.emit, result.stop_string, result.finished) == ("foo", "</s>", True)


def test_the_match_that_ends_first_wins_then_the_longest() -> None:
    assert stop.scan("", "xabc", stop=["abc", "b"]).emit == "xa"
    assert stop.scan("", "abc", stop=["c", "bc"]).stop_string == "bc"
    assert stop.scan("", "abc", stop=["c", "bc"], include_stop_str_in_output=True).emit == "abc"


def test_without_stop_strings_everything_is_emitted() -> None:
    result = stop.scan("", "anything", stop=[])
    assert (result.emit, result.pending, result.finished) == ("anything", "", False)


def test_with_the_stop_string_kept_a_partial_one_is_still_held_back() -> None:
    result = stop.scan("", "abc ST", stop=["STOP"], include_stop_str_in_output=True)
    assert (result.emit, result.pending) == ("abc ", "ST")
    assert stop.scan("ST", "OP!", stop=["STOP"], include_stop_str_in_output=True).emit == "STOP"


def test_stop_tokens() -> None:
    def check(token: int, *, ignore_eos: bool = False) -> bool:
        return stop.is_stop_token(token, stop_token_ids=[5], eos_token_id=2, ignore_eos=ignore_eos)

    assert check(2)
    assert not check(2, ignore_eos=True)
    assert check(5)
    assert check(5, ignore_eos=True)
    assert not check(3)
    assert not stop.is_stop_token(2, stop_token_ids=(), eos_token_id=None, ignore_eos=False)


def reference(text: str, stops: list[str], include: bool) -> tuple[str, bool]:
    """The answer for the whole text at once: cut where a stop string first completes."""
    for end in range(len(text) + 1):
        for s in sorted(stops, key=len, reverse=True):
            if text[:end].endswith(s):
                return (text[:end] if include else text[: end - len(s)]), True
    return text, False


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab\n", max_size=30),
    stops=st.lists(st.text(alphabet="ab\n", min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=8),
    include=st.booleans(),
)
def test_streaming_equals_the_whole_text_however_it_is_split(
    text: str, stops: list[str], cuts: list[int], include: bool
) -> None:
    bounds = [0, *sorted(min(c, len(text)) for c in cuts), len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    emitted, finished = stream(chunks, stops, include=include)
    assert ("".join(emitted), finished) == reference(text, stops, include)
    if not include:
        # No emitted piece ever ends inside a stop string that the final text cuts off.
        assert all(not piece or not any(s in piece for s in stops) for piece in emitted)
