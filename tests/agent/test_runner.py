"""The command-runner seam with real processes (POSIX here; the Windows flags are set by
the same code path under sys.platform == "win32")."""
import sys
import time

import psutil
import pytest
from schoolmon.agent.runner import CommandTimeout, SubprocessRunner

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell commands")


def test_non_zero_rc_is_a_result_not_an_error():
    res = SubprocessRunner().run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert res.rc == 3 and res.stdout == "out\n" and res.stderr == "err\n"


def test_missing_command_is_rc_127():
    res = SubprocessRunner().run(["powershell.exe", "-NoProfile"], timeout=10)
    assert res.rc == 127


def test_timeout_kills_the_whole_process_tree():
    marker = "schoolmon-runner-test-%d" % time.time_ns()
    # a child that starts a grandchild holding stdout open, both sleeping long
    script = "(exec -a %s-grandchild sleep 300) & exec -a %s-child sleep 301" % (marker, marker)
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="no answer within"):
        SubprocessRunner().run(["bash", "-c", script], timeout=0.5)
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    left = [p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and marker in " ".join(p.info["cmdline"])]
    assert left == []


def test_timeout_test_would_see_a_survivor():
    """Guard for the test above: without the kill, the marked processes are visible."""
    import subprocess
    marker = "schoolmon-runner-probe-%d" % time.time_ns()
    proc = subprocess.Popen(["bash", "-c", "exec -a %s sleep 30" % marker])
    try:
        time.sleep(0.2)
        seen = [p for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] and marker in " ".join(p.info["cmdline"])]
        assert seen
    finally:
        proc.kill()
        proc.wait()


def test_utf8_and_stdin_closed():
    res = SubprocessRunner().run(["sh", "-c", "cat; printf 'Phòng máy'"], timeout=10)
    assert res.rc == 0 and res.stdout == "Phòng máy"  # cat got EOF at once
