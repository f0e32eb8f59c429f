"""`python -m training run`: every step from a dataset folder to a study bundle, resumable.

Each step writes into the run folder and is skipped when its output is already there, so an
interrupted run continues where it stopped and a finished one re-runs in a blink:

    config.json     the resolved configuration (a different one for the same folder is refused)
    split.csv       image_id -> train/val/test (cfg.split_by, cfg.split_seed)
    rgb/            the 3-channel classifier (trained on train, selected on val)
    saliency/       one PNG map per image: true class for train, predicted for val and test
    saliency_predicted/  the predicted class's map of each training image the rgb model
                    gets wrong (the label-channel diagnostic's bank, cfg.bank_maps)
    rgbs/           the 4-channel classifier, fine-tuned from rgb on image + map
    control/        the same 4-channel fine-tune (same epochs, seed) on all-zero maps; with
                    cfg.concurrent_control trained in a second process (control/log.txt)
    shuffled/       the same fine-tune on another image's map (same split part): SE-CBIR's
                    gain from this image's saliency rather than from any 4th channel
                    (cfg.shuffled_control)
    classifiers.json  accuracy and macro sensitivity of both on the test split
    features/       L2-normalised features of both models: bank = train+val, queries = test;
                    SE-CBIR's bank also with the other kind of training maps (label channel)
    seeds/SEED/     with cfg.seeds > 1, every model again from each further seed (same split)
    metrics.json    classifiers, P@k per class and macro AP@k of CBIR, SE-CBIR and the
                    controls, their differences with intervals from a bootstrap over seeds
                    and lesions, each seed's figures, majority vote; the primary k;
                    label_channel: SE-CBIR with the bank's maps of the true or predicted class
    query_pool.json the SE-CBIR query pool after duplicate-lesion filtering
    study/          the bundle the web app imports (docs/bundle.md)

TensorFlow is imported only by the steps that need it.
"""

import argparse
import dataclasses
import json
import multiprocessing
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from studybundle.metrics import Metrics, MetricsError
from training import bundle, data, metrics, split
from training.config import Config, differing_fields, get_config, load_config
from training.errors import PipelineError

# Extra candidates retrieved beyond the neighbours shown, so that neighbours skipped by the
# query-pool filter (same lesion as the query or as a better-ranked one) can be replaced.
POOL_MARGIN = 24
SALIENCY_CHUNK = 256  # maps are written in chunks, so an interrupted step resumes
SECRET_NAME = "case_key.secret"  # keys the case keys; stays in the run folder, not the bundle
PREDICTED_MAPS = "saliency_predicted"  # training images' maps of the predicted class


class Run:
    """The run folder, the dataset and lazily loaded arrays shared by the steps."""

    def __init__(self, cfg: Config, data_dir: Path, out_dir: Path, weights: Path | None) -> None:
        self.cfg = cfg
        self.data_dir = data_dir
        self.out = out_dir
        self.weights = weights
        self.timings: dict[str, float | None] = {}
        self._records: list[data.Record] | None = None
        self._split: dict[str, str] | None = None
        self._images: NDArray[np.uint8] | None = None
        self._maps: NDArray[np.uint8] | None = None
        self._shuffled: NDArray[np.intp] | None = None
        self._predicted_maps: dict[int, NDArray[np.uint8]] | None = None
        self._models: dict[str, Any] = {}
        self.beside: dict[str, Beside] = {}  # steps running in a second process

    # --- timing -------------------------------------------------------------------------

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage, print its wall time and remember it for timings.json."""
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.timings[name] = round(seconds, 3)
        print(f"[{name}] done in {seconds:.1f} s", flush=True)

    def skip(self, name: str, output: str) -> None:
        """Report a stage whose output already exists."""
        self.timings.setdefault(name, None)
        print(f"[{name}] skipped: {output} exists", flush=True)

    def step(self, name: str, output: Path, work: Callable[[], None]) -> None:
        """Run `work` unless `output` exists; time it either way."""
        if output.exists():
            self.skip(name, str(output.relative_to(self.out)))
            return
        with self.stage(name):
            work()

    # --- the dataset, loaded on first use -----------------------------------------------

    @property
    def records(self) -> list[data.Record]:
        """Every image of the dataset, validated as a whole before anything trains."""
        if self._records is None:
            with self.stage("dataset"):
                self._records = data.load_dataset(self.data_dir)
                print(f"  {len(self._records)} images in {self.data_dir}", flush=True)
        return self._records

    @property
    def split(self) -> dict[str, str]:
        """image_id -> train/val/test, checked against the dataset."""
        if self._split is None:
            mapping = split.read_split(self.out / "split.csv")
            unknown = [r.image_id for r in self.records if r.image_id not in mapping]
            if unknown:
                raise PipelineError(
                    f"{self.out / 'split.csv'} does not cover {len(unknown)} image(s) of "
                    f"{self.data_dir} (e.g. {', '.join(unknown[:5])}); the run folder belongs "
                    "to another dataset: use a new --out folder"
                )
            self._split = mapping
        return self._split

    def indices(self, *parts: str) -> NDArray[np.intp]:
        """Row numbers (into records) of the images in the given split parts, in record order."""
        return np.array(
            [i for i, r in enumerate(self.records) if self.split[r.image_id] in parts], dtype=int
        )

    @property
    def images(self) -> NDArray[np.uint8]:
        """All images at cfg.image_size, uint8 (N, size, size, 3)."""
        if self._images is None:
            with self.stage("images"):
                paths = [r.path for r in self.records]
                self._images = data.read_images(paths, self.cfg.image_size)
                print(f"  {len(paths)} images at {self.cfg.image_size} px", flush=True)
        return self._images

    @property
    def labels(self) -> NDArray[np.int64]:
        """Class index of every record."""
        return data.label_indices(self.records)

    @property
    def maps(self) -> NDArray[np.uint8]:
        """Every image's saliency map, uint8 (N, size, size)."""
        if self._maps is None:
            from training import saliency

            ids = [r.image_id for r in self.records]
            self._maps = saliency.read_maps(self.out / "saliency", ids, self.cfg.image_size)
        return self._maps

    def model(self, name: str) -> Any:
        """The trained classifier `name` (rgb or rgbs), loaded once per process."""
        if name not in self._models:
            from training import model

            self._models[name] = model.load_model(model_file(self, name))
        return self._models[name]

    def keep_model(self, name: str, classifier: Any) -> None:
        """Save a freshly trained classifier and keep it for the later steps."""
        from training import model

        model.save_model(classifier, model_file(self, name))
        self._models[name] = classifier

    @property
    def shuffled_rows(self) -> NDArray[np.intp]:
        """The row whose map each row gets in the shuffled-map control (same split part)."""
        if self._shuffled is None:
            parts = [self.split[r.image_id] for r in self.records]
            self._shuffled = shuffled_rows(parts, self.cfg.seed)
        return self._shuffled

    def four_channels(
        self,
        rows: NDArray[np.intp],
        zero_maps: bool = False,
        shuffled: bool = False,
        maps_of: str = "true_class",
    ) -> NDArray[np.uint8]:
        """Image and saliency map of the given rows stacked as (n, size, size, 4) uint8.

        `zero_maps`: an all-zero 4th channel instead (the no-saliency control's input);
        `shuffled`: another image's map (the shuffled-map control's input);
        `maps_of`: "predicted_class" gives training images the map of the rgb model's
        predicted class (saliency_predicted/) instead of their true class's.
        """
        images = self.images[rows]
        stacked = np.zeros((*images.shape[:3], 4), np.uint8)
        stacked[..., :3] = images
        if zero_maps:
            return stacked
        stacked[..., 3] = self.maps[self.shuffled_rows[rows] if shuffled else rows]
        if not shuffled and maps_of == "predicted_class":
            replaced = self.predicted_maps
            for position, row in enumerate(rows):
                if int(row) in replaced:
                    stacked[position, ..., 3] = replaced[int(row)]
        return stacked

    @property
    def predicted_maps(self) -> dict[int, NDArray[np.uint8]]:
        """Row -> the predicted class's map, for each training image the rgb model gets wrong
        (for every other image the map of the true and of the predicted class are the same)."""
        if self._predicted_maps is None:
            from training import saliency

            wrong = json.loads((self.out / PREDICTED_MAPS / "done.json").read_text())["predicted"]
            row_of = {r.image_id: i for i, r in enumerate(self.records)}
            ids = sorted(wrong, key=row_of.__getitem__)
            maps = saliency.read_maps(self.out / PREDICTED_MAPS, ids, self.cfg.image_size)
            self._predicted_maps = {row_of[i]: m for i, m in zip(ids, maps, strict=True)}
        return self._predicted_maps


# Stream of the seeded generator that draws the shuffled-map control's pairing.
SHUFFLE_STREAM = 25


def shuffled_rows(parts: Sequence[str], seed: int) -> NDArray[np.intp]:
    """For each row, another row of the same split part, whose map it gets in the
    shuffled-map control: one random cycle through each part, so no row keeps its own map
    (a part of one image must). Queries get queries' maps, made from the predicted class
    like their own; training images get training images' maps, made from the true class."""
    labels = np.asarray(parts)
    rng = np.random.default_rng([seed, SHUFFLE_STREAM])
    result = np.arange(len(labels))
    for part in sorted(set(labels.tolist())):
        order = rng.permutation(np.flatnonzero(labels == part))
        result[order] = np.roll(order, 1)
    return result


# --- steps ------------------------------------------------------------------------------


def step_config(run: Run) -> None:
    """Write config.json, or check that the folder's configuration is this one."""
    path = run.out / "config.json"
    if path.exists():
        differing = differing_fields(load_config(path), run.cfg)
        if differing:
            raise PipelineError(
                f"{path} was written with a different configuration (differs in "
                f"{', '.join(differing)}); use a new --out folder or the same --preset/--set"
            )
        run.skip("config", "config.json")
        return
    with run.stage("config"):
        run.cfg.save(path)


def outputs(run: Run) -> dict[str, Path]:
    """The file whose presence marks each step as done."""
    return {
        "split": run.out / "split.csv",
        "rgb": model_file(run, "rgb"),
        "saliency": run.out / "saliency" / "done.json",
        **({"predicted_maps": predicted_maps_marker(run)} if run.cfg.label_channel else {}),
        "rgbs": model_file(run, "rgbs"),
        "control": model_file(run, "control"),
        **({"shuffled": model_file(run, "shuffled")} if run.cfg.shuffled_control else {}),
        "classifiers": run.out / "classifiers.json",
        "features": run.out / "features" / "done.json",
        **({"seeds": run.out / "seeds" / "done.json"} if run.cfg.seeds > 1 else {}),
        "metrics": run.out / "metrics.json",
        "pool": run.out / "query_pool.json",
        "study": run.out / "study" / "manifest.json",
    }


def predicted_maps_marker(run: Run) -> Path:
    """saliency_predicted/done.json; metrics.json in a run finished before the label channel
    existed, which is left as it is (its metrics would not be computed again)."""
    done, finished = run.out / PREDICTED_MAPS / "done.json", run.out / "metrics.json"
    return finished if finished.exists() and not done.exists() else done


# The steps that compute from the images' pixels (models, maps, features), in run order: the
# images step loads pixels only while one of them is still to run, and every further seed
# repeats them all.
PIXEL_STEPS = (
    "rgb",
    "saliency",
    "predicted_maps",
    "rgbs",
    "control",
    "shuffled",
    "classifiers",
    "features",
)


def pending(run: Run, *steps: str) -> list[str]:
    """Those of `steps` (default: all) whose output does not exist yet."""
    done = outputs(run)
    return [name for name in steps or done if name in done and not done[name].exists()]


def step_dataset(run: Run) -> None:
    """Find and validate every image before anything trains (one error lists every problem)."""
    if not pending(run):
        run.skip("dataset", "every output")
        return
    _ = run.records


def step_images(run: Run) -> None:
    """Load every image at cfg.image_size, if a step that needs pixels is still to run."""
    if not pending(run, *PIXEL_STEPS):
        run.skip("images", "every model output")
        return
    _ = run.images


def step_split(run: Run) -> None:
    """split.csv: by lesion (default) or by image, stratified, seeded."""

    def work() -> None:
        if run.cfg.split_by == "lesion":
            mapping = split.split_by_lesion(run.records, seed=run.cfg.split_seed)
        else:
            mapping = split.split_by_image(run.records, seed=run.cfg.split_seed)
        split.write_split(run.out / "split.csv", mapping)
        counts = {
            part: sum(v == part for v in mapping.values()) for part in ("train", "val", "test")
        }
        print(f"  split by {run.cfg.split_by}: {counts}", flush=True)

    run.step("split", run.out / "split.csv", work)


def model_file(run: Run, name: str) -> Path:
    """Where the final model of stage `name` (rgb or rgbs) is saved."""
    return run.out / name / "model.keras"


def step_rgb(run: Run) -> None:
    """Train the 3-channel classifier on the train split, select it on val."""

    def work() -> None:
        from training import model, train

        train_rows, val_rows = run.indices("train"), run.indices("val")
        seed_everything(run.cfg.seed, run.cfg.deterministic)
        classifier = model.build_classifier(run.cfg, weights=weights_argument(run))
        best = train.train_classifier(
            classifier,
            (run.images[train_rows], run.labels[train_rows]),
            (run.images[val_rows], run.labels[val_rows]),
            run.cfg,
            run.out / "rgb",
            stage="rgb",
        )
        run.keep_model("rgb", best)

    run.step("rgb", model_file(run, "rgb"), work)


def weights_argument(run: Run) -> str | Path | None:
    """The weights to start from: a local ImageNet file if given, else the config's choice."""
    if run.weights is None:
        return run.cfg.weights
    if run.cfg.weights != "imagenet":
        print(f"  note: --imagenet-weights ignored, weights={run.cfg.weights}", flush=True)
        return run.cfg.weights
    if not run.weights.is_file():
        raise PipelineError(f"ImageNet weights file not found: {run.weights}")
    return run.weights


def step_saliency(run: Run) -> None:
    """Saliency maps from the rgb model: true class for train, predicted for val and test.

    Validation images get the predicted class's map, like the queries: the 4-channel model
    is selected on validation, and a map made from the true label would let that selection
    read the label off its input, which no query can offer.
    """
    folder = run.out / "saliency"
    done = folder / "done.json"

    def work() -> None:
        from training import model, saliency

        classifier = run.model("rgb")
        classes = run.labels.copy()
        unseen = run.indices("val", "test")
        probabilities = model.predict(classifier, run.images[unseen], run.cfg.batch_size)
        classes[unseen] = np.argmax(probabilities, axis=1)
        ids = [r.image_id for r in run.records]
        for start in range(0, len(ids), SALIENCY_CHUNK):
            chunk = slice(start, start + SALIENCY_CHUNK)
            if all((folder / f"{image_id}.png").exists() for image_id in ids[chunk]):
                continue  # written before an interruption
            maps = saliency.saliency_maps(
                classifier,
                run.images[chunk],
                classes[chunk],
                run.cfg.saliency_batch,
                scaling=run.cfg.saliency_scaling,
            )
            saliency.write_maps(folder, ids[chunk], maps)
        done.write_text(json.dumps({"maps": len(ids)}) + "\n")

    run.step("saliency", outputs(run)["saliency"], work)


def step_predicted_maps(run: Run) -> None:
    """The label-channel diagnostic's maps: each misclassified training image's map of the
    rgb model's predicted class (the class a query's map is made from).

    The 4-channel model trains on true-class maps (the thesis), and the SE-CBIR bank is
    90 % training images: a map made from the label could carry the label into the bank's
    features, where the control's zero maps carry nothing. metrics.json's label_channel
    compares SE-CBIR with both kinds of bank maps. Only wrong predictions need a map: for
    the others both kinds are the same map.
    """
    folder = run.out / PREDICTED_MAPS
    if not run.cfg.label_channel:
        return

    def work() -> None:
        from training import model, saliency

        rows = run.indices("train")
        classifier = run.model("rgb")
        predicted = np.argmax(
            model.predict(classifier, run.images[rows], run.cfg.batch_size), axis=1
        )
        wrong = rows[predicted != run.labels[rows]]
        classes = predicted[predicted != run.labels[rows]]
        maps = saliency.saliency_maps(
            classifier,
            run.images[wrong],
            classes,
            run.cfg.saliency_batch,
            scaling=run.cfg.saliency_scaling,
        )
        ids = [run.records[row].image_id for row in wrong]
        saliency.write_maps(folder, ids, maps)
        print(
            f"  {len(wrong)} of {len(rows)} training images predicted wrong: their maps "
            "of the predicted class written",
            flush=True,
        )
        names = data.CLASSES
        write_json(
            folder / "done.json",
            {
                "train_images": len(rows),
                "predicted": {i: names[c] for i, c in zip(ids, classes.tolist(), strict=True)},
            },
        )

    run.step("predicted_maps", outputs(run)["predicted_maps"], work)


def four_channel_start(run: Run) -> Any:
    """The 4-channel model both fine-tunes start from, the same whatever ran before.

    The rgb model is loaded before seeding: loading builds layers, which draw from the seeded
    generators, so a resumed run (rgb read from disk) and a fresh one (rgb still in memory)
    would otherwise give the new model's dropout layers different seeds.
    """
    from training import model

    rgb = run.model("rgb")
    seed_everything(run.cfg.seed, run.cfg.deterministic)
    return model.to_four_channels(rgb, run.cfg)


def step_rgbs(run: Run) -> None:
    """Fine-tune the 4-channel classifier (rgb weights plus a saliency input slice).

    With cfg.concurrent_control on a machine without a GPU, the control starts first in a
    second process and trains beside this one; step_control then waits for it.
    """
    if run.cfg.concurrent_control and pending(run, "rgbs", "control") == ["rgbs", "control"]:
        from training import model

        if not model.has_gpu():
            run.beside["control"] = Beside(run, "control")

    def work() -> None:
        from training import train

        train_rows, val_rows = run.indices("train"), run.indices("val")
        four = four_channel_start(run)
        best = train.train_classifier(
            four,
            (run.four_channels(train_rows), run.labels[train_rows]),
            (run.four_channels(val_rows), run.labels[val_rows]),
            run.cfg,
            run.out / "rgbs",
            stage="rgbs",
        )
        run.keep_model("rgbs", best)

    run.step("rgbs", model_file(run, "rgbs"), work)


def step_control(run: Run) -> None:
    """The no-saliency control: the rgbs fine-tune (same epochs, seed) on all-zero maps.

    Whatever SE-CBIR gains over CBIR that this model gains too comes from the extra
    training, not from the saliency maps.
    """

    def work() -> None:
        from training import train

        train_rows, val_rows = run.indices("train"), run.indices("val")
        four = four_channel_start(run)
        # Stacked once here: a 4-channel gather per batch, not a NumPy join per batch
        # (benchmarks/input_pipeline.py measures both).
        best = train.train_classifier(
            four,
            (run.four_channels(train_rows, zero_maps=True), run.labels[train_rows]),
            (run.four_channels(val_rows, zero_maps=True), run.labels[val_rows]),
            run.cfg,
            run.out / "control",
            stage="rgbs",
        )
        run.keep_model("control", best)

    if "control" in run.beside:
        run.timings["control"] = run.beside.pop("control").wait()
        return
    run.step("control", model_file(run, "control"), work)


def step_shuffled(run: Run) -> None:
    """The shuffled-map control: the rgbs fine-tune (same epochs, seed) on another image's map.

    Like the zero-map control it says what the extra training gives; unlike it, the model
    has a fourth channel that looks like saliency. SE-CBIR gains from this image's saliency
    only in what it gains over this model.
    """
    if not run.cfg.shuffled_control:
        return

    def work() -> None:
        from training import train

        train_rows, val_rows = run.indices("train"), run.indices("val")
        four = four_channel_start(run)
        best = train.train_classifier(
            four,
            (run.images[train_rows], run.labels[train_rows]),
            (run.images[val_rows], run.labels[val_rows]),
            run.cfg,
            run.out / "shuffled",
            stage="rgbs",
            saliency=(
                run.maps[run.shuffled_rows[train_rows]],
                run.maps[run.shuffled_rows[val_rows]],
            ),
        )
        run.keep_model("shuffled", best)

    run.step("shuffled", model_file(run, "shuffled"), work)


def model_inputs(
    run: Run, name: str, rows: NDArray[np.intp], maps_of: str = "true_class"
) -> NDArray[np.uint8]:
    """What model `name` takes for the given rows: images, images plus maps, or plus zeros,
    or plus another image's maps (the shuffled control).

    `maps_of`: whose class the training images' maps are of (Run.four_channels).
    """
    if name == "rgb":
        return run.images[rows]
    return run.four_channels(
        rows, zero_maps=name == "control", shuffled=name == "shuffled", maps_of=maps_of
    )


def step_classifiers(run: Run) -> None:
    """Accuracy and macro sensitivity of both classifiers on the test split."""

    def work() -> None:
        from training import model

        test_rows = run.indices("test")
        truth = run.labels[test_rows]
        result = {}
        for name in ("rgb", *fine_tunes(run.cfg)):
            classifier = run.model(name)
            probabilities = model.predict(
                classifier, model_inputs(run, name, test_rows), run.cfg.batch_size
            )
            result[name] = metrics.classification_metrics(truth, np.argmax(probabilities, axis=1))
            print(f"  {name}: {result[name]}", flush=True)
        write_json(run.out / "classifiers.json", result)

    run.step("classifiers", run.out / "classifiers.json", work)


FEATURE_FILES = {
    "cbir": ("rgb", "features/cbir_bank.npz", "features/cbir_queries.npz"),
    "se_cbir": ("rgbs", "features/se_cbir_bank.npz", "features/se_cbir_queries.npz"),
    "control": ("control", "features/control_bank.npz", "features/control_queries.npz"),
    "shuffled": ("shuffled", "features/shuffled_bank.npz", "features/shuffled_queries.npz"),
}
# SE-CBIR against each baseline: plain CBIR, the same fine-tune without saliency, and (with
# cfg.shuffled_control) with another image's saliency.
COMPARISONS = (("se_cbir", "cbir"), ("se_cbir", "control"), ("se_cbir", "shuffled"))


def fine_tunes(cfg: Config) -> tuple[str, ...]:
    """The 4-channel models a run trains: SE-CBIR's and its controls."""
    return ("rgbs", "control", "shuffled") if cfg.shuffled_control else ("rgbs", "control")


def retrieval_models(cfg: Config) -> list[str]:
    """The feature sets (retrieval systems) a run extracts and scores."""
    return [name for name in FEATURE_FILES if name != "shuffled" or cfg.shuffled_control]


def comparisons(cfg: Config) -> list[tuple[str, str]]:
    """The pairs whose difference metrics.json reports."""
    present = retrieval_models(cfg)
    return [(a, b) for a, b in COMPARISONS if b in present]


BANK_MAPS = ("true_class", "predicted_class")


def other_bank_maps(cfg: Config) -> str:
    """The kind of bank maps SE-CBIR's main bank does not use (the label channel's other arm)."""
    return next(kind for kind in BANK_MAPS if kind != cfg.bank_maps)


def other_bank_file(cfg: Config) -> str:
    """SE-CBIR's bank with the other kind of training maps, beside the main one."""
    return f"features/se_cbir_bank_{other_bank_maps(cfg)}.npz"


def step_features(run: Run) -> None:
    """Feature banks of both models: bank = train+val, queries = test."""
    folder = run.out / "features"
    done = outputs(run)["features"]

    def work() -> None:
        from training import bank, model

        folder.mkdir(parents=True, exist_ok=True)
        ids = np.array([r.image_id for r in run.records])
        bank_rows, query_rows = run.indices("train", "val"), run.indices("test")
        for name in retrieval_models(run.cfg):
            source, bank_file, query_file = FEATURE_FILES[name]
            extractor = compiled(model.feature_model(run.model(source), run.cfg.features))
            jobs = [
                (bank_rows, bank_file, run.cfg.bank_maps),
                (query_rows, query_file, "true_class"),  # test maps: always predicted
            ]
            if name == "se_cbir" and run.cfg.label_channel:  # the label channel's other arm
                jobs.append((bank_rows, other_bank_file(run.cfg), other_bank_maps(run.cfg)))
            for rows, file, maps_of in jobs:
                with warnings.catch_warnings():
                    # Keras warns that a lone tensor went to a model whose inputs are a
                    # one-element list; the call is right, the warning is noise.
                    warnings.filterwarnings("ignore", message="The structure of `inputs`")
                    features = bank.extract_features(
                        extractor, model_inputs(run, source, rows, maps_of), run.cfg.batch_size
                    )
                bank.save_bank(run.out / file, list(ids[rows]), features)
            print(f"  {name}: {features.shape[1]} features per image", flush=True)
        done.write_text(json.dumps({"models": retrieval_models(run.cfg)}) + "\n")

    if (
        done.exists()
        and run.cfg.label_channel
        and not (run.out / other_bank_file(run.cfg)).exists()
        and pending(run, "metrics")
    ):
        done.unlink()  # a run from before the label channel, metrics still to come: redo
    run.step("features", done, work)


def compiled(network: Any) -> Callable[..., Any]:
    """`network` as a traced function: batch after batch, several times faster than eager."""
    import tensorflow as tf

    function = tf.function(lambda x: network(x, training=False), reduce_retracing=True)
    return lambda x, training=False: function(tf.convert_to_tensor(x, tf.float32))


def retrieve(
    run: Run, name: str, k: int, bank_file: str | None = None
) -> tuple[list[str], list[str], NDArray[np.int64], NDArray[np.float32]]:
    """Top-k neighbours of every test query in the bank: query ids, bank ids, indices, sims.

    `bank_file`: another bank of the same model than FEATURE_FILES's (the label channel's).
    """
    from training import bank

    _, main_bank, query_file = FEATURE_FILES[name]
    bank_file = bank_file or main_bank
    bank_ids, bank_features = bank.load_bank(run.out / bank_file)
    query_ids, query_features = bank.load_bank(run.out / query_file)
    lesion = lesion_of(run)
    k = min(k, len(bank_ids))
    index, similarity = bank.top_k(
        query_features,
        bank_features,
        k,
        query_groups=[lesion[i] for i in query_ids],
        bank_groups=[lesion[i] for i in bank_ids],
        exclude_same_group=run.cfg.exclude_same_lesion,
    )
    return [str(i) for i in query_ids], [str(i) for i in bank_ids], index, similarity


def retrieve_by_class(
    run: Run, name: str, k: int
) -> dict[str, tuple[NDArray[np.int64], NDArray[np.float32]]]:
    """Per class, the top-k neighbours of every test query among the bank's images of that
    class (indices into the whole bank, -1 where the class runs short): the nearest images
    of each class that probes show (bundle.build_query_pool's `by_class`)."""
    from training import bank

    _, bank_file, query_file = FEATURE_FILES[name]
    bank_ids, bank_features = bank.load_bank(run.out / bank_file)
    query_ids, query_features = bank.load_bank(run.out / query_file)
    lesion, truth = lesion_of(run), truth_of(run)
    query_groups = [lesion[i] for i in query_ids]
    out = {}
    for code in sorted({truth[str(i)] for i in bank_ids}):
        rows = np.array([j for j, i in enumerate(bank_ids) if truth[str(i)] == code])
        index, similarity = bank.top_k(
            query_features,
            bank_features[rows],
            min(k, len(rows)),
            query_groups=query_groups,
            bank_groups=[lesion[str(bank_ids[j])] for j in rows],
            exclude_same_group=run.cfg.exclude_same_lesion,
        )
        out[code] = (np.where(index >= 0, rows[np.maximum(index, 0)], -1), similarity)
    return out


def lesion_of(run: Run) -> dict[str, str]:
    """image_id -> lesion_id, from the metadata (cheap; no image is opened)."""
    return {row["image_id"]: row["lesion_id"] for row in metadata_rows(run)}


def truth_of(run: Run) -> dict[str, str]:
    """image_id -> ground-truth class code."""
    return {row["image_id"]: row["dx"] for row in metadata_rows(run)}


def metadata_rows(run: Run) -> list[dict[str, str]]:
    """The metadata rows of the dataset; no image is opened, so retrieval steps start fast."""
    if run._records is not None:
        return [{"image_id": r.image_id, "lesion_id": r.lesion_id, "dx": r.dx} for r in run.records]
    return data.load_metadata(run.data_dir / data.METADATA_NAME)


class Scored:
    """One model's retrieval of every test query, scored: ids, neighbours, P@k per query."""

    def __init__(self, run: Run, name: str, ks: list[int], bank_file: str | None = None) -> None:
        truth = truth_of(run)
        self.query_ids, bank_ids, index, _ = retrieve(
            run, name, max(*ks, metrics.VOTE_K), bank_file
        )
        self.bank_size = len(bank_ids)
        self.query_truth = [truth[q] for q in self.query_ids]
        self.neighbour_ids = [[bank_ids[j] for j in row if j >= 0] for row in index]
        self.neighbour_truth = [[truth[n] for n in row] for row in self.neighbour_ids]
        self.precision = metrics.precision_at_k(self.query_truth, self.neighbour_truth, ks)[
            "precision"
        ]
        self.per_query = metrics.per_query_precision(self.query_truth, self.neighbour_truth, ks)


def label_channel(run: Run, ks: list[int], main: Scored) -> dict[str, Any]:
    """metrics.json's label_channel: SE-CBIR with the bank's training maps made from the true
    class and from the predicted class, and their difference with a bootstrap interval.

    A difference far from 0 says the true-class maps carry the label into the bank (which
    the control's zero maps cannot), i.e. part of SE-CBIR's edge would be the label's.
    """
    other = Scored(run, "se_cbir", ks, other_bank_file(run.cfg))
    if other.query_ids != main.query_ids:
        raise PipelineError("the label channel's queries differ from SE-CBIR's; rerun features")
    arms = {run.cfg.bank_maps: main, other_bank_maps(run.cfg): other}
    wrong = json.loads((run.out / PREDICTED_MAPS / "done.json").read_text())
    difference = metrics.bootstrap_difference(
        main.query_truth,
        arms["true_class"].per_query,
        arms["predicted_class"].per_query,
        ks,
        seed=run.cfg.seed,
    )
    for kind, scored in arms.items():
        macro = {k: round(v["macro"], 3) for k, v in scored.precision.items()}
        print(f"  se_cbir, bank maps of the {kind}: macro AP@k {macro}", flush=True)
    section = {
        "bank_maps": run.cfg.bank_maps,  # the arm that retrieval.se_cbir is
        "train_images": wrong["train_images"],
        "train_maps_differing": len(wrong["predicted"]),
        "retrieval": {kind: scored.precision for kind, scored in arms.items()},
        "true_class - predicted_class": difference,
    }
    print(label_channel_text(section, run.cfg.primary_k), flush=True)
    return section


def label_channel_text(section: dict[str, Any], primary_k: int | None) -> str:
    """The label-channel difference in the comparisons' format, with how many maps differ."""
    return (
        f"label channel ({section['train_maps_differing']} of {section['train_images']} "
        "training maps differ), SE-CBIR with bank maps of the true minus the predicted class, "
        + metrics.format_comparisons(
            {"true - predicted": section["true_class - predicted_class"]}, primary_k
        )
    )


def step_metrics(run: Run) -> None:
    """metrics.json: classifiers; P@k and macro AP@k of CBIR, SE-CBIR and the controls; the
    differences of SE-CBIR from each with bootstrap intervals; majority vote at 6; the
    primary k; the label-channel diagnostic.

    With cfg.seeds > 1, `classifiers`, `retrieval` and the majority vote are the first seed's
    (whose models make the study bundle); `comparisons` pool every seed (their estimate is
    the mean over seeds, their interval holds the variance between seeds); `per_seed` gives
    each seed's own figures.
    """

    def work() -> None:
        lesion = lesion_of(run)
        ks = list(run.cfg.retrieval_k)
        result: dict[str, Any] = {
            "classifiers": json.loads((run.out / "classifiers.json").read_text()),
            "retrieval": {},
            "k": ks,
            "primary_k": run.cfg.primary_k,
            "exclude_same_lesion": run.cfg.exclude_same_lesion,
        }
        per_query: dict[str, NDArray[np.float64]] = {}
        query_order: list[str] | None = None
        scored: dict[str, Scored] = {}
        for name in retrieval_models(run.cfg):
            scored[name] = found = Scored(run, name, ks)
            query_ids, neighbour_ids = found.query_ids, found.neighbour_ids
            query_truth, neighbour_truth = found.query_truth, found.neighbour_truth
            if query_order is not None and query_ids != query_order:
                raise PipelineError(f"the {name} queries differ from the others; rerun features")
            query_order = query_ids
            per_query[name] = found.per_query
            result["retrieval"][name] = found.precision
            result["queries"], result["bank"] = len(query_ids), found.bank_size
            vote = metrics.majority_vote_accuracy(query_truth, neighbour_truth, metrics.VOTE_K)
            result.setdefault("majority_vote_accuracy_at_6_by_model", {})[name] = vote
            # The thesis's file format, for `python -m training evaluate-retrieval`.
            write_json(
                run.out / f"neighbours_{name}.json",
                dict(zip(query_ids, neighbour_ids, strict=True)),
            )
            macro = {k: round(v["macro"], 3) for k, v in found.precision.items()}
            print(f"  {name}: macro AP@k {macro}, majority vote at 6 {vote:.3f}", flush=True)
        query_ids = query_order or []
        seeds = {run.cfg.seed: (result["classifiers"], result["retrieval"], per_query)}
        for sub in seed_runs(run):
            sub_precision: dict[str, NDArray[np.float64]] = {}
            sub_retrieval: dict[str, Any] = {}
            for name in retrieval_models(run.cfg):
                sub_scored = Scored(sub, name, ks)
                if sub_scored.query_ids != query_ids:
                    raise PipelineError(f"seed {sub.cfg.seed}'s queries differ from seed 1's")
                sub_precision[name] = sub_scored.per_query
                sub_retrieval[name] = sub_scored.precision
            classifiers = json.loads((sub.out / "classifiers.json").read_text())
            seeds[sub.cfg.seed] = (classifiers, sub_retrieval, sub_precision)
        query_truth = scored["se_cbir"].query_truth
        result["comparisons"] = {
            f"{a} - {b}": metrics.bootstrap_difference(
                query_truth,
                np.stack([precision[a] for _, _, precision in seeds.values()]),
                np.stack([precision[b] for _, _, precision in seeds.values()]),
                ks,
                seed=run.cfg.seed,
                clusters=[lesion[q] for q in query_ids],
            )
            for a, b in comparisons(run.cfg)
        }
        result["per_seed"] = {
            str(seed): seed_figures(classifiers, retrieval, comparisons(run.cfg))
            for seed, (classifiers, retrieval, _) in seeds.items()
        }
        result["bootstrap"] = {
            "draws": metrics.BOOTSTRAP_DRAWS,
            "stratified_by": "class",
            "resampled": "training seeds, then the lesions of each class (all their images)",
            "lone_lesion_class": "observed mean plus a lesion deviation of the other classes",
            "seeds": list(seeds),
            "interval": 0.95,
            "seed": run.cfg.seed,
        }
        print(metrics.format_comparisons(result["comparisons"], run.cfg.primary_k), flush=True)
        if run.cfg.label_channel:
            result["label_channel"] = label_channel(run, ks, scored["se_cbir"])
        result["majority_vote_accuracy_at_6"] = result["majority_vote_accuracy_at_6_by_model"][
            "se_cbir"
        ]
        write_json(run.out / "metrics.json", through_record(result))

    run.step("metrics", run.out / "metrics.json", work)


def through_record(result: dict[str, Any]) -> dict[str, Any]:
    """metrics.json as its typed record (studybundle.metrics, by which the app reads it) writes
    it: a figure the record refuses, or a key it does not know, stops the run here rather
    than leave a blank cell on the study's page."""
    try:
        written = Metrics.from_json(result).to_json()
    except MetricsError as error:
        raise PipelineError(f"metrics.json does not fit its record: {error}") from None
    if written != result:
        unknown = sorted(key for key in result if written.get(key) != result[key])
        raise PipelineError(f"metrics.json's record leaves out part of {', '.join(unknown)}")
    return written


def seed_figures(
    classifiers: dict[str, Any], retrieval: dict[str, Any], pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    """One seed's figures for metrics.json's `per_seed`: classifiers, macro AP@k of every
    system, and SE-CBIR's difference from each baseline at each k."""
    macro = {
        name: {k: scores["macro"] for k, scores in by_k.items()} for name, by_k in retrieval.items()
    }
    return {
        "classifiers": classifiers,
        "retrieval": macro,
        "comparisons": {
            f"{a} - {b}": {k: macro[a][k] - macro[b][k] for k in macro[a]} for a, b in pairs
        },
    }


def seed_runs(run: Run) -> list[Run]:
    """The runs of the further seeds (cfg.seeds > 1) in seeds/SEED/: the same dataset and
    split, every model trained again from seed cfg.seed + 1, + 2, ... (the arrays the run
    has loaded are shared, not read again)."""
    result = []
    for offset in range(1, run.cfg.seeds):
        cfg = dataclasses.replace(run.cfg, seed=run.cfg.seed + offset, seeds=1)
        sub = Run(cfg, run.data_dir, run.out / "seeds" / str(cfg.seed), run.weights)
        sub._records, sub._images = run._records, run._images
        result.append(sub)
    return result


# The steps each further seed repeats (its split is the run's own).
SEED_STEPS = ("config", *PIXEL_STEPS)


def step_seeds(run: Run) -> None:
    """With cfg.seeds > 1, every model and feature bank again from each further seed."""
    if run.cfg.seeds == 1:
        run.timings.setdefault("seeds", None)
        return
    done = outputs(run)["seeds"]

    def work() -> None:
        _ = run.images  # loaded once, shared by every seed
        for sub in seed_runs(run):
            print(f"  seed {sub.cfg.seed} in {sub.out.relative_to(run.out)}", flush=True)
            sub.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.out / "split.csv", sub.out / "split.csv")
            started = time.perf_counter()
            try:
                for name in SEED_STEPS:
                    STEP_BY_NAME[name](sub)
            finally:
                for job in sub.beside.values():
                    job.stop()
                write_timings(sub, time.perf_counter() - started)
        done.write_text(json.dumps({"seeds": [s.cfg.seed for s in seed_runs(run)]}) + "\n")

    run.step("seeds", done, work)


def max_neighbours(cfg: Config) -> int:
    """How many neighbours each aid's list holds: enough for every k the study may show."""
    return max(cfg.neighbours, *cfg.retrieval_k)


def step_pool(run: Run) -> None:
    """query_pool.json: one query per lesion, SE-CBIR and CBIR neighbours of distinct lesions."""

    def work() -> None:
        lesion, truth = lesion_of(run), truth_of(run)
        most = max_neighbours(run.cfg)
        query_ids, bank_ids, index, similarity = retrieve(run, "se_cbir", most + POOL_MARGIN)
        cbir_queries, cbir_bank, cbir_index, cbir_similarity = retrieve(
            run, "cbir", most + POOL_MARGIN
        )
        if cbir_queries != query_ids or cbir_bank != bank_ids:
            raise PipelineError("the CBIR and SE-CBIR feature banks hold different images")
        pool = bundle.build_query_pool(
            query_ids,
            [lesion[q] for q in query_ids],
            [truth[q] for q in query_ids],
            index,
            bank_ids,
            [lesion[b] for b in bank_ids],
            [truth[b] for b in bank_ids],
            similarities=similarity,
            neighbours=most,
            rule=run.cfg.query_filter,
            cbir=(cbir_index, cbir_similarity),
            by_class={
                aid: retrieve_by_class(run, aid, run.cfg.neighbours + POOL_MARGIN)
                for aid in ("se_cbir", "cbir")
            }
            if run.cfg.class_neighbours
            else None,
            class_depth=run.cfg.neighbours,
        )
        counts = pool.counts()
        print(
            f"  {counts['queries_before']} test images -> {counts['queries_after']} queries "
            f"({run.cfg.query_filter} rule); dropped: {counts['dropped']}",
            flush=True,
        )
        write_json(
            run.out / "query_pool.json", {"rule": run.cfg.query_filter, **bundle.pool_to_json(pool)}
        )

    run.step("pool", run.out / "query_pool.json", work)


def case_secret(run: Run) -> bytes:
    """The run's secret for case keys, made once (stable across re-runs, never in the bundle)."""
    path = run.out / SECRET_NAME
    if not path.exists():
        path.write_text(secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


def query_aids(run: Run, pool: bundle.QueryPool) -> bundle.QueryAids:
    """Both classifiers' class probabilities and the saliency map of every query of the pool."""
    from training import model

    row_of = {r.image_id: i for i, r in enumerate(run.records)}
    ids = [q.image_id for q in pool.queries]
    rows = np.array([row_of[i] for i in ids], dtype=int)
    found: dict[str, NDArray[np.float32]] = {}
    for name, key in (("rgbs", "rgb_saliency"), ("rgb", "rgb")):
        found[key] = model.predict(
            run.model(name), model_inputs(run, name, rows), run.cfg.batch_size
        )
    return bundle.QueryAids(
        probabilities={
            image_id: {key: found[key][n].tolist() for key in found}
            for n, image_id in enumerate(ids)
        },
        saliency={image_id: run.maps[row] for image_id, row in zip(ids, rows, strict=True)},
    )


def step_study(run: Run) -> None:
    """The study bundle (format 2, every aid): written to a scratch folder, validated, moved."""
    target = run.out / "study"

    def work() -> None:
        pool = bundle.pool_from_json(json.loads((run.out / "query_pool.json").read_text()))
        paths = {r.image_id: r.path for r in run.records}
        provenance = {
            "run": run.out.resolve().name,
            "preset": run.cfg.preset,
            "backbone": run.cfg.backbone,
            "image_size": run.cfg.image_size,
            "dataset": run.data_dir.resolve().name,
            "split_by": run.cfg.split_by,
            "split_seed": run.cfg.split_seed,
            "query_filter": run.cfg.query_filter,
            "exclude_same_lesion": run.cfg.exclude_same_lesion,
            "retrieval": "se_cbir",
            "metrics": json.loads((run.out / "metrics.json").read_text()),
            "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        }
        scratch = run.out / "study.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        bundle.write_bundle(
            scratch,
            pool,
            paths,
            case_secret(run),
            run.cfg.web_image_size,
            provenance,
            shown=run.cfg.neighbours,
            aids=query_aids(run, pool),
            context=data.patient_context(data.load_metadata(run.data_dir / data.METADATA_NAME)),
        )
        if target.exists():  # a bundle without its manifest: an interrupted older attempt
            shutil.rmtree(target)
        scratch.rename(target)

    run.step("study", target / "manifest.json", work)


def write_json(path: Path, value: Any, sort_keys: bool = True) -> None:
    """Write indented JSON, keys sorted unless their order means something."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=sort_keys) + "\n")


STEPS = (
    step_config,
    step_dataset,
    step_split,
    step_images,
    step_rgb,
    step_saliency,
    step_predicted_maps,
    step_rgbs,
    step_control,
    step_shuffled,
    step_classifiers,
    step_features,
    step_seeds,
    step_metrics,
    step_pool,
    step_study,
)


class Beside:
    """One step of the run in a second process (spawned: its own TensorFlow, seeded alike).

    The child writes its output where the step always does and its printout to `NAME/log.txt`;
    `wait` reports its wall time and raises its error. A child nobody will wait for (the parent
    failed first) is ended by `stop`, and at the latest with the parent (daemonic).
    """

    def __init__(self, run: Run, name: str) -> None:
        import keras

        self.name = name
        self.log = run.out / name / "log.txt"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        context = multiprocessing.get_context("spawn")
        self._results, sender = context.Pipe(duplex=False)
        policy = keras.mixed_precision.global_policy().name
        arguments = (sender, run.cfg, run.data_dir, run.out, run.weights, name, policy, self.log)
        self._process = context.Process(target=_run_beside, args=arguments, daemon=True)
        self._process.start()
        sender.close()  # the child holds the only sending end: its exit ends recv()
        print(
            f"[{name}] started in a second process (pid {self._process.pid}) beside the next "
            f"step; its log: {self.log.relative_to(run.out)}",
            flush=True,
        )

    def wait(self) -> float:
        """Block until the step has finished; its own seconds, as the child timed them."""
        print(f"[{self.name}] waiting for the second process ...", flush=True)
        start = time.perf_counter()
        try:
            seconds, error = self._results.recv()
        except EOFError:  # the child died without a word (killed, out of memory)
            seconds, error = None, None
        self._process.join()
        if seconds is None and error is None:
            error = f"its process ended with exit code {self._process.exitcode}"
        if error is not None:
            raise PipelineError(f"step {self.name}, run in a second process, failed: {error}")
        waited = time.perf_counter() - start
        print(f"[{self.name}] done in {seconds:.1f} s (waited {waited:.1f} s for it)", flush=True)
        return float(seconds)

    def stop(self) -> None:
        """End the child if it is still running (the parent is giving up)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _run_beside(
    sender: Any,
    cfg: Config,
    data_dir: Path,
    out: Path,
    weights: Path | None,
    name: str,
    policy: str,
    log: Path,
) -> None:
    """The child's side of `Beside`: run step `name` with its printout in `log`."""
    import os
    import traceback

    with log.open("a") as stream:  # TensorFlow's own messages too: move the descriptors
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
    try:
        import keras

        from training import model

        model.set_threads(cfg.threads)
        keras.mixed_precision.set_global_policy(policy)
        state = Run(cfg, data_dir, out, weights)
        STEP_BY_NAME[name](state)
        sender.send((state.timings[name], None))
    except BaseException as error:  # the parent needs a word whatever happened
        traceback.print_exc()
        sender.send((None, f"{type(error).__name__}: {error} (see {log})"))
    finally:
        sender.close()


STEP_BY_NAME = {step.__name__.removeprefix("step_"): step for step in STEPS}


def write_timings(run: Run, total: float) -> None:
    """timings.json: seconds per stage of the run that computed it (skips keep older times).

    `total_seconds` sums the stages, so it exceeds the wall time when the control trained
    beside rgbs; `last_invocation_seconds` is the last invocation's wall time.
    """
    path = run.out / "timings.json"
    previous = json.loads(path.read_text()).get("stages", {}) if path.exists() else {}
    order = [step.__name__.removeprefix("step_") for step in STEPS]
    stages = {}
    for name in order:
        seconds = run.timings.get(name)
        stages[name] = seconds if seconds is not None else previous.get(name)
    computed = [s for s in stages.values() if s is not None]
    write_json(
        path,
        {
            "stages": stages,
            "total_seconds": round(sum(computed), 3),
            "last_invocation_seconds": round(total, 3),
        },
        sort_keys=False,  # stages in the order they run
    )


def run(
    cfg: Config,
    data_dir: Path,
    out_dir: Path,
    imagenet_weights: Path | None = None,
    announced: bool = False,
) -> Path:
    """Run every step not yet done for `cfg` on `data_dir` into `out_dir`; the bundle path.

    `announced`: the caller already chose the precision and printed the device line.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise PipelineError(f"data folder not found: {data_dir}")
    if not (data_dir / data.METADATA_NAME).is_file():
        raise PipelineError(f"{data.METADATA_NAME} not found in {data_dir}")
    if imagenet_weights is not None and not Path(imagenet_weights).is_file():
        raise PipelineError(f"ImageNet weights file not found: {imagenet_weights}")
    out_dir.mkdir(parents=True, exist_ok=True)
    state = Run(cfg, data_dir, out_dir, imagenet_weights)
    if not announced and pending(state):  # a finished run needs no TensorFlow at all
        announce(cfg)
    start = time.perf_counter()
    try:
        for step in STEPS:
            step(state)
    finally:
        for job in state.beside.values():
            job.stop()
        total = time.perf_counter() - start
        write_timings(state, total)
    print(f"total {total:.1f} s", flush=True)
    return out_dir / "study"


def announce(cfg: Config, force_mixed: bool = False, warn: bool = True) -> str:
    """Set the threads, choose the precision, then print the devices, strategy and precision
    loudly (and why not, when a GPU preset meets a machine without a GPU); the policy's name."""
    from training import model

    model.set_threads(cfg.threads)
    policy = model.set_precision(model.use_mixed_precision(cfg, force_mixed))
    print(model.device_summary(cfg, policy), flush=True)
    warning = model.cpu_warning(cfg) if warn else None
    if warning:
        print(warning, flush=True)
    return policy


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; with `deterministic`, a fresh run repeats exactly.

    Without deterministic kernels, multi-threaded reductions sum in varying order, and two
    demo runs from the same seed ended with macro sensitivities 0.23 and 0.38.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:  # process-wide and permanent, which suits one run per process
        tf.config.experimental.enable_op_determinism()


def summary_text(out: Path) -> str:
    """The run's result in a few lines: classifiers, retrieval and its comparisons."""
    result = json.loads((Path(out) / "metrics.json").read_text())
    lines = ["test split:"]
    for name, scores in result["classifiers"].items():
        lines.append(
            f"  {name:<8} accuracy {scores['accuracy']:.3f}  "
            f"macro sensitivity {scores['macro_sensitivity']:.3f}"
        )
    lines.append(f"retrieval ({result['queries']} queries, bank {result['bank']}): macro AP@k")
    for name, by_k in result["retrieval"].items():
        lines.append(f"  {name:<8} " + "  ".join(f"@{k} {v['macro']:.3f}" for k, v in by_k.items()))
    if "comparisons" in result:
        lines.append(metrics.format_comparisons(result["comparisons"], result.get("primary_k")))
    if "label_channel" in result:
        lines.append(label_channel_text(result["label_channel"], result.get("primary_k")))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """`python -m training run`: resolve the configuration, run, print the bundle's path."""
    cfg = get_config(args.preset, args.overrides)
    study = run(cfg, args.data, args.out, args.imagenet_weights)
    valid = bundle.validate_bundle(study)
    print(summary_text(args.out))
    print(f"study bundle: {study.resolve()} ({len(valid.queries)} queries)")
    return 0
