"""The local servers' process handling, shared: a free port, a child that dies with its parent, a group stopped whole.

The MLflow server, the S3 server and the tests' other real servers each run in their own process group (they start
helpers of their own: uvicorn workers, weed's master and volume), so stopping one means stopping its whole group,
and a killed test run must leave none behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable

STOP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> Callable[[], None] | None:
    """A preexec function making the child die with its parent (Linux), so even a killed pytest leaves no
    server behind. libc is loaded here, in the parent: the child only makes one system call."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process_group(process: subprocess.Popen[bytes], grace: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop ``process`` (started with ``start_new_session=True``) and every process of its group: SIGTERM, then
    SIGKILL for whatever lingers past ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and (process.poll() is None or group_alive(process.pid)):
            time.sleep(0.1)
        if process.poll() is not None and not group_alive(process.pid):
            return


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
