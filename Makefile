# tumorsynth: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-fast lint format bench clean

# CPU torch first: an unpinned torch on a machine without one pulls a multi-GB CUDA build
# (see DEVELOPERS.md). The project's own requirement stays a range (torch>=2.8). Then the numba
# kernels are compiled and cached once (`tumorsynth warmup`), so the first run starts at once.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q "torch>=2.8"
	$(BIN)/python -m pip install -q -e ".[train,test,spars,aslseg]"
	$(BIN)/tumorsynth warmup
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tumorsynth generate --n-cases 3 --out demo_output --seed 0 --overwrite
	@echo "demo dataset written to demo_output/ (open imagesTr/ and labelsTr/ in any NIfTI viewer)"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/synthesis_speed.py

clean:
	rm -rf $(VENV) demo_output build *.egg-info .pytest_cache .ruff_cache
