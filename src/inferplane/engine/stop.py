"""When a sequence ends: stop strings over the streamed text, stop token ids.

Stop strings are matched on detokenized text, because one may span token boundaries ("\\n\\n"
made of two "\\n" tokens) or sit inside one token. The check is incremental and pure: `scan`
takes the text held back so far and the newly decoded text and says what may be emitted. It
holds back the longest tail that could still begin a stop string, so a stream never shows part
of a stop string that is later cut off.

Which match wins: the one that ends first, then the longest of those. That is where a stream
decoded one character at a time would first see a stop string, so the result does not depend
on how the text is split into chunks. (vLLM takes the first stop string in list order that
occurs anywhere in the new text, which does depend on chunking.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StopScan:
    """The outcome of scanning one chunk of new text."""

    emit: str
    """Text that may be sent to the client now."""
    pending: str
    """Text held back because it may begin a stop string; pass it to the next `scan`."""
    stop_string: str | None
    """The stop string that matched (the sequence is finished), or None."""

    @property
    def finished(self) -> bool:
        """Whether a stop string matched, so the sequence ends here."""
        return self.stop_string is not None


def scan(
    pending: str,
    new_text: str,
    *,
    stop: Sequence[str],
    include_stop_str_in_output: bool = False,
) -> StopScan:
    """Look for a stop string in `pending + new_text`.

    Searching only the held-back text plus the new text suffices: any stop string that
    completes now began inside what was held back (the held-back tail is the longest suffix
    that is a prefix of a stop string). When a stop string matches, the text is cut at its
    start, or at its end with `include_stop_str_in_output`, and nothing is pending.
    """
    text = pending + new_text
    match = _first_match(text, stop)
    if match is not None:
        start, stop_string = match
        end = start + len(stop_string) if include_stop_str_in_output else start
        return StopScan(emit=text[:end], pending="", stop_string=stop_string)
    # Held back even when the stop string is kept: the next scan must see its beginning.
    hold = _held_back_length(text, stop)
    return StopScan(
        emit=text[: len(text) - hold], pending=text[len(text) - hold :], stop_string=None
    )


def _first_match(text: str, stop: Sequence[str]) -> tuple[int, str] | None:
    """The (start, stop string) that ends earliest in `text`, the longer one on a tie."""
    best: tuple[int, int, str] | None = None  # (end, -length, stop string)
    for stop_string in stop:
        start = text.find(stop_string)
        if start < 0:
            continue
        key = (start + len(stop_string), -len(stop_string), stop_string)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    end, _, stop_string = best
    return end - len(stop_string), stop_string


def _held_back_length(text: str, stop: Sequence[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of some stop string."""
    longest = max((len(s) for s in stop), default=0)
    for length in range(min(len(text), longest - 1), 0, -1):
        tail = text[-length:]
        if any(s.startswith(tail) for s in stop):
            return length
    return 0


class StopChecker:
    """Carries `scan`'s pending text across the chunks of one sequence's stream."""

    def __init__(self, stop: Sequence[str], *, include_stop_str_in_output: bool = False) -> None:
        self._stop = tuple(stop)
        self._include = include_stop_str_in_output
        self._pending = ""

    def feed(self, new_text: str) -> StopScan:
        """Scan newly decoded text; emit `result.emit`, and stop if `result.finished`."""
        result = scan(
            self._pending, new_text, stop=self._stop, include_stop_str_in_output=self._include
        )
        self._pending = result.pending
        return result

    def flush(self) -> str:
        """The held-back text, released when the sequence ends for another reason."""
        pending, self._pending = self._pending, ""
        return pending


def is_stop_token(
    token_id: int,
    *,
    stop_token_ids: Sequence[int],
    eos_token_id: int | None,
    ignore_eos: bool,
) -> bool:
    """Whether sampling `token_id` ends the sequence (EOS unless ignored, or a stop token)."""
    if eos_token_id is not None and token_id == eos_token_id and not ignore_eos:
        return True
    return token_id in stop_token_ids
