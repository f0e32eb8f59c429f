"""The WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import sys

from app.config import ConfigError
from app.factory import create_app

try:
    app = create_app()
except ConfigError as problem:
    # One clear sentence instead of a traceback: the environment needs fixing, not the code.
    print(f"Cannot start: {problem}", file=sys.stderr)
    raise SystemExit(1) from None
