"""The store-and-forward queue against the real file system (and a real tiny tmpfs)."""
import json
import os

import pytest
from schoolmon.agent.spool import DB_NAME, STATE_NAME, Spool, read_last_seq

from .agenthelp import fill_disk


def _payload(size=100):
    return lambda seq: json.dumps({"seq": seq, "pad": "x" * size}).encode()


def test_seq_is_given_when_queued_and_survives_restart(tmp_path):
    sp = Spool(str(tmp_path))
    assert [sp.put("t/a", _payload()) for _ in range(3)] == [1, 2, 3]
    assert sp.count == 3
    sp.close()
    sp = Spool(str(tmp_path))
    assert sp.seq == 3 and sp.count == 3
    assert [r.seq for r in sp.peek()] == [1, 2, 3]
    assert json.loads(sp.peek()[0].payload)["seq"] == 1
    assert sp.put("t/a", _payload()) == 4
    sp.close()
    assert read_last_seq(str(tmp_path)) == 4


def test_ack_deletes_and_peek_after(tmp_path):
    sp = Spool(str(tmp_path))
    for _ in range(5):
        sp.put("t/a", _payload(), retain=True)
    sp.ack([1, 2])
    assert [r.seq for r in sp.peek()] == [3, 4, 5]
    assert [r.seq for r in sp.peek(after=3, limit=1)] == [4]
    assert sp.peek()[0].retain is True
    sp.ack([3, 4, 5, 99])
    assert sp.count == 0 and sp.bytes == 0
    # the counter never goes back, even with an empty queue
    sp.close()
    assert Spool(str(tmp_path)).put("t/a", _payload()) == 6


def test_build_error_uses_no_seq(tmp_path):
    sp = Spool(str(tmp_path))

    def bad(seq):
        raise ValueError("nope")

    with pytest.raises(ValueError):
        sp.put("t", bad)
    assert sp.put("t", _payload()) == 1


def test_bytes_bound_drops_oldest_and_counts(tmp_path):
    sp = Spool(str(tmp_path), max_bytes=5000)
    for _ in range(100):
        sp.put("t/a", _payload(200))
    assert sp.bytes <= 5000
    seqs = [r.seq for r in sp.peek(limit=1000)]
    assert seqs == list(range(seqs[0], 101)), "the newest are kept, in order"
    assert sp.dropped == 100 - len(seqs) > 0
    sp.close()
    assert Spool(str(tmp_path)).dropped == 100 - len(seqs), "q_drop is persisted"


def test_age_bound(tmp_path):
    now = [1_000_000.0]
    sp = Spool(str(tmp_path), max_age=60, clock=lambda: now[0])
    sp.put("t", _payload())
    sp.put("t", _payload())
    now[0] += 61
    sp.put("t", _payload())
    assert [r.seq for r in sp.peek()] == [3]
    assert sp.dropped == 2


def test_corrupted_file_at_start_is_moved_aside_and_seq_survives(tmp_path, caplog):
    sp = Spool(str(tmp_path))
    for _ in range(4):
        sp.put("t", _payload())
    sp.close()
    with open(tmp_path / DB_NAME, "r+b") as fh:
        fh.write(b"this is not a sqlite file" * 40)
    sp = Spool(str(tmp_path))
    assert "corrupted" in caplog.text
    assert any(n.startswith(DB_NAME + ".corrupt-") for n in os.listdir(tmp_path))
    assert sp.count == 0
    assert sp.dropped == 4, "what the corrupted queue held is counted"
    assert sp.put("t", _payload()) == 5, "seq continues from the state file"


def test_corrupted_while_open_is_recovered(tmp_path, caplog):
    sp = Spool(str(tmp_path))
    for _ in range(3):
        sp.put("t", _payload())
    with open(tmp_path / DB_NAME, "r+b") as fh:
        fh.write(b"\xff" * 4096)
    assert sp.put("t", _payload()) == 4
    assert "corrupted" in caplog.text
    assert [r.seq for r in sp.peek()] == [4]
    assert sp.dropped == 3


def test_state_file_corrupt_uses_db_counter(tmp_path):
    sp = Spool(str(tmp_path))
    for _ in range(3):
        sp.put("t", _payload())
    sp.close()
    (tmp_path / STATE_NAME).write_text("{garbage")
    assert Spool(str(tmp_path)).put("t", _payload()) == 4


def test_disk_full_drops_oldest_counts_and_keeps_going(tiny_fs, caplog):
    # max_bytes far above the file system's size: only the disk can run out.
    sp = Spool(tiny_fs, max_bytes=100 * 1024 * 1024)
    last = 0
    for _ in range(400):  # ~400 KiB of payloads into 256 KiB
        last = sp.put("schoolmon/v1/s/d/health", _payload(1000))
    assert last == 400
    assert sp.dropped > 0, "disk full must drop (and count) the oldest"
    assert "disk full" in caplog.text
    seqs = [r.seq for r in sp.peek(limit=10000)]
    assert seqs and seqs[-1] == 400, "the newest message is kept"
    assert seqs == list(range(seqs[0], 401))
    assert sp.dropped + len(seqs) == 400, "every message is either queued or counted"
    sp.close()
    sp = Spool(tiny_fs, max_bytes=100 * 1024 * 1024)
    assert sp.seq == 400 and sp.dropped + sp.count == 400
    sp.close()


def test_counters_match_the_file_after_mixed_operations(tmp_path):
    sp = Spool(str(tmp_path), max_bytes=20000)
    for i in range(200):
        sp.put("t/a", _payload(50 + i % 7 * 30))
        if i % 3 == 0:
            sp.ack([i - 5, i - 4, 10 ** 6])
        if i % 50 == 0:
            sp.discard([i - 1], "test")
    kept = (sp.count, sp.bytes)
    sp._recount()
    assert (sp.count, sp.bytes) == kept
    assert sp.bytes <= 20000


def test_a_full_disk_at_start_keeps_the_queue_in_memory(tiny_fs, caplog):
    fill_disk(tiny_fs)
    sp = Spool(os.path.join(tiny_fs, "queue"))  # must not raise
    assert "in memory" in caplog.text
    assert [sp.put("t", _payload(1000)) for _ in range(3)] == [1, 2, 3]
    assert sp.count == 3 and sp.dropped == 0
    assert [r.seq for r in sp.peek()] == [1, 2, 3]
    sp.ack([1, 2])
    assert sp.count == 1
    sp.close()


def test_a_disk_filled_under_an_existing_queue(tiny_fs, caplog):
    folder = os.path.join(tiny_fs, "queue")
    sp = Spool(folder, max_bytes=100 * 1024 * 1024)
    sp.put("t", _payload(1000))
    sp.ack([1])
    sp.close()
    fill_disk(tiny_fs)
    # the file opens, its state file cannot be written: that must not stop the start
    sp = Spool(folder, max_bytes=100 * 1024 * 1024)
    assert sp.seq == 1
    for _ in range(20):
        sp.put("t", _payload(1000))
    assert sp.seq == 21
    seqs = [r.seq for r in sp.peek(limit=100)]
    assert seqs and seqs[-1] == 21, "the newest message is kept"
    assert sp.dropped + len(seqs) == 20, "every message is either queued or counted"
    sp.close()
