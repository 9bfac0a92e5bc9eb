"""The batched sampler: greedy, truncation, seeds, penalties and logprobs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.engine import penalties, sampler
from inferplane.engine.sampler import SamplingState
from inferplane.engine.sampling_params import SamplingParams

VOCAB = 50


def states(*params: SamplingParams, prompt: Sequence[int] = (1, 2)) -> list[SamplingState]:
    return [SamplingState.create(p, prompt_token_ids=prompt) for p in params]


def random_logits(rows: int, *, seed: int = 0, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 3


def tokens(logits: torch.Tensor, batch: Sequence[SamplingState]) -> list[int]:
    generator = torch.Generator().manual_seed(1234)
    result: list[int] = sampler.sample(logits, batch, generator=generator).token_ids.tolist()
    return result


def test_greedy_is_argmax_and_ties_go_to_the_lowest_id() -> None:
    logits = random_logits(4)
    logits[3, 7] = logits[3, 9] = logits[3].max() + 1
    assert tokens(logits, states(*[SamplingParams(temperature=0.0)] * 4)) == (
        logits.argmax(dim=-1).tolist()
    )
    assert tokens(logits, states(*[SamplingParams(temperature=0.0)] * 4))[3] == 7


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=1e-3),
        SamplingParams(top_k=1),
        SamplingParams(top_p=1e-6),
        SamplingParams(min_p=1.0),
        SamplingParams(temperature=0.7, top_k=1, top_p=0.9, min_p=0.5),
    ],
    ids=["temperature-to-0", "top-k-1", "top-p-tiny", "min-p-1", "combined"],
)
def test_truncation_to_one_token_is_greedy(params: SamplingParams) -> None:
    logits = random_logits(8, seed=3)
    assert tokens(logits, states(*[params] * 8)) == logits.argmax(dim=-1).tolist()


def test_a_mixed_batch_matches_each_row_alone() -> None:
    logits = random_logits(4, seed=5)
    params = [
        SamplingParams(temperature=0.0),
        SamplingParams(seed=1, top_k=5),
        SamplingParams(seed=2, top_p=0.8, frequency_penalty=0.5),
        SamplingParams(seed=3, min_p=0.1, repetition_penalty=1.3),
    ]
    together = tokens(logits, states(*params))
    alone = [tokens(logits[i : i + 1], states(p))[0] for i, p in enumerate(params)]
    assert together == alone


def generate(
    params: SamplingParams, *, steps: int, neighbours: int, seq_index: int = 0, shuffle: int = 0
) -> list[int]:
    """Tokens of one seeded sequence over `steps`, sharing each step with unrelated rows."""
    state = SamplingState.create(params, prompt_token_ids=[1], seq_index=seq_index)
    noise = torch.Generator().manual_seed(99 + shuffle)
    out = []
    for step in range(steps):
        others = states(*[SamplingParams(temperature=1.5)] * neighbours)
        position = int(torch.randint(0, neighbours + 1, (1,), generator=noise))
        batch = [*others[:position], state, *others[position:]]
        logits = torch.randn(len(batch), VOCAB, generator=noise)
        logits[position] = random_logits(1, seed=step)[0]
        out.append(tokens(logits, batch)[position])
    return out


def test_a_seeded_sequence_does_not_depend_on_its_batch() -> None:
    params = SamplingParams(seed=42, temperature=1.0)
    alone = generate(params, steps=20, neighbours=0)
    assert generate(params, steps=20, neighbours=5, shuffle=1) == alone
    assert generate(params, steps=20, neighbours=17, shuffle=2) == alone


def test_different_seeds_give_different_tokens() -> None:
    first = generate(SamplingParams(seed=1), steps=20, neighbours=0)
    assert first != generate(SamplingParams(seed=2), steps=20, neighbours=0)


def test_sequences_of_one_seeded_request_differ_and_each_reproduces() -> None:
    params = SamplingParams(seed=7, n=3)
    runs = [generate(params, steps=20, neighbours=2, seq_index=i) for i in range(3)]
    assert len({tuple(run) for run in runs}) == 3
    assert generate(params, steps=20, neighbours=0, seq_index=2) == runs[2]


def test_sampling_follows_the_distribution() -> None:
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    rows = 8000
    logits = probs.log().expand(rows, 4)
    drawn = torch.tensor(tokens(logits, states(*[SamplingParams()] * rows)))
    frequencies = torch.bincount(drawn, minlength=4).float() / rows
    assert torch.allclose(frequencies, probs, atol=0.025)


def test_temperature_flattens_and_sharpens() -> None:
    logits = torch.tensor([[0.0, 1.0]]).expand(4000, 2)
    hot = tokens(logits, states(*[SamplingParams(temperature=100.0)] * 4000))
    cold = tokens(logits, states(*[SamplingParams(temperature=0.1)] * 4000))
    assert 0.45 < sum(hot) / 4000 < 0.55
    assert sum(cold) / 4000 > 0.99


def test_top_k_keeps_the_k_largest_and_off_rows_keep_all() -> None:
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0], [1.0, 5.0, 3.0, 4.0]])
    masked = sampler.apply_truncation(logits, top_k=torch.tensor([2, -1]))
    assert torch.isfinite(masked).tolist() == [[False, True, False, True], [True] * 4]


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.tensor([[0.1, 0.5, 0.15, 0.25]]).log().expand(3, 4)
    masked = sampler.apply_truncation(logits, top_p=torch.tensor([0.5, 0.75, 0.76]))
    assert torch.isfinite(masked).tolist() == [
        [False, True, False, False],
        [False, True, False, True],
        [False, True, True, True],
    ]


def test_min_p_drops_tokens_below_the_scaled_top_probability() -> None:
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    masked = sampler.apply_truncation(logits, min_p=torch.tensor([0.4]))
    assert torch.isfinite(masked).tolist() == [[True, True, False, False]]
    drawn = tokens(logits.expand(2000, 4), states(*[SamplingParams(min_p=0.4)] * 2000))
    assert set(drawn) == {0, 1}


def test_penalties_match_a_hand_computation() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, -2.0]])
    params = SamplingParams(
        temperature=0.0, presence_penalty=0.5, frequency_penalty=0.25, repetition_penalty=2.0
    )
    # prompt has token 4; output has token 0 twice and token 1 once
    state = SamplingState.create(params, prompt_token_ids=[4], output_token_ids=[0, 1, 0])
    expected = torch.tensor([[2.0 / 2 - 0.25 * 2 - 0.5, -1.0 * 2 - 0.25 - 0.5, 0.5, 3.0, -2.0 * 2]])
    got = penalties.apply_penalties(
        logits,
        prompt_token_ids=[state.prompt_token_ids],
        output_token_ids=[state.output_token_ids],
        presence=torch.tensor([0.5]),
        frequency=torch.tensor([0.25]),
        repetition=torch.tensor([2.0]),
    )
    assert torch.allclose(got, expected)


def test_penalties_steer_greedy_choice_only_in_their_row() -> None:
    logits = torch.tensor([[3.0, 2.9, 0.0], [3.0, 2.9, 0.0]])
    penalised = SamplingParams(temperature=0.0, presence_penalty=1.0)
    batch = [
        SamplingState.create(penalised, prompt_token_ids=[], output_token_ids=[0]),
        SamplingState.create(
            SamplingParams(temperature=0.0), prompt_token_ids=[], output_token_ids=[0]
        ),
    ]
    assert tokens(logits, batch) == [1, 0]


def test_token_counts_count_per_row() -> None:
    counts = penalties.token_counts([[1, 1, 2], [], [0]], vocab=3, device=torch.device("cpu"))
    assert counts.tolist() == [[0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]


def test_logprobs_are_of_the_raw_logits_with_sorted_top_alternatives() -> None:
    logits = random_logits(3, seed=11)
    batch = states(
        SamplingParams(logprobs=True, top_logprobs=5, temperature=0.3, presence_penalty=2.0),
        SamplingParams(),
        SamplingParams(logprobs=True, seed=3, top_k=4),
    )
    batch[0] = SamplingState.create(batch[0].params, prompt_token_ids=[], output_token_ids=[4])
    output = sampler.sample(logits, batch)
    raw = torch.log_softmax(logits, dim=-1)
    first, second, third = output.logprobs
    assert second is None
    assert first is not None and third is not None
    chosen = output.token_ids.tolist()
    assert first.logprob == pytest.approx(raw[0, chosen[0]].item(), abs=1e-6)
    assert third.logprob == pytest.approx(raw[2, chosen[2]].item(), abs=1e-6)
    assert [token for token, _ in first.top] == raw[0].topk(5).indices.tolist()
    values = [value for _, value in first.top]
    assert values == sorted(values, reverse=True)
    assert values == pytest.approx(raw[0].topk(5).values.tolist(), abs=1e-6)
    assert third.top == ()


def test_logits_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="batch of 2"):
        sampler.sample(random_logits(3), states(SamplingParams(), SamplingParams()))


def test_input_logits_are_left_untouched() -> None:
    logits = random_logits(2)
    before = logits.clone()
    params = SamplingParams(repetition_penalty=1.5, top_p=0.5, min_p=0.1, top_k=3)
    sampler.sample(logits, states(params, params, prompt=[0, 1, 2]))
    assert torch.equal(logits, before)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.lists(st.integers(min_value=-8, max_value=8), min_size=6, max_size=6),
        min_size=1,
        max_size=4,
    ),
    top_k=st.integers(min_value=-1, max_value=8),
    top_p=st.floats(min_value=1e-9, max_value=1.0),
    min_p=st.floats(min_value=0.0, max_value=1.0),
    temperature=st.floats(min_value=0.05, max_value=5.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_masks_keep_the_argmax_and_the_draw_is_never_masked(
    values: list[list[int]], top_k: int, top_p: float, min_p: float, temperature: float, seed: int
) -> None:
    logits = torch.tensor(values, dtype=torch.float32) / 2  # small integers: plenty of ties
    rows = logits.shape[0]
    masked = sampler.apply_truncation(
        logits / temperature,
        top_k=torch.full((rows,), top_k),
        top_p=torch.full((rows,), top_p),
        min_p=torch.full((rows,), min_p),
    )
    argmax = logits.argmax(dim=-1, keepdim=True)
    assert torch.isfinite(masked.gather(1, argmax)).all()
    params = SamplingParams(
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed
    )
    drawn = sampler.sample(logits, states(*[params] * rows)).token_ids
    assert torch.isfinite(masked.gather(1, drawn.unsqueeze(1))).all()


@pytest.mark.parametrize("scale", [8.0, 0.01], ids=["candidates-hold-the-mass", "full-sort"])
def test_top_p_over_a_large_vocabulary_matches_a_full_sort(scale: float) -> None:
    vocab = sampler.NUCLEUS_CANDIDATES * 3
    logits = random_logits(3, seed=2, vocab=vocab) * scale
    top_p = torch.tensor([0.3, 0.9, 0.999])
    probs = torch.softmax(logits, dim=-1)
    ordered, order = probs.sort(dim=-1, descending=True, stable=True)
    kept_ordered = (ordered.cumsum(dim=-1) - ordered) < top_p.unsqueeze(1)
    expected = torch.zeros_like(kept_ordered).scatter_(1, order, kept_ordered)
    masked = sampler.apply_truncation(logits, top_p=top_p)
    assert torch.equal(torch.isfinite(masked), expected)
    assert torch.equal(masked[expected], logits[expected])
