"""A stand-in for `python -m vllm.entrypoints.openai.api_server`, for VllmServer's own tests.

Takes the same `--model/--host/--port` arguments, answers `/health` and chat completions, and,
like vLLM, starts a child process (vLLM's engine core) so that tests can check that the whole
process group is stopped. `--fail` exits at once after printing the API key it was given (to
check that error texts redact it); `--ignore-sigterm` forces the SIGKILL escalation;
`--record FILE` writes its argv, child pid and whether it got a key to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--record")
    args = parser.parse_args()

    key = os.environ.get("VLLM_API_KEY")
    if args.fail:
        print(f"fake server failing on purpose; key was {key}", flush=True)
        sys.exit(3)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=False)
    if args.record:
        with open(args.record, "w", encoding="utf-8") as record:
            json.dump({"argv": sys.argv, "child_pid": child.pid, "has_key": key is not None,
                       "model_name": args.served_model_name or args.model}, record)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply({} if self.path == "/health" else {"error": "not found"},
                        200 if self.path == "/health" else 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
                self._reply({"error": "Unauthorized"}, 401)
                return
            self._reply({"choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "{}"}}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 1}}, 200)

        def _reply(self, payload: dict[str, Any], status: int) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    HTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
