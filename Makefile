# The two commands of the README. Both create .venv when missing and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test install clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## make book: build the HTML book with every notebook executed in the fast preset.
book: $(STAMP)
	$(BIN)/jupyter-book build . --all --keep-going --warningiserror
	@echo "book: $(CURDIR)/_build/html/index.html"

## make test: unit tests, then every notebook of _toc.yml executed with papermill.
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build
