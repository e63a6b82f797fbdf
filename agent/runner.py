"""The command-runner seam: every external command the agent runs goes through here.

Windows facts (WMI, registry) are read by PowerShell (agent/windows/cim.py), which we cannot
run in CI. So the families take a ``CommandRunner``: ``SubprocessRunner`` on a real PC,
``RecordedRunner`` in tests, replaying outputs recorded from real machines
(tests/agent/fixtures/windows).
"""
import locale
import os
import signal
import subprocess
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Union

try:  # Protocol is in typing from 3.8
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore

# Process creation flag: no console window flashes up on the pupil's screen every hour.
CREATE_NO_WINDOW = 0x08000000


class CommandResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str


class CommandError(Exception):
    """A command gave no usable answer. Callers catch this one and leave fields out."""


class CommandTimeout(CommandError):
    def __init__(self, argv: List[str], timeout: float) -> None:
        super().__init__("%s: no answer within %.0f s (process tree killed)"
                         % (_short(argv), timeout))
        self.argv = argv
        self.timeout = timeout


class CommandFailed(CommandError):
    def __init__(self, argv: List[str], detail: str, rc: Optional[int] = None) -> None:
        super().__init__("%s: %s" % (_short(argv), detail))
        self.argv = argv
        self.rc = rc


def _short(argv: List[str]) -> str:
    key = command_key(argv)
    return key if len(key) <= 80 else key[:77] + "..."


class CommandRunner(Protocol):
    def run(self, argv: List[str], timeout: float) -> CommandResult:
        """Run argv, wait at most ``timeout`` seconds. A non-zero rc is a result, not an
        error; only a command that cannot start or does not finish raises CommandError."""
        ...


def _decode(raw: bytes) -> str:
    # PowerShell is told to write UTF-8; older hosts may still use the OEM/ANSI code page.
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(locale.getpreferredencoding(False) or "latin-1", errors="replace")


def _kill_tree(proc: "subprocess.Popen[bytes]") -> None:
    """Kill the process and everything it started (powershell.exe starts WMI helpers;
    killing only the parent would leave them running and holding our pipes open)."""
    try:
        import psutil
        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # psutil missing or the process already gone
        children = []
    if sys.platform != "win32":
        try:  # the child leads its own session (start_new_session): kill the group
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    for child in children:
        try:
            child.kill()
        except Exception:
            pass
    try:
        proc.kill()
    except OSError:
        pass


class SubprocessRunner:
    """The real runner. Windows: no console window. POSIX: own session, so a timeout
    kills the whole process group."""

    def run(self, argv: List[str], timeout: float) -> CommandResult:
        kwargs: Dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True
        try:
            # stdin closed: powershell.exe -Command waits for stdin EOF when it is a pipe
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, **kwargs)
        except FileNotFoundError:
            # like a shell: "command not found" is an answer (e.g. no PowerShell installed)
            return CommandResult(127, "", "%s: command not found" % argv[0])
        except PermissionError as exc:
            return CommandResult(126, "", "%s: %s" % (argv[0], exc))
        except OSError as exc:
            raise CommandFailed(argv, "cannot start: %s" % exc) from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            try:
                proc.communicate(timeout=5)
            except Exception:
                pass
            raise CommandTimeout(argv, timeout) from None
        return CommandResult(proc.returncode, _decode(out), _decode(err))


#: A recorded answer: a fixture file name (its text is stdout, rc 0), a CommandResult,
#: or an exception instance to raise (to replay a timeout).
Recording = Union[str, CommandResult, BaseException]


class RecordedRunner:
    """Replays recorded outputs. Keys are ``command_key(argv)``: the ``#schoolmon:<name>``
    tag of a tagged script, else the command line joined by spaces. Unknown command → rc 127,
    as a shell would answer."""

    def __init__(self, recordings: Dict[str, Recording], root: Optional[str] = None) -> None:
        self.recordings = dict(recordings)
        self.root = root
        self.calls: List[str] = []

    def run(self, argv: List[str], timeout: float) -> CommandResult:
        key = command_key(argv)
        self.calls.append(key)
        rec = self.recordings.get(key)
        if rec is None:
            return CommandResult(127, "", "%s: command not found" % argv[0])
        if isinstance(rec, BaseException):
            raise rec
        if isinstance(rec, CommandResult):
            return rec
        path = os.path.join(self.root, rec) if self.root else rec
        with open(path, "rb") as fh:
            return CommandResult(0, _decode(fh.read()), "")


TAG = "#schoolmon:"


def command_key(argv: List[str]) -> str:
    """A stable, readable name for a command: scripts carry a ``#schoolmon:<name>`` tag
    on their first line, so recordings do not depend on the script's exact text."""
    for arg in argv:
        if arg.startswith(TAG):
            return arg.split("\n", 1)[0][len(TAG):].strip()
    return " ".join(argv)
