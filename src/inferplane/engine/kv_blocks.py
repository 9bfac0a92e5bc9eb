"""The paged KV cache's bookkeeping: which physical blocks hold which sequence's tokens.

PagedAttention (vLLM) splits each sequence's KV cache into fixed-size blocks addressed
through a per-sequence block table, so the only waste is each sequence's last, partial
block. Blocks carry reference counts so that sequences with a common prefix can share them.

Prefix caching: a block that is full gets a hash chained from its parent's hash, its tokens
and the sequence's cache salt, so equal hashes mean equal prefixes. It is registered when it
is allocated for the step that fills it, as vLLM does: the runner writes every new token's
K/V in a layer before any row attends, so a sequence admitted later in the same step (the
other prompts of a burst, the other choices of ``n``) already shares it. When its
last reference goes, a hashed block is not wiped but parked in an LRU; a later sequence whose
prompt hashes the same takes it back, and a fresh allocation that finds no never-hashed free
block evicts the least recently freed one. With caching off no hash is ever computed and the
allocation results are the same as with caching on and no hits.

No model and no tensors here: the runner reads ``block_table(seq_id)`` to address its
cache tensors.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from inferplane.engine import sequence as seqmod

_ROOT_HASH = 0


def cdiv(a: int, b: int) -> int:
    """Ceiling division: blocks needed for ``a`` tokens at ``b`` tokens a block."""
    return -(-a // b)


@dataclass(frozen=True)
class CachedPrefix:
    """A prefix-cache lookup: blocks to take and the tokens they cover."""

    block_ids: tuple[int, ...] = ()
    num_tokens: int = 0


NO_PREFIX = CachedPrefix()


@dataclass
class _SeqBlocks:
    """One sequence's table, its full blocks' hashes and how many of those are registered."""

    table: list[int] = field(default_factory=list)
    hashes: list[int] = field(default_factory=list)
    num_registered: int = 0


class BlockManager:
    """A pool of ``num_blocks`` KV blocks of ``block_size`` tokens, shared by sequences."""

    def __init__(
        self, num_blocks: int, *, block_size: int = 16, enable_prefix_caching: bool = True
    ) -> None:
        if num_blocks < 1:
            raise ValueError(f"num_blocks: must be >= 1, got {num_blocks}")
        if block_size < 1:
            raise ValueError(f"block_size: must be >= 1, got {block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._ref_counts = [0] * num_blocks
        self._block_hash: list[int | None] = [None] * num_blocks
        # Never-hashed free blocks, used first; popped from the end (cheap).
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))
        # Hashed blocks with no reference, least recently freed first.
        self._lru: OrderedDict[int, None] = OrderedDict()
        self._hash_to_block: dict[int, int] = {}
        self._seqs: dict[str, _SeqBlocks] = {}
        self.prefix_cache_queries = 0
        """Prompt tokens looked up at admission (vLLM's ``prefix_cache_queries``)."""
        self.prefix_cache_hits = 0
        """Of those, tokens found cached (vLLM's ``prefix_cache_hits``)."""

    # -- inspection ---------------------------------------------------------------

    @property
    def num_free_blocks(self) -> int:
        """Blocks a fresh allocation may take, evictable cached blocks included."""
        return len(self._free) + len(self._lru)

    @property
    def usage(self) -> float:
        """Fraction of blocks referenced by some sequence (``vllm:kv_cache_usage_perc``)."""
        return 1.0 - self.num_free_blocks / self.num_blocks

    def block_table(self, seq_id: str) -> list[int]:
        """The physical blocks of ``seq_id`` in token order (empty when it holds none)."""
        state = self._seqs.get(seq_id)
        return list(state.table) if state else []

    def ref_count(self, block_id: int) -> int:
        return self._ref_counts[block_id]

    def num_cached_blocks(self) -> int:
        """Blocks registered in the prefix cache, referenced or parked in the LRU."""
        return len(self._hash_to_block)

    # -- prefix lookup ------------------------------------------------------------

    def lookup_prefix(self, seq: seqmod.Sequence) -> CachedPrefix:
        """The longest cached full-block prefix of a sequence that holds no blocks yet.

        Never the whole sequence: its last token must be computed to produce logits, so a
        fully cached prompt still leaves its last block (at least one token) to compute.
        """
        state = self._seqs.get(seq.seq_id)
        if not self.enable_prefix_caching or (state is not None and state.table):
            return NO_PREFIX
        max_blocks = (seq.num_tokens - 1) // self.block_size
        block_ids: list[int] = []
        for block_hash in self._hashes(seq, max_blocks)[:max_blocks]:
            block_id = self._hash_to_block.get(block_hash)
            if block_id is None:
                break
            block_ids.append(block_id)
        return CachedPrefix(tuple(block_ids), len(block_ids) * self.block_size)

    def _hashes(self, seq: seqmod.Sequence, num_blocks: int) -> list[int]:
        """Hashes of the first ``num_blocks`` full blocks, extending the sequence's chain."""
        state = self._seqs.get(seq.seq_id)
        hashes = state.hashes if state else self._pending_hashes(seq)
        size = self.block_size
        while len(hashes) < num_blocks:
            start = len(hashes) * size
            parent = hashes[-1] if hashes else _ROOT_HASH
            hashes.append(hash((parent, seq.cache_salt, seq.token_ids(start, start + size))))
        return hashes

    def _pending_hashes(self, seq: seqmod.Sequence) -> list[int]:
        """A hash chain for a sequence not yet admitted, kept so admission reuses it."""
        state = self._seqs[seq.seq_id] = _SeqBlocks()
        return state.hashes

    # -- allocation -----------------------------------------------------------------

    def can_allocate(
        self, seq: seqmod.Sequence, num_new_tokens: int, *, prefix: CachedPrefix = NO_PREFIX
    ) -> bool:
        """Whether ``allocate`` would succeed; it changes nothing."""
        return self._blocks_short(seq, num_new_tokens, prefix) <= 0

    def allocate(
        self, seq: seqmod.Sequence, num_new_tokens: int, *, prefix: CachedPrefix = NO_PREFIX
    ) -> bool:
        """Grow the table to cover the computed tokens, ``prefix`` and ``num_new_tokens``.

        ``prefix`` (from ``lookup_prefix`` on the first allocation) is taken by reference;
        the caller advances ``num_computed_tokens`` by ``prefix.num_tokens``. Returns False,
        changing nothing, when the pool cannot supply the blocks.
        """
        state = self._seqs.get(seq.seq_id)
        if state is not None and state.table:  # growing: a prefix only counts at first
            return self._grow(seq, state, seq.num_computed_tokens + num_new_tokens)
        if self._blocks_short(seq, num_new_tokens, prefix) > 0:
            return False
        if state is None:
            state = self._seqs[seq.seq_id] = _SeqBlocks()
        if not state.table:
            self._take_prefix(seq, state, prefix)
        total = seq.num_computed_tokens + prefix.num_tokens + num_new_tokens
        for _ in range(cdiv(total, self.block_size) - len(state.table)):
            state.table.append(self._fresh_block())
        if self.enable_prefix_caching:
            self._register(seq, state, total // self.block_size)
        return True

    def _grow(self, seq: seqmod.Sequence, state: _SeqBlocks, end: int) -> bool:
        """The running sequence's path, taken hundreds of times a step: no prefix to weigh."""
        need = cdiv(end, self.block_size) - len(state.table)
        if need > 0:
            if need > len(self._free) + len(self._lru):
                return False
            for _ in range(need):
                state.table.append(self._fresh_block())
        if self.enable_prefix_caching and end // self.block_size > state.num_registered:
            self._register(seq, state, end // self.block_size)
        return True

    def _blocks_short(self, seq: seqmod.Sequence, num_new_tokens: int, prefix: CachedPrefix) -> int:
        """How many more free blocks the allocation needs than the pool has (<= 0: fits)."""
        state = self._seqs.get(seq.seq_id)
        held = len(state.table) if state else 0
        if held:
            prefix = NO_PREFIX
        total = seq.num_computed_tokens + prefix.num_tokens + num_new_tokens
        fresh = cdiv(total, self.block_size) - held - len(prefix.block_ids)
        parked = sum(1 for b in prefix.block_ids if self._ref_counts[b] == 0)
        return fresh + parked - self.num_free_blocks

    def _take_prefix(self, seq: seqmod.Sequence, state: _SeqBlocks, prefix: CachedPrefix) -> None:
        """Reference the cached blocks and count the lookup as vLLM does, in tokens."""
        if self.enable_prefix_caching:
            self.prefix_cache_queries += seq.num_tokens
            self.prefix_cache_hits += prefix.num_tokens
        for block_id in prefix.block_ids:
            if self._ref_counts[block_id] == 0:
                del self._lru[block_id]
            self._ref_counts[block_id] += 1
            state.table.append(block_id)
        state.num_registered = len(prefix.block_ids)

    def _fresh_block(self) -> int:
        """A block with no content worth keeping: never hashed, else the LRU's oldest."""
        if self._free:
            block_id = self._free.pop()
        else:
            block_id, _ = self._lru.popitem(last=False)
            self._forget_hash(block_id)
        self._ref_counts[block_id] = 1
        return block_id

    def _forget_hash(self, block_id: int) -> None:
        block_hash = self._block_hash[block_id]
        self._block_hash[block_id] = None
        if block_hash is not None and self._hash_to_block.get(block_hash) == block_id:
            del self._hash_to_block[block_hash]

    # -- registering full blocks -----------------------------------------------------

    def _register(self, seq: seqmod.Sequence, state: _SeqBlocks, num_full: int) -> None:
        """Enter the sequence's first ``num_full`` blocks (full once this step runs) in the
        prefix cache, unless an equal block is already there."""
        if num_full <= state.num_registered:
            return
        hashes = self._hashes(seq, num_full)
        for index in range(state.num_registered, num_full):
            block_id = state.table[index]
            if hashes[index] not in self._hash_to_block:
                self._hash_to_block[hashes[index]] = block_id
                self._block_hash[block_id] = hashes[index]
        state.num_registered = num_full

    # -- release --------------------------------------------------------------------

    def free(self, seq_id: str, *, computed_tokens: int | None = None) -> None:
        """Drop a sequence's references; unreferenced hashed blocks park in the LRU.

        ``computed_tokens``: when a sequence is preempted while its step is being built,
        the blocks registered for that step hold no K/V yet; those past its computed tokens
        leave the prefix cache so that no later hit reads them. The table is released from
        its end so that, within one sequence, the tail blocks are evicted before the prefix
        blocks every later hit needs first.
        """
        state = self._seqs.pop(seq_id, None)
        if state is None:
            return
        if computed_tokens is not None:
            for block_id in state.table[computed_tokens // self.block_size :]:
                self._forget_hash(block_id)
        for block_id in reversed(state.table):
            self._ref_counts[block_id] -= 1
            if self._ref_counts[block_id] > 0:
                continue
            if self._block_hash[block_id] is None:
                self._free.append(block_id)
            else:
                self._lru[block_id] = None
