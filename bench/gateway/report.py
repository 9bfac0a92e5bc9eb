"""The table (and JSON) of what each target adds to the direct path, with ours/peer ratios.

Latency columns are milliseconds: absolute for `direct`, added over direct for every gateway
(their percentile minus direct's). Max RPS and CPU are each target's own figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench.gateway.phases import Figures, Latency, Plan

DIRECT, OURS, OURS_TLS = "direct", "ours", "ours-tls"
"""ours-tls: ours serving HTTPS (gateway_overhead.py --tls)."""


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    latency: bool = True
    """Added over direct for a gateway (else the target's own figure)."""
    decimals: int = 2
    compared: bool = True
    """Given as ours ÷ peer in the ratio rows."""


COLUMNS = [
    Column("low_p50", "p50@{low}"),
    Column("low_p99", "p99@{low}"),
    Column("high_p50", "p50@{high}"),
    Column("high_p99", "p99@{high}"),
    Column("max_rps", "max RPS", latency=False, decimals=0),
    Column("cpu_us_request", "µs/req", latency=False, decimals=1),
    Column("cpu_us_chunk", "µs/chunk", latency=False, decimals=1),
    Column("itl_p50", "ITL p50"),
    Column("itl_p99", "ITL p99"),
    Column("big_p50", "{kib}K p50"),
    Column("big_p99", "{kib}K p99"),
    Column("other_cores", "other", latency=False, compared=False),
]
WIDTH, NAME_WIDTH = 10, 14


@dataclass(frozen=True)
class Result:
    """One target: what it measured, or why it could not."""

    target: str
    figures: Figures | None = None
    unavailable: str = ""


def own_values(figures: Figures) -> dict[str, float | None]:
    """The target's own figures by column key."""
    values: dict[str, float | None] = {
        "max_rps": figures.max_rps,
        "cpu_us_request": figures.cpu_us_request,
        "cpu_us_chunk": figures.cpu_us_event,
        "other_cores": figures.other_cores,
    }
    runs = {"low": figures.low, "high": figures.high, "itl": figures.gaps, "big": figures.big}
    for prefix, latency in runs.items():
        values[f"{prefix}_p50"] = latency.p50 if latency else None
        values[f"{prefix}_p99"] = latency.p99 if latency else None
    return values


def shown_values(result: Result, direct: dict[str, float | None]) -> dict[str, float | None]:
    """Direct's own figures; a gateway's latencies less direct's."""
    assert result.figures is not None
    own = own_values(result.figures)
    if result.target == DIRECT:
        return own
    return {
        c.key: minus(own[c.key], direct.get(c.key)) if c.latency else own[c.key] for c in COLUMNS
    }


def minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def ratio(ours: float | None, peer: float | None) -> float | None:
    """ours / peer where both are positive (an added latency at or below zero is noise)."""
    if ours is None or peer is None or math.isnan(ours) or math.isnan(peer):
        return None
    return ours / peer if ours > 0 and peer > 0 else None


def cell(value: float | None, *, decimals: int = 2, signed: bool = False, suffix: str = "") -> str:
    """A figure for the table: fewer decimals from 100 up, `-` for none."""
    if value is None or math.isnan(value):
        return "-"
    places = 0 if abs(value) >= 100 else decimals
    return f"{value:{'+' if signed else ''}.{places}f}{suffix}"


def line(name: str, values: dict[str, float | None], *, gateway: bool) -> str:
    """One target's row: a gateway's added latencies signed."""
    cells = (
        cell(values[c.key], decimals=c.decimals, signed=gateway and c.latency) for c in COLUMNS
    )
    return f"{name:<{NAME_WIDTH}}" + "".join(f"{t:>{WIDTH}}" for t in cells)


def table(results: list[Result], *, low: int, high: int, kib: int) -> tuple[str, dict[str, object]]:
    """The printed table and the same figures as JSON-ready data."""
    titles = [c.title.format(low=low, high=high, kib=kib) for c in COLUMNS]
    lines = [f"{'target':<{NAME_WIDTH}}" + "".join(f"{t:>{WIDTH}}" for t in titles)]
    direct = next((own_values(r.figures) for r in results if r.target == DIRECT and r.figures), {})
    shown = {r.target: shown_values(r, direct) for r in results if r.figures}
    data: dict[str, object] = {}
    for result in results:
        name = result.target + (" (abs)" if result.target == DIRECT else "")
        if result.unavailable:
            lines.append(f"{name:<{NAME_WIDTH}}unavailable: {result.unavailable}")
            data[result.target] = {"unavailable": result.unavailable}
            continue
        values = shown[result.target]
        lines.append(line(name, values, gateway=result.target != DIRECT))
        data[result.target] = {"shown": values, "figures": asdict(result.figures or Figures())}
    lines += ratio_lines(shown, data)
    return "\n".join(lines), data


def ratio_lines(shown: dict[str, dict[str, float | None]], data: dict[str, object]) -> list[str]:
    """ours ÷ peer per column (below 1 is better for ours, but for max RPS)."""
    if OURS not in shown:
        return []
    lines = ["ours ÷ peer (below 1 is better for ours, but for max RPS; -: a figure <= 0)"]
    for target, values in shown.items():
        if target in (DIRECT, OURS, OURS_TLS):  # ours-tls: in tls_table, beside ours
            continue
        compared = [c for c in COLUMNS if c.compared]
        ratios = {c.key: ratio(shown[OURS][c.key], values[c.key]) for c in compared}
        cells = [cell(ratios[c.key], suffix="x") for c in compared]
        lines.append(f"{'÷ ' + target:<{NAME_WIDTH}}" + "".join(f"{t:>{WIDTH}}" for t in cells))
        entry = data[target]
        assert isinstance(entry, dict)
        entry["ours_over_peer"] = ratios
    return lines


def failures(results: list[Result]) -> list[str]:
    """One line per run that had failed requests, with the distinct errors."""
    lines = []
    for result in results:
        figures = result.figures
        if figures is None:
            continue
        runs = {
            "low": figures.low,
            "high": figures.high,
            "big": figures.big,
            "streams": figures.gaps,
        }
        for run, latency in runs.items():
            if latency and latency.failed:
                why = "; ".join(latency.errors[:3])
                lines.append(f"{result.target}: {latency.failed} failed in the {run} run ({why})")
    return lines


@dataclass(frozen=True)
class TlsRow:
    """One figure of ours on plain HTTP and over TLS, at the same load."""

    label: str
    plain: float | None
    tls: float | None
    higher_is_better: bool

    @property
    def cost(self) -> float | None:
        """How much worse TLS is, in percent (below zero: better, i.e. noise)."""
        if not self.plain or self.tls is None or math.isnan(self.plain) or math.isnan(self.tls):
            return None
        share = self.tls / self.plain
        return 100 * ((1 - share) if self.higher_is_better else (share - 1))


def tls_rows(plain: Figures, tls: Figures, plan: Plan) -> list[TlsRow]:
    """Requests/s of each closed loop, max RPS, CPU per request, then latencies (absolute)."""

    def rps(latency: Latency | None) -> float | None:
        return latency.ok / plan.duration if latency else None

    def ms(latency: Latency | None, which: str) -> float | None:
        return getattr(latency, which) if latency else None

    kib = f"{plan.big} x {plan.big_kib} KiB"
    rows = [
        TlsRow(f"req/s, {plan.low} in flight", rps(plain.low), rps(tls.low), True),
        TlsRow(f"req/s, {plan.high} in flight", rps(plain.high), rps(tls.high), True),
        TlsRow(f"req/s, {kib}", rps(plain.big), rps(tls.big), True),
        TlsRow(f"max RPS (p99 <= {plan.slo_ms:g} ms)", plain.max_rps, tls.max_rps, True),
        TlsRow(f"µs/req at {plan.high}", plain.cpu_us_request, tls.cpu_us_request, False),
        TlsRow(f"µs/chunk at {plan.streams}", plain.cpu_us_event, tls.cpu_us_event, False),
    ]
    for name, run_plain, run_tls in (
        (f"@{plan.low}", plain.low, tls.low),
        (f"@{plan.high}", plain.high, tls.high),
        (f"@{kib}", plain.big, tls.big),
    ):
        for which in ("p50", "p99"):
            label = f"{which} ms {name}"
            rows.append(TlsRow(label, ms(run_plain, which), ms(run_tls, which), False))
    return rows


def tls_table(results: list[Result], plan: Plan) -> tuple[str, dict[str, object] | None]:
    """Ours plain beside ours over TLS, and what TLS costs; ('', None) unless both ran."""
    found = {r.target: r.figures for r in results if r.figures}
    plain, tls = found.get(OURS), found.get(OURS_TLS)
    if plain is None or tls is None:
        return "", None
    rows = tls_rows(plain, tls, plan)
    width = max(len(row.label) for row in rows) + 2
    head = (
        f"{'ours: plain vs TLS':<{width}}{'plain':>{WIDTH}}{'TLS':>{WIDTH}}{'TLS÷plain':>{WIDTH}}"
    )
    lines = [head + f"{'TLS costs':>{WIDTH}}"]
    for row in rows:
        share = ratio(row.tls, row.plain)
        cost = cell(row.cost, decimals=1, signed=True, suffix=" %")
        cells = [cell(row.plain), cell(row.tls), cell(share, suffix="x"), cost]
        lines.append(f"{row.label:<{width}}" + "".join(f"{c:>{WIDTH}}" for c in cells))
    lines.append("TLS costs: how much fewer requests/s, or more CPU or ms, over TLS")
    data = {row.label: {"plain": row.plain, "tls": row.tls, "cost_pct": row.cost} for row in rows}
    return "\n".join(lines), dict(data)
