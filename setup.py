"""Package discovery for the one `schoolmon` distribution.

The contract fixes the top-level folders (agent/, collector/, protocol/) while they install
as `schoolmon.agent` etc. pyproject.toml alone cannot map folders to names *and* discover
the packages under them, so a hand-kept list forgot folders; this walks the tree instead:
every folder below a root that is not a cache becomes a package (data-only folders such as
collector/static and Alembic's versions/ included), so nothing can be left out of the wheel.
"""
from setuptools import find_namespace_packages, setup

ROOTS = {"schoolmon.protocol": "protocol", "schoolmon.agent": "agent", "schoolmon.collector": "collector"}


def _packages():
    names = []
    for name, folder in ROOTS.items():
        names.append(name)
        names += ["%s.%s" % (name, sub) for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]
    return names


setup(packages=_packages(), package_dir=dict(ROOTS))
