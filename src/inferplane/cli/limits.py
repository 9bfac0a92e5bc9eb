"""Rate limits, budgets and usage in words, as ApiKey and Quota tables and messages show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inferplane.cli import output
from inferplane.policy import quotas

Object = dict[str, Any]
UNLIMITED = "unlimited"


def _dig(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def count(number: int) -> str:
    """950, 12.3k, 1M: three significant digits are enough to read a table."""
    for size, unit in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if number >= size:
            scaled = number / size
            return f"{scaled:.3g}{unit}" if scaled < 999.5 else f"{scaled:.0f}{unit}"
    return str(number)


def budget_text(budget: Object | None) -> str:
    """$5.00/day, 1M tokens/month, $20.00 or 5M tokens total; unlimited without a budget."""
    if not budget:
        return UNLIMITED
    caps = [quotas.money(budget["cost"])] if budget.get("cost") else []
    caps += [f"{count(budget['tokens'])} tokens"] if budget.get("tokens") else []
    period = budget.get("period") or "day"
    return " or ".join(caps) + (" total" if period == "total" else f"/{period}")


def rates_text(rate_limits: Object | None) -> str:
    """60 requests/min, 10k tokens/min; unlimited when neither is set."""
    rpm, tpm = _dig(rate_limits, "requestsPerMinute"), _dig(rate_limits, "tokensPerMinute")
    parts = [f"{count(rpm)} requests/min"] if rpm else []
    parts += [f"{count(tpm)} tokens/min"] if tpm else []
    return ", ".join(parts) or UNLIMITED


def budget_cell(obj: Object, now: datetime) -> str:
    return budget_text(_dig(obj, "spec.budget"))


def used_cell(obj: Object, now: datetime) -> str:
    """Cost and tokens used in the budget period holding now (nothing, once a new one began)."""
    tokens, cost = _dig(obj, "status.tokensUsed") or 0, _dig(obj, "status.costUsed") or 0.0
    start = output.parse_time(_dig(obj, "status.periodStart"))
    period = _dig(obj, "spec.budget.period") or "day"
    if start is not None and start.timestamp() < quotas.period_bounds(now.timestamp(), period)[0]:
        tokens, cost = 0, 0.0
    return f"{quotas.money(cost)}, {count(tokens)} tokens"


def last_used_cell(obj: Object, now: datetime) -> str:
    used = _dig(obj, "status.lastUsedTime")
    return output.age(used, now) if used else "never"
