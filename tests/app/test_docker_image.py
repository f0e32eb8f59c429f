"""The Docker image's file lists: the Dockerfile copies all the app needs, .dockerignore lets it.

The Dockerfile copies the app by an explicit list and .dockerignore is a whitelist; a new
first-party package imported by the app (or a folder it opens) must be added to both, or the
image would fail at start-up. `.ci/container` builds and runs the image for real.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the container starts from: the WSGI module, gunicorn's settings, the migrations' env.py.
ENTRIES = ("wsgi.py", "gunicorn.conf.py", "migrations")
OPENED_FOLDER = re.compile(r'ROOT / "([\w.-]+)"')


def python_files(root: Path, entry: str) -> list[Path]:
    """The Python files of a top-level module or folder."""
    path = root / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def first_party(root: Path, name: str) -> str | None:
    """The top-level entry that module `name` comes from in `root`, if it is one of ours."""
    if (root / name).is_dir():
        return name
    if (root / f"{name}.py").is_file():
        return f"{name}.py"
    return None


def needed_entries(root: Path, entries: tuple[str, ...] = ENTRIES) -> set[str]:
    """Top-level files and folders the entries need: imports followed, opened folders added."""
    needed: set[str] = set()
    todo = list(entries)
    while todo:
        entry = todo.pop()
        if entry in needed:
            continue
        needed.add(entry)
        for file in python_files(root, entry):
            source = file.read_text()
            names = set(OPENED_FOLDER.findall(source))
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
            for name in names:
                found = first_party(root, name)
                if found is not None and found not in needed:
                    todo.append(found)
    return needed


def copied_sources(dockerfile: str) -> tuple[set[str], set[str]]:
    """(all COPY sources from the build context, those of the last stage), without '/' ends."""
    every: set[str] = set()
    last: set[str] = set()
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            last = set()
        if words[:1] != ["COPY"] or any(word.startswith("--from") for word in words):
            continue
        sources = {word.rstrip("/") for word in words[1:-1] if not word.startswith("--")}
        every |= sources
        last |= sources
    return every, last


def whitelist(dockerignore: str) -> list[str]:
    """The paths a '*'-first .dockerignore lets back in (the '!' lines), without '/' ends."""
    lines = [line.strip() for line in dockerignore.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    assert lines[0] == "*", ".dockerignore must start by excluding everything"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def test_the_scanner_follows_imports_and_opened_folders(tmp_path: Path) -> None:
    (tmp_path / "wsgi.py").write_text("from app import create_app\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text(
        'import os\nROOT = 1\nT = ROOT / "templates"\n\ndef f():\n    import shared.x\n'
    )
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_text("import json\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "training").mkdir()  # present, never imported: not needed
    found = needed_entries(tmp_path, ("wsgi.py",))
    assert found == {"wsgi.py", "app", "shared", "helper.py", "templates"}


def test_the_dockerfile_copies_everything_the_app_needs() -> None:
    _, runtime = copied_sources((ROOT / "Dockerfile").read_text())
    needed = needed_entries(ROOT) | {"boot.sh"}  # boot.sh: the image's CMD
    assert {"app", "templates", "static", "migrations", "wsgi.py"} <= needed
    missing = needed - runtime
    assert not missing, f"add to the Dockerfile's COPY lines and .dockerignore: {sorted(missing)}"
    assert not {"training", "tests", "benchmarks", "models", "data"} & runtime


def test_dockerignore_lets_in_every_copied_path() -> None:
    every, _ = copied_sources((ROOT / "Dockerfile").read_text())
    allowed = whitelist((ROOT / ".dockerignore").read_text())
    assert "build/wheels" in every and "requirements/app.txt" in every
    blocked = {
        source
        for source in every
        if not any(source == path or source.startswith(path + "/") for path in allowed)
    }
    assert not blocked, f"add to .dockerignore's whitelist: {sorted(blocked)}"
