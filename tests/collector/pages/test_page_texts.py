"""Every text key the pages' JavaScript asks for exists in ``collector/text.py`` (served
as /ui/texts.js): a typo would otherwise show the key itself to a reader. Keys built from
a prefix and a code (``t("attt_status." + code)``) need at least one text under the
prefix, and every code the pages list for a filter has its text."""
import re
from pathlib import Path

from schoolmon.collector.text import page_texts

STATIC = Path(__file__).resolve().parents[3] / "collector" / "static" / "js"
LITERAL = re.compile(r"""\bt\(\s*"([a-z_.0-9]+)"\s*[,)]""")
PREFIX = re.compile(r"""\bt\(\s*"([a-z_.0-9]+\.)"\s*\+""")
LISTS = {  # the code lists of the filters, and the prefix their texts have
    "attt_status.": ("below", "insufficient", "improve", "meets", "no_pcs", "not_evaluated"),
    "check_state.": ("pass", "warn", "fail", "unknown", "na"),
    "os_support.": ("unsupported", "esu", "supported", "unknown"),
    "filter.attt_device.": ("fail", "unknown", "pass"),
    "severity.": ("critical", "high", "medium", "low"),
}


def test_every_key_the_pages_ask_for_has_a_text_in_both_languages():
    texts = page_texts()
    sources = {p.name: p.read_text(encoding="utf-8") for p in STATIC.rglob("*.js")}
    asked = {k for src in sources.values() for k in LITERAL.findall(src)}
    assert "attt.title" in asked and len(asked) > 100
    missing = sorted(k for k in asked if k not in texts)
    assert missing == [], missing
    prefixes = {k for src in sources.values() for k in PREFIX.findall(src)}
    assert {"attt_status.", "check_state.", "severity.", "os_support."} <= prefixes
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in texts), prefix
    for prefix, codes in LISTS.items():
        for code in codes:
            entry = texts[prefix + code]
            assert entry["vi"] and entry["en"] and entry["vi"] != prefix + code
