"""Choose the next token of every sequence in a batch, each row by its own SamplingParams.

One call handles a mixed batch with a handful of tensor operations, not a loop over rows:

1. logprobs, when any row asks, are `log_softmax` of the RAW model logits. That is vLLM's
   default (`logprobs_mode="raw_logprobs"`) and what OpenAI returns: the model's own belief,
   untouched by this request's penalties, temperature or truncation;
2. penalties (presence, frequency, repetition) on the rows that set them;
3. greedy rows take `argmax`, so ties go to the lowest token id, deterministically;
4. the other rows are divided by their temperature, truncated by min-p, top-k and top-p (each
   step skipped when no row uses it; top-p sorts only its own rows, and only the 1024 most
   likely tokens when they hold the mass) and sampled by inverse CDF. Each seeded row draws
   its one uniform number per step from its own generator, so its tokens depend only on its
   seed and its logits, never on what else shares the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from inferplane.engine import penalties
from inferplane.engine.sampling_params import SamplingParams

NUCLEUS_CANDIDATES = 1024
"""How many of the most likely tokens top-p looks at before falling back to a full sort."""

_SEED_MODULUS = 2**64
"""torch.Generator seeds are 64-bit; a request's seed plus its index wraps around."""


@dataclass(frozen=True)
class SamplingState:
    """What the sampler needs to know about one sequence, held by it across steps."""

    params: SamplingParams
    """The request's sampling spec."""
    prompt_token_ids: Sequence[int]
    """The prompt, for the repetition penalty."""
    output_token_ids: Sequence[int]
    """The tokens generated so far; the sequence's own growing list may be passed."""
    generator: torch.Generator | None = None
    """The sequence's own random stream when the request has a seed; None: the batch's."""

    @classmethod
    def create(
        cls,
        params: SamplingParams,
        *,
        prompt_token_ids: Sequence[int],
        output_token_ids: Sequence[int] = (),
        seq_index: int = 0,
        device: torch.device | str = "cpu",
    ) -> SamplingState:
        """The state of sequence `seq_index` (0..n-1) of a request, seeded `seed + seq_index`.

        Sibling sequences of one seeded request thus differ from each other, and each is
        reproducible on its own.
        """
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed((params.seed + seq_index) % _SEED_MODULUS)
        return cls(params, prompt_token_ids, output_token_ids, generator)


@dataclass(frozen=True)
class TokenLogprobs:
    """The log probabilities reported for one sampled position."""

    logprob: float
    """The chosen token's log probability under the raw model distribution."""
    top: tuple[tuple[int, float], ...]
    """The `top_logprobs` most likely (token id, logprob) pairs, most likely first."""


@dataclass(frozen=True)
class SamplerOutput:
    """The tokens chosen for one batch, in batch order."""

    token_ids: torch.Tensor
    """int64 [B], on the logits' device."""
    logprobs: tuple[TokenLogprobs | None, ...]
    """Per row: its logprobs when its params ask for them, else None."""


def sample(
    logits: torch.Tensor,
    batch: Sequence[SamplingState],
    *,
    generator: torch.Generator | None = None,
) -> SamplerOutput:
    """Pick one token per row of `logits` [B, V]; `generator` serves the unseeded rows."""
    if logits.dim() != 2 or logits.shape[0] != len(batch):
        raise ValueError(f"logits {tuple(logits.shape)} do not match a batch of {len(batch)}")
    logits = logits.float()  # never written to: the raw logits feed the logprobs
    processed = _penalise(logits, batch)
    token_ids = processed.argmax(dim=-1)
    random_rows = [i for i, state in enumerate(batch) if not state.params.greedy]
    if random_rows:
        index = torch.tensor(random_rows, dtype=torch.long, device=logits.device)
        rows = [batch[i] for i in random_rows]
        token_ids[index] = _sample_random(processed[index], rows, generator)
    return SamplerOutput(token_ids=token_ids, logprobs=_report_logprobs(logits, batch, token_ids))


def apply_truncation(
    logits: torch.Tensor,
    *,
    top_k: torch.Tensor | None = None,
    top_p: torch.Tensor | None = None,
    min_p: torch.Tensor | None = None,
) -> torch.Tensor:
    """Set to -inf the logits [R, V] that min-p, top-k and top-p remove, row by row.

    Each tensor holds one value per row: `top_k` (long, <= 0 is off), `top_p` (1 is off),
    `min_p` (0 is off); None skips that filter for all rows. The most likely token always
    survives: every filter keeps at least the maximum. Ties at a boundary are kept, except
    that top-p cuts between equal logits in token-id order (lowest id first).
    """
    if min_p is not None:
        logits = _apply_min_p(logits, min_p)
    if top_k is not None:
        logits = _apply_top_k(logits, top_k)
    if top_p is not None:
        logits = _apply_top_p(logits, top_p)
    return logits


def _penalise(logits: torch.Tensor, batch: Sequence[SamplingState]) -> torch.Tensor:
    """Apply the penalties of the rows that set any; the others are left as they are."""
    rows = [i for i, state in enumerate(batch) if state.params.has_penalties]
    if not rows:
        return logits
    index = torch.tensor(rows, dtype=torch.long, device=logits.device)
    params = [batch[i].params for i in rows]
    penalised = logits.clone()
    penalised[index] = penalties.apply_penalties(
        logits[index],
        prompt_token_ids=[batch[i].prompt_token_ids for i in rows],
        output_token_ids=[batch[i].output_token_ids for i in rows],
        presence=_column([p.presence_penalty for p in params], logits),
        frequency=_column([p.frequency_penalty for p in params], logits),
        repetition=_column([p.repetition_penalty for p in params], logits),
    )
    return penalised


def _sample_random(
    logits: torch.Tensor, batch: Sequence[SamplingState], generator: torch.Generator | None
) -> torch.Tensor:
    """Sample one token per row of the non-greedy rows' logits [R, V]."""
    params = [state.params for state in batch]
    scaled = logits / _column([p.temperature for p in params], logits).unsqueeze(1)
    truncated = apply_truncation(scaled, **_truncation_tensors(params, logits))
    probs = torch.softmax(truncated, dim=-1)
    return _draw(probs, batch, generator)


def _truncation_tensors(
    params: Sequence[SamplingParams], like: torch.Tensor
) -> dict[str, torch.Tensor | None]:
    """Per-row filter values, None for a filter no row uses (its fast path)."""
    top_k = None
    if any(p.top_k_enabled for p in params):
        top_k = torch.tensor([p.top_k for p in params], dtype=torch.long, device=like.device)
    top_p = None
    if any(p.top_p < 1.0 for p in params):
        top_p = _column([p.top_p for p in params], like)
    min_p = None
    if any(p.min_p > 0.0 for p in params):
        min_p = _column([p.min_p for p in params], like)
    return {"top_k": top_k, "top_p": top_p, "min_p": min_p}


def _draw(
    probs: torch.Tensor, batch: Sequence[SamplingState], generator: torch.Generator | None
) -> torch.Tensor:
    """Inverse-CDF sampling: one uniform per row, found in the row's cumulative sum.

    A token of probability 0 spans an empty interval of the CDF, so `searchsorted(right=True)`
    never lands on it; the fallback only guards against rounding at the very top of the CDF.
    """
    uniform = _uniforms(batch, generator, device=probs.device)
    cdf = probs.double().cumsum(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze(1)
    chosen = torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)
    possible = probs.gather(1, chosen.unsqueeze(1)).squeeze(1) > 0
    return torch.where(possible, chosen, probs.argmax(dim=-1))


def _uniforms(
    batch: Sequence[SamplingState], generator: torch.Generator | None, *, device: torch.device
) -> torch.Tensor:
    """U[0, 1) float64 [R]: seeded rows from their own generator, the rest in one draw."""
    uniform = torch.empty(len(batch), dtype=torch.float64, device=device)
    shared = []
    for row, state in enumerate(batch):
        if state.generator is None:
            shared.append(row)
        else:
            draw = torch.rand((), generator=state.generator, dtype=torch.float64, device=device)
            uniform[row] = draw
    if shared:
        draws = torch.rand(len(shared), generator=generator, dtype=torch.float64, device=device)
        uniform[torch.tensor(shared, device=device)] = draws
    return uniform


def _apply_min_p(logits: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Drop tokens with probability below min_p times the top token's."""
    probs = torch.softmax(logits, dim=-1)
    threshold = probs.amax(dim=-1, keepdim=True) * min_p.unsqueeze(1)
    return logits.masked_fill(probs < threshold, float("-inf"))


def _apply_top_k(logits: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    """Keep each row's k largest logits (and ties of the k-th) with one `topk` call."""
    vocab = logits.shape[1]
    enabled = top_k > 0
    k = torch.where(enabled, top_k.clamp(max=vocab), 1)
    values = logits.topk(int(k.max()), dim=-1).values
    threshold = values.gather(1, (k - 1).unsqueeze(1))
    threshold = torch.where(enabled.unsqueeze(1), threshold, float("-inf"))
    return logits.masked_fill(logits < threshold, float("-inf"))


def _apply_top_p(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Top-p on the rows with p < 1 only: sorting is the costly step, so skip the others."""
    rows = (top_p < 1.0).nonzero().squeeze(1)
    if rows.numel() == 0:
        return logits
    result = logits.clone()
    result[rows] = _nucleus(logits[rows], top_p[rows])
    return result


def _nucleus(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Keep, in descending order (lowest id first on ties), tokens whose mass before is < p.

    Sorting [R, V] costs far more than sampling, so first try the NUCLEUS_CANDIDATES most
    likely tokens: when they hold at least p of the mass in every row, every other token has
    at least p before it and is dropped anyway. (On a tie with the last candidate, a token
    left out may differ from the one a full sort would keep; both are equally likely.)
    """
    probs = torch.softmax(logits, dim=-1)
    if logits.shape[1] > NUCLEUS_CANDIDATES:
        ids = probs.topk(NUCLEUS_CANDIDATES, dim=-1).indices.sort(dim=-1).values
        candidate_probs = probs.gather(1, ids)
        if bool((candidate_probs.sum(dim=-1) >= top_p).all()):
            kept = _keep_in_nucleus(candidate_probs, top_p)
            values = logits.gather(1, ids).masked_fill(~kept, float("-inf"))
            return torch.full_like(logits, float("-inf")).scatter_(1, ids, values)
    kept = _keep_in_nucleus(probs, top_p)
    return logits.masked_fill(~kept, float("-inf"))


def _keep_in_nucleus(probs: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Which of `probs` [R, C] (columns in token-id order) the nucleus of mass p keeps."""
    ordered, order = probs.sort(dim=-1, descending=True, stable=True)
    mass_before = ordered.cumsum(dim=-1) - ordered
    kept_ordered = mass_before < top_p.unsqueeze(1)
    return torch.empty_like(kept_ordered).scatter_(1, order, kept_ordered)


def _report_logprobs(
    logits: torch.Tensor, batch: Sequence[SamplingState], token_ids: torch.Tensor
) -> tuple[TokenLogprobs | None, ...]:
    """Logprobs of the raw logits [B, V] at the chosen tokens, for the rows that ask."""
    rows = [i for i, state in enumerate(batch) if state.params.logprobs]
    if not rows:
        return (None,) * len(batch)
    index = torch.tensor(rows, dtype=torch.long, device=logits.device)
    logprobs = torch.log_softmax(logits[index], dim=-1)
    chosen = logprobs.gather(1, token_ids[index].unsqueeze(1)).squeeze(1).tolist()
    largest = max(batch[i].params.top_logprobs for i in rows)
    top_values, top_ids = logprobs.topk(largest, dim=-1)
    values, ids = top_values.tolist(), top_ids.tolist()
    result: list[TokenLogprobs | None] = [None] * len(batch)
    for j, i in enumerate(rows):
        k = batch[i].params.top_logprobs
        result[i] = TokenLogprobs(
            logprob=chosen[j], top=tuple(zip(ids[j][:k], values[j][:k], strict=True))
        )
    return tuple(result)


def _column(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """A float tensor [len(values)] on `like`'s device and dtype."""
    return torch.tensor(values, dtype=like.dtype, device=like.device)
