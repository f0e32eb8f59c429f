"""Power and sample size from a study's own OR variance components (`app/analysis/power.py`).

Checked here against what the formula must give whatever tool computes it: at the pilot's
own readers and cases the planned test is the test just run (its noncentrality is the
observed F, its df2 Hillis's), power rises with readers, cases and the effect, the
bisection finds the first case count a scan would, and a study too small to estimate the
components says so with the minimum it needs. RJafroc's own figures are checked in
`test_power_reference.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import special

from app.analysis import analyse, responses_from_rows
from app.analysis.__main__ import main
from app.analysis.plots import power_png, power_svg
from app.analysis.power import (
    MAX_CASES,
    MINIMUM,
    PowerInputError,
    cases_needed,
    components,
    endpoint_power,
    plan_endpoint,
    plan_power,
    power,
)
from app.analysis.results import AnalysisResult, PowerComponents
from tests.analysis.helpers import answer, reference_rows, to_csv


@pytest.fixture(scope="module")
def thesis(mrmc_reference_dir: Path) -> AnalysisResult:
    """The thesis study (`../shared/reference/mrmc/thesis_study.csv`), analysed."""
    rows = reference_rows(mrmc_reference_dir / "thesis_study.csv")
    return analyse(responses_from_rows(rows), bootstrap=0)


def small_study(readers: int, cases: int, seed: int = 7) -> list[dict[str, Any]]:
    """`readers` readers, `cases` cases each in both tasks, right at random (more often with
    the aid, and more often for some readers and some cases), seeded."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(0, 0.8, readers)
    ease = rng.normal(0, 1.0, cases)
    classes = ("nv", "mel", "bkl")
    rows = []
    for r in range(readers):
        for c in range(cases):
            truth = classes[c % 3]
            for task in (1, 2):
                chance = 1 / (1 + math.exp(-(0.3 + 0.6 * (task - 1) + skill[r] + ease[c])))
                diagnosis = truth if rng.random() < chance else classes[(c + 1) % 3]
                rows.append(answer(f"R{r}", f"ISIC_{c:07d}", truth, task, diagnosis, 3))
    return rows


def test_at_the_pilots_own_size_the_planned_test_is_the_test_just_run(
    thesis: AnalysisResult,
) -> None:
    block = thesis["statistics"]["or_hillis"]["proportion_correct"]
    c = components(block)
    assert not isinstance(c, str)
    # The thesis: 9 readers, each read 100 of the 505 cases: K* is the 100 behind a figure.
    assert c["readers"] == 9 and c["cases"] == 100
    equality = block["equality"]
    assert equality is not None and equality["df2"] is not None
    effect = abs(block["differences"][0]["estimate"])
    # ncp = J d^2 / (2 den) is the observed F, df2 the Hillis df (VarTR is not truncated here).
    f_observed, df2 = equality["F"], equality["df2"]
    critical = special.fdtri(1, df2, 0.95)
    expected = 1 - special.ncfdtr(1, df2, f_observed, critical)
    assert power(c, 9, 100, effect) == pytest.approx(expected, rel=1e-12)


def test_power_rises_with_readers_cases_and_effect(thesis: AnalysisResult) -> None:
    c = components(thesis["statistics"]["or_hillis"]["melanoma_auc"])
    assert not isinstance(c, str)
    by_cases = power(c, 6, np.arange(2, 600), 0.08)
    assert np.all(np.diff(by_cases) > 0)
    by_readers = power(c, np.arange(2, 40), 100, 0.08)
    assert np.all(np.diff(by_readers) > 0)
    by_effect = power(c, 6, 100, np.linspace(0.01, 0.3, 30))
    assert np.all(np.diff(by_effect) > 0)
    # With no effect the test rejects at its level.
    assert power(c, 6, 100, 0.0) == pytest.approx(0.05, abs=1e-9)


def test_power_is_a_number_far_in_the_tails() -> None:
    """scipy's noncentral F is NaN at a noncentrality in the thousands, and its F quantile
    loses its digits at a df2 of 1e12: power is 1 in the first case, a chi-square's in the
    second."""
    c: PowerComponents = {
        "var_tr": 0.0,
        "var": 0.002,
        "cov1": 0.0019,
        "cov2": 0.0,
        "cov3": 0.0,
        "readers": 18,
        "cases": 50.0,
    }
    assert power(c, 18, 50, 0.3) == 1.0  # ncp = 18 * 0.09 / (2 * 0.0001) = 8100
    nearly_flat = {**c, "cov2": 0.00005, "cov3": 0.0, "var": 0.00195}  # Var - Cov1 - m = 0
    chi = 1 - special.chndtr(special.chdtri(1, 0.05), 1, 5 * 0.02**2 / (2 * 0.00025))
    assert 0.4 < chi < 0.6
    assert power(nearly_flat, 5, 50, 0.02) == pytest.approx(chi, rel=1e-9)


def test_the_bisection_finds_the_first_case_count_a_scan_finds(thesis: AnalysisResult) -> None:
    for name in ("proportion_correct", "melanoma_sensitivity", "malignant_auc"):
        c = components(thesis["statistics"]["or_hillis"][name])
        assert not isinstance(c, str)
        for row in cases_needed(c, [3, 5, 9, 15], 0.1, (0.8, 0.9)):
            scan = power(c, row["readers"], np.arange(2, MAX_CASES + 1), 0.1)
            above = np.flatnonzero(scan > row["target"])
            if above.size == 0:
                assert row["cases"] is None and row["power"] is None
            else:
                assert row["cases"] == int(above[0]) + 2, (name, row)
                assert row["power"] == pytest.approx(scan[above[0]], rel=1e-12)


def test_the_plan_covers_every_endpoint_with_the_observed_and_given_effects(
    thesis: AnalysisResult,
) -> None:
    plan = plan_power(thesis, effects=[0.05, -0.1], readers=(4, 9), cases=(50, 200))
    assert list(plan) == list(thesis["statistics"]["or_hillis"])
    pc = plan["proportion_correct"]
    assert pc["available"] and pc["comparison"] == "se_cbir - unaided"
    assert pc["observed_effect"] == pytest.approx(0.2266666667)
    assert pc["effects"] == [pytest.approx(0.2266666667), 0.05, 0.1]  # sizes, observed first
    # The grid: effects x readers (with the study's own 9) x cases (with its own 100).
    assert len(pc["table"]) == 3 * 2 * 3
    assert {(r["readers"], r["cases"]) for r in pc["table"]} == {
        (j, k) for j in (4, 9) for k in (50, 100, 200)
    }
    c = pc["components"]
    assert c is not None
    for row in pc["table"]:
        assert row["power"] == pytest.approx(power(c, row["readers"], row["cases"], row["effect"]))
    # Needed: every effect x target x reader count; the observed effect is large.
    assert len(pc["needed"]) == 3 * 2 * 2
    nine = next(
        n for n in pc["needed"] if n["readers"] == 9 and n["target"] == 0.8 and n["effect"] > 0.2
    )
    assert nine["cases"] == 8 and nine["power"] is not None and nine["power"] > 0.8
    json.dumps(plan, allow_nan=False)  # JSON as it is


def test_bad_effects_and_alphas_are_refused_with_a_reason(thesis: AnalysisResult) -> None:
    for effect in (0.0, 1.5, math.nan):
        with pytest.raises(PowerInputError, match="an effect is a difference"):
            plan_power(thesis, effects=[effect])
    with pytest.raises(PowerInputError, match="alpha"):
        plan_power(thesis, alpha=1.0)
    with pytest.raises(PowerInputError, match="at least 2 readers"):
        plan_power(thesis, readers=(1, 5))


def test_a_study_too_small_for_variance_components_says_what_it_needs() -> None:
    result = analyse(responses_from_rows(small_study(readers=1, cases=6)), bootstrap=0)
    plan = plan_power(result)
    block = plan["proportion_correct"]
    assert not block["available"] and block["table"] == [] and block["components"] is None
    assert block["reason"] is not None
    assert block["reason"].startswith("too small to estimate the variance components")
    assert MINIMUM in block["reason"] and "2 readers" in MINIMUM and "2 conditions" in MINIMUM
    # Two readers with varying answers are enough.
    result = analyse(responses_from_rows(small_study(readers=2, cases=6)), bootstrap=0)
    assert plan_power(result)["proportion_correct"]["available"]


def test_equal_means_plan_only_for_a_given_effect() -> None:
    rows = small_study(readers=4, cases=12)
    # Task 2 answered as task 1, but reader R0 gets one more case right and R1 one fewer:
    # the conditions' means are equal, the readers' figures are not.
    first = {(r["reader"], r["image_id"]): r["diagnosis"] for r in rows if r["task"] == 1}
    for row in rows:
        if row["task"] == 2:
            row["diagnosis"] = first[row["reader"], row["image_id"]]
    flip = {"R0": True, "R1": False}  # R0: a wrong answer made right; R1: a right one wrong
    for reader, make_right in flip.items():
        row = next(
            r
            for r in rows
            if r["task"] == 2
            and r["reader"] == reader
            and (r["diagnosis"] == r["truth"]) != make_right
        )
        row["diagnosis"] = row["truth"] if make_right else "df"
    result = analyse(responses_from_rows(rows), bootstrap=0)
    block = result["statistics"]["or_hillis"]["proportion_correct"]
    assert block["available"] and abs(block["differences"][0]["estimate"]) < 1e-12
    plain = endpoint_power(block)
    assert not plain["available"] and plain["observed_effect"] is None
    assert plain["reason"] is not None and "give the effect" in plain["reason"]
    given = endpoint_power(block, effects=[0.1])
    assert given["available"] and given["effects"] == [0.1]


def test_plan_endpoint_picks_the_first_headline_endpoint_with_components(
    thesis: AnalysisResult,
) -> None:
    plan = plan_endpoint(thesis)
    assert plan is not None and plan["endpoint"] == "proportion_correct"
    auc = plan_endpoint(thesis, "melanoma_auc")
    assert auc is not None and auc["kind"] == "auc"
    assert plan_endpoint(thesis, "no_such_endpoint") is None


def test_the_power_plot_draws_a_curve_per_reader_count(thesis: AnalysisResult) -> None:
    plan = plan_endpoint(thesis)
    assert plan is not None
    svg = power_svg(plan, readers=(3, 5))
    assert svg.startswith("<svg") and "Cases per reader" in svg and "Power (%)" in svg
    assert "9 readers (this study)" in svg and "3 readers" in svg and "5 readers" in svg
    assert "22.7 points in proportion correct" in svg
    assert power_png(plan).startswith(b"\x89PNG\r\n\x1a\n")
    small = endpoint_power(
        analyse(responses_from_rows(small_study(1, 6)), bootstrap=0)["statistics"]["or_hillis"][
            "proportion_correct"
        ]
    )
    assert "too small to estimate" in power_svg(small)


def test_the_command_prints_the_power_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(to_csv(small_study(readers=4, cases=12)), encoding="utf-8")
    assert main([str(path), "--power", "--effect", "0.1", "0.2", "--alpha", "0.01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["power"]
    block = out["power"]["proportion_correct"]
    assert block["alpha"] == 0.01 and block["available"]
    assert set(block["table"][0]) == {"effect", "readers", "cases", "power"}
    assert {n["target"] for n in block["needed"]} == {0.8, 0.9}
    assert 0.1 in block["effects"] and 0.2 in block["effects"]
    assert main([str(path), "--power"]) == 0
    text = capsys.readouterr().out
    assert "Proportion correct: from 4 readers, 12 cases per reader" in text
    assert "needed for 80 % power (readers x cases)" in text


def test_the_command_refuses_bad_power_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(to_csv(small_study(readers=4, cases=12)), encoding="utf-8")
    assert main([str(path), "--power", "--effect", "2"]) == 2
    assert "an effect is a difference of two proportions or AUCs" in capsys.readouterr().err
    assert main([str(path), "--effect", "0.1"]) == 2
    assert "--effect and --alpha go with --power" in capsys.readouterr().err
    tiny = tmp_path / "tiny.csv"
    tiny.write_text(to_csv(small_study(readers=1, cases=6)), encoding="utf-8")
    assert main([str(tiny), "--power", "--json"]) == 2
    captured = capsys.readouterr()
    assert "error: no endpoint has power" in captured.err and MINIMUM in captured.err
    assert json.loads(captured.out)["power"]["proportion_correct"]["available"] is False
