"""A scriptable OpenAI-shaped upstream for gateway tests (a real process on a loopback port).

    python -m tests.support.upstream_stub --port 9001 --name a [--mode ok|fail503|close|break]
        [--chunks 8] [--break-after 3] [--delay 0.0] [--require-key KEY]

ok: answers chat/completions (streamed or not) and embeddings; fail503: 503 to every
inference request; close: drops the connection without answering; break: streams
`--break-after` chunks, then drops the connection. GET /stats returns what it has seen
(requests, the last body, the last Authorization header, disconnects). With --require-key,
an inference request without `Authorization: Bearer KEY` gets the gateway's 401.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


def make_app(
    name: str, mode: str, chunks: int, break_after: int, delay: float, key: str | None = None
) -> FastAPI:
    app = FastAPI()
    stats: dict[str, Any] = {
        "requests": 0,
        "last_body": None,
        "last_auth": None,
        "disconnects": 0,
        "name": name,
    }

    @app.get("/stats")
    async def get_stats() -> dict[str, Any]:
        return stats

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": f"served-{name}", "object": "model"}]}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        await _seen(request)
        if mode != "ok":
            return await _fail(request)
        data = [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": f"served-{name}",
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )

    @app.post("/v1/chat/completions")
    @app.post("/v1/completions")
    async def generate(request: Request) -> Response:
        body = await _seen(request)
        chat = request.url.path.endswith("chat/completions")
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            error = {"message": "invalid API key", "type": "authentication_error"}
            return JSONResponse({"error": {**error, "code": "invalid_api_key"}}, status_code=401)
        if mode in ("fail503", "close"):
            return await _fail(request)
        if delay:
            await asyncio.sleep(delay)
        if body.get("stream"):
            return StreamingResponse(_stream(request, body, chat), media_type="text/event-stream")
        return JSONResponse(_whole(body, chat))

    async def _seen(request: Request) -> dict[str, Any]:
        body = await request.json()
        stats["requests"] += 1
        stats["last_body"] = body
        stats["last_auth"] = request.headers.get("authorization")
        return body

    async def _fail(request: Request) -> Response:
        if mode == "close":
            raise ConnectionAbortedError  # uvicorn drops the connection
        return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)

    def _whole(body: dict[str, Any], chat: bool) -> dict[str, Any]:
        text = f"answer from {name}"
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop"}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return {
            "id": f"x-{name}",
            "object": "chat.completion" if chat else "text_completion",
            "created": 1,
            "model": body.get("model"),
            "choices": [choice],
            "usage": usage,
        }

    async def _stream(request: Request, body: dict[str, Any], chat: bool):  # type: ignore[no-untyped-def]
        count = min(chunks, body.get("max_tokens") or chunks)
        try:
            for i in range(count):
                if mode == "break" and i == break_after:
                    raise ConnectionAbortedError
                piece = f"t{i} "
                if chat:
                    choice: dict[str, Any] = {
                        "index": 0,
                        "delta": {"content": piece},
                        "finish_reason": None,
                    }
                else:
                    choice = {"index": 0, "text": piece, "finish_reason": None}
                if body.get("return_token_ids"):
                    choice["token_ids"] = [100 + i]
                    if i == 0:
                        choice["prompt_token_ids"] = [1, 2, 3]
                if i == count - 1:
                    choice["finish_reason"] = "stop"
                kind = "chat.completion.chunk" if chat else "text_completion"
                event = {
                    "id": f"x-{name}",
                    "object": kind,
                    "created": 1,
                    "model": body.get("model"),
                    "choices": [choice],
                }
                yield f"data: {json.dumps(event)}\n\n"
                await asyncio.sleep(0.01)
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": 10,
                    "completion_tokens": count,
                    "total_tokens": 10 + count,
                }
                event = {
                    "id": f"x-{name}",
                    "object": "x",
                    "created": 1,
                    "model": "m",
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(event)}\n\n"
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            stats["disconnects"] += 1
            raise

    return app


async def _closer(port: int) -> None:
    """Answers GETs (so tests can see it is up) and drops every POST unanswered."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        if line.startswith(b"GET"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="a")
    parser.add_argument("--mode", default="ok", choices=["ok", "fail503", "close", "break"])
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--break-after", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--require-key", help="answer 401 to a request without this key")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (and --tls-key)")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    if args.mode == "close":
        asyncio.run(_closer(args.port))
        return
    app = make_app(
        args.name, args.mode, args.chunks, args.break_after, args.delay, args.require_key
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )


if __name__ == "__main__":
    main()
