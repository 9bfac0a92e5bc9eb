"""A fake engine for runtime tests: a few lines of Python that behave as told.

    python fake_engine.py --port P [--exit-code C] [--ignore-term] [--print-env NAME ...]

It prints its environment variables named by --print-env, then either exits at once with
--exit-code, or serves GET /health (200) on 127.0.0.1:P until SIGTERM, which it answers by
printing "draining" and exiting 0 (or ignores, with --ignore-term).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

PATH = Path(__file__)


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-code", type=int)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--print-env", nargs="*", default=[])
    args = parser.parse_args()
    for name in args.print_env:
        print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
    if args.exit_code is not None:
        print(f"boom {args.exit_code}", flush=True)
        sys.exit(args.exit_code)
    server = HTTPServer(("127.0.0.1", args.port), Health)

    def on_term(signum: int, frame: object) -> None:
        if args.ignore_term:
            print("ignoring SIGTERM", flush=True)
            return
        print("draining", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
