"""Imports go the way docs/architecture.md draws them (every import, also those inside
functions): protocol ← agent, protocol ← collector; inside the collector api → read →
store, ingest → families/store/timeseries, posture → baseline/store (read → posture for
its statuses and evidence), and nothing but the programs imports the api or the CLI."""
import ast
from pathlib import Path
from typing import Dict, Set

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"protocol": "schoolmon.protocol", "agent": "schoolmon.agent", "collector": "schoolmon.collector"}

#: package prefix -> prefixes it must never import
FORBIDDEN = {
    "schoolmon.protocol": ("schoolmon.agent", "schoolmon.collector"),
    "schoolmon.agent": ("schoolmon.collector",),
    "schoolmon.collector.families": ("schoolmon.collector.store", "schoolmon.collector.ingest",
                                     "schoolmon.collector.read", "schoolmon.collector.api"),
    "schoolmon.collector.store": ("schoolmon.collector.ingest", "schoolmon.collector.read",
                                  "schoolmon.collector.api", "schoolmon.collector.service",
                                  "schoolmon.collector.demo", "schoolmon.collector.simulate"),
    "schoolmon.collector.read": ("schoolmon.collector.api", "schoolmon.collector.ingest",
                                 "schoolmon.collector.service"),
    "schoolmon.collector.ingest": ("schoolmon.collector.api", "schoolmon.collector.read"),
    # baselines are data and their language: nothing of the running collector
    "schoolmon.collector.baseline": ("schoolmon.collector.store", "schoolmon.collector.ingest",
                                     "schoolmon.collector.read", "schoolmon.collector.api",
                                     "schoolmon.collector.service", "schoolmon.collector.posture",
                                     "schoolmon.collector.families", "schoolmon.collector.demo",
                                     "schoolmon.collector.simulate"),
    # the evaluator reads the store, never the ingest path (nor the read side or the API)
    "schoolmon.collector.posture": ("schoolmon.collector.ingest", "schoolmon.collector.read",
                                    "schoolmon.collector.api", "schoolmon.collector.service",
                                    "schoolmon.collector.demo", "schoolmon.collector.simulate"),
    # notify reads and writes the outbox in the store; never the ingest path or the API.
    # Routing asks read.scope which schools a user's units cover (one definition of a
    # scope for the pages and for who is told): the only read module it may use.
    "schoolmon.collector.notify": ("schoolmon.collector.ingest", "schoolmon.collector.read",
                                   "schoolmon.collector.api", "schoolmon.collector.service",
                                   "schoolmon.collector.demo", "schoolmon.collector.simulate"),
    "schoolmon.collector.mqtt": ("schoolmon.collector.api", "schoolmon.collector.read",
                                 "schoolmon.collector.store", "schoolmon.collector.ingest"),
}
#: (importer prefix, imported module) pairs allowed despite FORBIDDEN, each with its reason
EXCEPTIONS = {
    # routing asks which schools a user's units cover: one definition of a scope for the
    # pages and for who is told an alert
    ("schoolmon.collector.notify", "schoolmon.collector.read.scope"),
}
#: the programs: the only modules that may import the API
API_USERS = ("schoolmon.collector.api", "schoolmon.collector.cli", "schoolmon.collector.demo")


def _module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    rest = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join([FOLDERS[folder]] + rest)


def _imports(path: Path, module: str) -> Set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: Set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for block in ast.walk(tree):  # imports for type checking only are no dependency
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update("%s.%s" % (target, a.name) for a in node.names)
    return {name for name in found if name.startswith("schoolmon.")}


def _graph() -> Dict[str, Set[str]]:
    graph = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts or "migrations" in path.parts:
                continue
            module = _module_name(path)
            graph[module] = _imports(path, module)
    return graph


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_graph_is_read():
    graph = _graph()
    assert "schoolmon.collector.store.writer" in graph
    assert "schoolmon.collector.store.schema" in graph["schoolmon.collector.store.writer"]


def test_imports_follow_the_arrows():
    wrong = []
    for module, targets in sorted(_graph().items()):
        for owner, banned in FORBIDDEN.items():
            if _under(module, owner):
                wrong += ["%s imports %s" % (module, t) for t in sorted(targets)
                          if any(_under(t, b) for b in banned)
                          and not any(_under(module, o) and _under(t, m) for o, m in EXCEPTIONS)]
        if not any(_under(module, u) for u in API_USERS):
            wrong += ["%s imports %s (only the programs may)" % (module, t) for t in sorted(targets)
                      if _under(t, "schoolmon.collector.api") or _under(t, "schoolmon.collector.cli")]
    assert not wrong, "\n".join(wrong)
