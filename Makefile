# make demo — set up and run the whole system on embedded defaults.
# make test — set up (virtualenv, install, the real servers the tests use) and run every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test venv servers lint typecheck py38 unit docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "the collector needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Debian's mosquitto, victoria-metrics, postgresql and chromium; installs them when run as root (CI).
servers:
	bash deploy/dev/install-test-servers.sh

lint: venv
	$(BIN)/ruff check .
	# The agent and the wire format must keep running on Python 3.8 (Windows 7 lab PCs).
	$(BIN)/vermin -q --no-tips --violations --target=3.8- --eval-annotations agent protocol

# mypy cannot follow the editable install's folder mapping: give it a tree of links.
typecheck: venv
	@mkdir -p build/mypy/schoolmon && for d in protocol agent collector; do ln -sfn ../../../$$d build/mypy/schoolmon/$$d; done
	MYPYPATH=build/mypy $(BIN)/mypy --ignore-missing-imports --follow-imports=silent -p schoolmon.protocol -p schoolmon.agent -p schoolmon.collector

# The agent's own tests under a real Python 3.8 when this machine has one.
py38:
	bash deploy/dev/test-py38.sh

# Any skip outside the allow-list in tests/conftest.py fails the run: everything is installed here.
# Two workers (pytest-xdist), a file to a worker: most tests wait on real servers, so two
# processes keep two cores busy; every test picks its own ports, folders and namespaces.
# TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: venv servers lint typecheck py38
	SCHOOLMON_STRICT_SKIPS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

docs: venv
	$(BIN)/python -m schoolmon.collector.docs --write

demo: venv
	$(BIN)/schoolmon-collector demo

bench: venv servers
	$(BIN)/python bench/agent_footprint.py
	$(BIN)/python bench/ingest_throughput.py
	$(BIN)/python bench/ingest_micro.py
	$(BIN)/python bench/store_commit.py

clean:
	rm -rf $(VENV) .venv38 .mypy_cache .ruff_cache build *.egg-info
