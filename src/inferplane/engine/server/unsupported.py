"""Request fields the engine does not implement: refused with a 400 that names them.

A client that asks for tools, JSON mode, `echo` or a logit bias and gets plain text back
cannot tell that its field was dropped, so each such field is refused unless its value asks
for nothing (`echo: false`, `best_of` equal to `n`, `response_format: {"type": "text"}`,
vLLM's `skip_special_tokens: true`...). A field nobody here knows is refused as OpenAI
refuses it ("Unrecognized request argument supplied"). A few fields that only ask for
bookkeeping on OpenAI's side (`IGNORED`) are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

IGNORED = frozenset(
    {"user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier"}
)
"""Accepted and ignored: they change nothing in the tokens a client gets back."""

Accepts = Callable[[Any, int], bool]
"""Whether a value of the field (and the request's `n`) asks for nothing the engine lacks."""


class FieldError(ValueError):
    """A request field the engine refuses; `param` names it as the client spelled it, and
    the message names it too."""

    def __init__(self, param: str, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class Unsupported:
    """A field the engine does not implement, and the values of it that are harmless."""

    feature: str
    """What the field asks for, in words, for the error message."""
    accepts: Accepts
    hint: str
    """The values that are accepted, for the error message."""


def _is(value: Any, expected: Any) -> bool:
    """Equal and of the same type, so that `0` is not taken for `false`."""
    return type(value) is type(expected) and bool(value == expected)


def _only(*values: Any) -> Accepts:
    return lambda value, n: value is None or any(_is(value, v) for v in values)


_NULL = _only()
_EMPTY = _only([], {}, "")


def _best_of(value: Any, n: int) -> bool:
    return value is None or _is(value, n)


def _field(feature: str, accepts: Accepts, hint: str = "leave it null") -> Unsupported:
    return Unsupported(feature, accepts, hint)


_VLLM: dict[str, Unsupported] = {
    "logit_bias": _field("logit bias", _EMPTY, "leave it null or {}"),
    "min_tokens": _field("a minimum output length", _only(0), "leave it 0"),
    "use_beam_search": _field("beam search", _only(False), "leave it false"),
    "skip_special_tokens": _field("special tokens in the text", _only(True), "leave it true"),
    "spaces_between_special_tokens": _field(
        "no spaces between special tokens", _only(True), "leave it true"
    ),
    "prompt_logprobs": _field("prompt logprobs", _NULL),
    "truncate_prompt_tokens": _field("prompt truncation", _NULL),
    "allowed_token_ids": _field("an allowed-token list", _NULL),
    "bad_words": _field("bad words", _EMPTY, "leave it null or []"),
    "logits_processors": _field("logits processors", _NULL),
    "structured_outputs": _field("structured output", _NULL),
    "guided_json": _field("guided decoding", _NULL),
    "guided_regex": _field("guided decoding", _NULL),
    "guided_choice": _field("guided decoding", _NULL),
    "guided_grammar": _field("guided decoding", _NULL),
    "return_tokens_as_token_ids": _field("tokens as token ids", _only(False), "leave it false"),
}
"""Fields both routes might get, from OpenAI (`logit_bias`) or vLLM's extras."""

COMPLETION: Mapping[str, Unsupported] = {
    **_VLLM,
    "echo": _field("echoing the prompt", _only(False), "leave it false"),
    "best_of": _field("best-of sampling", _best_of, "leave it null or equal to n"),
    "suffix": _field("a suffix (insertion)", _EMPTY),
    "add_special_tokens": _field("a prompt without special tokens", _only(True), "leave it true"),
}
"""What `/v1/completions` refuses (and V2's `parameters`, which map onto it)."""

CHAT: Mapping[str, Unsupported] = {
    **_VLLM,
    "tools": _field("tool calling", _EMPTY, "leave it null or []"),
    "tool_choice": _field("tool calling", _only("none"), 'leave it null or "none"'),
    "functions": _field("function calling", _EMPTY, "leave it null or []"),
    "function_call": _field("function calling", _only("none"), 'leave it null or "none"'),
    "parallel_tool_calls": _field("tool calling", _NULL),
    "response_format": _field(
        "structured output", _only({"type": "text"}), 'leave it null or {"type": "text"}'
    ),
    "audio": _field("audio output", _NULL),
    "modalities": _field("output modalities", _only(["text"]), 'leave it null or ["text"]'),
    "prediction": _field("predicted outputs", _NULL),
    "web_search_options": _field("web search", _NULL),
    "reasoning_effort": _field("reasoning effort", _NULL),
    "verbosity": _field("verbosity", _NULL),
    "echo": _field("echoing the last message", _only(False), "leave it false"),
    "add_generation_prompt": _field(
        "a prompt without the generation prompt", _only(True), "leave it true"
    ),
    "continue_final_message": _field(
        "continuing the final message", _only(False), "leave it false"
    ),
    "chat_template": _field("a chat template of the request's own", _NULL),
    "chat_template_kwargs": _field("chat template arguments", _EMPTY, "leave it null or {}"),
    "documents": _field("documents for the template", _NULL),
    "add_special_tokens": _field("special tokens", _only(False), "leave it false"),
}
"""What `/v1/chat/completions` refuses."""

EMBEDDING: Mapping[str, Unsupported] = {
    "truncate_prompt_tokens": _field("prompt truncation", _NULL),
    "add_special_tokens": _field("texts without special tokens", _only(True), "leave it true"),
}
"""What `/v1/embeddings` refuses besides unknown fields."""


def check(extra: Mapping[str, Any], table: Mapping[str, Unsupported], *, n: int) -> None:
    """Raise FieldError for the first field of `extra` (fields the request model does not
    declare) that is not ignored and not a harmless value of a known field."""
    for name, value in extra.items():
        if name in IGNORED:
            continue
        known = table.get(name)
        if known is None:
            raise FieldError(name, f"Unrecognized request argument supplied: {name}")
        if not known.accepts(value, n):
            message = f"{name}: {known.feature} is not supported by this engine; {known.hint}"
            raise FieldError(name, message, code="unsupported_parameter")
