"""What `inferplane up` shows: the live replica table, the banner, the endpoint and snippets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from inferplane import datadir

DEMO = "demo"
"""Name of the demo Model, Deployment and Service, and the model name clients send."""
NAMESPACE = "default"
KEY_NAME = "demo-client"
"""The ApiKey `up` creates for the demo's clients."""
PLANES = "local-a (region=local-east), local-b (region=local-west)"


def watch_replicas(
    client: Any, console: Console, wanted: int, model_dir: Path, timeout: float
) -> list[dict[str, Any]]:
    """A live table of the demo's replicas until `wanted` are Ready (or the timeout); the
    Ready ones."""
    import time

    from rich.live import Live

    from inferplane.api.wellknown import DEPLOYMENT_LABEL

    deadline = time.monotonic() + timeout
    ready: list[dict[str, Any]] = []
    with Live(console=console, transient=False, refresh_per_second=4) as live:
        while True:
            found = client.list(
                "Replica", namespace=NAMESPACE, label_selector=f"{DEPLOYMENT_LABEL}={DEMO}"
            ).items
            found.sort(key=lambda r: r["metadata"]["name"])
            # A Ready left over from the last run may name an engine that is gone: ask it
            # (its health: every other route wants the replica's engine token).
            ready = [r for r in found if _phase(r) == "Ready" and answers(r["status"].get("url"))]
            live.update(_replica_table(found, wanted, model_dir))
            if len(ready) >= wanted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    console.print()
    return ready


def _replica_table(found: list[dict[str, Any]], wanted: int, model_dir: Path) -> Table:
    table = Table(
        title=f"deployment {DEMO}: {sum(_phase(r) == 'Ready' for r in found)}/{wanted} ready",
        caption=f"model: {model_dir}",
        title_justify="left",
        caption_justify="left",
    )
    for column in ("REPLICA", "CLUSTER", "PHASE", "URL", "RESTARTS", "MESSAGE"):
        table.add_column(column, overflow="fold")
    for replica in found:
        status = replica.get("status") or {}
        phase = _phase(replica)
        style = {"Ready": "green", "Failed": "red", "CrashLoopBackOff": "red"}.get(phase, "")
        table.add_row(
            replica["metadata"]["name"],
            (replica.get("spec") or {}).get("cluster") or "-",
            f"[{style}]{phase}[/{style}]" if style else phase,
            status.get("url") or "-",
            str(status.get("restarts", 0)),
            (status.get("message") or "")[:80],
        )
    return table


def answers(url: str | None) -> bool:
    import httpx

    if not url:
        return False
    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _phase(replica: dict[str, Any]) -> str:
    return str((replica.get("status") or {}).get("phase") or "Pending")


def print_endpoint(gateway: str, key: str, ready: list[dict[str, Any]], key_file: Path) -> None:
    """The gateway's endpoint, the demo API key, and snippets that use them."""
    out = Console(highlight=False, soft_wrap=True)
    behind = ", ".join(
        f"{r['metadata']['name']} on {(r.get('spec') or {}).get('cluster')}" for r in ready
    )
    out.print(f"[bold]endpoint[/bold]  {gateway}/v1   (the gateway; service {DEMO} → {behind})")
    out.print(
        f"[bold]API key[/bold]   {key}   (ApiKey {KEY_NAME} in namespace {NAMESPACE}; "
        f"also in {key_file})"
    )
    out.print(f"[bold]model[/bold]     {DEMO}")
    out.print("")
    out.print("curl:", style="bold")
    out.print(_CURL.format(endpoint=gateway, key=key, model=DEMO), markup=False)
    out.print("Python (pip install openai):", style="bold")
    out.print(_OPENAI.format(endpoint=gateway, key=key, model=DEMO), markup=False)


_CURL = """curl -s {endpoint}/v1/completions \\
  -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "prompt": "The Python language", "max_tokens": 32}}'
"""

_OPENAI = """from openai import OpenAI

client = OpenAI(base_url="{endpoint}/v1", api_key="{key}")
answer = client.completions.create(model="{model}", prompt="The Python language", max_tokens=32)
print(answer.choices[0].text)
"""


def banner(url: str, gateway: str, data_dir: Path) -> Panel:
    token_path = data_dir / "admin-token"
    lines = [
        f"[bold]gateway[/bold]        {gateway}",
        f"[bold]control plane[/bold]  {url}",
        f"[bold]API docs[/bold]       {url}/docs",
        f"[bold]admin token[/bold]    {token_path}",
        f"[bold]store[/bold]          sqlite in {data_dir}",
        "[bold]planes[/bold]         " + PLANES,
        f"[bold]logs[/bold]           {data_dir / 'logs'}, {data_dir / 'agents'}/CLUSTER",
        f"[bold]access log[/bold]     {data_dir / 'logs' / 'gateway-access.log'}",
        "",
        "Try:",
        "  inferplane get replicas",
        "  inferplane get clusters",
        "  inferplane apikey list",
        f"  inferplane logs replica {DEMO}-… -f",
    ]
    if os.environ.get(datadir.ENV) is None and data_dir != datadir.in_home():
        lines.append(f"  export INFERPLANE_DATA_DIR={data_dir}")
    return Panel("\n".join(lines), title="inferplane is up", expand=False)
