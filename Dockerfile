# The survey web app only: requirements/app.txt, never TensorFlow (bundles are built elsewhere
# and imported with `flask study import` or through the organiser pages).
#
# The build needs no network for Python: the wheels are built beforehand on a host with the
# same CPU architecture and Python minor version (3.11) and copied in. `make image` does both:
#
#   make image                                    # = make wheels, then docker build
#   make image BASE_IMAGE=secbir-base:bookworm BUILD_NETWORK=none   # fully offline (see docs)
#
#   docker run -p 8000:8000 -e SECRET_KEY=... -e DATABASE_URL=postgresql://... \
#       -v secbir-data:/data secbir-app
#   (without DATABASE_URL the SQLite database lives in the /data volume too)
#
# The base image must be Debian-like with python3.11 (and python3-venv): python:3.11-slim by
# default, or a Debian bookworm base made with debootstrap (.ci/bookworm-base, `make
# base-image`). Only the build context's whitelist in .dockerignore is sent to the daemon.

ARG BASE_IMAGE=python:3.11-slim

# ---- build stage: a virtualenv from the pre-built wheels, offline (--no-index)
FROM ${BASE_IMAGE} AS build
LABEL org.secbir.image=build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# build/wheels/ is made by `make wheels` (pip wheel -r requirements/app.txt -w build/wheels).
COPY build/wheels/ /wheels/
COPY requirements/app.txt requirements.txt
RUN python3 -m venv /venv \
    && /venv/bin/pip install --no-index --find-links /wheels -r requirements.txt \
    && /venv/bin/python -c "import flask, sqlalchemy, psycopg, numpy, scipy, PIL, gunicorn"

# ---- runtime stage: the virtualenv and the app, run by an unprivileged user
FROM ${BASE_IMAGE} AS runtime
# Marks the images of both stages (.ci/container prunes replaced builds by it).
LABEL org.secbir.image=app
ENV PATH="/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=wsgi.py \
    HOST=0.0.0.0 \
    PORT=8000 \
    STUDY_IMAGES=/data/study-images \
    BUNDLE_ROOT=/data/bundles \
    DATABASE_URL=sqlite:////data/secbir.sqlite
# pg_dump/pg_restore for `flask db-backup` on PostgreSQL (keep them at or above the server's
# major version). A base that already has them (the debootstrapped one) needs no network here;
# otherwise apt-get fetches postgresql-client, or PG_CLIENT=0 builds without them (and offline).
ARG PG_CLIENT=1
RUN if [ "$PG_CLIENT" = 1 ] && ! command -v pg_dump >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends postgresql-client \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /srv/app --shell /usr/sbin/nologin app \
    && mkdir -p /data/study-images /data/bundles /srv/app/instance \
    && chown -R app:app /data /srv/app
COPY --from=build /venv /venv
WORKDIR /srv/app
# What the app needs at run time, by an explicit list: tests/app/test_docker_image.py checks it
# against the app's imports and the folders it opens, and .dockerignore's whitelist against this
# list.
COPY --chown=app:app app/ app/
COPY --chown=app:app studybundle/ studybundle/
COPY --chown=app:app templates/ templates/
COPY --chown=app:app static/ static/
COPY --chown=app:app migrations/ migrations/
COPY --chown=app:app wsgi.py gunicorn.conf.py boot.sh ./
# Bytecode now, so that no start compiles the app again (PYTHONDONTWRITEBYTECODE: none later).
RUN python -m compileall -q app migrations wsgi.py gunicorn.conf.py
USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4).status != 200)"
CMD ["./boot.sh"]
