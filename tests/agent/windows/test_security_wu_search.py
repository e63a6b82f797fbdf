"""The pending-updates search in the background (security_windows.UpdateSearch): a scan
never waits for it, reports the last finished one, keeps it across restarts in the state
folder, searches at most every interval, and a failed or hung search is an unknown with
its reason. No sleeps: the tests wait on events and on the search thread."""
import json
import os
import threading
from types import SimpleNamespace

from schoolmon.agent.families.security import Findings
from schoolmon.agent.families.security_windows import WU_SEARCH_SCRIPT, WindowsScanner
from schoolmon.agent.runner import CommandResult, CommandTimeout, RecordedRunner, command_key
from schoolmon.agent.windows.cim import POWERSHELL

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "windows", "security")
NOW = 1772755200
CIM = {"security-cim": "win11-24h2-proedu-defender.json"}


class GatedRunner(RecordedRunner):
    """Holds the update search until the test opens the gate (a search that takes long)."""

    def __init__(self, recordings):
        super().__init__(recordings, root=FIX)
        self.gate = threading.Event()
        self.timeouts = {}

    def run(self, argv, timeout):
        self.timeouts[command_key(argv)] = timeout
        if command_key(argv) == "security-wu-search":
            assert self.gate.wait(30), "the test never opened the gate"
        return super().run(argv, timeout)


def _scanner(runner, state_dir, settings=None, clock=NOW):
    s = WindowsScanner(runner, str(state_dir), settings)
    s.clock = lambda: clock
    return s


def _scan(scanner):
    found = Findings()
    scanner.scan(found)
    p = found.payload()
    return p, {u["field"]: u["reason"] for u in p.get("unknown", [])}


def test_a_scan_never_waits_for_the_search_and_reports_the_last_finished_one(tmp_path):
    runner = GatedRunner(dict(CIM, **{"security-wu-search": "wu-search-ok.txt"}))
    scanner = _scanner(runner, tmp_path)
    p, u = _scan(scanner)  # returns while the search is held
    assert u["patch_pending"] == "first search still running"
    assert p["av_on"] is True  # the rest of the scan is there
    runner.gate.set()
    assert scanner.search.wait(30)
    p, u = _scan(scanner)
    assert (p["patch_pending"], p["patch_pending_sec"], p["patch_checked_ts"]) == (5, 2, NOW)
    saved = json.loads((tmp_path / "security-wu-search.json").read_text())
    assert saved["pending_sec"] == 2 and saved["attempt_ts"] == NOW and saved["error"] == ""
    assert runner.calls.count("security-wu-search") == 1  # the second scan did not search
    assert runner.timeouts["security-wu-search"] == 1800.0  # default hard timeout


def test_the_result_survives_a_restart_and_the_interval_is_kept(tmp_path):
    first = RecordedRunner(dict(CIM, **{"security-wu-search": "wu-search-ok.txt"}), root=FIX)
    s1 = _scanner(first, tmp_path)
    _scan(s1)
    assert s1.search.wait(30)
    # the agent restarts an hour later: the kept result is reported, no new search
    again = RecordedRunner(dict(CIM), root=FIX)
    s2 = _scanner(again, tmp_path, clock=NOW + 3600)
    p, _ = _scan(s2)
    assert s2.search.wait(30)
    assert p["patch_pending"] == 5 and "security-wu-search" not in again.calls
    # after the interval (here set to 2 h) it searches again
    later = RecordedRunner(dict(CIM, **{"security-wu-search": "wu-search-ok.txt"}), root=FIX)
    s3 = _scanner(later, tmp_path, SimpleNamespace(wu_search_interval=7200), clock=NOW + 7300)
    _scan(s3)
    assert s3.search.wait(30)
    assert "security-wu-search" in later.calls


def test_a_failed_or_hung_search_is_unknown_with_its_reason_and_keeps_the_last_counts(tmp_path):
    timeout = CommandTimeout(POWERSHELL + [WU_SEARCH_SCRIPT], 600)
    hung = RecordedRunner(dict(CIM, **{"security-wu-search": timeout}), root=FIX)
    s = _scanner(hung, tmp_path, SimpleNamespace(wu_search_timeout=600))
    s.search.due_search()
    assert s.search.wait(30)
    _, u = _scan(s)
    assert u["patch_pending"] == ("last search failed: security-wu-search: no answer within "
                                  "600 s (process tree killed)")
    # a good search, then a failing one 7 h later: the good counts stay, with their time
    ok = RecordedRunner(dict(CIM, **{"security-wu-search": "wu-search-ok.txt"}), root=FIX)
    s = _scanner(ok, tmp_path, clock=NOW + 7 * 3600)
    s.search.due_search()
    assert s.search.wait(30)
    bad = RecordedRunner(dict(CIM, **{"security-wu-search": CommandResult(
        1, "", "Exception from HRESULT: 0x8024402C")}), root=FIX)
    s = _scanner(bad, tmp_path, clock=NOW + 14 * 3600)
    s.search.due_search()
    assert s.search.wait(30)
    p, _ = _scan(s)
    assert p["patch_pending"] == 5 and p["patch_checked_ts"] == NOW + 7 * 3600
    saved = json.loads((tmp_path / "security-wu-search.json").read_text())
    assert "0x8024402C" in saved["error"]


def test_an_empty_offline_cache_is_no_zero(tmp_path):
    runner = RecordedRunner(dict(CIM, **{"security-wu-search": "wu-search-never-online.txt"}),
                            root=FIX)
    s = _scanner(runner, tmp_path)
    s.search.due_search()
    assert s.search.wait(30)
    p, u = _scan(s)
    assert "patch_pending" not in p and "offline cache is empty" in u["patch_pending"]
    assert p["patch_checked_ts"] == NOW


def test_a_garbled_answer_and_a_broken_state_file(tmp_path):
    (tmp_path / "security-wu-search.json").write_text("{not json")
    runner = RecordedRunner(dict(CIM, **{"security-wu-search": CommandResult(
        0, "result\t5\n", "")}), root=FIX)
    s = _scanner(runner, tmp_path)
    s.search.due_search()
    assert s.search.wait(30)
    _, u = _scan(s)
    assert u["patch_pending"] == "last search failed: search gave result code 5"


def test_the_search_script_is_offline_and_counts_security_by_category_id():
    assert command_key(POWERSHELL + [WU_SEARCH_SCRIPT]) == "security-wu-search"
    assert "$u.Online = $false" in WU_SEARCH_SCRIPT
    assert "IsInstalled=0 and IsHidden=0" in WU_SEARCH_SCRIPT
    assert "0fa1201d-4330-4fa8-8ae9-b877473b6441" in WU_SEARCH_SCRIPT  # Security Updates
    assert "e6cf1350-c01b-414d-a61f-263d14d133b4" in WU_SEARCH_SCRIPT  # Critical Updates
    assert '"' not in WU_SEARCH_SCRIPT
    for word in ("ConvertTo-Json", "Get-CimInstance"):  # PowerShell 2.0 runs it too
        assert word not in WU_SEARCH_SCRIPT
