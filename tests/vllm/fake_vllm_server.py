"""A stand-in for `python -m vllm.entrypoints.openai.api_server`, for VllmServer's own tests.

Takes the same `--model/--host/--port` arguments, answers `/health` and chat completions, and,
like vLLM, starts a child process (vLLM's engine core) so that tests can check that the whole
process group is stopped. `--fail` exits at once after printing the API key it was given (to
check that error texts redact it); `--echo-key` prints the key at startup and keeps serving (a
log holding the key); `--ignore-sigterm` forces the SIGKILL escalation; `--health-status CODE`
answers `/health` with CODE, and `--health-log FILE` appends the time of each `/health` request
to FILE (to time the polls); `--record FILE` writes its argv, pid, process group, child pid and
whether it got a key to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
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
    parser.add_argument("--echo-key", action="store_true")
    parser.add_argument("--health-status", type=int, default=200)
    parser.add_argument("--health-log")
    args = parser.parse_args()

    key = os.environ.get("VLLM_API_KEY")
    if args.fail:
        print(f"fake server failing on purpose; key was {key}", flush=True)
        sys.exit(3)
    print(f"fake vLLM server starting on port {args.port}", flush=True)
    if args.echo_key:
        print(f"fake server key is {key}", flush=True)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=False)
    if args.record:
        with open(args.record, "w", encoding="utf-8") as record:
            json.dump({"argv": sys.argv, "pid": os.getpid(), "pgid": os.getpgid(0),
                       "child_pid": child.pid, "has_key": key is not None,
                       "model_name": args.served_model_name or args.model}, record)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                self._reply({"error": "not found"}, 404)
                return
            if args.health_log:
                with open(args.health_log, "a", encoding="utf-8") as health_log:
                    health_log.write(f"{time.monotonic()}\n")
            self._reply({}, args.health_status)

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
