"""Reading an upstream's server-sent events as they pass through to the client.

Each complete event is parsed, noted (token ids, usage, finish) and re-written only as far as
the client must not see what the gateway added: the `token_ids` it asked for so it can resume,
and the usage chunk it asked for so it can count. Events are forwarded one by one, never
gathered into larger writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

DONE = b"[DONE]"


class StreamTracker:
    """What has been streamed so far, and the events to forward."""

    def __init__(self, model: str, *, strip_ids: bool, strip_usage: bool, track_ids: bool) -> None:
        self.model = model
        self.strip_ids = strip_ids
        self.strip_usage = strip_usage
        self.track_ids = track_ids
        self._buffer = b""
        self.prompt_ids: list[int] | None = None
        self.ids: list[int] = []
        self.usage: dict[str, Any] | None = None
        self.finished = False
        """A finish_reason arrived (for every choice seen)."""
        self.done = False
        """The [DONE] sentinel arrived."""
        self.events = 0
        self.id: str | None = None
        self.created: int | None = None
        self.object: str | None = None
        self.reshape: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        """Set when the stream was resumed: turns the continuation's chunks into ours."""
        self.resumes = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The complete events in `data` (plus what was pending), as they should be sent."""
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:  # events may end in CRLF CRLF (SSE allows it); vLLM's do not
            buffer = buffer.replace(b"\r\n", b"\n")
        *complete, self._buffer = buffer.split(b"\n\n")
        out = []
        for event in complete:
            if event:
                rewritten = self._event(event)
                if rewritten is not None:
                    out.append(rewritten)
        return out

    def _event(self, event: bytes) -> bytes | None:
        if not event.startswith(b"data:"):
            return event + b"\n\n"  # comments and other fields pass untouched
        payload = event[5:].strip()
        if payload == DONE:
            self.done = True
            return event + b"\n\n"
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return event + b"\n\n"
        if not isinstance(obj, dict):
            return event + b"\n\n"
        if self.reshape is not None:
            obj = self.reshape(obj)
        keep = self._note(obj)
        self.events += 1
        return b"data: " + orjson.dumps(obj) + b"\n\n" if keep else None

    def _note(self, obj: dict[str, Any]) -> bool:
        """Record what the chunk says; strip what the gateway added; False to drop it."""
        if self.id is None and "id" in obj:
            self.id, self.created, self.object = (
                obj.get("id"),
                obj.get("created"),
                obj.get("object"),
            )
        if "model" in obj:
            obj["model"] = self.model
        top_prompt = (
            obj.pop("prompt_token_ids", None) if self.strip_ids else obj.get("prompt_token_ids")
        )
        if top_prompt is not None and self.prompt_ids is None:
            self.prompt_ids = list(top_prompt)
        choices = obj.get("choices") or []
        empty = True
        for choice in choices:
            empty = self._choice(choice) and empty
        usage = obj.get("usage")
        if usage:
            self.usage = usage
        if self.strip_usage:
            obj.pop("usage", None)
            if usage and not choices:
                return False
        # A chunk that only carried the token ids the gateway asked for says nothing to a
        # client that did not ask for them.
        return not (choices and empty and self.strip_ids and not usage)

    def _choice(self, choice: dict[str, Any]) -> bool:
        """Note one choice; True when it carried nothing but token ids."""
        strip = self.strip_ids
        prompt = choice.pop("prompt_token_ids", None) if strip else choice.get("prompt_token_ids")
        if prompt is not None and self.prompt_ids is None:
            self.prompt_ids = list(prompt)
        ids = choice.pop("token_ids", None) if strip else choice.get("token_ids")
        if ids and self.track_ids:
            self.ids.extend(ids)
        if choice.get("finish_reason"):
            self.finished = True
            return False
        delta = choice.get("delta")
        return (
            bool(ids)
            and not choice.get("text")
            and (delta is None or not delta or (delta == {"content": ""}))
        )

    @property
    def completion_tokens(self) -> int:
        if self.usage:
            return int(self.usage.get("completion_tokens") or 0)
        return len(self.ids)

    @property
    def prompt_tokens(self) -> int:
        if self.usage:
            return int(self.usage.get("prompt_tokens") or 0)
        return len(self.prompt_ids or ())
