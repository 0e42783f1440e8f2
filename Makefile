# The two quick-start commands: `make run` (set up and serve) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# create the virtualenv, install, migrate the SQLite database, serve on 127.0.0.1:8000
run: $(STAMP)
	$(VENV)/bin/smsguard serve

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) instance .pytest_cache
