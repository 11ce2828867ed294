"""A guard process that keeps a local server from outliving the process that started it.

Beam never tears down the models RunInference loads, `claimdiff` leaves through `os._exit`
(skipping atexit and weakref finalizers), and a worker can be SIGKILLed. A server started
directly by the worker would survive all three. So the worker starts this guard instead
(`python -I server_guard.py --grace-s S -- COMMAND...`, stdlib only, so it runs without the
package on sys.path), and the guard starts COMMAND in a session and process group of its own and
ends that whole group (SIGTERM, a grace period, SIGKILL) when:

- its stdin reaches EOF: the worker closed the pipe to stop the server (`GuardedProcess.stop`,
  optionally writing a grace period in seconds first), or the worker died, however abruptly,
  since the kernel closes a dead process's pipes;
- the server exits by itself: the rest of its group (vLLM's engine processes) is ended too;
- the guard gets SIGTERM, SIGINT or SIGHUP.

Pipe EOF is a property of the whole worker process, not of one thread: PR_SET_PDEATHSIG is not
used because it fires when the *thread* that forked exits, and Beam loads models on short-lived
worker threads. (A worker that `os.fork()`s without exec passes its end of the pipe to the
child; the guard then waits for both to die. Subprocesses started through `subprocess` do not
inherit it.) The guard runs in a session of its own, so a signal to the worker's process group
does not take the guard down with the worker.

The guard writes the server's pid (its process group id) as one line to stdout, then nothing
more. Its exit status is the server's: the server's own status, or 128 + N for signal N.

The parent side is `GuardedProcess`; every one not yet stopped is in a module registry, and
`stop_all_servers()` stops them all (the CLI calls it before `os._exit`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import IO

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 30.0
# How long a group gets to die after SIGKILL (processes in uninterruptible sleep take a moment).
KILL_WAIT_S = 10.0
# How often the guard looks at its server and its pipe: the delay before it notices a crash.
POLL_S = 0.2
# Grace for what is left of a group whose leader already exited by itself: orphaned engine
# processes have nobody to serve, and waiting longer only delays the worker's view of the crash.
ORPHAN_GRACE_S = 5.0
# Slack on top of the guard's own deadlines before the parent stops waiting for it.
_GUARD_EXIT_MARGIN_S = 5.0
# Exit status of a guard that could not start its command (as a shell's "command not found").
_CANNOT_START = 127

_GUARD_SCRIPT = os.path.abspath(__file__)

# Called once a guarded server is stopped: (whether it had exited before the stop was asked,
# the guard's exit status).
StopCallback = Callable[[bool, int | None], None]


# -- process groups (used on both sides) --------------------------------------------------------


def group_alive(pgid: int) -> bool:
    """Whether any process (a zombie included) is left in process group `pgid`."""
    return _answers_signal_0(os.killpg, pgid)


def pid_alive(pid: int) -> bool:
    return _answers_signal_0(os.kill, pid)


def _answers_signal_0(send: Callable[[int, int], None], target: int) -> bool:
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def terminate_group(
    pgid: int, grace_s: float, leader: subprocess.Popen[bytes] | None = None
) -> bool:
    """SIGTERM process group `pgid`, wait up to `grace_s`, SIGKILL what is left, wait again.

    `leader` is the group leader when the caller is its parent: it is reaped while waiting, since
    an unreaped zombie still counts as a member of its group. Returns whether the group is gone.
    """
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait_s
        while group_alive(pgid) and time.monotonic() < deadline:
            _pause(leader)
        if not group_alive(pgid):
            return True
    return False


def _pause(leader: subprocess.Popen[bytes] | None) -> None:
    # Waiting on a live leader doubles as the pause; once it is reaped its children may still be
    # exiting, so sleep instead (a wait on a reaped process returns at once and would spin).
    if leader is not None and leader.returncode is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=0.1)
    else:
        time.sleep(0.1)


def describe_status(status: int | None) -> str:
    """A guard's exit status in words (it mirrors the server's, 128 + N for signal N)."""
    if status is None:
        return "exited"
    if status < 0:
        return f"its guard was killed by {_signal_name(-status)}"
    if status > 128 and _signal_name(status - 128) is not None:
        return f"exited with status {status} ({_signal_name(status - 128)})"
    return f"exited with status {status}"


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


# -- the parent side ----------------------------------------------------------------------------


class GuardedProcess:
    """A server started through a guard process: the parent's handle on both.

    `pid` is the server's pid, which is also its process group id (None when the guard ended
    before it could start the server). `stop()` is idempotent and thread-safe: a second caller
    waits for the first to finish.
    """

    def __init__(
        self, guard: subprocess.Popen[bytes], pid: int | None, on_stopped: StopCallback | None
    ) -> None:
        self._guard = guard
        self._pid = pid
        self._on_stopped = on_stopped
        self._lock = threading.Lock()
        self._stop_requested = False
        self._exited_before_stop = False
        self._stopped = threading.Event()

    @classmethod
    def start(
        cls,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        log_file: IO[bytes],
        grace_s: float = DEFAULT_GRACE_S,
        ready_timeout_s: float = 60.0,
        on_stopped: StopCallback | None = None,
    ) -> GuardedProcess:
        """Start `command` under a guard; its output and the guard's go to `log_file`.

        Returns once the guard has reported the server's pid (not once the server is ready).
        """
        guard = subprocess.Popen(
            [sys.executable, "-I", _GUARD_SCRIPT, "--grace-s", repr(float(grace_s)), "--",
             *command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=dict(env),
            start_new_session=True)
        try:
            pid = _read_pid(guard, ready_timeout_s)
        except BaseException:
            # No pid, so no server to stop by group: the guard alone is ours to end.
            guard.kill()
            guard.wait()
            _close_quietly(guard.stdin)
            raise
        handle = cls(guard, pid, on_stopped)
        with _LIVE_LOCK:
            _LIVE.add(handle)
        return handle

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def returncode(self) -> int | None:
        """The guard's exit status (the server's, see the module docstring); None while it runs."""
        return self._guard.poll()

    def wait(self, timeout_s: float) -> int:
        """Wait for the guard to exit (it does once the server's group is gone); its status.
        Raises subprocess.TimeoutExpired."""
        return self._guard.wait(timeout=timeout_s)

    def running(self) -> bool:
        # The guard outlives a crashed server by up to ORPHAN_GRACE_S while it ends the rest of
        # the group: look at the server itself too, so a crash is seen within POLL_S.
        return (self._guard.poll() is None and self._pid is not None
                and pid_alive(self._pid))

    def stop(self, timeout_s: float = DEFAULT_GRACE_S) -> None:
        """Stop the server's group (SIGTERM, `timeout_s`, SIGKILL) and reap the guard."""
        if self._request_stop(timeout_s):
            self._finish_stop(timeout_s)
        else:
            self._stopped.wait(_stop_budget(timeout_s))

    def _request_stop(self, grace_s: float) -> bool:
        """Tell the guard to stop; False if someone already did."""
        with self._lock:
            if self._stop_requested:
                return False
            self._stop_requested = True
        self._exited_before_stop = not self.running()
        stdin = self._guard.stdin
        if stdin is not None:
            # The grace period, then EOF. A guard that is already gone cannot read it: fine.
            with contextlib.suppress(OSError):
                stdin.write(f"{float(grace_s)!r}\n".encode())
                stdin.flush()
            _close_quietly(stdin)
        return True

    def _finish_stop(self, grace_s: float) -> None:
        try:
            try:
                self._guard.wait(timeout=_stop_budget(grace_s))
            except subprocess.TimeoutExpired:
                log.warning("server guard pid %d did not exit; killing it", self._guard.pid)
                self._guard.kill()
                self._guard.wait()
            # The guard exits once the group is gone, unless it was itself killed (by someone
            # else, or just above) or the group survived its SIGKILL: then it is ours to end.
            if self._pid is not None and group_alive(self._pid):
                log.warning("server group %d outlived its guard; ending it", self._pid)
                terminate_group(self._pid, min(grace_s, ORPHAN_GRACE_S))
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            try:
                if self._on_stopped is not None:
                    self._on_stopped(self._exited_before_stop, self._guard.returncode)
            finally:
                self._stopped.set()


def _stop_budget(grace_s: float) -> float:
    return grace_s + KILL_WAIT_S + _GUARD_EXIT_MARGIN_S


def _read_pid(guard: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """The pid line the guard writes once it started the server; None if it ended first."""
    assert guard.stdout is not None
    fd = guard.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout_s
    try:
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"server guard reported no pid within {timeout_s:g} s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 64)
                if not chunk:
                    return None  # EOF: it could not start the command (see the log)
                data += chunk
    finally:
        guard.stdout.close()
    try:
        return int(data.split(b"\n", 1)[0])
    except ValueError:
        raise RuntimeError(f"server guard wrote {data[:80]!r}, not a pid") from None


def _close_quietly(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


# Servers started and not yet stopped. Strong references: a handle leaves only by being stopped,
# so `stop_all_servers` sees every server even when nothing else refers to it any more.
_LIVE: set[GuardedProcess] = set()
_LIVE_LOCK = threading.Lock()


def stop_all_servers(timeout_s: float = DEFAULT_GRACE_S) -> int:
    """Stop every guarded server of this process; returns how many there were. Never raises.

    All are asked to stop at once and then awaited, so several servers shut down in parallel.
    For exits that skip finalizers (`os._exit`), call this first; a server also stops by itself
    when this process dies, but without anyone waiting for it.
    """
    with _LIVE_LOCK:
        live = list(_LIVE)
    asked = []
    for handle in live:
        try:
            asked.append(handle._request_stop(timeout_s))
        except Exception:
            log.exception("could not ask server pid %s to stop", handle.pid)
            asked.append(False)
    for handle, mine in zip(live, asked, strict=True):
        try:
            if mine:
                handle._finish_stop(timeout_s)
            else:
                handle._stopped.wait(_stop_budget(timeout_s))
        except Exception:
            log.exception("could not stop server pid %s", handle.pid)
    return len(live)


# -- the guard itself ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="server_guard", description="run COMMAND; end its process group when stdin closes")
    parser.add_argument("--grace-s", type=float, default=DEFAULT_GRACE_S,
                        help="SIGTERM-to-SIGKILL grace when stdin closes without one")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    stop_signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_signals.append(signum)

    # Handlers, not SIG_IGN: an ignored disposition would be inherited by the server.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        # The server's output goes where ours does (the log); its stdin is not our pipe, so
        # that only the parent holds the pipe's write end.
        server = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
            stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        _say(f"cannot start {command[0]!r}: {exc}")
        return _CANNOT_START
    # If the parent is already gone this fails, and stdin shows EOF next.
    with contextlib.suppress(OSError):
        os.write(sys.stdout.fileno(), f"{server.pid}\n".encode())
    # Stdout (the pipe to the parent) is done with: anything printed later goes to the log.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return _supervise(server, sys.stdin.fileno(), args.grace_s, stop_signals)


def _supervise(
    server: subprocess.Popen[bytes], control: int, grace_s: float, stop_signals: list[int]
) -> int:
    received = b""
    while not stop_signals:
        status = server.poll()
        if status is not None:
            _say(f"server {describe_status(_exit_status(status))}; ending its process group")
            terminate_group(server.pid, min(grace_s, ORPHAN_GRACE_S), server)
            return _exit_status(status)
        readable, _, _ = select.select([control], [], [], POLL_S)
        if readable:
            chunk = os.read(control, 4096)
            if not chunk:
                break  # EOF: stop requested, or the parent died
            received += chunk
    if stop_signals:
        _say(f"got {_signal_name(stop_signals[0])}; stopping the server")
    elif not received:
        _say("parent gone (stdin closed); stopping the server")
    grace = _requested_grace(received, grace_s)
    if not terminate_group(server.pid, grace, server):
        _say(f"process group {server.pid} survived SIGKILL")
    return _exit_status(server.poll())


def _requested_grace(received: bytes, default: float) -> float:
    try:
        grace = float(received.decode().strip())
    except (UnicodeDecodeError, ValueError):
        return default
    # A grace without end would keep a server that ignores SIGTERM alive for good.
    return grace if math.isfinite(grace) and grace >= 0 else default


def _exit_status(status: int | None) -> int:
    if status is None:
        return 1  # not reaped: the group survived SIGKILL
    return 128 - status if status < 0 else status


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"claimdiff server guard: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
