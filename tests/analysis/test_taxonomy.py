"""Any taxonomy: a study's own classes, its melanoma class and its malignant flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.analysis import Taxonomy, analyse, responses_from_rows
from app.analysis.__main__ import main
from app.analysis.endpoints import complete_blocks, endpoints
from app.analysis.headline import HEADLINE_ENDPOINTS
from tests.analysis.helpers import answer, to_csv

# Eight ISIC 2019-like classes, upper case, SCC added (as tests/app/bundle_factory.ISIC2019).
ISIC = [
    {"code": "MEL", "name": "Melanoma", "malignant": True},
    {"code": "NV", "name": "Melanocytic nevus", "malignant": False},
    {"code": "BCC", "name": "Basal cell carcinoma", "malignant": True},
    {"code": "AK", "name": "Actinic keratosis", "malignant": True},
    {"code": "BKL", "name": "Benign keratosis", "malignant": False},
    {"code": "DF", "name": "Dermatofibroma", "malignant": False},
    {"code": "VASC", "name": "Vascular lesion", "malignant": False},
    {"code": "SCC", "name": "Squamous cell carcinoma", "malignant": True},
]
CODES = [c["code"] for c in ISIC]


def isic_rows() -> list[dict[str, object]]:
    """3 readers x 16 lesions (2 of each class) x 2 tasks, better with the aid."""
    rows = []
    for r, reader in enumerate("ABC"):
        for i in range(16):
            truth = CODES[i % 8]
            wrong = CODES[(i + 1) % 8]
            for task in (1, 2):
                right = (i + r) % (3 if task == 1 else 5) != 0
                rows.append(answer(reader, f"img{i}", truth, task, truth if right else wrong, 3))
    return rows


def endpoint_names(rows: list[dict[str, object]], taxonomy: Taxonomy) -> list[str]:
    """The endpoints of `rows` read with `taxonomy`, in order."""
    blocks = complete_blocks(responses_from_rows(rows, taxonomy=taxonomy))
    return [e.name for e in endpoints(blocks)]


def test_melanoma_is_the_class_coded_mel_or_named_melanoma() -> None:
    assert Taxonomy().melanoma == 4  # HAM10000's "mel"
    assert Taxonomy.from_classes(ISIC).melanoma == 0
    by_name = Taxonomy.from_classes([{"code": "MM", "name": "melanoma"}, {"code": "x"}])
    assert by_name.melanoma == 0
    assert Taxonomy.from_classes([{"code": "a"}, {"code": "b", "name": "Naevus"}]).melanoma is None
    assert Taxonomy.from_classes(ISIC).index(" scc ") == 7
    with pytest.raises(ValueError, match="distinct"):
        Taxonomy.from_classes([{"code": "A"}, {"code": "a"}])


def test_endpoints_follow_the_taxonomy() -> None:
    every = endpoint_names(isic_rows(), Taxonomy.from_classes(ISIC))
    assert every[:6] == list(HEADLINE_ENDPOINTS)  # melanoma and malignant vs benign too
    assert every[6:8] == ["melanoma_auc", "malignant_auc"]  # the ROC endpoints
    assert every[8:] == [f"sensitivity_{code}" for code in CODES]
    # MEL renamed X (no melanoma class) and no malignancy flags: neither kind of endpoint.
    unflagged = Taxonomy.from_classes(
        {"code": "X" if c["code"] == "MEL" else c["code"]} for c in ISIC
    )
    renamed = {"MEL": "X"}
    rows = [
        {**row, **{k: renamed.get(str(row[k]), row[k]) for k in ("truth", "diagnosis")}}
        for row in isic_rows()
    ]
    for row in rows:
        row["majority_vote"] = row["truth"]
    listed = endpoint_names(rows, unflagged)
    assert not [n for n in listed if n.startswith(("melanoma", "malignant"))]
    assert "sensitivity_X" in listed


def test_the_analysis_of_an_eight_class_study() -> None:
    taxonomy = Taxonomy.from_classes(ISIC)
    result = analyse(responses_from_rows(isic_rows(), taxonomy=taxonomy), bootstrap=100)
    assert result["classes"] == CODES
    assert len(result["confusion"]["unaided"]) == 8
    assert [c["label"] for c in result["confusion"]["classes"]["unaided"]] == CODES
    primary = result["statistics"]["or_hillis"]
    assert primary["sensitivity_SCC"]["available"]
    assert primary["malignant_sensitivity"]["means"]["se_cbir"] > 0
    with pytest.raises(ValueError, match="other classes"):
        analyse(responses_from_rows(isic_rows(), taxonomy=taxonomy), taxonomy=Taxonomy())


def test_the_cli_reads_a_study_with_its_own_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(to_csv(isic_rows()), encoding="utf-8")
    assert main([str(path), "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert "unknown class" in err and "--taxonomy" in err

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"format_version": 2, "classes": ISIC}))
    exports = tmp_path / "exports"
    args = [str(path), "--json", "--bootstrap", "0", "--taxonomy", str(bundle)]
    assert main([*args, "--exports", str(exports)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == CODES
    assert "malignant_sensitivity" in result["statistics"]["or_hillis"]
    script = (exports / "mrmcaov.R").read_text(encoding="utf-8")
    assert 'malignant <- c("AK", "BCC", "MEL", "SCC")' in script
    assert 'real$truth_class == "MEL"' in script

    # --classes without --malignant: melanoma (by its code), no malignant vs benign.
    assert main([str(path), "--json", "--bootstrap", "0", "--classes", ",".join(CODES)]) == 0
    primary = json.loads(capsys.readouterr().out)["statistics"]["or_hillis"]
    assert "melanoma_sensitivity" in primary and "malignant_sensitivity" not in primary
    assert main([str(path), "--classes", "MEL,NV", "--malignant", "SCC"]) == 2
    assert "not in --classes" in capsys.readouterr().err
