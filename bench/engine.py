"""Performance claim: the reference engine against naive serving, on the same seeded work.

Workload: `--requests` requests (seeded) with prompt lengths uniform in [16, 128] tokens and
output lengths uniform in [16, 64], greedy, `ignore_eos`; at each concurrency C (default 1, 8,
32) C clients keep one request each in flight (closed loop) until all are served.

- ours: `LLMEngine` in this process (continuous batching, paged KV, prefix caching, chunked
  prefill), stepped until done; a request's TTFT is from its submission to its first token.
- baseline: Hugging Face transformers `generate`, one request at a time (FIFO: a request
  submitted while another runs waits), TTFT measured the same way through a streamer.

Prints output tokens/s, TTFT and TPOT p50/p99 for both and the throughput ratio, and checks
that greedy outputs are token-for-token identical — also with prefix caching and chunked
prefill off. Model: `--model PATH`, else a random 4-layer, 256-wide Llama (vocabulary 2,048)
made once in a cache directory. vLLM as a peer is not in this script yet.

    .venv/bin/python bench/engine.py [--requests 32] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inferplane.engine.llm import EngineConfig, LLMEngine
from inferplane.engine.sampling_params import SamplingParams

CACHE = Path.home() / ".cache" / "inferplane-bench"


@dataclass
class Request:
    prompt: list[int]
    max_tokens: int


@dataclass
class Timing:
    submitted: float
    first: float = 0.0
    done: float = 0.0
    tokens: list[int] = field(default_factory=list)


def workload(n: int, vocab: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    return [
        Request([rng.randrange(3, vocab) for _ in range(rng.randint(16, 128))], rng.randint(16, 64))
        for _ in range(n)
    ]


def random_model() -> Path:
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    path = CACHE / "llama-4x256-v2048"
    if (path / "tokenizer.json").exists():
        return path
    config = transformers.LlamaConfig(
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=2048,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    vocab = {f"t{i}": i for i in range(2048)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "t1"}))
    return path


def run_ours(engine: LLMEngine, requests: list[Request], concurrency: int) -> list[Timing]:
    timings: dict[str, Timing] = {}
    pending = list(enumerate(requests))
    in_flight = 0

    def submit() -> None:
        nonlocal in_flight
        index, request = pending.pop(0)
        params = SamplingParams(temperature=0.0, max_tokens=request.max_tokens, ignore_eos=True)
        engine.add_request(f"r{index}", request.prompt, params)
        timings[f"r{index}"] = Timing(time.perf_counter())
        in_flight += 1

    while pending and in_flight < concurrency:
        submit()
    while engine.has_unfinished():
        for output in engine.step():
            timing = timings[output.request_id]
            now = time.perf_counter()
            timing.first = timing.first or now
            timing.tokens.extend(output.token_ids)
            if output.finished:
                timing.done = now
                in_flight -= 1
                if pending:
                    submit()
    return [timings[f"r{i}"] for i in range(len(requests))]


class _FirstToken:
    """A transformers streamer that notes when the first generated token arrives."""

    def __init__(self) -> None:
        self.calls = 0
        self.first = 0.0

    def put(self, value: torch.Tensor) -> None:
        self.calls += 1
        if self.calls == 2:  # the first call carries the prompt
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


def run_naive(model: object, requests: list[Request], concurrency: int) -> list[Timing]:
    """One at a time; client c submits its next request when its previous one finished."""
    timings: list[Timing] = []
    client_free = [time.perf_counter()] * concurrency
    for index, request in enumerate(requests):
        client = index % concurrency
        timing = Timing(client_free[client])
        streamer = _FirstToken()
        with torch.no_grad():
            out = model.generate(
                torch.tensor([request.prompt]),
                max_new_tokens=request.max_tokens,  # type: ignore[attr-defined]
                min_new_tokens=request.max_tokens,
                do_sample=False,
                streamer=streamer,
                eos_token_id=None,
                pad_token_id=0,
            )
        timing.first, timing.done = streamer.first, time.perf_counter()
        timing.tokens = out[0, len(request.prompt) :].tolist()
        client_free[client] = timing.done
        timings.append(timing)
    return timings


def summary(timings: list[Timing], wall: float) -> dict[str, float]:
    ttft = sorted(t.first - t.submitted for t in timings)
    tpot = sorted((t.done - t.first) / max(len(t.tokens) - 1, 1) for t in timings)
    tokens = sum(len(t.tokens) for t in timings)
    return {
        "tok/s": tokens / wall,
        "ttft50": _pct(ttft, 50),
        "ttft99": _pct(ttft, 99),
        "tpot50": _pct(tpot, 50),
        "tpot99": _pct(tpot, 99),
    }


def _pct(values: list[float], p: int) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


def engine_for(model: Path, *, caching: bool = True, chunked: bool = True) -> LLMEngine:
    return LLMEngine(
        EngineConfig(
            model=model,
            max_num_seqs=64,
            max_num_batched_tokens=512,
            enable_prefix_caching=caching,
            enable_chunked_prefill=chunked,
        )
    )


def shared_prefix_workload(n: int, vocab: int, seed: int) -> list[Request]:
    """Every prompt is a 384-token shared prefix (a long system prompt, say) plus 96 tokens
    of its own: 80 % shared."""
    rng = random.Random(seed)
    prefix = [rng.randrange(3, vocab) for _ in range(384)]
    return [Request([*prefix, *(rng.randrange(3, vocab) for _ in range(96))], 16) for _ in range(n)]


def random_prompts(n: int, vocab: int, seed: int) -> list[Request]:
    """The same lengths as the shared-prefix workload with nothing shared: a 0 % hit rate."""
    rng = random.Random(seed)
    return [Request([rng.randrange(3, vocab) for _ in range(480)], 16) for _ in range(n)]


def run_open_loop(engine: LLMEngine, requests: list[Request], rate: float) -> list[Timing]:
    """Requests arrive on their own (Poisson, ``rate`` a second, seeded), whether or not
    earlier ones are done: the way TTFT is measured without clients pacing each other."""
    rng = random.Random(7)
    start = time.perf_counter()
    arrivals, at = [], start
    for _ in requests:
        at += rng.expovariate(rate)
        arrivals.append(at)
    timings: dict[str, Timing] = {}
    submitted = 0
    while submitted < len(requests) or engine.has_unfinished():
        now = time.perf_counter()
        while submitted < len(requests) and arrivals[submitted] <= now:
            request = requests[submitted]
            params = SamplingParams(temperature=0.0, max_tokens=request.max_tokens, ignore_eos=True)
            engine.add_request(f"r{submitted}", request.prompt, params)
            timings[f"r{submitted}"] = Timing(arrivals[submitted])
            submitted += 1
        if not engine.has_unfinished():
            time.sleep(max(0.0, arrivals[submitted] - time.perf_counter()))
            continue
        for output in engine.step():
            timing = timings[output.request_id]
            timing.first = timing.first or time.perf_counter()
            timing.tokens.extend(output.token_ids)
            timing.done = time.perf_counter() if output.finished else 0.0
    return [timings[f"r{i}"] for i in range(len(requests))]


def prefix_caching(model: Path, vocab: int, n: int, rates: list[float]) -> None:
    """Caching on vs off, 480-token prompts and 16 output tokens: TTFT on an 80 %-shared
    workload arriving at each of ``rates`` a second (24 requests), and throughput of 8
    closed-loop clients on it and on prompts that share nothing (a 0 % hit rate: the cost
    of hashing and the LRU)."""
    shared, unshared = shared_prefix_workload(n, vocab, 1), random_prompts(n, vocab, 2)
    print("\nprefix caching (480-token prompts, 16 output tokens):")
    arriving = shared_prefix_workload(24, vocab, 3)
    alone = {
        c: summary(run_ours(engine_for(model, caching=c), arriving, 1), 1.0) for c in (False, True)
    }
    print(
        f"  80 % shared, one at a time TTFT p50 off {alone[False]['ttft50']:6.1f} ms  on "
        f"{alone[True]['ttft50']:6.1f} ms ({alone[False]['ttft50'] / alone[True]['ttft50']:.2f}x)"
    )
    for rate in rates:
        ttft = {
            c: summary(run_open_loop(engine_for(model, caching=c), arriving, rate), 1.0)
            for c in (False, True)
        }
        off, on = ttft[False], ttft[True]
        print(
            f"  80 % shared, {rate:g} req/s   TTFT p50 off {off['ttft50']:6.1f} ms  on "
            f"{on['ttft50']:6.1f} ms ({off['ttft50'] / on['ttft50']:.2f}x)   p99 off "
            f"{off['ttft99']:6.1f}  on {on['ttft99']:6.1f} ({off['ttft99'] / on['ttft99']:.2f}x)"
        )
    for label, requests in (("80 % shared, C=8", shared), ("0 % hit rate, C=8", unshared)):
        rows = {}
        for caching in (False, True):
            start = time.perf_counter()
            timings = run_ours(engine_for(model, caching=caching), requests, 8)
            rows[caching] = summary(timings, time.perf_counter() - start)
        off, on = rows[False], rows[True]
        print(
            f"  {label:<20} tok/s off {off['tok/s']:7.1f}  on {on['tok/s']:7.1f} "
            f"({on['tok/s'] / off['tok/s']:.3f}x)   TTFT p50 off {off['ttft50']:6.1f} ms  on "
            f"{on['ttft50']:6.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: random 4x256 Llama)")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--rates", default="1,4", help="arrivals a second for the prefix-caching TTFT runs"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    model_path = args.model or random_model()
    naive = transformers.AutoModelForCausalLM.from_pretrained(model_path).eval()
    requests = workload(args.requests, naive.config.vocab_size, seed=0)
    print(
        f"command: {' '.join(sys.argv)}\nmodel: {model_path}  requests: {len(requests)}  "
        f"torch threads: {torch.get_num_threads()}"
    )
    print(
        f"{'C':>3} {'who':<6} {'tok/s':>8} {'TTFT p50':>9} {'p99':>8} "
        f"{'TPOT p50':>9} {'p99':>7}  ms"
    )
    reference: list[list[int]] | None = None
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        rows = {}
        for who in ("naive", "ours"):
            start = time.perf_counter()
            if who == "ours":
                timings = run_ours(engine_for(model_path), requests, concurrency)
            else:
                timings = run_naive(naive, requests, concurrency)
            rows[who] = summary(timings, time.perf_counter() - start)
            outputs = [t.tokens for t in timings]
            reference = reference or outputs
            if outputs != reference:
                sys.exit(f"FAILED: {who} at C={concurrency} differs from the reference tokens")
        for who, row in rows.items():
            print(
                f"{concurrency:>3} {who:<6} {row['tok/s']:>8.1f} {row['ttft50']:>9.1f} "
                f"{row['ttft99']:>8.1f} {row['tpot50']:>9.1f} {row['tpot99']:>7.1f}"
            )
        print(
            f"{concurrency:>3} ratio  "
            f"{rows['ours']['tok/s'] / rows['naive']['tok/s']:>8.2f}x throughput"
        )
    for caching, chunked in ((False, True), (True, False), (False, False)):
        outputs = [
            t.tokens
            for t in run_ours(engine_for(model_path, caching=caching, chunked=chunked), requests, 8)
        ]
        status = "identical" if outputs == reference else "DIFFERENT"
        print(
            f"greedy outputs with prefix caching {'on' if caching else 'off'}, chunked prefill "
            f"{'on' if chunked else 'off'}: {status}"
        )
        if outputs != reference:
            sys.exit(1)
    rates = [float(r) for r in args.rates.split(",")]
    prefix_caching(model_path, naive.config.vocab_size, args.requests, rates)


if __name__ == "__main__":
    main()
