# Daily commands: `make demo` (set up and run the survey on a demo study), `make test`, `make lint`.
# Every step is skipped when its output is already there.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA := data/synthetic
RUN := models/demo
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo bundle test lint format venv clean-demo

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements/app.txt requirements/training.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DATA)/HAM10000_metadata.csv: | $(VENV)/.installed
	$(PY) -m training synth --out $(DATA) --images 1500 --size 128 --seed 0

$(RUN)/study/manifest.json: $(DATA)/HAM10000_metadata.csv | $(VENV)/.installed
	$(PY) -m training run --preset demo --data $(DATA) --out $(RUN)

bundle: $(RUN)/study/manifest.json
	@echo "study bundle: $(abspath $(RUN)/study)"

demo: bundle

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-demo:
	rm -rf $(DATA) $(RUN) instance/demo.sqlite*
