"""How one request wants its tokens chosen: the engine's typed, validated sampling spec.

The semantics follow OpenAI's API and vLLM's `SamplingParams`, so the server maps a request
field by field and a client sees the errors it would see from either. Validation happens at
construction and every error names the parameter, so the server can answer a 400 with
OpenAI's `param` set without parsing messages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

GREEDY_TEMPERATURE = 1e-5
"""Temperatures below this sample greedily: dividing by them would overflow float32 logits.
vLLM uses the same threshold."""

MAX_TOP_LOGPROBS = 20
"""The most alternatives per position a request may ask for (OpenAI chat's and vLLM's limit)."""

PENALTY_LIMIT = 2.0
"""Presence and frequency penalties lie in [-PENALTY_LIMIT, PENALTY_LIMIT], as in OpenAI's API."""


class SamplingParamError(ValueError):
    """A sampling parameter out of its range; `param` is the request field to blame."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        """The parameter's name as the OpenAI API spells it, e.g. `top_p`."""
        self.message = message
        """What is wrong with it, for a human."""
        super().__init__(f"{param}: {message}")


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """The sampling spec of one request; every field has the OpenAI/vLLM default."""

    n: int = 1
    """How many sequences to generate from the prompt (each seeded `seed + index`)."""
    max_tokens: int | None = None
    """The most tokens to generate per sequence; None: up to the model's context."""
    temperature: float = 1.0
    """Divides the logits before sampling; 0 (below GREEDY_TEMPERATURE) samples greedily."""
    top_p: float = 1.0
    """Nucleus sampling: keep the most likely tokens whose mass reaches top_p; 1 is off."""
    top_k: int = -1
    """Keep only the top_k most likely tokens; -1 or 0 is off."""
    min_p: float = 0.0
    """Drop tokens less likely than min_p times the most likely one's probability; 0 is off."""
    seed: int | None = None
    """Seeds the request's own generator, so its tokens do not depend on the rest of a batch."""
    stop: Sequence[str] = ()
    """Strings that end a sequence when they appear in its text (a bare string is one stop)."""
    stop_token_ids: Sequence[int] = ()
    """Token ids that end a sequence, besides EOS."""
    ignore_eos: bool = False
    """Keep generating past the EOS token (benchmarks use this to fix output lengths)."""
    presence_penalty: float = 0.0
    """Subtracted once from the logit of every token already in the output."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once per time it appears in the output."""
    repetition_penalty: float = 1.0
    """HF/vLLM: divides positive and multiplies negative logits of tokens seen in the prompt or
    output; 1 is off."""
    logprobs: bool = False
    """Return the log probability of each chosen token."""
    top_logprobs: int = 0
    """Also return this many most likely alternatives per position (needs `logprobs`)."""
    include_stop_str_in_output: bool = False
    """Keep the matched stop string at the end of the text instead of cutting it off."""

    def __post_init__(self) -> None:
        """Normalise the sequences to tuples (so the spec stays hashable) and validate."""
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        _validate(self)

    @property
    def greedy(self) -> bool:
        """Whether the request takes the most likely token at every step."""
        return self.temperature < GREEDY_TEMPERATURE

    @property
    def top_k_enabled(self) -> bool:
        """Whether top-k truncation applies (-1 and 0 both mean off)."""
        return self.top_k > 0

    @property
    def has_penalties(self) -> bool:
        """Whether any penalty changes the logits."""
        return (
            self.presence_penalty != 0.0
            or self.frequency_penalty != 0.0
            or self.repetition_penalty != 1.0
        )


def _validate(params: SamplingParams) -> None:
    """Check every field; the first bad one raises SamplingParamError naming it."""
    _check_int(params.n, "n", minimum=1)
    if params.max_tokens is not None:
        _check_int(params.max_tokens, "max_tokens", minimum=1)
    _check_float(params.temperature, "temperature", low=0.0, high=None)
    _check_float(params.top_p, "top_p", low=0.0, high=1.0, low_open=True)
    _check_top_k(params.top_k)
    _check_float(params.min_p, "min_p", low=0.0, high=1.0)
    if params.seed is not None:
        _check_int(params.seed, "seed", minimum=None)
    _check_stop(params.stop)
    _check_stop_token_ids(params.stop_token_ids)
    _check_bool(params.ignore_eos, "ignore_eos")
    for name in ("presence_penalty", "frequency_penalty"):
        _check_float(getattr(params, name), name, low=-PENALTY_LIMIT, high=PENALTY_LIMIT)
    _check_float(params.repetition_penalty, "repetition_penalty", low=0.0, high=None, low_open=True)
    _check_logprobs(params.logprobs, params.top_logprobs)
    _check_bool(params.include_stop_str_in_output, "include_stop_str_in_output")


def _check_int(value: object, param: str, *, minimum: int | None) -> int:
    """An int (bool excluded: `n=True` is a client bug, not 1) at least `minimum`; returned."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise SamplingParamError(param, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SamplingParamError(param, f"must be at least {minimum}, got {value}")
    return value


def _check_float(
    value: object, param: str, *, low: float, high: float | None, low_open: bool = False
) -> None:
    """A finite number in [low, high] ((low, high] when `low_open`); high None is unbounded."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise SamplingParamError(param, f"must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or (high is not None and value > high):
        left = "(" if low_open else "["
        right = f"{high}]" if high is not None else "inf)"
        raise SamplingParamError(param, f"must be in {left}{low}, {right}, got {value}")


def _check_bool(value: object, param: str) -> None:
    """A real bool, so that a string "false" is not silently truthy."""
    if not isinstance(value, bool):
        raise SamplingParamError(param, f"must be a boolean, got {value!r}")


def _check_top_k(top_k: object) -> None:
    """-1 or 0 (off) or a positive count."""
    _check_int(top_k, "top_k", minimum=-1)


def _check_stop(stop: Sequence[str]) -> None:
    """Non-empty strings only: an empty stop string would end every sequence at once."""
    for item in stop:
        if not isinstance(item, str) or not item:
            raise SamplingParamError("stop", f"must be non-empty strings, got {item!r}")


def _check_stop_token_ids(stop_token_ids: Sequence[int]) -> None:
    """Token ids are non-negative integers."""
    for token_id in stop_token_ids:
        _check_int(token_id, "stop_token_ids", minimum=0)


def _check_logprobs(logprobs: object, top_logprobs: object) -> None:
    """`top_logprobs` in 0..MAX_TOP_LOGPROBS, and only alongside `logprobs`, as OpenAI says."""
    _check_bool(logprobs, "logprobs")
    count = _check_int(top_logprobs, "top_logprobs", minimum=0)
    if count > MAX_TOP_LOGPROBS:
        raise SamplingParamError("top_logprobs", f"must be at most {MAX_TOP_LOGPROBS}, got {count}")
    if count and not logprobs:
        raise SamplingParamError("top_logprobs", "needs logprobs to be true")
