"""gunicorn settings, all overridable from the environment (see README, "Running the app")."""

import multiprocessing
import os
import re
from typing import Any

from gunicorn.glogging import Logger

# URLs that hold a secret token: invitation and password-reset links.
INVITE_PATH = re.compile(r"/(invite|password/reset)/[^/?\s]+")


def _int(name: str, default: int) -> int:
    """An integer environment variable, or `default` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


class RedactingLogger(Logger):
    """The standard logger, minus link tokens: a log file must not hold valid links."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        """The access-log fields with /invite/<token> replaced by /invite/[redacted] (and
        /password/reset/<token> alike)."""
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):
            if isinstance(atoms.get(key), str):
                atoms[key] = INVITE_PATH.sub(r"/\1/[redacted]", atoms[key])
        return atoms


_address = f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000)}"
bind = os.environ.get("GUNICORN_BIND") or _address
# The usual 2 x cores + 1, capped: each worker holds its own database connections.
workers = _int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, _int("MAX_WORKERS", 8)))
threads = _int("GUNICORN_THREADS", 2)
timeout = _int("GUNICORN_TIMEOUT", 120)  # a large bundle upload may take a while
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
logger_class = RedactingLogger
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Trust X-Forwarded-* headers only from the proxies named here (by default: none).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")
# Load the app once in the master: a killed worker is replaced in a fraction of a second instead
# of re-importing everything (measured by benchmarks/faults.py: 0.16 s against 8 s).
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"


def post_fork(server: Any, worker: Any) -> None:
    """Give each worker its own database connections: none may be shared across a fork."""
    if not preload_app:
        return
    from app.extensions import db
    from wsgi import app

    with app.app_context():
        db.engine.dispose(close=False)
