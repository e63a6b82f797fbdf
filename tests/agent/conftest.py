import os
import subprocess
import tempfile

import pytest


def _mount_tmpfs(path, size):
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


@pytest.fixture
def tiny_fs():
    """A real 256 KiB file system (tmpfs); needs root and permission to mount."""
    path = tempfile.mkdtemp(prefix="schoolmon-tinyfs-")
    if not _mount_tmpfs(path, "256k"):
        os.rmdir(path)
        pytest.skip("cannot mount a tmpfs here (not root or not permitted)")
    yield path
    subprocess.run(["umount", "-l", path], check=False)
    os.rmdir(path)


@pytest.fixture
def snmpd():
    """A private real net-snmp snmpd on a free loopback UDP port (tests/agent/snmpd.py)."""
    from .snmpd import Snmpd

    agent = Snmpd().start()
    yield agent
    agent.stop()
