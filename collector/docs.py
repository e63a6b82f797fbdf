"""Generated documentation: ``python -m schoolmon.collector.docs [--write]``.

Renders the configuration reference of both programs from their schemas into README.md
(between the config-reference markers) and the wire format into docs/protocol.md.
Without ``--write`` it exits 1 when either file is stale (tests use ``stale_files``).
"""
import os
import sys
from typing import Dict, List

from schoolmon.agent.config import SCHEMA as AGENT_SCHEMA
from schoolmon.collector.config import SCHEMA as COLLECTOR_SCHEMA
from schoolmon.protocol import docs as protocol_docs
from schoolmon.protocol.settings import reference

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"


def config_reference() -> str:
    return ("\n### Agent (`schoolmon-agent`)\n\n" + reference(AGENT_SCHEMA)
            + "\n### Collector (`schoolmon-collector`)\n\n" + reference(COLLECTOR_SCHEMA))


def expected(root: str) -> Dict[str, str]:
    """Path → the content it should have."""
    readme_path = os.path.join(root, "README.md")
    with open(readme_path, encoding="utf-8") as fh:
        readme = fh.read()
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return {
        readme_path: head + START + "\n" + config_reference() + END + tail,
        os.path.join(root, "docs", "protocol.md"): protocol_docs.render(),
    }


def stale_files(root: str) -> List[str]:
    stale = []
    for path, content in expected(root).items():
        with open(path, encoding="utf-8") as fh:
            if fh.read() != content:
                stale.append(path)
    return stale


def main(argv: List[str]) -> int:
    root = os.getcwd()
    if "--write" in argv:
        for path, content in expected(root).items():
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(content)
        return 0
    stale = stale_files(root)
    for path in stale:
        print("stale: %s (run `make docs`)" % path)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
