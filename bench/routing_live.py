"""Routing claim, live: the gateway's strategies over real reference engines, side by side.

Four `inferplane engine` replicas of the demo model on loopback (one torch thread each). Each
engine's KV cache holds its fair share of the groups' system prompts (groups / replicas of
them, times `--cache-share`) plus room for the requests in flight, and no more: the four
together hold every prefix about once, so a prefix is found cached only where routing keeps
its group on one replica. In front, `inferplane gateway --config` with one strategy at a time
(a fresh gateway per strategy): round-robin, least-request, power-of-two, prefix-aware; then
sglang-router's cache_aware policy (from the venv `make bench-peers` makes) on the same
replicas, as the peer, through a hop that drops the SGLang-only fields it adds to every
request (bench/routing/shim.py: the engine refuses unknown fields). The engines stay up
throughout; each gateway's traffic has the same seeded shape in fresh words (salted by the
gateway's name), so no run finds an earlier run's prefixes cached.

Workloads, streamed chat completions of `--max-tokens` tokens (greedy, ignore_eos):

- shared-prefix: `--groups` groups of users, each sharing a ~390-token system prompt, each
  request that plus a short unique question; Poisson arrivals at `--rate` per second, open
  loop, TTFT timed from the intended send time (queueing shows);
- unique: the same, every system prompt the request's own (the control: nothing to share);
- hot-prefix: every request shares one system prompt, `--hot-concurrency` kept in flight
  (closed loop: a known load, past the mean of 6 per replica where prefix-aware's load gate
  bounds a replica at 1.5x the mean); each engine's running + waiting sampled every 100 ms.

Per gateway and workload: prefix-cache hit rate (the engines' vllm:prefix_cache_hits /
vllm:prefix_cache_queries, deltas summed over engines) over the whole run and over its second
half (past each prefix's first, necessarily missed, sight), TTFT p50/p90 (first content
chunk), requests and output tokens per second, how many replicas served each group (ours
names the replica in a response header); on the hot prefix, the busiest replica's mean load
over the mean of all replicas' (and the p90 of that ratio over samples). Targets printed
beside. Logs and per-request results: ~/.cache/inferplane-bench/logs/routing-*.

    .venv/bin/python bench/routing_live.py [--quick] [--strategies a,b] [--workloads a,b]
        [--groups 32] [--rate 4] [--requests 480] [--peer sglang|none] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import servers
from bench.gateway import peers
from bench.jsonout import write_json
from bench.routing import client, fleet, report, workloads

STRATEGIES = (report.RR, report.LR, "power-of-two", report.PA)


def measure(
    who: str, urls: list[str], shape: workloads.Shape, kinds: list[str], workdir: Path
) -> report.Row:
    """One gateway in front of the engines, every workload through it."""
    print(f"\n== {who}", flush=True)
    try:
        if who == report.PEER:
            processes = fleet.sglang_cache_aware(urls, workdir)
        else:
            processes = fleet.ours(who, urls, workdir)
    except (peers.Unavailable, OSError) as exc:
        print(f"unavailable: {exc}", flush=True)
        return report.Row(who, unavailable=str(exc))
    row, gateway = report.Row(who), processes[-1]
    try:
        with contextlib.ExitStack() as stack:
            for spec, url in processes:
                stack.enter_context(servers.running(spec, url))
            for kind in kinds:
                row.figures[kind] = run_workload(gateway[1], urls, shape, kind, salt=who)
    except (RuntimeError, httpx.HTTPError) as exc:
        why = str(exc).splitlines()[0][:160]
        print(f"unavailable: {exc}\n  its log: {gateway[0].log}", flush=True)
        row.unavailable = f"{why} (log: {gateway[0].log})"
    return row


def run_workload(
    url: str, engines: list[str], shape: workloads.Shape, kind: str, *, salt: str
) -> report.Figures:
    workload = workloads.build(kind, shape, salt=salt)
    run = asyncio.run(client.drive(url, workload, fleet.TOKEN, engines, kind == workloads.HOT))
    figures = report.summarise(run)
    save(run, fleet.LOGS / f"routing-{salt.replace(' ', '-')}-{kind}.json")
    print(
        f"  {kind}: {figures.requests} requests in {run.wall:.1f} s, {figures.failed} failed, "
        f"hit rate {figures.hit_rate:.1%}, TTFT p50 {figures.ttft_p50_ms:.0f} ms",
        flush=True,
    )
    errors = [r.error for r in run.results if r.error]
    if errors:
        print(f"  first error: {errors[0]}", flush=True)
    return figures


def save(run: client.Run, path: Path) -> None:
    """Per-request figures (and load samples), for a look after the run."""
    path.write_text(json.dumps(asdict(run)))


def warm_up(urls: list[str], shape: workloads.Shape) -> None:
    """A few requests straight to each engine, so the first gateway measured pays no warm-up."""
    warm = workloads.Shape(shape.seed + 1, requests=4, rate=1.0, groups=1)
    requests = workloads.build(workloads.UNIQUE, warm, salt="warm-up").requests

    async def send() -> None:
        async with client.new_client(len(urls) * len(requests)) as http:
            await asyncio.gather(
                *(
                    client.stream_chat(
                        http, u, client.chat_body(r, shape.max_tokens), "-", time.perf_counter()
                    )
                    for u in urls
                    for r in requests
                )
            )

    asyncio.run(send())


def kv_blocks(shape: workloads.Shape, replicas: int, share: float) -> int:
    """Blocks per engine: `share` of a replica's fair share of the groups' system prompts,
    plus room for the requests in flight; never below one full-context sequence."""
    from inferplane.engine.tokenizer import Tokenizer

    system = workloads.build(workloads.SHARED, shape, salt="size").requests[0].system
    tokens = len(Tokenizer(fleet.demo_model()).encode(system)) + 4  # + the chat template's
    per_prefix = math.ceil(tokens / fleet.BLOCK_SIZE)
    blocks = round(share * shape.groups / replicas * per_prefix) + 8
    return max(blocks, fleet.MAX_MODEL_LEN // fleet.BLOCK_SIZE + 2)


def names(text: str) -> list[str]:
    """The names in a comma-separated flag ("" for none: `--strategies ""` runs the peer
    alone)."""
    return [name for name in text.split(",") if name]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes in all")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    parser.add_argument("--workloads", default=",".join(workloads.KINDS), help="comma-separated")
    parser.add_argument("--peer", choices=("sglang", "none"), default="sglang")
    parser.add_argument("--groups", type=int, help="system-prompt groups (32; quick 8)")
    parser.add_argument("--rate", type=float, default=4.0, help="arrivals per second (open loop)")
    parser.add_argument("--requests", type=int, help="per workload (480; quick 60)")
    parser.add_argument("--hot-concurrency", type=int, default=32, help="hot prefix in flight")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument(
        "--cache-share", type=float, default=1.0, help="KV cache, in fair shares of the prefixes"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", nargs="?", const="-", help="write JSON to FILE (- stdout)")
    args = parser.parse_args()
    for flag, known in (("strategies", STRATEGIES), ("workloads", workloads.KINDS)):
        unknown = set(names(getattr(args, flag))) - set(known)
        if unknown:
            parser.error(f"unknown {flag} {sorted(unknown)}; pick from {','.join(known)}")
    return args


def main() -> None:
    args = parse_args()
    shape = workloads.Shape(
        seed=args.seed,
        requests=args.requests or (60 if args.quick else 480),
        rate=args.rate,
        groups=args.groups or (8 if args.quick else 32),
        max_tokens=args.max_tokens,
        hot_concurrency=args.hot_concurrency,
    )
    setup = fleet.EngineSetup(args.replicas, kv_blocks(shape, args.replicas, args.cache_share))
    who = [*names(args.strategies), *([report.PEER] if args.peer == "sglang" else [])]
    kinds = names(args.workloads)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"command: {' '.join(sys.argv)}\ncores: {os.cpu_count()}; load average {load}")
    print(f"workloads: {shape}\nengines: {setup}", flush=True)
    started = time.monotonic()
    with fleet.engines(setup) as urls, tempfile.TemporaryDirectory(prefix="routing-") as tmp:
        warm_up(urls, shape)
        rows = [measure(w, urls, shape, kinds, Path(tmp)) for w in who]
    print_report(rows, shape, setup, kinds)
    print(f"({time.monotonic() - started:.0f} s in all; load average now {os.getloadavg()[0]:.2f})")
    if args.json:
        data = {"command": sys.argv, "shape": asdict(shape), "engines": asdict(setup)}
        write_json(args.json, {**data, "rows": [asdict(r) for r in rows]})


def print_report(
    rows: list[report.Row], shape: workloads.Shape, setup: fleet.EngineSetup, kinds: list[str]
) -> None:
    notes = {
        workloads.SHARED: f"{shape.requests} requests, {shape.groups} groups, Poisson "
        f"{shape.rate:g}/s",
        workloads.UNIQUE: f"{shape.requests} requests, no shared prefix, Poisson {shape.rate:g}/s",
        workloads.HOT: f"one shared prefix, {shape.count(workloads.HOT)} requests, "
        f"{shape.hot_concurrency} in flight (closed loop)",
    }
    print(
        f"\n{setup.replicas} engines x {setup.kv_blocks} KV blocks of {fleet.BLOCK_SIZE} tokens; "
        f"{shape.max_tokens} output tokens a request; "
        "hit rate in prompt tokens (engines' counters); TTFT to the first content chunk"
    )
    for kind in kinds:
        figures = [r.figures[kind] for r in rows if kind in r.figures]
        tokens = [f.prompt_tokens for f in figures if f.prompt_tokens]
        prompt = f", ~{sum(tokens) / len(tokens):.0f} prompt tokens" if tokens else ""
        print(f"\n{kind} ({notes[kind]}{prompt})\n{report.table(rows, kind)}")
        for line in report.targets(rows, kind):
            print(line)


if __name__ == "__main__":
    main()
