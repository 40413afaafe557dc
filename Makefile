# Two entry points (see README): `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.phononft-installed
JOBS ?= 2

.PHONY: demo test setup clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: a CPU wheel; an unpinned torch would pull gigabytes of CUDA packages
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	tools/install_profiles.sh

# The embedded demo end to end: results/summary/metrics.csv, results/figures/, results/report.html
demo: setup
	OMP_NUM_THREADS=1 $(BIN)/snakemake --cores $(JOBS)
	$(BIN)/snakemake --report results/report.html

# The test suite (CI runs this through .ci/run)
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -ra --durations=15

clean-results:
	rm -rf results .snakemake
