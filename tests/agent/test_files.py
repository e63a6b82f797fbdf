"""The agent's one atomic write (agent/files.py)."""
import errno
import os
import stat

import pytest
from schoolmon.agent import files
from schoolmon.agent.files import write_atomic

from .agenthelp import fill_disk


def test_write_replaces_whole_file_with_mode(tmp_path):
    path = str(tmp_path / "x.json")
    write_atomic(path, "one")
    write_atomic(path, b"two", mode=0o600)
    with open(path, "rb") as fh:
        assert fh.read() == b"two"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["x.json"], "no temporary file left"


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "state.json")
    write_atomic(path, "old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError) as info:
        write_atomic(path, "new")
    assert info.value.errno == errno.ENOSPC
    with open(path) as fh:
        assert fh.read() == "old"
    assert os.listdir(str(tmp_path)) == ["state.json"]


def test_on_a_really_full_disk(tiny_fs):
    path = os.path.join(tiny_fs, "state.json")
    write_atomic(path, "old")
    fill_disk(tiny_fs)
    with pytest.raises(OSError) as info:
        write_atomic(path, "x" * 100000)
    assert info.value.errno == errno.ENOSPC
    with open(path) as fh:
        assert fh.read() == "old"
    assert sorted(os.listdir(tiny_fs)) == ["filler", "state.json"]
