"""The OS support table: vendor dates as data, matched by build, feature update and
edition; ESU only counts when the device says it has it."""
import datetime as dt

import pytest
from schoolmon.collector.baseline import judge, listing, load_os_table
from schoolmon.protocol.settings import ConfigError

TABLE = load_os_table()


def win(build, edition="Pro", display=None, esu=None, os_id="windows"):
    inv = {"os_name": "Windows", "os_build": build, "os_edition": edition}
    if display:
        inv["os_display"] = display
    sec = {"os_id": os_id}
    if esu is not None:
        sec["esu"] = esu
    return sec, inv


def status(day, sec, inv):
    return judge(TABLE, sec, inv, dt.date.fromisoformat(day))


def test_windows_11_24h2_pro_education_ends_2026_10_13_enterprise_2027():
    pro_edu = win("26100.2033", "Pro Education")
    assert status("2026-10-13", *pro_edu).status == "supported"
    after = status("2026-10-14", *pro_edu)
    assert after.status == "unsupported" and after.end == "2026-10-13"
    assert status("2026-10-14", *win("26100.2033", "Enterprise")).status == "supported"
    assert status("2026-10-14", *win("26100.2033", "Education")).end == "2027-10-12"
    assert status("2027-10-13", *win("26100.2033", "Education")).status == "unsupported"


def test_windows_11_by_build_22000_and_later():
    assert status("2026-12-02", *win("22631.4460", "Enterprise")).end == "2026-11-10"
    assert status("2026-12-02", *win("22631.4460", "Pro")).status == "unsupported"
    assert status("2026-12-02", *win("26200.7000", "Pro")).end == "2027-10-12"
    assert status("2026-12-02", *win("26200.7000", "Education")).end == "2028-10-10"
    # os_display wins over the build's default; a build this table has not met is still 11
    assert status("2026-12-02", *win("26100.1", "Pro", display="25H2")).end == "2027-10-12"
    assert status("2026-12-02", *win("27000.1", "Pro")).status == "unknown"


def test_windows_10_22h2_passes_only_with_esu():
    assert status("2026-12-02", *win("19045.5011", esu=True)).status == "esu"
    assert status("2026-12-02", *win("19045.5011", esu=True)).end == "2028-10-10"
    assert status("2026-12-02", *win("19045.5011", esu=False)).status == "unsupported"
    assert status("2026-12-02", *win("19045.5011")).status == "unknown"  # ESU not reported
    assert status("2025-10-14", *win("19045.5011", esu=False)).status == "supported"
    assert status("2028-10-11", *win("19045.5011", esu=True)).status == "unsupported"
    assert status("2026-12-02", *win("19044.1", "Enterprise LTSC")).end == "2027-01-12"
    assert status("2026-12-02", *win("19042.1")).status == "unsupported"


def test_old_windows_and_servers():
    assert status("2026-12-02", *win("7601", "Professional")).end == "2020-01-14"
    assert status("2026-12-02", *win("9600")).status == "unsupported"
    srv = {"os_name": "Windows", "os_edition": "Windows Server 2019 Standard",
           "os_build": "17763.1"}
    assert judge(TABLE, {"os_id": "windows-server"}, srv,
                 dt.date(2026, 12, 2)).end == "2029-01-09"
    r2 = {"os_name": "Windows", "os_edition": "Windows Server 2012 R2 Standard"}
    assert judge(TABLE, {}, r2, dt.date(2026, 10, 1)).status == "unknown"  # ESU unknown
    assert judge(TABLE, {"esu": True}, r2, dt.date(2026, 10, 1)).status == "esu"
    assert judge(TABLE, {"esu": True}, r2, dt.date(2026, 10, 14)).status == "unsupported"


def test_linux_distributions():
    def linux(os_id, version, edition):
        return {"os_id": os_id}, {"os_name": "Linux", "os_version": version,
                                  "os_edition": edition}
    assert status("2025-05-29", *linux("ubuntu", "20.04", "Ubuntu 20.04.6 LTS")).status \
        == "supported"
    assert status("2025-05-30", *linux("ubuntu", "20.04", "Ubuntu 20.04.6 LTS")).status \
        == "unsupported"
    assert status("2026-12-02", *linux("ubuntu", "22.04", "Ubuntu 22.04.4 LTS")).end \
        == "2027-04-30"
    assert status("2026-12-02", *linux("ubuntu", "24.04", "Ubuntu 24.04.1 LTS")).end \
        == "2029-04-30"
    assert status("2026-12-02", *linux("debian", "12.8", "Debian GNU/Linux 12")).end \
        == "2028-06-30"
    assert status("2026-12-02", *linux("debian", "11", "Debian GNU/Linux 11")).status \
        == "unsupported"
    assert status("2026-12-02", *linux("debian", "13", "Debian GNU/Linux 13")).status \
        == "supported"
    assert status("2026-12-02", *linux("fedora", "41", "Fedora")).status == "unknown"


def test_table_listing_and_a_bad_table(tmp_path):
    rows = listing(TABLE)
    assert all(r["end"] and r["label"]["vi"] and r["source"] for r in rows)
    assert any(r["os"] == "windows" and r["version"] == "10" and r["esu_end"] for r in rows)
    bad = tmp_path / "os.toml"
    bad.write_text('[[os]]\nos = "windows"\nversion = "7"\nend = "14/01/2020"\n')
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        load_os_table(str(bad))
    bad.write_text('[[os]]\nos = "amiga"\nversion = "3"\nend = 2020-01-01\n')
    with pytest.raises(ConfigError, match="os"):
        load_os_table(str(bad))


def test_labels_write_dates_as_the_pages_do():
    """dd/mm/yyyy in both languages, like every other date of the pages."""
    import re
    for e in load_os_table().entries:
        for lang in ("vi", "en"):
            assert not re.search(r"\d{4}-\d{2}-\d{2}", e.label[lang]), e.label
