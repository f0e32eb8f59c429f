"""The thesis study's reader files, converted and analysed, reproduce every README figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.analysis import analyse, read_responses
from app.analysis.__main__ import main as analysis_main
from app.analysis.responses import CLASSES
from app.analysis.thesis import ThesisFormatError, thesis_rows
from app.analysis.thesis import main as thesis_main

# reference/thesis-study/README.md: PCP, majority vote acc., Task 1 acc., Task 2 acc.,
# Task 1 conf., Task 2 conf.
TABLE_4_II = [
    ("PCP1", 89, 85, 92, 3.38, 4.09),
    ("PCP2", 90, 44, 84, 2.92, 4.00),
    ("PCP3", 89, 60, 74, 2.43, 2.85),
    ("PCP4", 92, 80, 96, 2.51, 3.45),
    ("PCP5", 89, 62, 88, 2.70, 4.41),
    ("PCP6", 86, 66, 83, 4.05, 4.46),
    ("PCP7", 92, 65, 79, 3.84, 4.06),
    ("PCP8", 93, 60, 89, 3.14, 4.00),
    ("PCP9", 88, 38, 79, 3.04, 3.38),
]
K = {code: i for i, code in enumerate(CLASSES)}


def rounds_to(value: float, printed: float, decimals: int) -> bool:
    """Whether value, rounded like the printed figure, gives it."""
    return abs(value - printed) <= 0.5 * 10**-decimals + 1e-9


@pytest.fixture(scope="module")
def thesis_csv(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("thesis") / "responses.csv"
    code = thesis_main(
        [
            str(reference_dir / "readers"),
            str(reference_dir / "majority_vote.json"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def result(thesis_csv: Path) -> dict:
    return analyse(read_responses(thesis_csv), bootstrap=500, seed=0)


def test_per_reader_table(result: dict) -> None:
    assert [row["reader"] for row in result["readers"]] == [row[0] for row in TABLE_4_II]
    for row, (name, mv, acc1, acc2, conf1, conf2) in zip(
        result["readers"], TABLE_4_II, strict=True
    ):
        assert row["cases"] == 100 and row["paired_cases"] == 100, name
        assert round(100 * row["majority_vote_accuracy"]) == mv, name
        assert round(100 * row["unaided"]["accuracy"]) == acc1, name
        assert round(100 * row["se_cbir"]["accuracy"]) == acc2, name
        assert rounds_to(row["unaided"]["confidence"], conf1, 2), name
        assert rounds_to(row["se_cbir"]["confidence"], conf2, 2), name


def test_pooled_accuracies_confidences_and_sds(result: dict) -> None:
    pooled = result["pooled"]
    assert pooled["cases"] == 900
    assert rounds_to(100 * pooled["unaided"]["accuracy"], 62.2, 1)
    assert rounds_to(100 * pooled["se_cbir"]["accuracy"], 84.9, 1)
    assert rounds_to(100 * pooled["majority_vote_accuracy"], 89.8, 1)
    for condition, (all_, right, wrong) in (
        ("unaided", (3.11, 3.35, 2.72)),
        ("se_cbir", (3.86, 4.03, 2.90)),
    ):
        assert rounds_to(pooled[condition]["confidence"], all_, 2), condition
        assert rounds_to(pooled[condition]["confidence_correct"], right, 2), condition
        assert rounds_to(pooled[condition]["confidence_wrong"], wrong, 2), condition
    # The sample standard deviations of the readers' accuracies (not the thesis's 12.7/7.1/2.3).
    assert rounds_to(100 * pooled["sd"]["unaided"], 14.9, 1)
    assert rounds_to(100 * pooled["sd"]["se_cbir"], 7.0, 1)
    assert rounds_to(100 * pooled["sd"]["majority_vote_accuracy"], 2.2, 1)
    assert rounds_to(100 * pooled["mean"]["unaided"], 62.2, 1)


def test_answer_changes(result: dict) -> None:
    changes = result["changes"]
    assert changes["wrong_to_correct"] == 224
    assert changes["wrong_to_correct_majority_agrees"] == 219
    assert changes["correct_to_wrong"] == 20
    assert changes["correct_to_wrong_majority_agreed_with_first"] == 8


def test_confusion_figures(result: dict) -> None:
    confusion = result["confusion"]
    classes = {t: {c["label"]: c for c in confusion["classes"][t]} for t in ("unaided", "se_cbir")}
    # Non-melanomas diagnosed as melanoma, and nevi diagnosed correctly.
    assert classes["unaided"]["mel"]["false_positives"] == 171
    assert classes["se_cbir"]["mel"]["false_positives"] == 81
    assert confusion["unaided"][K["nv"]][K["nv"]] == 444
    assert confusion["se_cbir"][K["nv"]][K["nv"]] == 609
    # Thesis text: lesions diagnosed as bkl fell from 91 to 75; bkl sensitivity rose to 77%.
    assert (classes["unaided"]["bkl"]["diagnosed"], classes["se_cbir"]["bkl"]["diagnosed"]) == (
        91,
        75,
    )
    assert classes["unaided"]["bkl"]["sensitivity"] < 0.5
    assert round(100 * classes["se_cbir"]["bkl"]["sensitivity"]) == 77
    # The thesis text says false positives fell for every class; in these files they fell for
    # every class but nv (21 -> 24 other lesions called nevi).
    for code in CLASSES:
        before, after = (classes[t][code]["false_positives"] for t in ("unaided", "se_cbir"))
        assert (before, after) == (21, 24) if code == "nv" else after < before, code


def test_statistics_agree_with_each_other(result: dict) -> None:
    st = result["statistics"]
    assert st["mcnemar"]["pooled"]["wrong_to_correct"] == 224
    assert st["mcnemar"]["pooled"]["p_value"] < 1e-30
    orr = st["or_hillis"]["proportion_correct"]
    assert orr["readers"] == 9
    (gain,) = orr["differences"]
    assert gain["comparison"] == "se_cbir - unaided"
    assert gain["estimate"] == pytest.approx((764 - 560) / 900)
    assert gain["ci_low"] > 0 and gain["p"] < 0.01
    # Readers share some images, so the between-reader covariances are not all zero.
    assert orr["covariances"] is not None and orr["covariances"]["cov2"] != 0
    boot = st["bootstrap"]["difference"]
    assert boot["estimate"] == pytest.approx(gain["estimate"])
    assert boot["ci_low"] < boot["estimate"] < boot["ci_high"]
    # The small-sample correction widens the bootstrap past its percentile interval (which
    # was narrower than OR-Hillis's [13.4, 32.0]) to about OR-Hillis's width.
    assert boot["ci_low"] < boot["percentile_low"] and boot["ci_high"] > boot["percentile_high"]
    assert boot["ci_high"] - boot["ci_low"] > 0.95 * (gain["ci_high"] - gain["ci_low"])
    # Reader level (the figures): paired t p = 0.0005, sign test 9 of 9, p = 0.004.
    (accuracy,) = st["reader_level"]["accuracy"]
    assert accuracy["p"] == pytest.approx(0.00048, abs=1e-5)
    assert (accuracy["improved"], accuracy["sign_p"]) == (9, pytest.approx(2 / 2**9))
    (confidence,) = st["reader_level"]["confidence"]
    assert confidence["mean_difference"] > 0 and confidence["p"] < 0.01


def test_cli_json_and_plots(
    thesis_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plots = tmp_path / "plots"
    assert (
        analysis_main([str(thesis_csv), "--json", "--bootstrap", "100", "--plots", str(plots)]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert {"readers", "pooled", "confusion", "changes", "statistics"} <= set(data)
    assert data["confusion"]["task2"][K["nv"]][K["nv"]] == 609
    assert sorted(p.name for p in plots.iterdir()) == [
        "confusion_task1.png",
        "confusion_task1.svg",
        "confusion_task2.png",
        "confusion_task2.svg",
        "forest.png",
        "forest.svg",
    ]
    assert analysis_main([str(thesis_csv), "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "wrong -> correct: 224 (219 agreeing with the majority vote)" in text
    assert "62.2" in text and "84.9" in text


def test_converter_rejects_a_bad_reader_file(reference_dir: Path, tmp_path: Path) -> None:
    readers = tmp_path / "readers"
    readers.mkdir()
    for n in range(1, 10):
        source = reference_dir / "readers" / f"evaluation_{n}.json"
        (readers / source.name).write_text(source.read_text())
    data = json.loads((readers / "evaluation_4.json").read_text())
    data["ImgName"][3] = "ISIC_0000000.png"
    (readers / "evaluation_4.json").write_text(json.dumps(data))
    with pytest.raises(ThesisFormatError, match=r"evaluation_4.json: ImgName\[3\]"):
        thesis_rows(readers, reference_dir / "majority_vote.json")
    (readers / "evaluation_4.json").unlink()
    assert (
        thesis_main(
            [
                str(readers),
                str(reference_dir / "majority_vote.json"),
                "--out",
                str(tmp_path / "x.csv"),
            ]
        )
        == 2
    )
