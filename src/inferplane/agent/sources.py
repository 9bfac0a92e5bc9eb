"""Where a replica's weights are on this cluster, from its model's source URI.

`file:///PATH` is a folder on the cluster's machines. `file://demo` and `file://minilm` are the
models built into the reference engine (the offline demo Llama, all-MiniLM-L6-v2). Remote
sources (hf://, s3://, gs://, az://, http(s)://, oci://) are not fetched by this agent yet:
stage the weights on the cluster and point the model version at them with file://.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

BUILTIN_MODELS = frozenset({"demo", "minilm"})


class SourceError(Exception):
    """The source cannot be used on this cluster; the message says why and what to do."""


def model_path(source: str, *, builtin_ok: bool) -> str:
    """The path (or built-in name) the engine is given; raises SourceError."""
    parts = urlsplit(source)
    if parts.scheme != "file":
        raise SourceError(
            f"{parts.scheme}:// model sources are not fetched by this agent: stage the weights"
            " on the cluster and give the model version a file:///PATH source"
        )
    if parts.netloc in BUILTIN_MODELS and parts.path in ("", "/"):
        if not builtin_ok:
            raise SourceError(
                f"{source} is built into the reference engine only; this recipe needs a model"
                " folder: file:///PATH"
            )
        return parts.netloc
    if parts.netloc not in ("", "localhost"):
        raise SourceError(
            f"{source}: a file:// source names a folder on the cluster, e.g. file:///models/x"
            f" (built in: {', '.join(f'file://{m}' for m in sorted(BUILTIN_MODELS))})"
        )
    path = Path(unquote(parts.path))
    if not path.exists():
        raise SourceError(f"model folder {path} does not exist on this cluster")
    return str(path)
