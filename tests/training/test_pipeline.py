"""`python -m training run` end to end on a tiny synthetic dataset, and its error handling."""

import json
import shutil
import time
from pathlib import Path

import pytest

from studybundle.metrics import Metrics
from tests.conftest import TinyRun
from training import cli, pipeline
from training.bundle import validate_bundle
from training.config import get_config
from training.errors import PipelineError


@pytest.fixture(scope="module")
def dataset(tiny_run: TinyRun) -> Path:
    """120 synthetic images at 48 px in HAM10000's layout (the shared tiny run's)."""
    return tiny_run.data


def test_a_wrong_data_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="data folder not found"):
        pipeline.run(get_config("tiny"), tmp_path / "nowhere", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match=r"HAM10000_metadata\.csv not found"):
        pipeline.run(get_config("tiny"), tmp_path / "empty", tmp_path / "run")
    code = cli.main(["run", "--preset", "tiny", "--data", str(tmp_path / "no"), "--out", "x"])
    assert code == 2


def test_a_run_folder_refuses_another_configuration(dataset: Path, tmp_path: Path) -> None:
    get_config("tiny").save(tmp_path / "run" / "config.json")
    with pytest.raises(PipelineError, match="differs in epochs_rgb"):
        pipeline.run(get_config("tiny", ["epochs_rgb=3"]), dataset, tmp_path / "run")


def test_a_broken_dataset_fails_before_training(dataset: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    csv = (dataset / "HAM10000_metadata.csv").read_text().splitlines()
    (broken / "HAM10000_metadata.csv").write_text("\n".join(csv[:5]) + "\n")
    with pytest.raises(PipelineError, match="missing image"):
        pipeline.run(get_config("tiny"), broken, tmp_path / "run")
    assert not (tmp_path / "run" / "rgb").exists()


def pipeline_stages() -> list[str]:
    """Every stage name of a run, in order."""
    return [step.__name__.removeprefix("step_") for step in pipeline.STEPS]


def one_seed_stages() -> list[str]:
    """The stages a one-seed run times and reports (all but `seeds`)."""
    return [stage for stage in pipeline_stages() if stage != "seeds"]


def check_the_shuffled_control_sees_another_images_map(out: Path, dataset: Path) -> None:
    """Every image's map in the shuffled control is another image's of the same split part."""
    import numpy as np

    state = pipeline.Run(get_config("tiny"), dataset, out, None)
    parts = [state.split[r.image_id] for r in state.records]
    rows = pipeline.shuffled_rows(parts, 71)
    assert sorted(rows) == list(range(len(parts)))  # a permutation
    assert (rows != np.arange(len(parts))).all()  # nobody keeps its own map
    assert all(parts[r] == parts[i] for i, r in enumerate(rows))  # same part
    assert (pipeline.shuffled_rows(parts, 72) != rows).any()  # another seed, another pairing
    test = state.indices("test")
    np.testing.assert_array_equal(
        pipeline.model_inputs(state, "shuffled", test)[..., 3], state.maps[rows[test]]
    )
    np.testing.assert_array_equal(
        pipeline.model_inputs(state, "rgbs", test)[..., 3], state.maps[test]
    )


@pytest.mark.training
def test_tiny_run_end_to_end_then_everything_is_skipped(
    tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_run.out, out)  # the shared run, finished once for the whole session
    argv = ["run", "--preset", "tiny", "--data", str(tiny_run.data), "--out", str(out)]
    check_validation_maps_use_the_predicted_class(out, tiny_run.data)

    valid = validate_bundle(out / "study")
    assert valid.queries and valid.version == 2 and valid.layout.max_neighbours == 9
    manifest = json.loads((out / "study" / "manifest.json").read_text())
    assert manifest["provenance"]["preset"] == "tiny"
    # The patient context from the metadata's age, sex and localization (issue 24).
    assert manifest["extensions"] == ["context", "class_neighbours"]
    assert all(set(q["context"]) == {"age", "sex", "site"} for q in valid.queries)
    # Each aid's nearest images of every class (what probes show), by its own features: up to
    # the study's k of each, of that class, as near as its list's images of that class.
    codes = [c["code"] for c in manifest["classes"]]
    for query in valid.queries:
        for aid in ("se_cbir", "cbir"):
            found = query["aids"][aid]
            by_class = found["class_neighbours"]
            assert list(by_class) == codes and sum(map(len, by_class.values())) > 0
            for code, items in by_class.items():
                assert len(items) <= 6 and {n["truth"] for n in items} <= {code}
                listed = [n for n in found["neighbours"] if n["truth"] == code]
                if listed and items:
                    assert items[0]["similarity"] >= listed[0]["similarity"] - 1e-6
    assert manifest["provenance"]["split_by"] == "lesion"
    assert manifest["counts"]["queries_after"] == len(valid.queries)

    result = json.loads((out / "metrics.json").read_text())
    # Written through its typed record, which reads every key back (and the bundle's copy).
    record = Metrics.from_json(result)
    assert record.to_json() == result == manifest["provenance"]["metrics"]
    assert record.label_channel is not None and record.per_seed is not None
    for name in ("rgb", "rgbs"):
        assert set(result["classifiers"][name]) >= {"accuracy", "macro_sensitivity"}
    assert set(result["classifiers"]) == {"rgb", "rgbs", "control", "shuffled"}
    for name in ("cbir", "se_cbir", "control", "shuffled"):
        assert sorted(result["retrieval"][name], key=int) == ["1", "3", "6", "9"]
        for scores in result["retrieval"][name].values():
            assert 0.0 <= scores["macro"] <= 1.0
    # SE-CBIR against CBIR, the zero-map and the shuffled-map control, with bootstrap intervals.
    assert set(result["comparisons"]) == {
        "se_cbir - cbir",
        "se_cbir - control",
        "se_cbir - shuffled",
    }
    for name, by_k in result["comparisons"].items():
        assert sorted(by_k, key=int) == ["1", "3", "6", "9"]
        baseline = name.split(" - ")[1]
        for k, value in by_k.items():
            assert set(value) == {"estimate", "ci_low", "ci_high"}
            assert value["ci_low"] <= value["estimate"] <= value["ci_high"]
            difference = (
                result["retrieval"]["se_cbir"][k]["macro"]
                - result["retrieval"][baseline][k]["macro"]
            )
            assert value["estimate"] == pytest.approx(difference)
    assert (out / "control" / "model.keras").is_file()
    # One seed: its figures under per_seed, the same as the top-level ones.
    assert result["per_seed"] == {
        "71": pipeline.seed_figures(
            result["classifiers"], result["retrieval"], pipeline.comparisons(get_config("tiny"))
        )
    }
    assert result["bootstrap"]["seeds"] == [71]
    check_the_shuffled_control_sees_another_images_map(out, tiny_run.data)
    assert 0.0 <= result["majority_vote_accuracy_at_6"] <= 1.0
    assert result["primary_k"] == 6
    check_the_label_channel(out, tiny_run.data, result)

    timings = json.loads((out / "timings.json").read_text())["stages"]
    assert timings["seeds"] is None  # one seed: nothing to repeat
    for stage in one_seed_stages():
        assert timings[stage] is not None and timings[stage] >= 0
    # The secret that keys case keys never goes into the bundle.
    secret = (out / pipeline.SECRET_NAME).read_text().strip()
    assert all(secret not in p.read_text() for p in (out / "study").glob("*.json"))

    model_time = (out / "rgbs" / "model.keras").stat().st_mtime_ns
    bundle_bytes = (out / "study" / "queries.json").read_bytes()
    capsys.readouterr()  # what the checks above printed
    start = time.perf_counter()
    assert cli.main(argv) == 0
    elapsed = time.perf_counter() - start
    printed = capsys.readouterr().out
    assert f"study bundle: {(out / 'study').resolve()}" in printed
    # The loud start-up line: devices, strategy, precision.
    assert "=== tiny: " not in printed  # a finished run loads no TensorFlow, names no device
    assert "se_cbir - control" in printed and "macro AP@k differences" in printed
    assert elapsed < 15, f"a finished run took {elapsed:.1f} s to re-run"
    for stage in one_seed_stages():
        assert f"[{stage}] skipped" in printed
    assert " done in " not in printed
    assert (out / "rgbs" / "model.keras").stat().st_mtime_ns == model_time
    assert (out / "study" / "queries.json").read_bytes() == bundle_bytes

    # Rebuilding only the pool and the bundle gives the same bundle (same secret, same keys).
    shutil.rmtree(out / "study")
    (out / "query_pool.json").unlink()
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "[pool] done" in printed and "[study] done" in printed and "[rgb] skipped" in printed
    assert (out / "study" / "queries.json").read_bytes() == bundle_bytes


def check_the_label_channel(out: Path, dataset: Path, result: dict) -> None:
    """SE-CBIR's bank with predicted-class maps differs from the true-class one exactly in the
    training images the rgb model gets wrong, whose maps are of the predicted class; metrics
    report both banks and their difference."""
    import numpy as np

    from training import bank, data, model, saliency, split

    section = result["label_channel"]
    assert section["bank_maps"] == "true_class"
    assert set(section["retrieval"]) == {"true_class", "predicted_class"}
    assert section["retrieval"]["true_class"] == result["retrieval"]["se_cbir"]
    by_k = section["true_class - predicted_class"]
    assert sorted(by_k, key=int) == ["1", "3", "6", "9"]
    for k, value in by_k.items():
        difference = (
            section["retrieval"]["true_class"][k]["macro"]
            - section["retrieval"]["predicted_class"][k]["macro"]
        )
        assert value["estimate"] == pytest.approx(difference)
    wrong = json.loads((out / "saliency_predicted" / "done.json").read_text())["predicted"]
    parts = split.read_split(out / "split.csv")
    assert section["train_maps_differing"] == len(wrong) > 0
    assert section["train_images"] == sum(part == "train" for part in parts.values())
    ids, main = bank.load_bank(out / "features" / "se_cbir_bank.npz")
    other_ids, other = bank.load_bank(out / "features" / "se_cbir_bank_predicted_class.npz")
    assert ids == other_ids
    changed = {i for i, a, b in zip(ids, main, other, strict=True) if not np.allclose(a, b)}
    assert changed and changed <= set(wrong)
    # The maps are the predicted class's, as a query's would be.
    records = [r for r in data.load_dataset(dataset) if r.image_id in wrong][:4]
    cfg = get_config("tiny")
    classifier = model.load_model(out / "rgb" / "model.keras")
    pictures = data.read_images([r.path for r in records], cfg.image_size)
    predicted = model.predict(classifier, pictures, cfg.batch_size).argmax(axis=1)
    assert [data.CLASSES[c] for c in predicted] == [wrong[r.image_id] for r in records]
    assert (predicted != data.label_indices(records)).all()
    expected = saliency.saliency_maps(classifier, pictures, predicted, cfg.saliency_batch)
    written = saliency.read_maps(
        out / "saliency_predicted", [r.image_id for r in records], cfg.image_size
    )
    np.testing.assert_array_equal(written, expected)


def check_validation_maps_use_the_predicted_class(out: Path, dataset: Path) -> None:
    """Validation maps are of the rgb model's predicted class, as for test images."""
    import numpy as np

    from training import data, model, saliency, split

    parts = split.read_split(out / "split.csv")
    records = [r for r in data.load_dataset(dataset) if parts[r.image_id] == "val"][:8]
    cfg = get_config("tiny")
    classifier = model.load_model(out / "rgb" / "model.keras")
    pictures = data.read_images([r.path for r in records], cfg.image_size)
    predicted = model.predict(classifier, pictures, cfg.batch_size).argmax(axis=1)
    truth = data.label_indices(records)
    assert (predicted != truth).any(), "a tiny model that is always right cannot tell them apart"
    expected = saliency.saliency_maps(classifier, pictures, predicted, cfg.saliency_batch)
    ids = [r.image_id for r in records]
    written = saliency.read_maps(out / "saliency", ids, cfg.image_size)
    np.testing.assert_array_equal(written, expected)


@pytest.mark.training
@pytest.mark.long_pipeline
def test_the_fine_tunes_repeat_in_a_second_process_one_after_the_other_and_resumed(
    tiny_run: TinyRun, tmp_path: Path
) -> None:
    """The shared tiny run trained the control in a second process beside the 4-channel model
    (the preset's concurrent_control). Run again here one after the other, in a process that
    reads the rgb model from disk (as a resumed run does), both come out weight for weight the
    same. Before, loading rgb after seeding gave the new dropout layers other seeds."""
    import numpy as np

    from training import model

    out = tmp_path / "run"
    shutil.copytree(tiny_run.out, out)
    assert get_config("tiny").concurrent_control
    assert "stage rgbs epoch 1/1" in (out / "control" / "log.txt").read_text()  # the child's
    for name in ("rgbs", "control", "features", "study"):
        shutil.rmtree(out / name)
    for name in ("classifiers.json", "metrics.json", "query_pool.json"):
        (out / name).unlink()
    # How a run executes is not what it computes: the folder accepts the other setting.
    pipeline.run(get_config("tiny", ["concurrent_control=false"]), tiny_run.data, out)
    for name in ("rgbs", "control"):
        first = model.load_model(tiny_run.out / name / "model.keras").get_weights()
        again = model.load_model(out / name / "model.keras").get_weights()
        assert len(first) == len(again)
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not (out / "control" / "log.txt").exists()  # trained here this time


def test_a_step_in_a_second_process_reports_its_failure(tiny_run: TinyRun, tmp_path: Path) -> None:
    import os
    import signal

    state = pipeline.Run(get_config("tiny"), tiny_run.data, tmp_path / "run", None)
    with pytest.raises(PipelineError, match=r"step nothing, run in a second process, failed: "):
        pipeline.Beside(state, "nothing").wait()
    assert "KeyError" in (tmp_path / "run" / "nothing" / "log.txt").read_text()
    killed = pipeline.Beside(state, "nothing")
    os.kill(killed._process.pid, signal.SIGKILL)
    with pytest.raises(PipelineError, match="ended with exit code -9"):
        killed.wait()


def test_the_thesis_preset_without_a_gpu_says_so() -> None:
    from training import model

    warning = model.cpu_warning(get_config("thesis"))
    if model.has_gpu():
        assert warning is None
    else:
        assert "WARNING" in warning and "EfficientNetB4" in warning and "GPU" in warning
    assert model.cpu_warning(get_config("tiny")) is None


def test_deterministic_runs_augment_identically() -> None:
    """Seeded alone, parallel augmentation draws in a racing order (batches differed by up to
    253 grey levels between two identically seeded passes); deterministic kernels fix it."""
    import numpy as np

    from training.train import augmenter, make_dataset

    assert get_config("demo").deterministic and get_config("tiny").deterministic
    assert not get_config("thesis").deterministic  # GPUs lack some deterministic kernels
    cfg = get_config("demo")
    images = (np.random.default_rng(0).random((256, 32, 32, 3)) * 255).astype(np.uint8)
    labels = np.arange(256) % 7

    def one_pass() -> np.ndarray:
        pipeline.seed_everything(5, deterministic=True)
        batches = make_dataset(images, labels, 16, augment=augmenter(cfg, "rgb"), shuffle=True)
        return np.concatenate([x.numpy() for x, _ in batches])

    np.testing.assert_array_equal(one_pass(), one_pass())


def test_the_thesis_replica_preset_uses_the_thesis_protocol() -> None:
    replica, thesis = get_config("thesis-replica"), get_config("thesis")
    assert (replica.split_by, replica.split_seed) == ("image", 71)
    assert replica.exclude_same_lesion is False and replica.query_filter == "thesis"
    assert (replica.backbone, replica.image_size, replica.loss) == (
        thesis.backbone,
        thesis.image_size,
        thesis.loss,
    )
    assert (
        cli.build_parser()
        .parse_args(["run", "--preset", "thesis-replica", "--data", "d", "--out", "o"])
        .preset
        == "thesis-replica"
    )


@pytest.mark.training
def test_further_seeds_are_pooled_in_the_comparisons(tiny_run: TinyRun, tmp_path: Path) -> None:
    """With seeds=2 the comparisons pool both seeds and per_seed keeps each one's figures.

    The second seed's folder is the first one's with SE-CBIR's and the control's feature
    banks swapped (no training here: every step of it finds its output and skips), so its
    SE-CBIR - control difference is exactly minus the first seed's and the pooled estimate 0.
    """
    out = tmp_path / "run"
    shutil.copytree(tiny_run.out, out)
    cfg = get_config("tiny", ["seeds=2"])
    cfg.save(out / "config.json")
    second = out / "seeds" / "72"
    shutil.copytree(tiny_run.out, second, ignore=shutil.ignore_patterns("study", "seeds"))
    get_config("tiny", ["seed=72"]).save(second / "config.json")
    for part in ("bank", "queries"):
        swap = second / "features" / f"swap_{part}.npz"
        (second / "features" / f"se_cbir_{part}.npz").rename(swap)
        (second / "features" / f"control_{part}.npz").rename(
            second / "features" / f"se_cbir_{part}.npz"
        )
        swap.rename(second / "features" / f"control_{part}.npz")
    (out / "metrics.json").unlink()
    pipeline.run(cfg, tiny_run.data, out)

    result = json.loads((out / "metrics.json").read_text())
    assert result["bootstrap"]["seeds"] == [71, 72]
    assert json.loads((out / "seeds" / "done.json").read_text()) == {"seeds": [72]}
    first, other = result["per_seed"]["71"], result["per_seed"]["72"]
    assert first["retrieval"]["se_cbir"] == other["retrieval"]["control"]
    assert result["retrieval"]["se_cbir"]["6"]["macro"] == first["retrieval"]["se_cbir"]["6"]
    for k, value in result["comparisons"]["se_cbir - control"].items():
        gain = first["comparisons"]["se_cbir - control"][k]
        assert other["comparisons"]["se_cbir - control"][k] == pytest.approx(-gain)
        assert value["estimate"] == pytest.approx(0.0, abs=1e-12)
        assert value["ci_low"] <= 0 <= value["ci_high"]
    # Against CBIR, both seeds share the rgb model: the same CBIR figures.
    assert first["retrieval"]["cbir"] == other["retrieval"]["cbir"]


def test_the_options_are_checked_and_thesis_replica_takes_the_thesis_choices() -> None:
    replica, thesis = get_config("thesis-replica"), get_config("thesis")
    assert (replica.features, replica.saliency_scaling, replica.augment) == (
        "conv_map",
        "tf_explain",
        "thesis",
    )
    assert (thesis.features, thesis.saliency_scaling, thesis.augment) == ("pooled", "p99", "strong")
    assert thesis.bank_maps == replica.bank_maps == "true_class"  # the thesis's bank
    assert thesis.primary_k == 6
    for wrong, message in (
        ("features=gap", "features must be one of"),
        ("saliency_scaling=max", "saliency_scaling must be one of"),
        ("bank_maps=none", "bank_maps must be one of"),
        ("jit_compile=yes", "jit_compile must be one of"),
        ("primary_k=5", "primary_k=5 must be one of retrieval_k"),
    ):
        with pytest.raises(PipelineError, match=message):
            get_config("tiny", [wrong])
    assert get_config("tiny", ["bank_maps=predicted_class"]).bank_maps == "predicted_class"


def test_a_finished_run_from_before_the_label_channel_is_left_as_it_is(
    tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(tiny_run.out, out)
    shutil.rmtree(out / "saliency_predicted")
    (out / "features" / "se_cbir_bank_predicted_class.npz").unlink()
    metrics_bytes = (out / "metrics.json").read_bytes()
    pipeline.run(get_config("tiny"), tiny_run.data, out)
    printed = capsys.readouterr().out
    assert "[predicted_maps] skipped: metrics.json exists" in printed
    assert " done in " not in printed  # nothing recomputed, no image loaded
    assert not (out / "saliency_predicted").exists()
    assert (out / "metrics.json").read_bytes() == metrics_bytes


def test_the_step_lists_name_pipeline_steps_in_run_order() -> None:
    from training import positive_control

    order = list(pipeline.STEP_BY_NAME)
    for steps in (pipeline.PIXEL_STEPS, pipeline.SEED_STEPS, positive_control.ARM_STEPS):
        positions = [order.index(name) for name in steps]  # a misspelt name fails here
        assert positions == sorted(positions)


def test_metrics_json_is_written_through_its_record() -> None:
    """A key the record (studybundle.metrics) does not know, or a figure it refuses, stops
    the metrics step instead of reaching the bundle."""
    value = {
        "k": [1, 6],
        "primary_k": 6,
        "retrieval": {"se_cbir": {"6": {"mel": 0.5, "macro": 0.5}}},
    }
    assert pipeline.through_record(value) == value
    with pytest.raises(PipelineError, match="leaves out part of primary_key"):
        pipeline.through_record({"primary_key": 6})  # renamed in the pipeline only
    interval = {"estimate": 0.1, "ci_low": 0.0, "ci_high": 0.2, "ci_width": 0.2}
    with pytest.raises(PipelineError, match="leaves out part of comparisons"):
        pipeline.through_record({"comparisons": {"se_cbir - cbir": {"6": interval}}})
    with pytest.raises(PipelineError, match="ci_high is missing"):
        pipeline.through_record({"comparisons": {"se_cbir - cbir": {"6": {"estimate": 0.1}}}})
