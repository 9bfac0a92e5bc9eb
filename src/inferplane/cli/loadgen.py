"""``load``: drive chat completions at a model through the gateway and watch what comes back.

Closed loop: each client sends a request, waits for the whole answer, and sends the next.
A stepped profile (``--steps 2:60,12:120``) changes the number of clients as it goes, for
watching a deployment scale. The numbers are kept in `loadstats`, which has no clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console, RenderableType
from rich.table import Table

from inferplane import clientconfig, datadir
from inferplane.cli import errors, output, session
from inferplane.cli import loadstats as stats

DEFAULT_URL = "http://127.0.0.1:8080"
"""The gateway of `inferplane up` (its --gateway-port)."""
DEFAULT_PROMPT = "Explain in one sentence why the sky is blue."
DEMO_KEY_FILE = "demo-api-key"
"""In the data dir: the demo's key, which `inferplane up` prints and keeps there."""
TICK = 0.1
"""Seconds between looks at the clock: when a step changes and the run stops."""
REFRESH = 0.5
PLAIN_EVERY = 5.0
"""Seconds between progress lines where stderr is not a terminal."""
RATE_WINDOW = 5.0
TTFT_WINDOW = 10.0
ERROR_PAUSE = 0.1
"""A client that got an error waits this long before its next request, so a failing
gateway is not hammered by clients that get their answer at once."""
GIVE_UP_AFTER = 5.0
"""Stop a run in which nothing succeeded for this long (at once for a refused key)."""
REFUSED = frozenset({"401", "403"})
HINTS = {
    "401": "pass the gateway's API key with --api-key KEY (or $INFERPLANE_API_KEY); "
    "`inferplane up` prints the demo's and keeps it in DATA_DIR/demo-api-key",
    "403": "this key may not use the model: pass another with --api-key KEY",
    "404": "is --model right? the gateway lists its models at {url}/v1/models",
    "connect": "is the gateway running at {url}? start one with: inferplane up (or pass --url)",
}


def register(app: typer.Typer) -> None:
    app.command("load", rich_help_panel="Run")(load)


def load(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Model name the gateway serves (the demo's: demo).",
            show_default=False,
        ),
    ],
    url: Annotated[
        str, typer.Option(help="Base URL of the gateway (that of inferplane up by default).")
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="INFERPLANE_API_KEY",
            help="API key to send as Bearer token. Default: for a gateway on this machine the "
            "demo's (DATA_DIR/demo-api-key, made by inferplane up), else the current context's "
            "token.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Clients sending at once.")
    ] = 4,
    duration: Annotated[
        float, typer.Option("--duration", "-d", min=0.1, help="Seconds to run, with --concurrency.")
    ] = 60.0,
    steps: Annotated[
        str | None,
        typer.Option(
            help="A stepped profile instead of --concurrency/--duration: CLIENTS:SECONDS,... "
            "(2:60,12:120 is 2 clients for 60 s, then 12 for 120 s).",
            show_default=False,
        ),
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="max_tokens of each request.")] = 32,
    prompt: Annotated[str, typer.Option(help="The user message of each request.")] = DEFAULT_PROMPT,
    stream: Annotated[
        bool, typer.Option(help="Stream the answers (and measure time to first token).")
    ] = True,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the per-second series (clients, completed, errors, TTFT p50/p90) "
            "and the per-step summary to this file as JSON.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Send chat completions to a model through the gateway, from clients that each send one
    request after another, and show the progress live: clients, requests done, errors by
    status, requests per second over the last 5 s and time to first token (TTFT) p50/p90
    over the last 10 s. At the end (or on Ctrl-C) a table sums up each step: requests,
    errors, requests per second, TTFT and latency p50/p90.

    A client that gets an error waits 0.1 s before its next request. A run in which nothing
    succeeds stops early (at once when the key is refused) and exits 1. Watch a deployment
    scale under the load with `inferplane get deployments -w` in another terminal.

    Examples:

    inferplane load -m demo
    inferplane load -m demo -c 8 -d 30 --no-stream
    inferplane load -m demo --steps 2:30,12:60,2:30 --json load.json
    inferplane load -m llama --url https://gateway.example.com --api-key $KEY
    """
    with errors.reported():
        plan = _plan(ctx, steps, concurrency, duration)
        key = api_key or _default_key(url, session.of(ctx).context)
    request = _Request.chat(
        url, key, model=model, prompt=prompt, max_tokens=max_tokens, stream=stream
    )
    recorder = _Recorder(plan)
    console = Console(stderr=True, highlight=False)
    try:
        asyncio.run(_drive(recorder, request, _Progress(console, recorder, request)))
    except KeyboardInterrupt:
        recorder.finish()
        console.print(f"interrupted after {recorder.elapsed:.1f}s")
    _report(recorder, request, json_path)
    if recorder.ok == 0 and recorder.outcomes:
        raise typer.Exit(errors.EXIT_FAILURE)


def _plan(
    ctx: typer.Context, steps: str | None, concurrency: int, duration: float
) -> list[stats.Step]:
    if steps is None:
        return [stats.Step(concurrency, duration)]
    given = [f"--{p}" for p in ("concurrency", "duration") if _given(ctx, p)]
    if given:
        raise errors.UsageError(
            f"--steps sets the clients and the time: drop {' and '.join(given)}"
        )
    try:
        return stats.parse_steps(steps)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--steps") from None


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _default_key(url: str, context: str | None) -> str | None:
    """The demo's key for a gateway on this machine, else the chosen context's token."""
    if (urlsplit(url).hostname or "") in clientconfig.LOOPBACK_HOSTS:
        try:
            kept = (datadir.default() / DEMO_KEY_FILE).read_text().strip()
        except OSError:
            kept = ""
        if kept:
            return kept
    config = clientconfig.load()
    name = context or os.environ.get("INFERPLANE_CONTEXT") or config.current_context
    return config.find(name).token if name else None


@dataclass(frozen=True)
class _Request:
    """The one request every client sends, over and over."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    @classmethod
    def chat(
        cls, base: str, key: str | None, *, model: str, prompt: str, max_tokens: int, stream: bool
    ) -> _Request:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": stream,
        }
        return cls(f"{base.rstrip('/')}/v1/chat/completions", headers, body)

    @property
    def base(self) -> str:
        return self.url.removesuffix("/v1/chat/completions")


@dataclass
class _Recorder:
    """What the run has seen so far; the workers add to it, the display reads it."""

    plan: list[stats.Step]
    clock: Callable[[], float] = time.monotonic
    outcomes: list[stats.Outcome] = field(default_factory=list)
    ok: int = 0
    clients: int = 0
    first_error: str | None = None
    """The first error's detail: its status and body, or what broke."""
    started: float = 0.0
    stopped: float | None = None

    def start(self) -> None:
        self.started = self.clock()

    def now(self) -> float:
        return (self.stopped if self.stopped is not None else self.clock()) - self.started

    @property
    def elapsed(self) -> float:
        return min(self.now(), stats.total(self.plan))

    def finish(self) -> None:
        if self.stopped is None:
            self.stopped = self.clock()

    def add(self, outcome: stats.Outcome, detail: str | None = None) -> None:
        self.outcomes.append(outcome)
        if outcome.error is None:
            self.ok += 1
        elif self.first_error is None:
            self.first_error = detail or outcome.error

    def hopeless(self) -> bool:
        """Nothing succeeded, and the key was refused or GIVE_UP_AFTER went by."""
        if self.ok or not self.outcomes:
            return False
        refused = any(o.error in REFUSED for o in self.outcomes)
        return refused or self.now() >= GIVE_UP_AFTER


async def _drive(recorder: _Recorder, request: _Request, progress: _Progress) -> None:
    """Run the plan: every TICK, start or retire clients to match the step, until its end."""
    most = max(s.clients for s in recorder.plan)
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    timeout = httpx.Timeout(60.0, connect=5.0)
    workers: dict[int, asyncio.Task[None]] = {}
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        recorder.start()
        try:
            while (now := recorder.now()) < stats.total(recorder.plan):
                recorder.clients = recorder.plan[stats.step_at(recorder.plan, now)].clients
                for index in range(recorder.clients):
                    if index not in workers or workers[index].done():
                        workers[index] = asyncio.create_task(
                            _client(index, http, request, recorder)
                        )
                progress.tick()
                if recorder.hopeless():
                    progress.note("stopping: no request succeeded")
                    break
                await asyncio.sleep(min(TICK, stats.total(recorder.plan) - now))
        finally:
            recorder.finish()
            for task in workers.values():
                task.cancel()
            await asyncio.gather(*workers.values(), return_exceptions=True)
            progress.close()


async def _client(
    index: int, http: httpx.AsyncClient, request: _Request, recorder: _Recorder
) -> None:
    """One closed-loop client, while the step has room for it."""
    while index < recorder.clients:
        outcome, detail = await _send(http, request, recorder)
        recorder.add(outcome, detail)
        if outcome.error is not None:
            await asyncio.sleep(ERROR_PAUSE)


class _Answer(NamedTuple):
    ttft: float | None = None
    error: str | None = None
    detail: str | None = None
    """For an error: what to tell the user about it."""


async def _send(
    http: httpx.AsyncClient, request: _Request, recorder: _Recorder
) -> tuple[stats.Outcome, str | None]:
    """One request: its outcome, and for an error what to tell the user about it."""
    start = recorder.now()
    try:
        answer = await _exchange(http, request, lambda: recorder.now() - start)
    except httpx.ConnectError as exc:
        answer = _Answer(error="connect", detail=f"cannot connect to {request.base}: {exc}")
    except httpx.TimeoutException:
        answer = _Answer(error="timeout", detail=f"{request.url} timed out")
    except httpx.HTTPError as exc:
        answer = _Answer(error="broken", detail=f"{request.url}: {exc!r}")
    outcome = stats.Outcome(start, recorder.now(), ttft=answer.ttft, error=answer.error)
    return outcome, answer.detail


async def _exchange(
    http: httpx.AsyncClient, request: _Request, since: Callable[[], float]
) -> _Answer:
    """Send the request and read the whole answer, noting when the first SSE event came."""
    ttft: float | None = None
    async with http.stream("POST", request.url, json=request.body, headers=request.headers) as r:
        if r.status_code >= 400:
            body = (await r.aread()).decode(errors="replace").strip()
            detail = f"HTTP {r.status_code} from {request.url}: {body[:300]}"
            return _Answer(error=str(r.status_code), detail=detail)
        async for line in r.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                break
            ttft = since() if ttft is None else ttft
            if '"error"' in data and "error" in _event(data):
                return _Answer(error="stream", detail=f"error event: {data[:300]}")
    return _Answer(ttft=ttft)


def _event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


class _Progress:
    """A live panel on a terminal; elsewhere (a pipe, a test) a plain line every few seconds."""

    def __init__(self, console: Console, recorder: _Recorder, request: _Request) -> None:
        from rich.live import Live

        self.console, self.recorder, self.request = console, recorder, request
        self.live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        self.shown_error = False
        self.last = -PLAIN_EVERY if self.live is None else -REFRESH

    def tick(self) -> None:
        if self.recorder.first_error and not self.shown_error:
            self.shown_error = True
            self._first_error(self.recorder.first_error)
        now = self.recorder.now()
        if self.live is not None and now - self.last >= REFRESH:
            self.last = now
            if not self.live.is_started:
                self.live.start()
            self.live.update(self._panel(), refresh=True)
        elif self.live is None and now - self.last >= PLAIN_EVERY:
            self.last = now
            self.console.print(self._line(), soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.recorder.first_error and not self.shown_error:
            self.shown_error = True
            self._first_error(self.recorder.first_error)
        if self.live is not None and self.live.is_started:
            self.live.update(self._panel(), refresh=True)
            self.live.stop()

    def _first_error(self, detail: str) -> None:
        self.note(f"first error: {detail}")
        kind = next((o.error for o in self.recorder.outcomes if o.error), None)
        hint = HINTS.get(kind or "")
        if hint:
            self.note("  " + hint.format(url=self.request.base))

    def _numbers(self) -> tuple[str, str, str, str]:
        recorder = self.recorder
        recent = stats.recent(
            recorder.outcomes, recorder.now(), rate_window=RATE_WINDOW, ttft_window=TTFT_WINDOW
        )
        elapsed = f"{recorder.elapsed:.0f}s/{stats.total(recorder.plan):.0f}s"
        done = f"{recorder.ok} done, errors {_errors(stats.errors_by_kind(recorder.outcomes))}"
        ttft = f"p50 {_ms(recent.ttft_p50)} p90 {_ms(recent.ttft_p90)}"
        return elapsed, done, f"{recent.rate:.1f}", ttft

    def _line(self) -> str:
        elapsed, done, rate, ttft = self._numbers()
        return f"{elapsed}  clients {self.recorder.clients}  {done}  {rate} req/s  ttft {ttft}"

    def _panel(self) -> RenderableType:
        elapsed, done, rate, ttft = self._numbers()
        step = stats.step_at(self.recorder.plan, self.recorder.now()) + 1
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("load", f"{self.request.body['model']} → {self.request.url}")
        steps = f"   (step {step}/{len(self.recorder.plan)})" if len(self.recorder.plan) > 1 else ""
        grid.add_row("elapsed", elapsed + steps)
        grid.add_row("clients", str(self.recorder.clients))
        grid.add_row("requests", done)
        grid.add_row("req/s", f"{rate}   (last {RATE_WINDOW:.0f} s)")
        grid.add_row("TTFT", f"{ttft}   (last {TTFT_WINDOW:.0f} s)")
        return grid


def _report(recorder: _Recorder, request: _Request, json_path: Path | None) -> None:
    """The summary table on stdout, and the --json file."""
    elapsed = recorder.elapsed
    summaries = stats.per_step(recorder.plan, recorder.outcomes, elapsed=elapsed)
    whole = stats.overall(recorder.outcomes, elapsed=elapsed)
    rows = [_row(str(i + 1), s) for i, s in enumerate(summaries)]
    if len(summaries) > 1:
        rows.append(_row("all", whole, clients="-"))
    output.Table(
        [
            "STEP",
            "CLIENTS",
            "SECONDS",
            "REQUESTS",
            "ERRORS",
            "REQ/S",
            "TTFT-P50",
            "TTFT-P90",
            "LATENCY-P50",
            "LATENCY-P90",
        ]
    ).print(rows)
    typer.echo(
        f"{whole.requests} requests in {elapsed:.1f}s ({whole.rate:.1f}/s); "
        f"errors: {_errors(whole.errors)}"
    )
    if json_path is not None:
        document = {
            "url": request.url,
            "model": request.body["model"],
            "stream": request.body["stream"],
            "steps": [stats.as_json(s) for s in summaries],
            "total": stats.as_json(whole),
            "series": stats.series(recorder.plan, recorder.outcomes, elapsed=elapsed),
        }
        with errors.reported():
            json_path.write_text(json.dumps(document, indent=2) + "\n")
        typer.echo(f"series written to {json_path}")


def _row(name: str, summary: stats.Summary, *, clients: str | None = None) -> list[str]:
    return [
        name,
        clients or str(summary.clients),
        f"{summary.seconds:.1f}",
        str(summary.requests),
        _errors(summary.errors),
        f"{summary.rate:.1f}",
        _ms(summary.ttft_p50),
        _ms(summary.ttft_p90),
        _ms(summary.latency_p50),
        _ms(summary.latency_p90),
    ]


def _errors(by_kind: dict[str, int]) -> str:
    """`0`, or the count of each kind: `401:3,connect:2`."""
    if not by_kind:
        return "0"
    return ",".join(f"{kind}:{count}" for kind, count in sorted(by_kind.items()))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"
