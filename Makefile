# The two commands of the README. Both create .venv when missing and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PATH := $(abspath $(BIN)):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# One id per `make` invocation: in `make book test` the browser test finds the book that `make book`
# built in this same run (the id is stamped into _build/html) and does not build it again.
export SOFTSEG_RUN_ID := $(shell date +%s%N)-$(shell echo $$PPID)

.PHONY: book test install chromium clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## chromium: Debian's headless browser for tests/test_browser.py, installed only when missing.
## (Playwright drives it through executable_path; Playwright's own browser download is never used.)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

## make book: build the HTML book with every notebook executed in the fast preset.
book: $(STAMP)
	$(BIN)/jupyter-book build . --all --keep-going --warningiserror
	@echo "$(SOFTSEG_RUN_ID)" > _build/html/.softseg-run-id
	@echo "book: $(CURDIR)/_build/html/index.html"

## make test: unit tests, every notebook of _toc.yml executed with papermill, and the browser test
## (builds the book, opens every page in headless Chromium, screenshots in _build/screenshots/).
test: $(STAMP) chromium
	SOFTSEG_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

clean:
	rm -rf _build
