# Centrala developer entry points: `make run`, `make test` (what CI runs), `make bench`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/
PYTEST_ARGS ?=
# Debian packages the end-to-end tests drive, as package:command (the command
# tells whether the package is already there). Later issues append here.
DEBIAN_TEST_PKGS ?= sip-tester:sipp postgresql:pg_ctlcluster fail2ban:fail2ban-regex baresip:baresip

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench soak check clean distclean deb-test-pkgs deb-bench-pkgs

run: $(VENV)/.installed
	exec $(BIN)/centrala run -c $(CONFIG)

test: $(VENV)/.installed-test deb-test-pkgs
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Debian packages the benchmarks compare against, as package:command.
DEBIAN_BENCH_PKGS ?= sip-tester:sipp kamailio:kamailio
BENCH_REGISTER_ARGS ?= --step-seconds 5 --runs 3 --memory-users 10000,100000
# Soak length in minutes and extra arguments (python -m bench.soak --help).
SOAK_MINUTES ?= 10
SOAK_ARGS ?=

# Each benchmark writes its JSON; bench.results turns them into bench/RESULTS.md
# and bench/results.json (the machine, the commands, the figures, the targets).
bench: $(VENV)/.installed-bench deb-bench-pkgs
	$(BIN)/python -m bench.parser --json bench/parser.json
	$(BIN)/python -m bench.register $(BENCH_REGISTER_ARGS) --json bench/register.json
	$(BIN)/python -m bench.cps --quick --json bench/cps.json
	$(BIN)/python -m bench.media --json bench/media.json
	$(BIN)/python -m bench.transcode --json bench/transcode.json
	$(BIN)/python -m bench.results

# Mixed traffic at half the maximum measured by `make bench`, then a leak check.
soak: $(VENV)/.installed-bench deb-bench-pkgs
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES) --json bench/soak.json $(SOAK_ARGS)

check: $(VENV)/.installed
	$(BIN)/centrala check -c $(CONFIG)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The modules setup.py compiles with mypyc: editing one means rebuilding it.
COMPILED_SOURCES := $(shell grep -oE '"(switch|media)/[a-z_/]*\.py"' setup.py | tr -d '"')
BUILD_INPUTS := pyproject.toml setup.py $(COMPILED_SOURCES)

# One stamp per set of extras; each is redone when the build inputs change.
$(VENV)/.installed: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $@

deb-bench-pkgs:
	@$(MAKE) --no-print-directory deb-test-pkgs DEBIAN_TEST_PKGS="$(DEBIAN_BENCH_PKGS)"

deb-test-pkgs:
	@missing=; for pc in $(DEBIAN_TEST_PKGS); do \
	  command -v "$${pc#*:}" >/dev/null 2>&1 || missing="$$missing $${pc%%:*}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the tests:$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name '*.so' -type f -exec rm -f {} +
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -f $(VENV)/.installed $(VENV)/.installed-test $(VENV)/.installed-bench

distclean: clean
	rm -rf $(VENV)
