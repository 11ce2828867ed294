"""Run the reward server: uvicorn around `serving.app.build_app`."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from claimdiff.config import ClaimdiffConfig
from claimdiff.io.hosts import is_loopback
from claimdiff.judges.backends.base import JudgeBackend
from claimdiff.judges.backends.factory import build_backend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.serving.rewards import RewardService

log = logging.getLogger(__name__)


class RewardServer:
    """The reward server on a bound socket: `run()` serves until `stop()` (or a signal, when
    run in the main thread)."""

    def __init__(self, config: ClaimdiffConfig, *,
                 backend_factory: Callable[[JudgeSetup], JudgeBackend] = build_backend) -> None:
        import uvicorn

        from claimdiff.serving.app import build_app

        settings = config.serve
        if not is_loopback(settings.host) and settings.token_env is None:
            log.warning("serving on %s without serve.token_env: anyone who can reach the port "
                        "can spend the judge", settings.host)
        self.service = RewardService(config, backend_factory=backend_factory,
                                     image_roots=settings.image_roots)
        app = build_app(self.service, config)
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((settings.host, settings.port))
        # Listening from here on, so a client that connects before uvicorn's loop is up waits
        # in the backlog instead of being refused.
        self._listener.listen(2048)
        self.host, self.port = self._listener.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                     access_log=False,
                                                     timeout_graceful_shutdown=5))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        try:
            self._server.run(sockets=[self._listener])
        finally:
            self._listener.close()

    def stop(self) -> None:
        self._server.should_exit = True


def serve(config: ClaimdiffConfig, *,
          backend_factory: Callable[[JudgeSetup], JudgeBackend] = build_backend,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted. `ready(url)` is called once the socket is bound (with the port
    the system chose where `serve.port` is 0); requests are answered once the judge is
    loaded, and wait until then."""
    server = RewardServer(config, backend_factory=backend_factory)
    if ready is not None:
        ready(server.url)
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the
        # caller: by then every answered request is out, so this is a normal end.
        log.info("reward server stopped")
