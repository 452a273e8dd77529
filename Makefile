# Every way ARC is run goes through here; CI calls the same targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall when the dependency list changes.
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: up demo test lint typecheck unit bench bench-receive bench-broker bench-dispatch bench-console bench-soak browser clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ARC needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

up: $(STAMP)
	$(BIN)/arc up

# The same centre with demonstration accounts (README: "Trying it").
demo: $(STAMP)
	$(BIN)/arc up --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests drive Debian's Chromium through Playwright (no browser
# download), with CJK fonts so that the screenshots read as the operators see
# the pages. Installed here when missing; without Chromium the tests fail.
CHROMIUM ?= /usr/bin/chromium
CJK_FONTS := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser:
	@{ test -x $(CHROMIUM) && test -e $(CJK_FONTS); } || { \
		echo "installing $(BROWSER_PACKAGES) for the browser tests (Debian packages)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
		{ $$SUDO apt-get update >/dev/null && \
		  $$SUDO apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) >/dev/null; }; }
	@test -x $(CHROMIUM) || { echo "no Chromium at $(CHROMIUM): the browser tests need it"; exit 1; }

# The whole suite, with 100% branch coverage of protocols/ enforced.
test: lint typecheck browser
	$(BIN)/pytest --cov --cov-report=term-missing

bench: $(STAMP)
	$(BIN)/python -m loadtest.codec_bench
	$(BIN)/python -m loadtest.dispatch_bench
	$(BIN)/python -m loadtest.console_bench
	$(BIN)/python -m loadtest.broker_bench
	$(BIN)/python -m loadtest.receive_suite

# The receive path alone, end to end (about 5 minutes).
bench-receive: $(STAMP)
	$(BIN)/python -m loadtest.receive_suite

# What a fetch costs the embedded broker as its log grows (about a minute).
bench-broker: $(STAMP)
	$(BIN)/python -m loadtest.broker_bench

# The dispatcher alone: classified signals/s and signal→incident latency (about 2 minutes).
bench-dispatch: $(STAMP)
	$(BIN)/python -m loadtest.dispatch_bench

# The console: signal→live-queue latency at 1,000 signals/s (about 1 minute).
bench-console: $(STAMP)
	$(BIN)/python -m loadtest.console_bench

# The whole centre under a steady 1,000 signals/s for 20 minutes, a line a minute
# (python -m loadtest.soak --help: longer, other rates). Not part of `make bench`.
bench-soak: $(STAMP)
	$(BIN)/python -m loadtest.soak --minutes 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
