"""Scheduler step overhead with a no-op runner: ours beside a naive scheduler.

256 sequences (32-token prompts, 16-token blocks, prefix caching on) are admitted, then each
timed step is ``schedule()`` plus ``update()`` with a runner that samples token 7 for every
sequence, so the figure is pure bookkeeping at 256 running decodes.

The baseline is the obvious first version, written here: every step it re-sorts all
sequences by (priority, arrival), walks all of them, and whenever a sequence needs a block it
rescans the whole pool for free ones, then scans the pool again for the usage gauge. No
preemption, no prefix caching: it does less than ours, and is still slower.

Run: ``python -m bench.engine_scheduler [--steps N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from inferplane.engine import kv_blocks, scheduler
from inferplane.engine.sequence import Sequence

NUM_SEQS = 256
PROMPT_LEN = 32
BLOCK_SIZE = 16
TOKEN = 7


def make_seqs(max_tokens: int) -> list[Sequence]:
    return [
        Sequence(
            seq_id=f"s{i}",
            prompt_token_ids=[1000 * i + j for j in range(PROMPT_LEN)],
            max_tokens=max_tokens,
            arrival=i,
            ignore_eos=True,
        )
        for i in range(NUM_SEQS)
    ]


def num_blocks_for(max_tokens: int) -> int:
    return NUM_SEQS * kv_blocks.cdiv(PROMPT_LEN + max_tokens, BLOCK_SIZE)


class Ours:
    """The engine's scheduler and block manager, driven like the engine drives them."""

    def __init__(self, max_tokens: int) -> None:
        blocks = kv_blocks.BlockManager(num_blocks_for(max_tokens), block_size=BLOCK_SIZE)
        config = scheduler.SchedulerConfig(max_num_seqs=NUM_SEQS, max_num_batched_tokens=8192)
        self.sched = scheduler.Scheduler(config, blocks)
        for seq in make_seqs(max_tokens):
            self.sched.add(seq)

    def step(self) -> None:
        out = self.sched.schedule()
        sampled: dict[str, list[int] | None] = {
            sid: [TOKEN] for sid, row in out.scheduled.items() if row.samples
        }
        self.sched.update(out, sampled)
        _ = self.sched.blocks.usage


class Naive:
    """Sorts and rescans everything every step (see the module docstring)."""

    def __init__(self, max_tokens: int) -> None:
        self.num_blocks = num_blocks_for(max_tokens)
        self.refs = [0] * self.num_blocks
        self.tables: dict[str, list[int]] = {}
        self.seqs = make_seqs(max_tokens)
        self.budget = 8192
        self.usage = 0.0

    def step(self) -> None:
        rows = self.schedule()
        for seq, n in rows:
            seq.num_computed_tokens += n
            if seq.num_computed_tokens == seq.num_tokens:
                seq.output_token_ids.append(TOKEN)

    def schedule(self) -> list[tuple[Sequence, int]]:
        budget, rows = self.budget, []
        for seq in sorted(self.seqs, key=lambda s: (s.priority, s.arrival)):
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            table = self.tables.setdefault(seq.seq_id, [])
            need = kv_blocks.cdiv(seq.num_computed_tokens + n, BLOCK_SIZE) - len(table)
            if need > 0:
                free = [b for b in range(self.num_blocks) if self.refs[b] == 0]
                for block in free[:need]:
                    self.refs[block] = 1
                    table.append(block)
            rows.append((seq, n))
            budget -= n
        self.usage = sum(1 for r in self.refs if r) / self.num_blocks
        return rows


def measure(step: Callable[[], None], steps: int) -> list[float]:
    """Per-step seconds, after a warm-up step that admits every prompt."""
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.fmean(times) * 1e3, ordered[int(0.99 * (len(ordered) - 1))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    max_tokens = args.steps + 2  # nobody finishes mid-run: 256 decodes every timed step
    ours = summary(measure(Ours(max_tokens).step, args.steps))
    naive = summary(measure(Naive(max_tokens).step, args.steps))
    print(f"scheduler step, {NUM_SEQS} running decode sequences, {args.steps} steps")
    print(f"{'':8}{'mean ms':>10}{'p99 ms':>10}")
    print(f"{'ours':8}{ours[0]:10.3f}{ours[1]:10.3f}")
    print(f"{'naive':8}{naive[0]:10.3f}{naive[1]:10.3f}")
    print(f"naive/ours: mean {naive[0] / ours[0]:.1f}x, p99 {naive[1] / ours[1]:.1f}x")
    print(f"target <= 1 ms mean: {'met' if ours[0] <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
