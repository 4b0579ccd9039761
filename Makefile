# Two commands on a fresh machine: `make demo` (install + the whole job on built-in synthetic data)
# and `make test` (install + the test suite). Both create .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# bash with pipefail: a recipe line `pip ... | sed ...` fails when pip fails, not only when sed does.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: install demo test test-slow test-browser bench clean

install: $(VENV)/.installed

# This machine's pip index warns about a missing mirror on every run; that line is dropped, the rest kept
# (sed, unlike grep -v, succeeds when it prints nothing, so only pip's own status decides).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | sed '/^WARNING: Location/d'
	$(BIN)/python -m pip install -q -e '.[test]' 2>&1 | sed '/^WARNING: Location/d'
	$(BIN)/python -c "import synclip, torch, av, mediapipe, cv2"
	touch $@

demo: install
	$(BIN)/synclip demo --out demo

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# The studio page in headless Chromium: Debian's chromium + its driver + a CJK font for the Chinese UI
# (apt-get, as root or through sudo), then the browser test, writing its screenshots to docs/.
test-browser: install
	command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q . || \
	  { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -q && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q chromium chromium-driver fonts-wqy-zenhei; }
	SYNCLIP_SCREENSHOTS=docs $(BIN)/python -m pytest -q -m browser tests/test_browser.py

bench: install
	$(BIN)/python benchmarks/prepare.py

clean:
	rm -rf demo .pytest_cache
