"""The analysis benchmark still runs (a tiny configuration, so it stays fast)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "analysis.py"


def test_benchmark_runs_on_a_tiny_study(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("analysis_benchmark", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (
        module.main(["--readers", "20", "--cases", "30", "--bootstrap", "50", "--repeat", "1"]) == 0
    )
    out = capsys.readouterr().out
    for stage in ("reading", "tables", "bootstrap (50)", "Obuchowski-Rockette", "total"):
        assert stage in out
