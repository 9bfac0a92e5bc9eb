"""The gateway bench's plain-vs-TLS table: the same loads side by side, and what TLS costs."""

from __future__ import annotations

import pytest
from bench.gateway import report
from bench.gateway.phases import Figures, Latency, Plan, Point

PLAN = Plan(duration=2.0, low=8, high=64, big=20, big_kib=216, streams=256, slo_ms=50.0)


def latency(ok: int, p50: float, p99: float) -> Latency:
    return Latency(p50=p50, p99=p99, ok=ok, failed=0, errors=[])


def figures(scale: float) -> Figures:
    """Throughput divided by `scale`, latencies and CPU multiplied by it."""
    return Figures(
        low=latency(int(20_000 / scale), 0.4 * scale, 1.0 * scale),
        high=latency(int(40_000 / scale), 3.0 * scale, 6.0 * scale),
        big=latency(int(2_000 / scale), 20.0 * scale, 40.0 * scale),
        sweep=[Point(round(10_000 / scale), 10_000 / scale, 1.0, 2.0, 0, True)],
        cpu_us_request=50.0 * scale,
        cpu_us_event=5.0 * scale,
    )


def test_tls_rows_give_plain_and_tls_and_the_cost_of_each() -> None:
    results = [report.Result(report.OURS, figures(1.0)), report.Result("ours-tls", figures(1.25))]
    text, data = report.tls_table(results, PLAN)
    assert data is not None
    high = data["req/s, 64 in flight"]
    assert high == {"plain": 20_000.0, "tls": 16_000.0, "cost_pct": pytest.approx(20.0)}
    assert data["max RPS (p99 <= 50 ms)"]["cost_pct"] == pytest.approx(20.0)
    assert data["µs/req at 64"]["cost_pct"] == pytest.approx(25.0)
    assert data["p99 ms @20 x 216 KiB"] == {"plain": 40.0, "tls": 50.0, "cost_pct": 25.0}
    lines = text.splitlines()
    assert lines[0].split()[-5:] == ["plain", "TLS", "TLS÷plain", "TLS", "costs"]
    row = next(line for line in lines if line.startswith("req/s, 8 in flight"))
    assert row.split()[-5:] == ["10000", "8000", "0.80x", "+20.0", "%"]


def test_no_tls_table_unless_both_ran() -> None:
    failed = report.Result("ours-tls", unavailable="no")
    assert report.tls_table([report.Result(report.OURS, figures(1.0)), failed], PLAN) == ("", None)
    assert report.tls_table([report.Result("ours-tls", figures(1.0))], PLAN) == ("", None)
