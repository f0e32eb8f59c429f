# The survey web app only: requirements/app.txt, never TensorFlow (bundles are built elsewhere
# and imported with `flask study import` or through the organiser pages).
#
#   docker build -t secbir-app .
#   docker run -p 8000:8000 -e SECRET_KEY=... -e DATABASE_URL=postgresql://... \
#       -v secbir-data:/data secbir-app
#   (without DATABASE_URL the SQLite database lives in the /data volume too)

# ---- build stage: compile wheels for the pinned requirements
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements/app.txt requirements.txt
RUN python -m venv /venv \
    && /venv/bin/pip install --upgrade pip \
    && /venv/bin/pip install -r requirements.txt

# ---- runtime stage: the virtualenv and the app, run by an unprivileged user
FROM python:3.11-slim AS runtime
ENV PATH="/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=wsgi.py \
    HOST=0.0.0.0 \
    PORT=8000 \
    STUDY_IMAGES=/data/study-images \
    BUNDLE_ROOT=/data/bundles \
    DATABASE_URL=sqlite:////data/secbir.sqlite
# pg_dump/pg_restore for `flask db-backup` on PostgreSQL (keep it at or above the server's major).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /srv/app --shell /usr/sbin/nologin app \
    && mkdir -p /data/study-images /data/bundles /srv/app/instance \
    && chown -R app:app /data /srv/app
COPY --from=build /venv /venv
WORKDIR /srv/app
COPY --chown=app:app app/ app/
COPY --chown=app:app templates/ templates/
COPY --chown=app:app static/ static/
COPY --chown=app:app migrations/ migrations/
COPY --chown=app:app wsgi.py gunicorn.conf.py boot.sh ./
USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["./boot.sh"]
