"""The package's boundaries: a stable public API and no web, database or training imports."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import app.analysis as analysis

FORBIDDEN = {
    "flask",
    "flask_sqlalchemy",
    "sqlalchemy",
    "tensorflow",
    "keras",
    "training",
    "matplotlib",
}


def test_public_api_is_exported() -> None:
    for name in (
        "read_responses",
        "responses_from_rows",
        "analyse",
        "render_text",
        "confusion_svg",
        "confusion_png",
        "Responses",
        "ResponsesError",
        "Scale",
        "CLASSES",
        "with_pair",
    ):
        assert name in analysis.__all__ and hasattr(analysis, name)
    params = inspect.signature(analysis.analyse).parameters
    assert list(params) == [
        "responses",
        "bootstrap",
        "seed",
        "taxonomy",
        "groups",
        "names",
        "pairs",
        "scale",
    ]
    assert (params["bootstrap"].default, params["seed"].default) == (2000, 0)
    assert analysis.CLASSES == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def test_no_forbidden_imports() -> None:
    package = Path(analysis.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
                if name.startswith("app."):
                    assert name.startswith("app.analysis"), f"{path.name} imports {name}"


def test_importing_the_package_loads_no_web_or_database_code() -> None:
    # The AST check above sees only the package's own files; the parent package `app` ran
    # Flask's factory on import until it moved to app.factory. A fresh interpreter tells.
    script = (
        "import sys, app.analysis, app.analysis.__main__\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(FORBIDDEN | {'werkzeug', 'jinja2', 'flask_login'})!r})))"
    )
    root = Path(analysis.__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_the_factory_is_still_importable_from_the_package() -> None:
    from app import create_app
    from app.factory import create_app as factory_create_app

    assert create_app is factory_create_app
