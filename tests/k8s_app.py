"""The program a test "container" runs when a test's kubelet (tests/k8s_stack.py) starts a
pod without a Bento: a standard-library HTTP server on the pod's address answering as a
BentoML service does, ``/readyz``, ``/livez`` and a JSON ``POST`` (one label per row sent).

``--mode ready`` (default) answers ``/readyz`` 200; ``unready`` answers it 503 for ever (a
release that never becomes ready); ``crash`` exits 1 at once (a release that crashes)."""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("ready", "unready", "crash"), default="ready")
    parser.add_argument("--name", default="app")
    args = parser.parse_args()
    if args.mode == "crash":
        print("RuntimeError: model store unreachable", file=sys.stderr)
        return 1

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/readyz":
                self._answer(200 if args.mode == "ready" else 503, b"ready")
            elif self.path in ("/livez", "/healthz"):
                self._answer(200, b"live")
            else:
                self._answer(404, b"not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                sent = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._answer(400, b'{"error": "not JSON"}')
                return
            rows = (
                next((v for v in sent.values() if isinstance(v, list)), [])
                if isinstance(sent, dict)
                else []
            )
            self._answer(200, json.dumps([args.name] * len(rows)).encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *values: object) -> None:
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"serving {args.name} on {args.host}:{args.port} ({args.mode})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
