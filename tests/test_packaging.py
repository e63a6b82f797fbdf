"""The wheel holds every package folder and data file, and its console scripts run.

Built as a user would get it (pip wheel), installed into a fresh virtualenv without
touching the source tree; the dependencies come from the test virtualenv through a .pth
line (no download, and the editable install's finder there stays inactive, since .pth
files are only processed in site directories).
"""
import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"agent": "schoolmon/agent", "collector": "schoolmon/collector", "protocol": "schoolmon/protocol"}

pytestmark = pytest.mark.slow


def _source_files():
    for folder, inside in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path, "%s/%s" % (inside, path.relative_to(ROOT / folder).as_posix())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                            str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "warning" not in build.stderr.lower(), build.stderr
    (path,) = out.glob("schoolmon-*.whl")
    return path


def test_wheel_holds_every_source_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [inside for _, inside in _source_files() if inside not in names]
    assert not missing, "files of the tree missing from the wheel: %s" % missing
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


def test_installed_wheel_runs(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    new_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(new_site, "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    where = subprocess.run([str(py), "-c", "import schoolmon.collector, schoolmon.agent; "
                            "print(schoolmon.collector.__file__); print(schoolmon.agent.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=env).stdout
    assert str(ROOT) not in where and new_site in where, where
    collect = subprocess.run([str(env_dir / "bin" / "schoolmon-agent"), "collect", "--family", "health"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path,
                             env=dict(env, SCHOOLMON_AGENT_SCHOOL="79000001"))
    assert collect.returncode == 0, collect.stderr
    assert '"health"' in collect.stdout or "/health" in collect.stdout, collect.stdout
    helped = subprocess.run([str(env_dir / "bin" / "schoolmon-collector"), "--help"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout
