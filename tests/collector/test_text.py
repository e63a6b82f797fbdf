"""The one vi/en text module: labels, messages, Vietnamese folding and order, times."""
import random

from schoolmon.collector import text
from schoolmon.collector.store import registry


def test_vietnamese_alphabetical_order():
    names = ["Bát Xát", "Bảo Thắng", "Bảo Yên", "Bắc Hà", "Đồng Văn", "Dương Quỳ", "An",
             "Ăn", "Ân", "Ô Quý Hồ", "Ơn", "Ông", "Ư", "Uyên", "Văn Bàn", "Sa Pa", "Si Ma Cai"]
    want = ["An", "Ăn", "Ân", "Bảo Thắng", "Bảo Yên", "Bát Xát", "Bắc Hà", "Dương Quỳ",
            "Đồng Văn", "Ô Quý Hồ", "Ông", "Ơn", "Sa Pa", "Si Ma Cai", "Uyên", "Ư", "Văn Bàn"]
    shuffled = names[:]
    random.Random(3).shuffle(shuffled)
    assert sorted(shuffled, key=text.sort_key) == want
    assert sorted(["ba", "bà", "bả", "bã", "bá", "bạ"][::-1], key=text.sort_key) == \
        ["ba", "bà", "bả", "bã", "bá", "bạ"]  # tones break ties only
    assert sorted(["Đa", "Dz"], key=text.sort_key) == ["Dz", "Đa"]


def test_fold_ignores_case_and_diacritics_and_is_the_registrys():
    assert text.fold("  Trường   Kim ĐỒNG ") == "truong kim dong"
    assert registry.fold is text.fold


def test_labels_and_messages_are_vietnamese_first():
    assert text.label(text.STATUS_LABELS, "offline", "vi") == "mất kết nối"
    assert text.label(text.STATUS_LABELS, "offline", "en") == "offline"
    assert text.label(text.STATUS_LABELS, "offline", "fr") == "mất kết nối"
    assert text.label(text.STATUS_LABELS, "weird", "vi") == "weird"
    assert text.label(text.LEVEL_LABELS, "THCS", "en") == "Lower secondary"
    assert registry.LEVELS["THCS"] == "Trung học cơ sở"
    assert text.message("not_found", "vi").startswith("Không tìm thấy")
    assert text.message("no-such-code", "en") == "no-such-code"
    for table in (text.STATUS_LABELS, text.ROLE_LABELS, text.LEVEL_LABELS, text.MESSAGES,
                  text.VALIDATION_MESSAGES, text.IMPORT_MESSAGES, text.IMPORT_COLUMN_LABELS):
        for code, entry in table.items():
            assert entry["vi"] and entry["en"], code


def test_pick_lang():
    assert text.pick_lang(None, None) == "vi"
    assert text.pick_lang("EN", "vi") == "en"
    assert text.pick_lang("xx", "fr, en;q=0.5, vi;q=0.4") == "en"
    assert text.pick_lang(None, "en;q=0") == "vi"


def test_times_render_in_utc_and_the_province_zone():
    ts = 1795356000  # 2026-11-22T14:00:00Z
    assert text.iso_utc(ts) == "2026-11-22T14:00:00Z"
    assert text.iso_local(ts) == "2026-11-22T21:00:00+07:00"
    assert text.iso_local(ts, "UTC") == "2026-11-22T14:00:00+00:00"
    assert text.parse_time("2026-11-22T21:00:00+07:00").timestamp() == ts
    assert text.parse_time(str(ts)).timestamp() == ts
    for bad in ("١٢٣", "１２３", "yesterday"):
        try:
            text.parse_time(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def _every_text() -> list:
    """Every Vietnamese and English text a person reads: the module's tables, the page
    texts and the shipped baseline's per-check texts."""
    from schoolmon.collector.baseline import load_baseline
    out = []
    for name in dir(text):
        table = getattr(text, name)
        if name.isupper() and isinstance(table, dict):
            for entry in table.values():
                if isinstance(entry, dict):
                    out += [v for k, v in entry.items() if k in text.LANGS]
    out += [v for entry in text.page_texts().values() for v in entry.values()]
    for c in load_baseline(None).checks:
        for texts in (c.title, c.hint, c.evidence or {}):
            out += list(texts.values())
    return out


def test_one_term_for_one_thing():
    """The router is "router" (never also "bộ định tuyến"), the agent "agent" (never "tác
    tử"), a firewall profile "hồ sơ mạng" (not "cấu hình mạng", which is a configuration)."""
    every = _every_text()
    assert len(every) > 500
    for word in ("bộ định tuyến", "tác tử", "cấu hình mạng"):
        found = [t for t in every if word in t.lower()]
        assert found == [], (word, found)
    assert text.label(text.ROLE_LABELS, "router", "vi") == "router"
    from schoolmon.collector.baseline import load_baseline
    fw = [c for c in load_baseline(None).checks if c.id == "firewall_on"][0]
    assert "hồ sơ mạng" in fw.title["vi"]


def test_the_attt_counts_read_apart():
    """The overview's 24 (every status not meeting the baseline) and 12 (Không đạt) are
    named differently in both languages."""
    pages = text.page_texts()
    every = pages["card.below_security"]
    below = pages["attt_status.below"]
    assert every["vi"] == "Chưa đạt chuẩn ATTT" and below["vi"] == "Không đạt"
    assert every["en"] == "Not meeting the security baseline"
    assert "below" not in every["en"].lower() and "below" not in below["en"].lower()
    assert "below" not in pages["col.below_attt"]["en"].lower()
