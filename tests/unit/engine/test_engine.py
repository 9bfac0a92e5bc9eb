"""The engine end to end on a tiny random Llama: greedy tokens equal transformers' generate,
whatever the batching, prefix caching and chunked prefill settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inferplane.engine.llm import EngineConfig, LLMEngine, RequestError
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampling_params import SamplingParams
from tests.support import tiny_model

transformers = pytest.importorskip("transformers")
SHARED = list(range(40, 80))
PROMPTS = [[*SHARED, 5, 6, 7], [*SHARED, 9], [11, 12, 13], list(range(100, 157)), SHARED, [3]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def expected(folder: Path) -> list[list[int]]:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    outputs = []
    for prompt in PROMPTS:
        with torch.no_grad():
            generated = model.generate(
                torch.tensor([prompt]),
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        outputs.append(generated[0, len(prompt) :].tolist())
    return outputs


def run(engine: LLMEngine, params: SamplingParams) -> dict[str, list[SequenceOutput]]:
    for i, prompt in enumerate(PROMPTS):
        engine.add_request(f"r{i}", prompt, params)
    seen: dict[str, list[SequenceOutput]] = {f"r{i}": [] for i in range(len(PROMPTS))}
    while engine.has_unfinished():
        for output in engine.step():
            seen[output.request_id].append(output)
    return seen


@pytest.mark.parametrize("caching", [True, False])
@pytest.mark.parametrize("chunked", [True, False])
def test_greedy_tokens_equal_transformers(
    folder: Path, expected: list[list[int]], caching: bool, chunked: bool
) -> None:
    engine = LLMEngine(
        EngineConfig(
            model=folder,
            block_size=4,
            max_num_batched_tokens=32 if chunked else 256,
            max_num_seqs=4,
            enable_prefix_caching=caching,
            enable_chunked_prefill=chunked,
            kv_cache_memory=1 << 20,
        )
    )
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    seen = run(engine, params)
    got = [[t for o in seen[f"r{i}"] for t in o.token_ids] for i in range(len(PROMPTS))]
    assert got == expected
    assert all(seen[f"r{i}"][-1].finish_reason == "length" for i in range(len(PROMPTS)))
    assert engine.blocks.usage == 0.0, "every block is back once all requests finish"
    if caching:
        assert engine.blocks.prefix_cache_hits > 0, "the shared 40-token prefix was reused"


def test_greedy_tokens_survive_preemption_with_prefix_caching(
    folder: Path, expected: list[list[int]]
) -> None:
    """Blocks registered for a step that a preemption cancels must never serve a hit."""
    engine = LLMEngine(
        EngineConfig(
            model=folder,
            block_size=4,
            max_num_batched_tokens=32,
            max_num_seqs=6,
            max_model_len=72,
            kv_cache_memory=20 * 2048,  # 20 blocks of 4 tokens: too few for all six at once
        )
    )
    assert engine.blocks.num_blocks == 20
    seen = run(engine, SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True))
    got = [[t for o in seen[f"r{i}"] for t in o.token_ids] for i in range(len(PROMPTS))]
    assert got == expected
    assert engine.scheduler.num_preemptions > 0
    assert engine.blocks.prefix_cache_hits > 0


def test_streamed_text_is_the_decoded_whole(folder: Path) -> None:
    engine = LLMEngine(EngineConfig(model=folder, kv_cache_memory=1 << 20))
    engine.add_request(
        "r", [40, 41, 42], SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True)
    )
    outputs: list[SequenceOutput] = []
    while engine.has_unfinished():
        outputs.extend(engine.step())
    tokens = [t for o in outputs for t in o.token_ids]
    assert "".join(o.text for o in outputs) == engine.tokenizer.decode(tokens)
    assert outputs[-1].completion_tokens == 10 and outputs[-1].prompt_tokens == 3


def test_abort_frees_blocks_at_once(folder: Path) -> None:
    engine = LLMEngine(EngineConfig(model=folder, kv_cache_memory=1 << 20))
    engine.add_request("r", list(range(50)), SamplingParams(max_tokens=50))
    engine.step()
    assert engine.blocks.usage > 0
    engine.abort("r")
    assert engine.blocks.usage == 0.0
    assert not engine.has_unfinished()


def test_a_prompt_longer_than_the_context_is_refused(folder: Path) -> None:
    engine = LLMEngine(EngineConfig(model=folder, kv_cache_memory=1 << 20))
    with pytest.raises(RequestError) as caught:
        engine.add_request("r", [1] * 300, SamplingParams())
    assert caught.value.param == "prompt"
    with pytest.raises(RequestError) as caught:
        engine.add_request("r", [1] * 200, SamplingParams(max_tokens=100))
    assert caught.value.param == "max_tokens"


def test_seeded_sampling_reproduces_and_n_gives_distinct_choices(folder: Path) -> None:
    def generate(engine: LLMEngine) -> dict[int, list[int]]:
        engine.add_request(
            "r", [40, 41], SamplingParams(n=3, seed=7, max_tokens=8, ignore_eos=True)
        )
        tokens: dict[int, list[int]] = {0: [], 1: [], 2: []}
        while engine.has_unfinished():
            for output in engine.step():
                tokens[output.index].extend(output.token_ids)
        return tokens

    first = generate(LLMEngine(EngineConfig(model=folder, kv_cache_memory=1 << 20)))
    again = generate(LLMEngine(EngineConfig(model=folder, kv_cache_memory=1 << 20)))
    assert first == again
    assert len({tuple(v) for v in first.values()}) > 1


def test_n_choices_compute_their_shared_prompt_once(folder: Path) -> None:
    """The n sequences of one request are admitted in one step; the first registers the
    prompt's full blocks as it is scheduled and the others take them by reference."""
    engine = LLMEngine(EngineConfig(model=folder, block_size=4, kv_cache_memory=1 << 20))
    prompt = list(range(40, 62))  # 22 tokens: 5 full blocks, the last 2 tokens their own
    engine.add_request("r", prompt, SamplingParams(n=4, max_tokens=3, ignore_eos=True))
    planned = engine.scheduler.schedule()
    assert [row.num_tokens for row in planned.scheduled.values()] == [22, 2, 2, 2]
    tables = [engine.blocks.block_table(f"r#{i}") for i in range(4)]
    assert all(table[:5] == tables[0][:5] for table in tables)
    assert engine.blocks.prefix_cache_hits == 3 * 20
