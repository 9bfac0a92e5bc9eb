"""Figures per (gateway, workload), their tables, and the targets printed beside them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.routing import counters, workloads
from bench.routing.client import Run

RR, LR, PA = "round-robin", "least-request", "prefix-aware"
PEER = "sglang cache_aware"
HIT_TARGET, RR_HIT_CEILING, UNIQUE_TOLERANCE, HOT_BOUND = 0.75, 0.25, 0.05, 1.5


@dataclass(frozen=True)
class Figures:
    requests: int
    failed: int
    hit_rate: float
    """Prefix-cache hits / queries in tokens, from the engines' counters, summed."""
    steady_hit_rate: float
    """The same over the run's second half, past the first sight of each prefix."""
    ttft_p50_ms: float
    ttft_p90_ms: float
    req_s: float
    tok_s: float
    """Output tokens per second over the run's wall time."""
    prompt_tokens: float
    """Mean prompt tokens per request, from the answers' usage."""
    replicas_per_group: float = 0.0
    """Distinct replicas that served each group's requests, on average (0: not known, as
    for a peer, which names no replica)."""
    load_ratio: float = 0.0
    """Busiest replica's mean in-flight load / the mean over replicas (sampled runs only)."""
    load_p90: float = 0.0
    load_means: tuple[float, ...] = ()


@dataclass
class Row:
    who: str
    figures: dict[str, Figures] = field(default_factory=dict)
    unavailable: str = ""


def summarise(run: Run) -> Figures:
    ok = [r for r in run.results if not r.error and r.ttft]
    ttft = [r.ttft * 1000 for r in ok]
    spread = counters.balance(run.loads)
    return Figures(
        requests=len(run.results),
        failed=len(run.results) - len(ok),
        hit_rate=counters.hit_rate(run.before, run.after).rate,
        steady_hit_rate=counters.hit_rate(run.midway, run.after).rate,
        ttft_p50_ms=counters.percentile(ttft, 50),
        ttft_p90_ms=counters.percentile(ttft, 90),
        req_s=len(ok) / run.wall if run.wall else 0.0,
        tok_s=sum(r.tokens for r in ok) / run.wall if run.wall else 0.0,
        prompt_tokens=sum(r.prompt_tokens for r in ok) / len(ok) if ok else 0.0,
        replicas_per_group=replicas_per_group([(r.group, r.endpoint) for r in ok]),
        load_ratio=spread.ratio,
        load_p90=spread.sample_p90,
        load_means=tuple(round(m, 2) for m in spread.means),
    )


def replicas_per_group(served: list[tuple[int, str]]) -> float:
    """Mean count of distinct replicas per group, from (group, replica) pairs; groups < 0
    are left out; 0 when any replica is unnamed."""
    if any(not replica for _, replica in served):
        return 0.0
    replicas: dict[int, set[str]] = {}
    for group, replica in served:
        if group >= 0:
            replicas.setdefault(group, set()).add(replica)
    return sum(map(len, replicas.values())) / len(replicas) if replicas else 0.0


def table(rows: list[Row], kind: str) -> str:
    head = f"{'gateway / strategy':<20} {'hit rate':>9} {'2nd half':>9}"
    head += f" {'TTFT p50':>9} {'p90 ms':>8}"
    head += f" {'req/s':>7} {'tok/s':>7} {'failed':>7}"
    if kind != workloads.UNIQUE:
        head += f" {'replicas/group':>15}"
    if kind == workloads.HOT:
        head += f" {'load max/mean':>14} {'p90':>5}  mean load per replica"
    lines = [head]
    for row in rows:
        if row.unavailable:
            lines.append(f"{row.who:<20} unavailable: {row.unavailable}")
            continue
        f = row.figures.get(kind)
        if f is None:
            continue
        line = f"{row.who:<20} {f.hit_rate:>9.1%} {f.steady_hit_rate:>9.1%}"
        line += f" {f.ttft_p50_ms:>9.1f} {f.ttft_p90_ms:>8.1f}"
        line += f" {f.req_s:>7.2f} {f.tok_s:>7.1f} {f.failed:>7}"
        if kind != workloads.UNIQUE:
            spread = f"{f.replicas_per_group:.2f}" if f.replicas_per_group else "-"
            line += f" {spread:>15}"
        if kind == workloads.HOT:
            means = " ".join(f"{m:.1f}" for m in f.load_means)
            line += f" {f.load_ratio:>13.2f}x {f.load_p90:>4.2f}x  {means}"
        lines.append(line)
    return "\n".join(lines)


def targets(rows: list[Row], kind: str) -> list[str]:
    """The workload's targets, each with the figures it was judged on."""
    by = {r.who: r.figures[kind] for r in rows if kind in r.figures}
    lines: list[str] = []
    if kind == workloads.SHARED and PA in by and RR in by:
        for what, pa, rr in (
            ("whole run", by[PA].hit_rate, by[RR].hit_rate),
            ("2nd half", by[PA].steady_hit_rate, by[RR].steady_hit_rate),
        ):
            met = pa >= HIT_TARGET and rr <= RR_HIT_CEILING
            lines.append(
                f"target: prefix-aware hit rate >= {HIT_TARGET:.0%} where round-robin <= "
                f"{RR_HIT_CEILING:.0%} ({what}): {pa:.1%} vs {rr:.1%} -> {verdict(met)}"
            )
    if kind == workloads.UNIQUE and PA in by and LR in by:
        ttft = ratio(by[PA].ttft_p50_ms, by[LR].ttft_p50_ms)
        rate = ratio(by[PA].tok_s, by[LR].tok_s)
        met = ttft <= 1 + UNIQUE_TOLERANCE and rate >= 1 - UNIQUE_TOLERANCE
        lines.append(
            f"target: prefix-aware within {UNIQUE_TOLERANCE:.0%} of least-request (TTFT p50 "
            f"and throughput): TTFT p50 x{ttft:.3f}, throughput x{rate:.3f} -> {verdict(met)}"
        )
    if kind == workloads.HOT and PA in by:
        load = by[PA].load_ratio
        lines.append(
            f"target: one hot prefix, no replica over {HOT_BOUND:g}x the mean in-flight load "
            f"(prefix-aware): {load:.2f}x -> {verdict(load <= HOT_BOUND)}"
        )
    if PA in by and PEER in by:
        ours, peer = by[PA], by[PEER]
        lines.append(
            f"prefix-aware / {PEER}: hit rate {ours.hit_rate:.1%} vs {peer.hit_rate:.1%}, TTFT "
            f"p50 x{ratio(ours.ttft_p50_ms, peer.ttft_p50_ms):.2f}, p90 "
            f"x{ratio(ours.ttft_p90_ms, peer.ttft_p90_ms):.2f}, throughput "
            f"x{ratio(ours.tok_s, peer.tok_s):.2f}"
        )
    return lines


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"
