"""metrics.json's typed record: today's shape, older runs' shapes, each kind of malformed
value, and the bundle check that reads provenance.metrics with it. No Flask here."""

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from studybundle import BundleError, check_manifest, validate_bundle
from studybundle.metrics import (
    Classifier,
    Interval,
    Metrics,
    MetricsError,
    Precision,
    read_metrics,
)
from tests.app.bundle_factory import make_bundle_v2


def precision(macro: float) -> dict[str, float]:
    """One system at one k: P@k of two classes and their macro average."""
    return {"mel": macro - 0.1, "nv": macro + 0.1, "macro": macro}


def interval(estimate: float) -> dict[str, float]:
    return {"estimate": estimate, "ci_low": estimate - 0.05, "ci_high": estimate + 0.05}


KS = ("1", "6")
SYSTEMS = ("cbir", "se_cbir", "control", "shuffled")


def current() -> dict[str, Any]:
    """A metrics.json as training/pipeline.py's step_metrics writes it today (one seed)."""
    retrieval = {name: {k: precision(0.4 + i / 10) for k in KS} for i, name in enumerate(SYSTEMS)}
    classifiers = {
        name: {"accuracy": 0.7, "macro_sensitivity": 0.6}
        for name in ("rgb", "rgbs", "control", "shuffled")
    }
    pairs = ("se_cbir - cbir", "se_cbir - control", "se_cbir - shuffled")
    return {
        "classifiers": classifiers,
        "retrieval": retrieval,
        "k": [1, 6],
        "primary_k": 6,
        "exclude_same_lesion": True,
        "queries": 24,
        "bank": 96,
        "majority_vote_accuracy_at_6_by_model": {name: 0.5 for name in SYSTEMS},
        "majority_vote_accuracy_at_6": 0.5,
        "comparisons": {pair: {k: interval(0.1) for k in KS} for pair in pairs},
        "per_seed": {
            "71": {
                "classifiers": classifiers,
                "retrieval": {
                    n: {k: v["macro"] for k, v in r.items()} for n, r in retrieval.items()
                },
                "comparisons": {pair: {k: 0.1 for k in KS} for pair in pairs},
            }
        },
        "bootstrap": {
            "draws": 2000,
            "stratified_by": "class",
            "resampled": "training seeds, then the lesions of each class (all their images)",
            "lone_lesion_class": "observed mean plus a lesion deviation of the other classes",
            "seeds": [71],
            "interval": 0.95,
            "seed": 71,
        },
        "label_channel": {
            "bank_maps": "true_class",
            "train_images": 80,
            "train_maps_differing": 7,
            "retrieval": {
                "true_class": retrieval["se_cbir"],
                "predicted_class": {k: precision(0.45) for k in KS},
            },
            "true_class - predicted_class": {k: interval(0.05) for k in KS},
        },
    }


def test_todays_metrics_read_typed_and_write_back_the_same() -> None:
    value = current()
    record = Metrics.from_json(value)
    assert record.to_json() == value
    assert record.retrieval is not None and record.retrieval["se_cbir"][6] == Precision(
        0.5, {"mel": 0.4, "nv": 0.6}
    )
    assert record.classifiers is not None and record.classifiers["rgb"] == Classifier(0.7, 0.6)
    assert record.comparisons is not None
    assert record.comparisons["se_cbir - control"][1] == Interval(0.1, 0.1 - 0.05, 0.1 + 0.05)
    assert record.per_seed is not None and record.per_seed[71].retrieval["cbir"][6] == 0.4
    assert record.label_channel is not None and record.label_channel.difference[6].estimate == 0.05
    assert record.bootstrap is not None and record.bootstrap.seeds == (71,)
    assert (record.k, record.primary_k, record.queries, record.bank) == ((1, 6), 6, 24, 96)
    # Byte for byte, as the pipeline writes it (sorted keys).
    assert json.dumps(record.to_json(), sort_keys=True) == json.dumps(value, sort_keys=True)


def older(value: dict[str, Any], *drop: str) -> dict[str, Any]:
    """`value` without the keys a run of an earlier version did not write."""
    return {key: item for key, item in value.items() if key not in drop}


OLD_SHAPES = {
    # The first pipeline (b7f7606): no comparisons, bootstrap, per_seed, primary_k, label channel.
    "first pipeline": older(
        current(), "comparisons", "bootstrap", "per_seed", "primary_k", "label_channel"
    ),
    # The first comparisons (792e284): a bootstrap of four keys, no seeds.
    "first comparisons": {
        **older(current(), "per_seed", "primary_k", "label_channel"),
        "bootstrap": {"draws": 2000, "stratified_by": "class", "interval": 0.95, "seed": 42},
    },
    # tests/app/bundle_factory.py's hand-made bundles: one figure.
    "hand-made": {"retrieval": {"se_cbir": {"6": {"macro": 0.5}}}},
    "empty": {},
}


@pytest.mark.parametrize("name", OLD_SHAPES)
def test_older_shapes_read_with_what_they_lack_as_none(name: str) -> None:
    value = OLD_SHAPES[name]
    record = Metrics.from_json(value)
    assert record.to_json() == value
    assert record.label_channel is None and record.per_seed is None and record.primary_k is None


def test_unknown_keys_are_tolerated_and_left_out() -> None:
    value = current()
    value["calibration"] = {"ece": 0.1}  # a key of a later run
    value["bootstrap"]["method"] = "bca"
    record = Metrics.from_json(value)
    assert "calibration" not in record.to_json()
    assert "method" not in record.to_json()["bootstrap"]


def broken(change: Any) -> dict[str, Any]:
    """Today's metrics with one change made."""
    value: dict[str, Any] = json.loads(json.dumps(current()))  # no part shared
    change(value)
    return value


MALFORMED = [
    (
        lambda m: m["retrieval"]["se_cbir"]["6"].update(macro=math.nan),
        "metrics.retrieval.se_cbir.6.macro is nan, not a finite number",
    ),
    (
        lambda m: m["retrieval"]["cbir"]["1"].update(macro=math.inf),
        "metrics.retrieval.cbir.1.macro is inf",
    ),
    (
        lambda m: m["classifiers"]["rgb"].update(accuracy=True),
        "metrics.classifiers.rgb.accuracy is True, not a finite number",
    ),
    (
        lambda m: m["classifiers"]["rgb"].update(accuracy="0.7"),
        "metrics.classifiers.rgb.accuracy is '0.7'",
    ),
    (
        lambda m: m["comparisons"]["se_cbir - cbir"]["6"].update(ci_low=10**400),
        "metrics.comparisons.se_cbir - cbir.6.ci_low is 1000000000000",
    ),
    (
        lambda m: m["comparisons"]["se_cbir - cbir"]["6"].pop("ci_high"),
        "metrics.comparisons.se_cbir - cbir.6.ci_high is missing",
    ),
    (lambda m: m.update(retrieval=[1]), "metrics.retrieval is [1], not an object"),
    (lambda m: m["retrieval"].update(cbir=0.5), "metrics.retrieval.cbir is 0.5, not an object"),
    (
        lambda m: m["retrieval"]["se_cbir"].update({"06": precision(0.5)}),
        "metrics.retrieval.se_cbir['06'] is not keyed by a whole number from 1",
    ),
    (
        lambda m: m["retrieval"]["se_cbir"].update({"0": precision(0.5)}),
        "metrics.retrieval.se_cbir['0'] is not keyed",
    ),
    (lambda m: m.update(primary_k=True), "metrics.primary_k is True, not a whole number"),
    (lambda m: m.update(k=[1, -6]), "metrics.k[1] is -6"),
    (lambda m: m.update(exclude_same_lesion=1), "metrics.exclude_same_lesion is 1, not true"),
    (lambda m: m["bootstrap"].update(seeds="71"), "metrics.bootstrap.seeds is '71', not a list"),
    (lambda m: m["bootstrap"].pop("draws"), "metrics.bootstrap.draws is missing"),
    (lambda m: m["per_seed"].update(x={}), "metrics.per_seed['x'] is not keyed"),
    (
        lambda m: m["per_seed"]["71"]["comparisons"]["se_cbir - cbir"].update({"6": None}),
        "metrics.per_seed.71.comparisons.se_cbir - cbir.6 is None",
    ),
    (
        lambda m: m["label_channel"].update(train_images=80.0),
        "metrics.label_channel.train_images is 80.0",
    ),
    (
        lambda m: m["label_channel"].pop("true_class - predicted_class"),
        "metrics.label_channel.true_class - predicted_class is missing",
    ),
]


@pytest.mark.parametrize(("change", "expected"), MALFORMED)
def test_each_malformed_part_is_named(change: Any, expected: str) -> None:
    value = broken(change)
    with pytest.raises(MetricsError) as refused:
        Metrics.from_json(value)
    assert expected in str(refused.value)
    _, problems = read_metrics(value)
    assert len(problems) == 1  # the lenient reading names the same one problem


def test_read_leniently_a_malformed_figure_is_none_and_a_malformed_part_left_out() -> None:
    value = broken(lambda m: m["retrieval"]["se_cbir"]["6"].update(macro=math.nan))
    value["classifiers"]["rgb"] = "broken"
    value["classifiers"]["rgbs"]["accuracy"] = False
    value["retrieval"]["cbir"]["6"] = 0.5  # not an object: the k stays, its figure is None
    value["retrieval"]["control"] = None
    record, problems = read_metrics(value)
    assert len(problems) == 5
    assert record.retrieval is not None and record.classifiers is not None
    assert record.retrieval["se_cbir"][6].macro is None
    assert record.retrieval["se_cbir"][1].macro == 0.5
    assert record.retrieval["cbir"][6] == Precision(None)
    assert "control" not in record.retrieval and "rgb" not in record.classifiers
    assert record.classifiers["rgbs"] == Classifier(None, 0.6)


def test_not_an_object_is_refused_and_many_problems_are_counted() -> None:
    for value in (None, [], "metrics", 1):
        with pytest.raises(MetricsError, match="metrics must be an object"):
            read_metrics(value)
    many = {"retrieval": {f"s{n}": {"6": {"macro": "x"}} for n in range(12)}}
    with pytest.raises(MetricsError, match=r"\(and 2 more\)\.$"):
        Metrics.from_json(many)


def manifest_with(metrics: Any) -> dict[str, Any]:
    """A valid format-2 manifest (as the test bundles' factory writes) with these metrics."""
    return {
        "format_version": 2,
        "classes": [
            {
                "code": code,
                "name": code.upper(),
                "definition": "a class",
                "colour": colour,
                "text_colour": "#000000",
                "malignant": code == "mel",
            }
            for code, colour in (("mel", "#ff0000"), ("nv", "#00ff00"))
        ],
        "likert": ["unsure", "sure"],
        "aids": ["se_cbir"],
        "max_neighbours": 6,
        "neighbours": 6,
        "web_image_size": 64,
        "provenance": {"run": "tests", "metrics": metrics},
        "counts": {"queries_before": 3, "queries_after": 3, "dropped": {}},
    }


def test_the_bundle_check_reads_metrics_with_the_record() -> None:
    assert check_manifest(manifest_with(current())).warnings == ()
    for old in OLD_SHAPES.values():
        assert check_manifest(manifest_with(old)).warnings == ()
    # A metrics object that does not fit: imported all the same, its problems as warnings.
    value = broken(lambda m: m["retrieval"]["se_cbir"]["6"].update(macro=True))
    layout = check_manifest(manifest_with(value))
    assert layout.warnings == (
        "manifest.json provenance.metrics.retrieval.se_cbir.6.macro is True, not a finite number",
    )
    # Not an object: refused, as before the record.
    with pytest.raises(BundleError, match=r"provenance\.metrics must be an object"):
        check_manifest(manifest_with([1]))
    no_metrics = manifest_with({})
    del no_metrics["provenance"]["metrics"]
    assert check_manifest(no_metrics).warnings == ()


def test_a_bundle_with_malformed_metrics_validates_with_a_warning(
    tmp_path: Path,
) -> None:
    folder = make_bundle_v2(tmp_path / "b", cases=3)
    assert validate_bundle(folder).warnings == ()
    broken_folder = Path(shutil.copytree(folder, tmp_path / "broken"))
    manifest = json.loads((broken_folder / "manifest.json").read_text())
    manifest["provenance"]["metrics"]["retrieval"]["se_cbir"]["6"]["macro"] = "0.5"
    (broken_folder / "manifest.json").write_text(json.dumps(manifest))
    valid = validate_bundle(broken_folder)
    assert valid.warnings and "se_cbir.6.macro is '0.5'" in valid.warnings[0]
