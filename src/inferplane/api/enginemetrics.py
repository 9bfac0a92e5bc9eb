"""The engines' Prometheus metric names, one table per engine, and the one parser of them.

Every engine names its load numbers its own way; this module is the only place those names
are written down, and the only reader of an exposition. The agent knows each replica's recipe
and reads with that recipe's names (`read`); the gateway does not know which engine an
endpoint runs, and recognises it from the names the scrape carries (`read_any`): the tables'
prefixes (`vllm:`, `sglang:`, `llamacpp:`, `tgi_`) do not overlap. The reference engine
serves vLLM's names, so `VLLM` reads it too.

Pure functions: text in, numbers out; counters are returned as totals, for the caller to turn
into rates between two scrapes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Container, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricNames:
    """Which Prometheus samples carry each load number; the first name found wins. Counters
    and histograms are named by their samples (`_total`; a histogram by its base name, whose
    `_sum` and `_count` are read)."""

    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_cache_usage: tuple[str, ...] = ()
    ttft_histogram: tuple[str, ...] = ()
    tpot_histogram: tuple[str, ...] = ()
    prompt_tokens: tuple[str, ...] = ()
    generation_tokens: tuple[str, ...] = ()
    requests: tuple[str, ...] = ()

    @functools.cached_property
    def samples(self) -> frozenset[str]:
        """Every sample name these point at, so a parse can skip all the others."""
        histograms = {
            n + suffix
            for n in (*self.ttft_histogram, *self.tpot_histogram)
            for suffix in ("_sum", "_count")
        }
        plain = (
            self.running,
            self.waiting,
            self.kv_cache_usage,
            self.prompt_tokens,
            self.generation_tokens,
            self.requests,
        )
        return frozenset(histograms.union(*plain))


VLLM = MetricNames(
    running=("vllm:num_requests_running",),
    waiting=("vllm:num_requests_waiting",),
    kv_cache_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),  # before 0.10
    ttft_histogram=("vllm:time_to_first_token_seconds",),
    tpot_histogram=("vllm:time_per_output_token_seconds", "vllm:inter_token_latency_seconds"),
    prompt_tokens=("vllm:prompt_tokens_total",),
    generation_tokens=("vllm:generation_tokens_total",),
    requests=("vllm:request_success_total",),
)
"""vLLM's names, which the reference engine uses too."""

SGLANG = MetricNames(
    running=("sglang:num_running_reqs",),
    waiting=("sglang:num_queue_reqs",),
    kv_cache_usage=("sglang:token_usage",),
    ttft_histogram=("sglang:time_to_first_token_seconds",),
    tpot_histogram=("sglang:time_per_output_token_seconds", "sglang:inter_token_latency_seconds"),
    prompt_tokens=("sglang:prompt_tokens_total",),
    generation_tokens=("sglang:generation_tokens_total",),
    requests=("sglang:num_requests_total",),
)

LLAMACPP = MetricNames(
    running=("llamacpp:requests_processing",),
    waiting=("llamacpp:requests_deferred",),
    kv_cache_usage=("llamacpp:kv_cache_usage_ratio",),
    prompt_tokens=("llamacpp:prompt_tokens_total",),
    generation_tokens=("llamacpp:tokens_predicted_total",),
)

TGI = MetricNames(
    running=("tgi_batch_current_size",),
    waiting=("tgi_queue_size",),
    prompt_tokens=("tgi_request_input_length_sum",),
    generation_tokens=("tgi_request_generated_tokens_sum",),
    requests=("tgi_request_success_total", "tgi_request_success"),
)

ENGINES: dict[str, MetricNames] = {
    "vllm": VLLM,
    "sglang": SGLANG,
    "llamacpp": LLAMACPP,
    "tgi": TGI,
}
"""Every engine's names, in the order `recognise` tries them."""

EVERY_SAMPLE: frozenset[str] = frozenset().union(*(n.samples for n in ENGINES.values()))
"""What a scrape of an engine not known beforehand keeps."""


@dataclass(frozen=True)
class Reading:
    """One scrape's load numbers as the engine reports them; None where it has no such
    counter. Counters are totals since the engine started, not rates."""

    running: float = 0.0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0
    """The fraction of the KV cache in use, as reported (not clamped)."""
    ttft_sum: float | None = None
    ttft_count: float | None = None
    tpot_sum: float | None = None
    tpot_count: float | None = None
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    requests: float | None = None


def parse(text: str, wanted: Container[str] | None = None) -> dict[str, float]:
    """Every sample of a Prometheus text exposition, summed over its label sets; only the
    `wanted` names when given, which spares parsing the many histogram buckets."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        # The name ends at its labels' `{` or the space before its value. Two splits in C
        # are the cheapest way there, and this runs on every line of every scrape.
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if not name:  # a blank line, or an indented one
            line = line.strip()
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if not name:
                continue
        if wanted is None:
            if name[0] == "#":
                continue  # a comment
        elif name not in wanted:
            continue  # most lines are histogram buckets that nobody asked for
        end = len(name)
        labelled = line[end : end + 1] == "{"
        value = _value(_after_labels(line, end) if labelled else line[end:])
        if value is not None:
            totals[name] = totals.get(name, 0.0) + value
    return totals


def _value(rest: str) -> float | None:
    """The value in what follows a sample's name and labels (a timestamp may come after)."""
    words = rest.split(None, 1)
    if not words:
        return None
    try:
        value = float(words[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _after_labels(line: str, start: int) -> str:
    """What follows the `{...}` that opens at `start`, minding quoted label values."""
    quoted = escaped = False
    for i in range(start + 1, len(line)):
        char = line[i]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "}" and not quoted:
            return line[i + 1 :]
    return ""


def read(metrics: Mapping[str, float], names: MetricNames) -> Reading:
    """The load numbers in parsed samples, under one engine's names."""

    def first(candidates: tuple[str, ...], suffix: str = "") -> float | None:
        return next((metrics[n + suffix] for n in candidates if n + suffix in metrics), None)

    return Reading(
        running=first(names.running) or 0.0,
        waiting=first(names.waiting) or 0.0,
        kv_cache_usage=first(names.kv_cache_usage) or 0.0,
        ttft_sum=first(names.ttft_histogram, "_sum"),
        ttft_count=first(names.ttft_histogram, "_count"),
        tpot_sum=first(names.tpot_histogram, "_sum"),
        tpot_count=first(names.tpot_histogram, "_count"),
        prompt_tokens=first(names.prompt_tokens),
        generation_tokens=first(names.generation_tokens),
        requests=first(names.requests),
    )


def recognise(metrics: Mapping[str, float]) -> MetricNames | None:
    """The names of the engine that served these samples: the first in ENGINES that has any
    of its samples among them; None when no engine's are there."""
    return next((n for n in ENGINES.values() if not n.samples.isdisjoint(metrics)), None)


def read_any(text: str) -> Reading:
    """The load in an exposition of an engine not known beforehand (nothing for an engine
    whose names no table holds)."""
    metrics = parse(text, EVERY_SAMPLE)
    names = recognise(metrics)
    return read(metrics, names) if names is not None else Reading()
