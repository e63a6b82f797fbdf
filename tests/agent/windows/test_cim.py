"""The PowerShell/CIM machinery every Windows family uses (agent/windows/cim.py), with a
small made-up family's questions and replayed outputs (no Windows needed)."""
import sys

import pytest
from schoolmon.agent.runner import (
    CommandFailed,
    CommandResult,
    CommandTimeout,
    RecordedRunner,
    SubprocessRunner,
    command_key,
)
from schoolmon.agent.windows.cim import (
    POWERSHELL,
    CimReader,
    Query,
    RegistryQuery,
    as_list,
    powershell_json,
)

QUERIES = (
    Query("os", "Win32_OperatingSystem", ("Caption",), single=True),
    Query("nic", "Win32_NetworkAdapterConfiguration", ("Index", "IPAddress"),
          where="IPEnabled = TRUE", arrays=("IPAddress",)),
    Query("av", "AntiVirusProduct", ("displayName", "productState"),
          namespace="root/SecurityCenter2"),
)
REGISTRY = (RegistryQuery("wu", "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU",
                          ("NoAutoUpdate",)),)


def _reader():
    return CimReader("example", QUERIES, REGISTRY)


def test_scripts_are_tagged_and_free_of_double_quotes():
    r = _reader()
    assert command_key(POWERSHELL + [r.modern]) == "example-cim"
    assert command_key(POWERSHELL + [r.legacy_script]) == "example-wmi"
    assert command_key(["uname", "-a"]) == "uname -a"
    # powershell.exe -Command mangles embedded double quotes from CreateProcess
    assert '"' not in r.modern and '"' not in r.legacy_script
    # PowerShell 2.0 has neither of these: the legacy script must not use them
    for word in ("Get-CimInstance", "ConvertTo-Json", "[ordered]", "[pscustomobject]"):
        assert word not in r.legacy_script
    assert "ConvertTo-Json" in r.modern
    assert "Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct" in r.modern
    assert "Get-WmiObject -Namespace root\\SecurityCenter2 -Class AntiVirusProduct" in r.legacy_script
    assert "-Filter 'IPEnabled = TRUE'" in r.modern and "-Filter 'IPEnabled = TRUE'" in r.legacy_script
    assert "Get-ItemProperty 'HKLM:\\SOFTWARE\\Policies" in r.modern


def test_parse_legacy_shapes():
    doc = _reader().parse_legacy(
        "\ufeffWARNING: something\r\nos\t0\tCaption\tX\r\n"
        "nic\t0\tIPAddress\t1.2.3.4\r\nnic\t0\tIPAddress\tfe80::1\r\n"
        "nic\t1\tIndex\t3\r\nwu\t0\tNoAutoUpdate\t1\r\nbroken line\r\n")
    assert doc == {"os": {"Caption": "X"}, "wu": {"NoAutoUpdate": "1"},
                   "nic": [{"IPAddress": ["1.2.3.4", "fe80::1"]}, {"Index": "3"}]}


def test_read_modern_then_remembers():
    runner = RecordedRunner({"example-cim": CommandResult(0, '{"os": {"Caption": "X"}}', "")})
    r = _reader()
    assert r.read(runner) == {"os": {"Caption": "X"}}
    assert r.legacy is False
    # a passing fault later is not taken for Windows 7
    runner.recordings["example-cim"] = CommandTimeout(POWERSHELL, 90)
    assert r.read(runner) is None
    assert r.legacy is False
    assert runner.calls == ["example-cim", "example-cim"]


def test_read_falls_back_to_powershell_2_and_remembers():
    runner = RecordedRunner({"example-cim": CommandResult(1, "", "not recognized"),
                             "example-wmi": CommandResult(0, "os\t0\tCaption\tWin7\n", "")})
    r = _reader()
    assert r.read(runner) == {"os": {"Caption": "Win7"}}
    assert r.legacy is True
    assert r.read(runner) == {"os": {"Caption": "Win7"}}
    assert runner.calls == ["example-cim", "example-wmi", "example-wmi"]


def test_read_gives_none_when_neither_answers():
    r = _reader()
    assert r.read(RecordedRunner({})) is None  # no PowerShell at all: rc 127 twice
    assert r.legacy is None
    runner = RecordedRunner({"example-cim": CommandResult(0, "[1, 2]", ""),
                             "example-wmi": CommandResult(0, "", "")})
    assert r.read(runner) is None


def test_powershell_json_errors_are_command_errors():
    runner = RecordedRunner({"example-cim": CommandResult(0, "not json", "")})
    with pytest.raises(CommandFailed, match="not JSON"):
        powershell_json(runner, _reader().modern, 5)
    runner.recordings["example-cim"] = CommandResult(2, "", "boom")
    with pytest.raises(CommandFailed, match="exit code 2: boom"):
        powershell_json(runner, _reader().modern, 5)
    runner.recordings["example-cim"] = CommandResult(0, '\ufeff{"a": 1}\r\n', "")
    assert powershell_json(runner, _reader().modern, 5) == {"a": 1}


def test_as_list_normalises_convertto_json_shapes():
    assert as_list(None) == []
    assert as_list({"a": 1}) == [{"a": 1}]
    assert as_list([{"a": 1}, None]) == [{"a": 1}]
    # Windows PowerShell 5.1's ETS-wrapped array
    assert as_list({"value": [{"a": 1}, {"a": 2}], "Count": 2}) == [{"a": 1}, {"a": 2}]




@pytest.mark.skipif(sys.platform == "win32", reason="needs a machine without PowerShell")
def test_powershell_json_without_powershell_fails_cleanly():
    with pytest.raises(CommandFailed, match="exit code 127"):
        powershell_json(SubprocessRunner(), "#schoolmon:x\n1", timeout=5)


def test_expressions_quotes_and_section_errors():
    from schoolmon.agent.windows.cim import ERRORS, Expression
    r = CimReader("ex", (Query("svc", "Win32_Service", ("Name",), where="Name LIKE 'Bkav%'"),),
                  expressions=(Expression("probe", "Test-Path 'HKLM:\\X'", ("A",), single=True),
                               Expression("fw", "Get-NetFirewallProfile", ("Name",),
                                          legacy=None)))
    # a quote inside the single-quoted -Filter string is written twice
    assert "-Filter 'Name LIKE ''Bkav%'''" in r.modern
    assert "-Filter 'Name LIKE ''Bkav%'''" in r.legacy_script
    assert "$r.probe = @(Test-Path 'HKLM:\\X') | Select-Object A" in r.modern
    assert "Get-NetFirewallProfile" not in r.legacy_script  # legacy=None: not asked there
    assert "FullyQualifiedErrorId" in r.modern and "FullyQualifiedErrorId" in r.legacy_script
    doc = r.parse_legacy("probe\t0\tA\tTrue\r\n_errors\t0\tsvc\tHRESULT 0x80041003: Access "
                         "denied\r\n")
    assert doc == {"probe": {"A": "True"}, ERRORS: {"svc": "HRESULT 0x80041003: Access denied"}}


def test_a_timeout_on_first_use_is_not_taken_for_windows_7():
    r = _reader()
    runner = RecordedRunner({"example-cim": CommandTimeout(POWERSHELL, 90),
                             "example-wmi": CommandResult(0, "os\t0\tCaption\tX\n", "")})
    assert r.read(runner) is None
    assert runner.calls == ["example-cim"] and r.legacy is None
    assert "no answer within 90 s" in r.last_error
    runner = RecordedRunner({"example-cim": CommandResult(0, "{trunc", "")})
    assert r.read(runner) is None
    assert r.last_error.startswith("modern script: ") and "not JSON" in r.last_error
    assert "PowerShell 2.0 script: " in r.last_error
