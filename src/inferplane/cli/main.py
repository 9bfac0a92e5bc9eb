"""The ``inferplane`` command: one typer app, one module per family of subcommands."""

from __future__ import annotations

from typing import Annotated

import typer

from inferplane.cli import (
    agent,
    apikey,
    apply,
    audit,
    certs,
    contexts,
    describe,
    drain,
    engine,
    events,
    gateway,
    loadgen,
    logs,
    meta,
    model,
    resources,
    schedule,
    serve,
    session,
)

app = typer.Typer(
    name="inferplane",
    help="Serve AI models on a fleet of inference clusters behind one OpenAI-compatible endpoint.",
    no_args_is_help=True,
    add_completion=False,
    # Locals of a crashed command can hold tokens: never print them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            help="Saved context to use instead of the current one (or set $INFERPLANE_CONTEXT).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve AI models on a fleet of inference clusters behind one OpenAI-compatible endpoint.

    Examples:

    inferplane up
    inferplane apply -f deploy.yaml
    inferplane get deployments -A
    """
    # Tests hand in a Session with a fake transport; keep it and only add the context.
    base = ctx.obj if isinstance(ctx.obj, session.Session) else session.Session()
    ctx.obj = session.Session(context=context or base.context, transport=base.transport)


apply.register(app)
resources.register(app)
describe.register(app)
schedule.register(app)
drain.register(app)
events.register(app)
logs.register(app)
meta.register(app)
contexts.register(app)
certs.register(app)
apikey.register(app)
audit.register(app)
serve.register(app)
model.register(app)
engine.register(app)
agent.register(app)
gateway.register(app)
loadgen.register(app)
