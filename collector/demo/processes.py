"""Child processes of the demo: free ports, starting with the log in a file, dying with
the demo, stopping a whole process group in order."""
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, List, Optional

log = logging.getLogger("schoolmon.collector.demo")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("exited with status %s before listening" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %.0f s" % (port, timeout))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the demo dies without cleaning up (SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def popen_logged(argv: List[str], log_path: str, **kw: Any) -> subprocess.Popen:
    with open(log_path, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux")
                                else None, **kw)


def program_name(proc: "subprocess.Popen[bytes]") -> str:
    args = proc.args
    return str(args[0]) if isinstance(args, (list, tuple)) and args else str(args)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the child's process group (it leads its own session), so that commands it
    started go too; fall back to the child alone."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.send_signal(sig)
        except (ProcessLookupError, OSError):
            pass


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM to the child's process group, wait, then SIGKILL; always reaps the child
    and leaves nothing of its group behind."""
    if proc is None:
        return
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s: killing it", program_name(proc), timeout)
            _signal_group(proc, signal.SIGKILL)
            proc.wait(5)
    else:
        proc.wait()
    # stragglers of its session (e.g. a command the agent was running)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
