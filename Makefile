# Daily commands: `make demo` (set up and run the survey on a demo study), `make test`, `make lint`
# (ruff, and mypy on the packages pyproject.toml lists).
# Every step is skipped when its output is already there.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA := data/synthetic
RUN := models/demo
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# pytest-xdist processes; each test file stays on one worker (module fixtures are shared).
PYTEST_WORKERS ?= 2

.PHONY: demo serve bundle test lint format venv clean-demo wheels image base-image

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

# The survey on the demo bundle: migrate, set up the demo study and accounts (idempotent),
# then serve with gunicorn. The secret key is generated once into instance/ (never committed).
# The demo answers to HOST (and, as always, to localhost and 127.0.0.1) unless TRUSTED_HOSTS
# says otherwise.
DEMO_SECRET := instance/demo-secret-key
DEMO_ENV = SECRET_KEY="$$(cat $(DEMO_SECRET))" \
	DATABASE_URL="$${DATABASE_URL:-sqlite:///$(abspath instance/demo.sqlite)}" \
	TRUSTED_HOSTS="$${TRUSTED_HOSTS:-$(HOST)}" \
	FLASK_APP=wsgi.py HOST=$(HOST) PORT=$(PORT)

$(DEMO_SECRET):
	mkdir -p instance
	umask 077 && $(PY) -c 'import secrets; print(secrets.token_hex(32))' > $@

demo: bundle $(DEMO_SECRET)
	export $(DEMO_ENV) && $(VENV)/bin/flask db upgrade \
		&& $(VENV)/bin/flask demo --bundle $(RUN)/study \
		&& exec $(VENV)/bin/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

# Serve whatever the demo database holds, without re-running the set-up.
serve: $(DEMO_SECRET) | $(VENV)/.installed
	export $(DEMO_ENV) && $(VENV)/bin/flask db upgrade \
		&& exec $(VENV)/bin/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

test: $(VENV)/.installed
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-demo:
	rm -rf $(DATA) $(RUN) instance/demo.sqlite*

# The Docker image, built without network for Python (docs/deployment.md, "Building offline"):
# wheels for requirements/app.txt made here on the host (same CPU architecture, Python 3.11),
# then `docker build` installs only those (pip --no-index). BUILD_NETWORK=none also cuts the
# build off from the network; then the base must bring postgresql-client or PG_CLIENT=0.
IMAGE ?= secbir-app
BASE_IMAGE ?= python:3.11-slim
BUILD_NETWORK ?= default
PG_CLIENT ?= 1
WHEELS := build/wheels

$(WHEELS)/.complete: requirements/app.txt | $(VENV)/.installed
	rm -rf $(WHEELS)
	$(PY) -m pip wheel --quiet --disable-pip-version-check -r requirements/app.txt -w $(WHEELS)
	touch $@

wheels: $(WHEELS)/.complete

image: wheels
	docker build --network $(BUILD_NETWORK) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		--build-arg PG_CLIENT=$(PG_CLIENT) -t $(IMAGE) .

# A Debian bookworm base (python3.11, python3-venv, postgresql-client) from a Debian mirror with
# debootstrap, imported into Docker without any registry; prints the tag to build on.
base-image:
	.ci/bookworm-base
