# The two README commands: `make run` (set up, then run the daemon) and `make test` (set up, then the tests).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

run: setup
	$(VENV)/bin/livejam run

test: setup
	$(PY) -m pytest -q
