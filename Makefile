# Two commands on a fresh machine: `make demo` (install + the whole job on built-in synthetic data)
# and `make test` (install + the test suite). Both create .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-slow bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import synclip, torch, av, mediapipe, cv2" 
	touch $@

demo: install
	$(BIN)/synclip demo --out demo

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/prepare.py

clean:
	rm -rf demo .pytest_cache
