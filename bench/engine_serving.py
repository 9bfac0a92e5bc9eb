"""Performance claim over HTTP: our engine's server beside vLLM's, same client, same workload.

Workload: `--requests` prompts of `--prompt-len` random token ids (seeded), each asking for
`--output-len` tokens, greedy, `ignore_eos`, streamed from `/v1/completions` with
`stream_options.include_usage`; `--concurrency` clients keep one request each in flight (closed
loop) until all are served. One server at a time (never both: they would share the cores):

- ours: `inferplane engine --model PATH` from this venv;
- vLLM: `python -m vllm.entrypoints.openai.api_server` from the venv `make bench-peers` makes
  (~/.cache/inferplane-bench/vllm-venv); skipped, with a note, where it is missing.

Each server is started, waited for on /health, warmed up, measured and stopped. Printed: output
tokens/s, TTFT p50/p99, TPOT p50/p99 (per request: (e2e - TTFT) / (tokens - 1)) and e2e p50/p99,
and ours/vLLM ratios, with the CPU the server, this client and everything else on the machine
used meanwhile (the cores are shared: "other" says what a run lost to other work); then whether
greedy outputs agree token for token on `--check` requests (sent one at a time, non-streamed) —
printed, never a failure. Both run float32 with the same context, KV-cache size, scheduler
budget and threads (`--own-defaults`: each its own defaults). Server logs and per-request
results go to ~/.cache/inferplane-bench/logs.

    .venv/bin/python bench/engine_serving.py [--model PATH|demo|tiny] [--concurrency 32]
        [--requests 64] [--prompt-len 128] [--output-len 64] [--peer vllm|none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.engine import CACHE, random_model
from bench.servers import CpuMark, ServerSpec, running

LOGS = CACHE / "logs"
VLLM_VENV = CACHE / "vllm-venv"
VLLM_STAMP = ".inferplane-installed"
"""Written by bench/peers/setup_vllm.sh once the venv imports vllm."""
MODEL_NAME = "bench"
FIRST_ID = 5
"""Prompt ids are drawn from [FIRST_ID, vocab): past the demo tokenizer's special tokens."""
Json = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    model: Path
    concurrency: int
    requests: int
    prompt_len: int
    output_len: int
    seed: int
    threads: int
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_cache_gib: int
    own_defaults: bool
    check: int
    peer: str
    vllm_venv: Path
    startup_timeout: float

    @property
    def config(self) -> Json:
        return json.loads((self.model / "config.json").read_text())

    @property
    def max_model_len(self) -> int:
        return int(self.config["max_position_embeddings"])


@dataclass
class RequestResult:
    ttft: float = 0.0
    e2e: float = 0.0
    tokens: int = 0
    text: str = ""


@dataclass
class Run:
    """One server's measurement: per-request results, wall time and greedy check tokens."""

    who: str
    results: list[RequestResult]
    wall: float
    greedy: list[list[str]] = field(default_factory=list)
    server_cores: float = 0.0
    """CPU seconds of the server's processes per second of the measured run."""
    client_cores: float = 0.0
    """The same for this process (the HTTP client)."""
    other_cores: float = 0.0
    """The same for everything else on the machine: what the shared cores lost to others."""


@dataclass(frozen=True)
class Summary:
    who: str
    tok_s: float
    ttft50: float
    ttft99: float
    tpot50: float
    tpot99: float
    e2e50: float
    e2e99: float
    server_cores: float
    client_cores: float
    other_cores: float


# --- model and workload -------------------------------------------------------------------


def resolve_model(name: str | None) -> Path:
    """A model folder: the bench's random 4x256 Llama (default), `demo`, `tiny` or a path."""
    if name in (None, "random"):
        return random_model()
    if name == "demo":
        from inferplane.cli.engine import resolve_model as resolve_cli_model

        return resolve_cli_model(Path("demo"))  # what `inferplane engine --model demo` serves
    if name == "tiny":
        return tiny_model()
    return Path(name).expanduser().resolve()


def tiny_model() -> Path:
    """A 2-layer, 128-wide demo-recipe model (head size 64, as the demo's), trained for a few
    seconds and made once under the bench cache: for smoke runs of this script."""
    from inferplane.engine import demo

    spec = demo.DemoSpec(
        steps=20,
        batch=4,
        seq_len=64,
        vocab_size=512,
        hidden_size=128,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=256,
        num_layers=2,
    )
    print("the tiny model (made once, in seconds)...", flush=True)
    return demo.ensure_demo(CACHE / "tiny", spec)


def make_prompts(n: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(FIRST_ID, vocab) for _ in range(length)] for _ in range(n)]


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ours_spec(settings: Settings, port: int) -> ServerSpec:
    inferplane = Path(sys.executable).with_name("inferplane")
    argv = [str(inferplane), "engine", "--model", str(settings.model), "--port", str(port)]
    argv += ["--host", "127.0.0.1", "--served-model-name", MODEL_NAME, "--log-level", "warning"]
    argv += ["--dtype", "float32", "--kv-cache-memory", f"{settings.kv_cache_gib}GiB"]
    argv += ["--max-model-len", str(settings.max_model_len), "--shutdown-grace", "5"]
    env = dict(os.environ)
    if not settings.own_defaults:
        argv += ["--max-num-seqs", str(settings.max_num_seqs)]
        argv += ["--max-num-batched-tokens", str(settings.max_num_batched_tokens)]
        env["OMP_NUM_THREADS"] = str(settings.threads)  # torch's intra-op threads
    return ServerSpec("ours", argv, env, LOGS / "engine-serving-ours.log", 300.0)


def vllm_spec(settings: Settings, port: int) -> ServerSpec:
    venv = settings.vllm_venv
    argv = [str(venv / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server"]
    argv += ["--model", str(settings.model), "--port", str(port), "--host", "127.0.0.1"]
    argv += ["--served-model-name", MODEL_NAME, "--dtype", "float32", "--seed", "0"]
    argv += ["--max-model-len", str(settings.max_model_len), "--disable-uvicorn-access-log"]
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CPU_KVCACHE_SPACE": str(settings.kv_cache_gib),
    }
    if not settings.own_defaults:
        argv += ["--max-num-seqs", str(settings.max_num_seqs)]
        argv += ["--max-num-batched-tokens", str(settings.max_num_batched_tokens)]
        # vLLM's default ("auto") binds its OpenMP threads to all cores but one, which it
        # keeps for its scheduler process; here it gets the same cores ours computes on.
        env["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{settings.threads - 1}"
    return ServerSpec("vllm", argv, env, LOGS / "engine-serving-vllm.log", settings.startup_timeout)


def vllm_missing(venv: Path) -> str | None:
    """Why the vLLM venv cannot be used, or None when it can."""
    if not (venv / VLLM_STAMP).exists():
        return f"no vLLM venv at {venv} (its stamp {VLLM_STAMP} is missing)"
    return None


# --- client -------------------------------------------------------------------------------


def completion_body(prompt: list[int], max_tokens: int, **extra: Any) -> Json:
    return {
        "model": MODEL_NAME,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        **extra,
    }


def new_client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=10), limits=limits, trust_env=False
    )


async def stream_one(client: httpx.AsyncClient, url: str, body: Json) -> RequestResult:
    """One streamed completion: TTFT at the first chunk with a choice, tokens from usage."""
    result, chunks, usage = RequestResult(), 0, None
    start = time.perf_counter()
    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", f"{url}/v1/completions", json=payload) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:500]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
            if chunk.get("choices"):
                result.ttft = result.ttft or time.perf_counter() - start
                result.text += chunk["choices"][0].get("text") or ""
                chunks += 1
    result.e2e = time.perf_counter() - start
    result.tokens = int(usage["completion_tokens"]) if usage else chunks
    return result


async def drive(url: str, bodies: list[Json], concurrency: int, who: str) -> Run:
    """Closed loop: `concurrency` clients, each sends its next request when one finishes."""
    results: list[RequestResult | None] = [None] * len(bodies)
    queue = list(range(len(bodies)))[::-1]
    every = max(1, len(bodies) // 8)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while queue:
            index = queue.pop()
            results[index] = await stream_one(client, url, bodies[index])
            done = sum(r is not None for r in results)
            if done % every == 0 or done == len(bodies):
                print(f"  {who}: {done}/{len(bodies)} requests, {elapsed():.1f} s", flush=True)

    start = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - start

    async with new_client(concurrency) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    return Run(who, [r for r in results if r is not None], elapsed())


async def greedy_tokens(
    url: str, prompts: list[list[int]], max_tokens: int, model: Path, extra: Json
) -> list[list[str]]:
    """Per request, the output tokens as strings, one request at a time (non-streamed).

    Ours returns no token ids (and refuses vLLM's `return_token_ids`), so its strings come
    from `logprobs.tokens` (each id decoded alone); vLLM's ids (`extra` asks for them) are
    decoded the same way, with the same tokenizer.
    """
    from inferplane.engine.tokenizer import Tokenizer

    tokenizer = Tokenizer(model)
    outputs = []
    async with new_client(1) as client:
        for prompt in prompts:
            body = completion_body(prompt, max_tokens, logprobs=0, **extra)
            response = await client.post(f"{url}/v1/completions", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
            choice = response.json()["choices"][0]
            if choice.get("token_ids") is not None:
                ids = choice["token_ids"]
                outputs.append([tokenizer.decode([i], skip_special_tokens=False) for i in ids])
            else:
                outputs.append(list(choice["logprobs"]["tokens"]))
    return outputs


# --- one server's session -----------------------------------------------------------------


def measure(settings: Settings, who: str) -> Run:
    """Start the server, warm it up, drive the workload, take the greedy check, stop it."""
    port = free_port()
    spec = ours_spec(settings, port) if who == "ours" else vllm_spec(settings, port)
    url = f"http://127.0.0.1:{port}"
    vocab = int(settings.config["vocab_size"])
    prompts = make_prompts(settings.requests, settings.prompt_len, vocab, settings.seed)
    bodies = [completion_body(p, settings.output_len) for p in prompts]
    warm = make_prompts(settings.concurrency, settings.prompt_len, vocab, settings.seed + 1)
    with running(spec, url) as process:
        print(f"  {spec.who}: warm-up ({len(warm)} requests of 8 tokens)", flush=True)
        asyncio.run(drive(url, [completion_body(p, 8) for p in warm], settings.concurrency, "warm"))
        before = CpuMark.now(process.pid)
        run = asyncio.run(drive(url, bodies, settings.concurrency, spec.who))
        after = CpuMark.now(process.pid)
        run.server_cores = (after.server - before.server) / run.wall
        run.client_cores = (after.client - before.client) / run.wall
        busy = (after.machine - before.machine) / run.wall
        run.other_cores = max(busy - run.server_cores - run.client_cores, 0.0)
        if settings.check:
            print(f"  {spec.who}: greedy check, {settings.check} requests one at a time")
            checked = prompts[: settings.check]
            extra = {"return_token_ids": True} if who == "vllm" else {}
            greedy = greedy_tokens(url, checked, settings.output_len, settings.model, extra)
            run.greedy = asyncio.run(greedy)
    save(run, LOGS / f"engine-serving-{who}.json")
    return run


def save(run: Run, path: Path) -> None:
    """Per-request figures, texts and greedy-check tokens, for a look after the run."""
    path.write_text(json.dumps(asdict(run), indent=1))
    print(f"  {run.who}: per-request results in {path}", flush=True)


# --- report -------------------------------------------------------------------------------


def percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summarise(run: Run) -> Summary:
    ttft = [r.ttft * 1000 for r in run.results]
    tpot = [(r.e2e - r.ttft) * 1000 / max(r.tokens - 1, 1) for r in run.results]
    e2e = [r.e2e * 1000 for r in run.results]
    return Summary(
        who=run.who,
        tok_s=sum(r.tokens for r in run.results) / run.wall,
        ttft50=percentile(ttft, 50),
        ttft99=percentile(ttft, 99),
        tpot50=percentile(tpot, 50),
        tpot99=percentile(tpot, 99),
        e2e50=percentile(e2e, 50),
        e2e99=percentile(e2e, 99),
        server_cores=run.server_cores,
        client_cores=run.client_cores,
        other_cores=run.other_cores,
    )


def print_table(rows: list[Summary]) -> None:
    print(
        f"\n{'who':<10} {'tok/s':>8} {'TTFT p50':>9} {'p99':>8} {'TPOT p50':>9} {'p99':>7} "
        f"{'e2e p50':>8} {'p99':>8}  ms   CPU cores: server client other"
    )
    for row in rows:
        print(
            f"{row.who:<10} {row.tok_s:>8.1f} {row.ttft50:>9.1f} {row.ttft99:>8.1f} "
            f"{row.tpot50:>9.1f} {row.tpot99:>7.1f} {row.e2e50:>8.1f} {row.e2e99:>8.1f}"
            f"{row.server_cores:>24.2f} {row.client_cores:>6.2f} {row.other_cores:>5.2f}"
        )
    if len(rows) == 2:
        ours, peer = rows
        ratios = [getattr(ours, name) / getattr(peer, name) for name in COLUMNS]
        widths = [7, 8, 7, 8, 6, 7, 7]
        cells = " ".join(
            f"{ratio:>{width}.2f}x" for ratio, width in zip(ratios, widths, strict=True)
        )
        print(f"{'ours/vllm':<10} {cells}  (tok/s: higher is better; ms: lower is better)")


COLUMNS = ("tok_s", "ttft50", "ttft99", "tpot50", "tpot99", "e2e50", "e2e99")


def print_agreement(ours: Run, peer: Run) -> None:
    """Greedy agreement, printed only: float32 on both sides should agree mostly, not always
    (different kernels sum in different orders, and a near-tie can flip an argmax)."""
    pairs = list(zip(ours.greedy, peer.greedy, strict=True))
    if pairs:
        same = sum(a == b for a, b in pairs)
        prefix = sum(common_prefix(a, b) for a, b in pairs)
        total = sum(max(len(a), len(b)) for a, b in pairs)
        print(
            f"greedy outputs, ours vs vllm: {same}/{len(pairs)} requests identical token for "
            f"token; {prefix}/{total} tokens ({100 * prefix / max(total, 1):.1f} %) agree before "
            "the first divergence"
        )
    pairs_run = zip(ours.results, peer.results, strict=True)
    differ = [i for i, (a, b) in enumerate(pairs_run) if a.text.strip() != b.text.strip()]
    print(
        f"streamed texts of the measured run equal (ends stripped): "
        f"{len(ours.results) - len(differ)}/{len(ours.results)}"
        + (f"; differing requests: {differ[:10]} (texts in {LOGS})" if differ else "")
    )


def common_prefix(a: list[str], b: list[str]) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


# --- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="folder, `demo` or `tiny` (default: random 4x256 Llama)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer", choices=("vllm", "none"), default="vllm")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="both servers")
    parser.add_argument("--max-num-seqs", type=int, default=64, help="both servers")
    parser.add_argument("--max-num-batched-tokens", type=int, default=1024, help="both servers")
    parser.add_argument("--kv-cache-gib", type=int, default=1, help="both servers")
    parser.add_argument(
        "--own-defaults",
        action="store_true",
        help="each server its own scheduler budget and threads (vLLM: 128 seqs, 2,048 "
        "tokens, OpenMP on all cores but one)",
    )
    parser.add_argument("--check", type=int, default=8, help="requests in the greedy check")
    parser.add_argument("--vllm-venv", type=Path, default=VLLM_VENV)
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="vLLM's, seconds")
    return parser.parse_args()


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        model=resolve_model(args.model),
        concurrency=args.concurrency,
        requests=args.requests,
        prompt_len=args.prompt_len,
        output_len=args.output_len,
        seed=args.seed,
        threads=args.threads,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        kv_cache_gib=args.kv_cache_gib,
        own_defaults=args.own_defaults,
        check=min(args.check, args.requests),
        peer=args.peer,
        vllm_venv=args.vllm_venv.expanduser(),
        startup_timeout=args.startup_timeout,
    )


def main() -> None:
    settings = settings_from(parse_args())
    budget = (
        "each server's own defaults"
        if settings.own_defaults
        else f"{settings.threads} threads, max {settings.max_num_seqs} seqs, "
        f"{settings.max_num_batched_tokens} tokens a step"
    )
    print(
        f"command: {' '.join(sys.argv)}\nmodel: {settings.model}  C={settings.concurrency}  "
        f"requests={settings.requests}  prompt={settings.prompt_len}  "
        f"output={settings.output_len}  context={settings.max_model_len}  float32  "
        f"KV {settings.kv_cache_gib} GiB  {budget}\n"
        f"cores: {os.cpu_count()}  load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        flush=True,
    )
    runs = [measure(settings, "ours")]
    if settings.peer == "vllm":
        missing = vllm_missing(settings.vllm_venv)
        if missing:
            make = "make bench-peers" + (
                f" VLLM_VENV={settings.vllm_venv}" if settings.vllm_venv != VLLM_VENV else ""
            )
            print(f"\nvLLM skipped: {missing}.\nMake it with `{make}` (~3 min, 3.5 GB).")
        else:
            try:
                runs.append(measure(settings, "vllm"))
            except RuntimeError as exc:  # failed to start or to serve: still print ours
                print(f"\nvLLM failed: {exc}\nits log: {LOGS / 'engine-serving-vllm.log'}")
    print_table([summarise(run) for run in runs])
    if len(runs) == 2:
        print_agreement(*runs)


if __name__ == "__main__":
    main()
