"""Hold the code to the catalogue (as Datadog's integrations hold metrics to metadata.csv):
every field a family emits is described in protocol/catalogue.py, every catalogue field has
code that can emit it, and docs/protocol.md is the catalogue's current rendering."""
import inspect
import os
import time

from schoolmon.agent import health, inventory
from schoolmon.agent.families import build_families
from schoolmon.agent.runner import RecordedRunner
from schoolmon.protocol import envelope, validate
from schoolmon.protocol.catalogue import FAMILIES
from schoolmon.protocol.docs import render

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WINDOWS = os.path.join(os.path.dirname(__file__), "fixtures", "windows")
# Added by the agent's core (queue state), not by the family.
CORE_FIELDS = {"health": {"q", "q_drop"}, "inventory": set()}


def _unknown(fields, payload, path=""):
    """Names in payload (recursively into lists of objects) the catalogue does not know."""
    known = {f.name: f for f in fields}
    bad = []
    for key, value in payload.items():
        f = known.get(key)
        if f is None:
            bad.append(path + key)
        elif f.type == "objects":
            for item in value:
                bad.extend(_unknown(f.items, item, path + key + "[]."))
    return bad


def _emitted():
    fams = build_families("lab", "P1")
    time.sleep(0.2)
    out = [(kind, fam.collect()) for kind, fam in sorted(fams.items())]
    win = inventory.InventoryFamily("lab", "P1", platform_name="win32", runner=RecordedRunner(
        {"inventory-cim": "win11-23h2-education.json"}, root=WINDOWS))
    out.append(("inventory", win.collect()))
    return out


def test_every_emitted_field_is_in_the_catalogue():
    for kind, payload in _emitted():
        assert _unknown(FAMILIES[kind].fields, payload) == [], kind
        validate(kind, envelope(kind, payload, 1, time.time()))


def test_every_catalogue_field_has_code_that_emits_it():
    for kind, module in (("health", health), ("inventory", inventory)):
        source = inspect.getsource(module)
        for f in FAMILIES[kind].fields:
            if f.name in CORE_FIELDS[kind]:
                continue
            assert '"%s"' % f.name in source, "%s.%s is never emitted" % (kind, f.name)
            for sub in f.items or ():
                assert '"%s"' % sub.name in source, "%s.%s[].%s" % (kind, f.name, sub.name)


def test_required_fields_are_always_there():
    for kind, payload in _emitted():
        for f in FAMILIES[kind].fields:
            if f.required:
                assert f.name in payload, "%s.%s" % (kind, f.name)


def test_docs_protocol_md_is_generated_from_the_catalogue():
    with open(os.path.join(ROOT, "docs", "protocol.md"), encoding="utf-8") as fh:
        assert fh.read() == render(), ("docs/protocol.md is stale: run "
                                       "`python -m schoolmon.protocol.docs > docs/protocol.md`")
