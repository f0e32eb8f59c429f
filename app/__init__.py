"""The survey web application: `create_app()` (in `app.factory`) builds it from the environment.

Importing the package loads nothing else: `app.analysis` runs on a CSV without Flask or a
database. The factory's public names are still importable from here (`from app import
create_app`, as Flask's app discovery and older callers expect); they load on first use.
"""

from importlib import import_module
from typing import Any

_FACTORY_NAMES = frozenset({"CONTENT_SECURITY_POLICY", "DATABASE_INT_MAX", "create_app"})


def __getattr__(name: str) -> Any:
    """The factory's public names, imported from `app.factory` when first asked for."""
    if name in _FACTORY_NAMES:
        # import_module, not an import statement: the type checker of app.analysis need not
        # follow it into the web application.
        return getattr(import_module("app.factory"), name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")
