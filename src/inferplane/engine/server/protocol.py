"""OpenAI's request bodies as pydantic models, and their mapping to SamplingParams.

Pydantic checks types only; ranges are SamplingParams' job, so one place says what a valid
`top_p` is and every error names the parameter as OpenAI spells it. Fields a model does not
declare are kept (`extra="allow"`) so that `check_supported` can refuse the ones the engine
does not implement instead of dropping them (see `unsupported`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from inferplane.engine.sampling_params import SamplingParams
from inferplane.engine.server import unsupported
from inferplane.engine.server.unsupported import FieldError


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    """Send a last chunk with `usage` and no choices before `[DONE]`."""
    include_obfuscation: bool = False
    """Accepted and ignored: the engine pads no chunk (padding hides lengths from an
    eavesdropper on OpenAI's side; it changes no token)."""


class _Sampling(BaseModel):
    """The fields completions and chat share (OpenAI's, plus vLLM's extras)."""

    model_config = ConfigDict(extra="allow")
    UNSUPPORTED: ClassVar[Mapping[str, unsupported.Unsupported]] = {}

    model: str
    n: int = 1
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    """vLLM extra: keep the k most likely tokens; -1 or 0 is off."""
    min_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    include_stop_str_in_output: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    priority: int = 0
    """vLLM extra: lower runs first among waiting requests."""
    return_token_ids: StrictBool | None = None
    """vLLM extra: also return the prompt's token ids as fed to the model and each choice's
    generated token ids (streamed: the prompt's on a choice's first chunk, then each chunk's
    new ids). Null is false; any other non-boolean is refused."""
    user: str | None = None
    """Accepted and ignored (OpenAI uses it to watch for abuse)."""

    def sampling_params(self) -> SamplingParams:
        raise NotImplementedError

    def check_supported(self) -> None:
        """FieldError for a field the engine does not implement, or a combination OpenAI
        refuses."""
        unsupported.check(self.model_extra or {}, self.UNSUPPORTED, n=self.n)
        if self.stream_options is not None and not self.stream:
            raise FieldError("stream_options", "stream_options: only allowed when stream is true")

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def _params(
        self, *, max_tokens: int | None, logprobs: bool, top_logprobs: int
    ) -> SamplingParams:
        given: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "repetition_penalty": self.repetition_penalty,
        }
        return SamplingParams(
            n=self.n,
            max_tokens=max_tokens,
            seed=self.seed,
            stop=self.stop or (),
            stop_token_ids=self.stop_token_ids or (),
            ignore_eos=self.ignore_eos,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            include_stop_str_in_output=self.include_stop_str_in_output,
            **{name: value for name, value in given.items() if value is not None},
        )


class CompletionRequest(_Sampling):
    """`POST /v1/completions`."""

    UNSUPPORTED = unsupported.COMPLETION

    prompt: str | list[int] | list[str] | list[list[int]]
    """Text, token ids, or a list of either: one generation (times `n`) per prompt."""
    max_tokens: int | None = 16
    """OpenAI's default for completions is 16; null means up to the context."""
    logprobs: int | None = None
    """Return the chosen token's logprob and this many alternatives per position."""

    def sampling_params(self) -> SamplingParams:
        count = self.logprobs
        return self._params(
            max_tokens=self.max_tokens, logprobs=count is not None, top_logprobs=count or 0
        )

    def prompts(self) -> list[str | list[int]]:
        """Each prompt, text or token ids; FieldError for an empty list or an empty prompt."""
        items = _prompt_items(self.prompt)
        if not items:
            raise FieldError("prompt", "prompt: the prompt is empty")
        for index, item in enumerate(items):
            if not item:
                where = "prompt" if len(items) == 1 else f"prompt {index}"
                raise FieldError("prompt", f"prompt: {where} is empty")
        return items


def _prompt_items(prompt: str | list[int] | list[str] | list[list[int]]) -> list[str | list[int]]:
    if isinstance(prompt, str):
        return [prompt]
    ids = [item for item in prompt if isinstance(item, int)]
    if ids:
        return [ids]  # one token-id list
    return [item for item in prompt if not isinstance(item, int)]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    """Only `text` is served; an image or audio part is refused by ChatRequest."""
    text: str = ""


class ChatMessage(BaseModel):
    """One message; `name`, `tool_call_id` and `refusal` are accepted and ignored (the chat
    template decides what of a message the model sees)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[Any] | None = None
    """Refused unless empty: the engine does no tool calling, so it cannot render them."""

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""

    def check_supported(self, index: int) -> None:
        if self.tool_calls:
            param = f"messages.{index}.tool_calls"
            raise FieldError(param, f"{param}: tool calling is not supported by this engine")
        for position, part in enumerate(self.content or []):
            if isinstance(part, ContentPart) and part.type != "text":
                param = f"messages.{index}.content.{position}.type"
                message = f"{param}: only text content is supported, not {part.type!r}"
                raise FieldError(param, message)


class ChatRequest(_Sampling):
    """`POST /v1/chat/completions`."""

    UNSUPPORTED = unsupported.CHAT

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    """OpenAI's newer name for max_tokens; wins when both are set."""
    logprobs: bool = False
    top_logprobs: int | None = None

    def sampling_params(self) -> SamplingParams:
        limit = self.max_completion_tokens
        return self._params(
            max_tokens=limit if limit is not None else self.max_tokens,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs or 0,
        )

    def check_supported(self) -> None:
        super().check_supported()
        for index, message in enumerate(self.messages):
            message.check_supported(index)

    def template_messages(self) -> list[dict[str, Any]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


class TokenizeRequest(BaseModel):
    """vLLM's `POST /tokenize`: a prompt, or chat messages rendered by the template."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool = True


class DetokenizeRequest(BaseModel):
    """vLLM's `POST /detokenize`."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    tokens: list[int]
