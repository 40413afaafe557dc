# Two entry points (see README): `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.phononft-installed
JOBS ?= 2
# Where the torch wheel comes from: PyTorch's CPU index by default (a plain `pip install torch` on Linux gives the
# CUDA build, gigabytes). GPUs: `make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128` (the CUDA version
# your driver supports) in a fresh clone or after `rm -rf .venv`. Offline, pip's find-links (pip.conf, PIP_FIND_LINKS)
# still apply.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test setup clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, from TORCH_INDEX (CPU by default); the project then finds it installed (torch>=2.2)
	$(BIN)/python -m pip install --quiet torch==2.13.0 --index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	tools/install_profiles.sh

# The embedded demo end to end: results/summary/metrics.csv, results/figures/, results/report.html (the greedy
# scheduler: ~100 short jobs, no ILP solve between them)
demo: setup
	OMP_NUM_THREADS=1 $(BIN)/snakemake --cores $(JOBS) --scheduler greedy
	$(BIN)/snakemake --report results/report.html

# The test suite (CI runs this through .ci/run)
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -ra --durations=15

clean-results:
	rm -rf results .snakemake
