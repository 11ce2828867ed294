"""The server guard: no local server outlives the process that started it, however that ends.

The server is fake_vllm_server.py (a stand-in for vLLM's API server that starts an "engine"
child, like vLLM). The parents that die are small Python subprocesses, so the test process
itself is never at risk. No vLLM needed: these run in the main environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from claimdiff.serving.server_guard import (
    _requested_grace,
    describe_status,
    group_alive,
    pid_alive,
)

FAKE_SERVER = str(Path(__file__).with_name("fake_vllm_server.py"))
REPO = Path(__file__).parents[2]


def gone_within(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def run_parent(body: str, record: Path) -> subprocess.CompletedProcess[str]:
    """Run `body` in a fresh interpreter that has `server`, a not yet started VllmServer."""
    # The log goes next to the record: a parent that dies abruptly cannot delete a temporary one.
    script = textwrap.dedent(f"""
        import json, os, signal, sys, threading, time
        from claimdiff.serving.vllm_server import VllmServer, stop_all_servers
        server = VllmServer("m", command=[sys.executable, {FAKE_SERVER!r}],
                            args=["--record", {str(record)!r}], startup_timeout_s=30,
                            log_path={str(record.with_suffix(".log"))!r})
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def kill_leftovers(record: Path) -> None:
    if record.exists():
        info = json.loads(record.read_text())
        for pid in (info["child_pid"], info["pid"]):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_server_group_ends_when_its_parent_is_killed(tmp_path: Path, how: str) -> None:
    """A worker killed outright runs no finalizer: the guard alone must end the server."""
    record = tmp_path / "record.json"
    # Started on a thread that ends at once, as Beam loads models on worker threads: the server
    # must outlive that thread (PR_SET_PDEATHSIG would have killed it here) but not the process.
    done = run_parent(f"""
        starter = threading.Thread(target=server.start)
        starter.start()
        starter.join()
        time.sleep(0.5)
        print(json.dumps({{"pid": server.pid, "running": server.running()}}), flush=True)
        os.kill(os.getpid(), signal.{how})
        time.sleep(30)
    """, record)
    try:
        assert done.returncode == -getattr(signal, how), done.stderr
        state = json.loads(done.stdout)
        assert state["running"] is True  # it survived the thread that started it
        info = json.loads(record.read_text())
        assert info["pid"] == state["pid"]
        assert gone_within([info["pid"], info["child_pid"]], 5.0), "server outlived its parent"
        assert not group_alive(info["pgid"])
    finally:
        kill_leftovers(record)


def test_stop_all_servers_before_os_exit(tmp_path: Path) -> None:
    """The CLI's way out: stop_all_servers(), then os._exit (which skips every finalizer)."""
    record = tmp_path / "record.json"
    done = run_parent("""
        server.start()
        print(stop_all_servers(), flush=True)
        os._exit(0)
    """, record)
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["1"]
        info = json.loads(record.read_text())
        # Gone by the time the parent exited: stopped and waited for, not left to the guard.
        assert not pid_alive(info["pid"])
        assert not pid_alive(info["child_pid"])
    finally:
        kill_leftovers(record)


def run_isolated(body: str, tmp_path: Path) -> dict[str, object]:
    """Run `body` in a fresh interpreter and return the JSON object it prints last.

    `stop_all_servers` stops every server of its process, and the test session holds servers of
    its own (the session's real `vllm serve`): called here, it would stop them too and count
    them. A fresh interpreter has exactly the servers its body starts.
    """
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from claimdiff.serving.server_guard import group_alive
        from claimdiff.serving.vllm_server import VllmServer, stop_all_servers
        FAKE_SERVER = {FAKE_SERVER!r}
        tmp = Path({str(tmp_path)!r})
    """) + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_stop_all_servers_stops_every_started_server(tmp_path: Path) -> None:
    result = run_isolated("""
        servers = [VllmServer("m", command=[sys.executable, FAKE_SERVER], startup_timeout_s=30,
                              args=["--record", str(tmp / f"{i}.json")]) for i in range(2)]
        try:
            for server in servers:
                server.start()
            running = all(server.running() for server in servers)
            stopped = stop_all_servers(timeout_s=5.0)
            print(json.dumps({
                "running": running,
                "stopped": stopped,
                "groups_alive": [group_alive(server.pid) for server in servers],
                "still_running": [server.running() for server in servers],
                "logs_left": [server.log_path.exists() for server in servers],
                "stopped_again": stop_all_servers(),
            }))
        finally:
            for server in servers:
                server.stop()  # still fine after stop_all_servers
    """, tmp_path)
    assert result == {"running": True, "stopped": 2, "groups_alive": [False, False],
                      "still_running": [False, False], "logs_left": [False, False],
                      "stopped_again": 0}  # stopped servers leave the registry
    for i in range(2):
        info = json.loads((tmp_path / f"{i}.json").read_text())
        assert not pid_alive(info["pid"])
        assert not pid_alive(info["child_pid"])


def test_server_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    try:
        result = run_isolated("""
            server = VllmServer("m", command=[sys.executable, FAKE_SERVER], startup_timeout_s=30,
                                args=["--ignore-sigterm", "--record", str(tmp / "record.json")])
            server.start()
            started = time.monotonic()
            stopped = stop_all_servers(timeout_s=0.5)
            print(json.dumps({"stopped": stopped, "took_s": time.monotonic() - started,
                              "group_alive": group_alive(server.pid)}))
        """, tmp_path)
    finally:
        kill_leftovers(record)
    assert result["stopped"] == 1
    assert isinstance(result["took_s"], float)
    assert 0.5 <= result["took_s"] < 10
    assert result["group_alive"] is False


def test_guard_grace_and_status_words() -> None:
    assert _requested_grace(b"1.5\n", 30.0) == 1.5
    assert _requested_grace(b"", 30.0) == 30.0  # plain EOF: the parent died
    assert _requested_grace(b"inf\n", 30.0) == 30.0
    assert _requested_grace(b"-1\n", 30.0) == 30.0
    assert _requested_grace(b"\xff", 30.0) == 30.0
    assert describe_status(3) == "exited with status 3"
    assert describe_status(137) == "exited with status 137 (SIGKILL)"
    assert describe_status(-9) == "its guard was killed by SIGKILL"
    assert describe_status(None) == "exited"
