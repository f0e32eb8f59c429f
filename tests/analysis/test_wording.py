"""The words every page and figure uses for a result's figures."""

from __future__ import annotations

from app.analysis.wording import compared, heading, is_auc, p_text


def test_p_values_read_alike_everywhere() -> None:
    assert p_text(0.0312) == "0.031"
    assert p_text(0.0004) == "< 0.001"
    assert p_text(None) == "—"


def test_comparisons_in_readable_names() -> None:
    names = {"se_cbir": "SE-CBIR 6", "unaided": "Unaided"}
    assert compared("se_cbir - unaided", names) == "SE-CBIR 6 − Unaided"
    assert compared("se_cbir - aid_alone", names) == "SE-CBIR 6 − aid_alone"
    assert compared("not a comparison", names) == "not a comparison"


def test_aucs_are_known_by_their_name() -> None:
    assert is_auc("melanoma_auc") and not is_auc("proportion_correct")
    assert not is_auc("auc_like_but_not")


def test_a_heading_keeps_a_label_s_own_capitals() -> None:
    assert heading("AUC for melanoma") == "AUC for melanoma"
    assert heading("sensitivity for MEL") == "Sensitivity for MEL"
    assert heading("") == ""
