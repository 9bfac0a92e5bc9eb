"""Block manager: paging, reference counts, prefix caching and its LRU."""

from __future__ import annotations

import pytest

from inferplane.engine import kv_blocks
from inferplane.engine.sequence import Sequence
from tests.unit.engine.scheduling_helpers import make_seq

BS = 4


def manager(num_blocks: int = 16, *, caching: bool = True) -> kv_blocks.BlockManager:
    return kv_blocks.BlockManager(num_blocks, block_size=BS, enable_prefix_caching=caching)


def compute(blocks: kv_blocks.BlockManager, seq: Sequence, n: int) -> None:
    """Allocate and confirm ``n`` more tokens, as schedule + update would."""
    assert blocks.allocate(seq, n)
    seq.num_computed_tokens += n


def admit(blocks: kv_blocks.BlockManager, seq: Sequence) -> int:
    """Admit with the cached prefix and compute the rest of the prompt; returns cached tokens."""
    prefix = blocks.lookup_prefix(seq)
    assert blocks.allocate(seq, seq.num_tokens - prefix.num_tokens, prefix=prefix)
    seq.num_computed_tokens = seq.num_tokens
    return prefix.num_tokens


def test_table_grows_by_whole_blocks_and_free_returns_them() -> None:
    blocks = manager(8)
    seq = make_seq("a", 5)
    compute(blocks, seq, 5)
    assert len(blocks.block_table("a")) == 2
    compute(blocks, seq, 3)  # fills the second block: no new block
    assert len(blocks.block_table("a")) == 2
    compute(blocks, seq, 1)
    assert len(blocks.block_table("a")) == 3
    assert blocks.usage == pytest.approx(3 / 8)
    blocks.free("a")
    assert blocks.usage == 0.0
    assert blocks.block_table("a") == []


def test_allocation_that_does_not_fit_changes_nothing() -> None:
    blocks = manager(2)
    seq = make_seq("a", 12)
    assert not blocks.can_allocate(seq, 12)
    assert not blocks.allocate(seq, 12)
    assert blocks.num_free_blocks == 2
    assert blocks.can_allocate(seq, 8)


def test_shared_three_block_prefix_is_a_hit_of_three_blocks() -> None:
    blocks = manager()
    shared = list(range(100, 100 + 3 * BS))
    first = make_seq("a", prompt=[*shared, 1, 2])
    second = make_seq("b", prompt=[*shared, 3, 4, 5])
    assert admit(blocks, first) == 0
    assert admit(blocks, second) == 3 * BS
    assert blocks.block_table("a")[:3] == blocks.block_table("b")[:3]
    assert all(blocks.ref_count(b) == 2 for b in blocks.block_table("b")[:3])
    assert blocks.prefix_cache_queries == first.num_tokens + second.num_tokens
    assert blocks.prefix_cache_hits == 3 * BS


def test_blocks_are_shared_within_the_step_that_fills_them() -> None:
    """A burst of equal prompts (or n choices) computes the shared blocks once."""
    blocks = manager()
    shared = list(range(100, 100 + 2 * BS))
    first = make_seq("a", prompt=[*shared, 1])
    assert blocks.allocate(first, first.num_tokens)  # scheduled, not computed yet
    second = make_seq("b", prompt=[*shared, 2])
    assert blocks.lookup_prefix(second).num_tokens == 2 * BS


def test_a_decode_that_fills_a_block_registers_it() -> None:
    blocks = manager()
    seq = make_seq("a", BS - 1)
    compute(blocks, seq, BS - 1)
    seq.output_token_ids.append(7)
    compute(blocks, seq, 1)
    again = make_seq("b", prompt=[*seq.token_ids(0, BS), 9])
    assert blocks.lookup_prefix(again).num_tokens == BS


def test_blocks_of_a_step_that_never_ran_leave_the_cache_on_preemption() -> None:
    blocks = manager()
    prompt = list(range(3 * BS + 1))
    seq = make_seq("a", prompt=prompt)
    compute(blocks, seq, BS)  # one block computed in an earlier step
    assert blocks.allocate(seq, 2 * BS)  # this step's two blocks: registered, not written
    blocks.free("a", computed_tokens=seq.num_computed_tokens)
    assert blocks.lookup_prefix(make_seq("b", prompt=prompt)).num_tokens == BS
    assert blocks.usage == 0.0


def test_fully_cached_prompt_still_computes_its_last_token() -> None:
    blocks = manager()
    prompt = list(range(3 * BS))
    admit(blocks, make_seq("a", prompt=prompt))
    blocks.free("a")
    again = make_seq("b", prompt=prompt)
    prefix = blocks.lookup_prefix(again)
    assert prefix.num_tokens == 2 * BS  # the last block must be computed for logits
    longer = make_seq("c", prompt=[*prompt, 99])
    assert blocks.lookup_prefix(longer).num_tokens == 3 * BS


def test_freed_cached_blocks_are_reused_and_evicted_oldest_first() -> None:
    blocks = manager(4)
    a, b = make_seq("a", 5), make_seq("b", 5)
    admit(blocks, a)
    blocks.free("a")
    admit(blocks, b)
    blocks.free("b")
    assert blocks.usage == 0.0
    assert blocks.num_cached_blocks() == 2
    admit(blocks, make_seq("c", 12))  # 3 blocks: 2 never-hashed, then evicts a's
    blocks.free("c")
    assert blocks.lookup_prefix(make_seq("a", 5)).num_tokens == 0
    assert blocks.lookup_prefix(make_seq("b", 5)).num_tokens == BS


def test_a_sequence_tail_is_evicted_before_its_prefix() -> None:
    blocks = manager(4)
    admit(blocks, make_seq("a", 3 * BS + 1))  # 3 full cached blocks + 1 partial
    blocks.free("a")
    admit(blocks, make_seq("c", 2 * BS))  # 1 never-hashed block, then evicts 1 cached
    assert blocks.lookup_prefix(make_seq("a", 3 * BS + 1)).num_tokens == 2 * BS


def test_caching_off_gives_the_same_tables_and_no_hits() -> None:
    tables = {}
    for caching in (True, False):
        blocks = manager(caching=caching)
        prompt = list(range(3 * BS + 2))
        admit(blocks, make_seq("a", prompt=prompt))
        blocks.free("a")
        hit = admit(blocks, make_seq("b", prompt=[*prompt[:-1], 50]))
        tables[caching] = (hit, blocks.prefix_cache_hits, blocks.usage)
    assert tables[True][0] == 3 * BS
    assert tables[False] == (0, 0, tables[True][2])


def test_cache_salt_separates_equal_tokens() -> None:
    blocks = manager()
    prompt = list(range(2 * BS + 1))
    admit(blocks, make_seq("a", prompt=prompt, cache_salt="lora-1"))
    assert blocks.lookup_prefix(make_seq("b", prompt=prompt, cache_salt="lora-2")).num_tokens == 0
    assert blocks.lookup_prefix(make_seq("c", prompt=prompt, cache_salt="lora-1")).num_tokens > 0


def test_cached_blocks_parked_in_the_lru_count_against_the_allocation() -> None:
    blocks = manager(3)
    prompt = list(range(2 * BS + 1))
    admit(blocks, make_seq("a", prompt=prompt))
    blocks.free("a")
    seq = make_seq("b", prompt=prompt)
    prefix = blocks.lookup_prefix(seq)
    assert prefix.num_tokens == 2 * BS
    assert blocks.can_allocate(seq, 1, prefix=prefix)
    assert not blocks.can_allocate(seq, BS + 1, prefix=prefix)


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_blocks"):
        kv_blocks.BlockManager(0)
    with pytest.raises(ValueError, match="block_size"):
        kv_blocks.BlockManager(4, block_size=0)
