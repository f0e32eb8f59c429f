"""The query pool's duplicate-lesion filtering and the study bundle's writer and validator.

No TensorFlow: everything runs on hand-made ids, lesions and small images.
"""

import hashlib
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from studybundle.images import metadata_segment
from studybundle.taxonomy import HAM10000, LIKERT, contrast_ratio
from studybundle.taxonomy import HAM10000_CODES as CLASS_CODES
from training.bundle import (
    DROP_DUPLICATE,
    DROP_SHARED,
    DROP_TOO_FEW,
    QueryAids,
    QueryPool,
    build_query_pool,
    pool_from_json,
    pool_to_json,
    validate_bundle,
    write_bundle,
)
from training.data import patient_context
from training.errors import PipelineError


def first_vote(labels: Sequence[str]) -> str:
    """A stand-in vote so the filtering tests do not depend on metrics.py."""
    return labels[0]


def bank(lesions: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Bank ids, lesions and labels for the given lesion of each row."""
    ids = [f"ISIC_B{i:03d}" for i in range(len(lesions))]
    truth = [CLASS_CODES[i % 7] for i in range(len(lesions))]
    return ids, list(lesions), truth


def pool_of(rows: list[list[int]], query_lesions: list[str], bank_lesions: list[str], **kw):
    """A query pool of queries Q000.. with the given neighbour rows."""
    ids, lesions, truth = bank(bank_lesions)
    index = np.array(rows, dtype=int)
    sims = np.tile(np.linspace(0.99, 0.5, index.shape[1]), (len(rows), 1))
    return build_query_pool(
        [f"ISIC_Q{i:03d}" for i in range(len(rows))],
        query_lesions,
        ["mel"] * len(rows),
        index,
        ids,
        lesions,
        truth,
        similarities=sims,
        vote=first_vote,
        **kw,
    )


# Twelve bank rows of twelve lesions, plus row 12 sharing lesion L1 and row 13 of lesion QA.
BANK_LESIONS = [f"L{i}" for i in range(12)] + ["L1", "QA"]


def test_one_query_per_lesion_keeps_the_first_image_id() -> None:
    ids, lesions, truth = bank(BANK_LESIONS)
    rows = np.array([list(range(8))] * 3)
    pool = build_query_pool(
        ["ISIC_Q002", "ISIC_Q001", "ISIC_Q003"],
        ["QA", "QA", "QB"],
        ["mel", "mel", "nv"],
        rows,
        ids,
        lesions,
        truth,
        vote=first_vote,
    )
    assert [q.image_id for q in pool.queries] == ["ISIC_Q001", "ISIC_Q003"]
    assert pool.dropped == {DROP_DUPLICATE: 1}
    assert pool.counts() == {
        "queries_before": 3,
        "queries_after": 2,
        "dropped": {DROP_DUPLICATE: 1},
    }


def test_no_neighbour_shows_another_querys_lesion() -> None:
    # Query QB's first candidate (row 13) is of lesion QA, query QA's own (issue 22: the
    # import refuses it; an image-level split puts such photographs in the bank).
    pool = pool_of([list(range(9)), [13, *range(8)]], ["QA", "QB"], BANK_LESIONS)
    lesions = {n.lesion_id for query in pool.queries for n in query.neighbours}
    assert len(pool.queries) == 2 and not lesions & {"QA", "QB"}
    assert pool.queries[1].neighbours[0].lesion_id == "L0"


def test_skipped_neighbours_give_their_place_to_the_next_ranked() -> None:
    # Rank 1 is the query's own lesion, rank 3 repeats the lesion of rank 2.
    pool = pool_of([[13, 1, 12, 2, 3, 4, 5, 6, 7]], ["QA"], BANK_LESIONS)
    (query,) = pool.queries
    assert [n.rank for n in query.neighbours] == [1, 2, 3, 4, 5, 6]
    assert [n.lesion_id for n in query.neighbours] == ["L1", "L2", "L3", "L4", "L5", "L6"]
    similarities = [n.similarity for n in query.neighbours]
    assert similarities == sorted(similarities, reverse=True)
    # The similarity travels with its candidate: L2 was the fourth candidate.
    assert similarities[1] == pytest.approx(np.linspace(0.99, 0.5, 9)[3], abs=1e-6)
    assert query.majority_vote == query.neighbours[0].truth


def test_queries_without_six_distinct_lesions_are_dropped() -> None:
    pool = pool_of(
        [[1, 12, 2, 3, 4, 5, 13, -1], [0, 1, 2, 3, 4, 5, 6, 7]], ["QA", "QB"], BANK_LESIONS
    )
    assert [q.image_id for q in pool.queries] == ["ISIC_Q001"]
    assert pool.dropped == {DROP_TOO_FEW.format(n=6): 1}


def test_thesis_rule_drops_queries_whose_top_six_share_a_lesion() -> None:
    rows = [
        [1, 12, 2, 3, 4, 5, 6, 7],  # L1 twice in the top six: dropped
        [0, 1, 2, 3, 4, 5, 12, 7],  # the repeat is seventh: kept
        [13, 0, 1, 2, 3, 4, 5, 6],  # own lesion first is skipped, then six distinct: kept
    ]
    pool = pool_of(rows, ["QA", "QB", "QA"], BANK_LESIONS, rule="thesis")
    # Q000 and Q002 are of lesion QA; Q000 comes first by id and is then dropped.
    assert [q.image_id for q in pool.queries] == ["ISIC_Q001"]
    assert pool.dropped == {DROP_SHARED.format(n=6): 1, DROP_DUPLICATE: 1}
    lenient = pool_of(rows, ["QA", "QB", "QC"], BANK_LESIONS, rule="lesion")
    assert len(lenient.queries) == 3
    strict = pool_of(rows, ["QA", "QB", "QC"], BANK_LESIONS, rule="thesis")
    assert [q.image_id for q in strict.queries] == ["ISIC_Q001", "ISIC_Q002"]


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(PipelineError, match="query filter"):
        pool_of([[0, 1, 2, 3, 4, 5]], ["QA"], BANK_LESIONS, rule="strict")
    with pytest.raises(PipelineError, match="length"):
        pool_of([[0, 1, 2, 3, 4, 5]], ["QA", "QB"], BANK_LESIONS)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    queries=st.integers(1, 12),
    bank_size=st.integers(1, 20),
    lesion_count=st.integers(1, 10),
    rule=st.sampled_from(["lesion", "thesis"]),
)
def test_pool_invariants_hold_for_any_input(
    data: st.DataObject, queries: int, bank_size: int, lesion_count: int, rule: str
) -> None:
    lesion = st.integers(0, lesion_count - 1).map(lambda i: f"L{i}")
    bank_lesions = data.draw(st.lists(lesion, min_size=bank_size, max_size=bank_size))
    query_lesions = data.draw(st.lists(lesion, min_size=queries, max_size=queries))
    width = min(bank_size, 9)
    rows = [data.draw(st.permutations(range(bank_size)))[:width] for _ in range(queries)]
    pool = pool_of(rows, query_lesions, bank_lesions, rule=rule)
    counts = pool.counts()
    assert counts["queries_before"] == queries
    assert counts["queries_after"] + sum(counts["dropped"].values()) == queries
    kept_lesions = [q.lesion_id for q in pool.queries]
    assert len(kept_lesions) == len(set(kept_lesions))
    assert counts["dropped"].get(DROP_DUPLICATE, 0) == queries - len(set(query_lesions))
    for query in pool.queries:
        shown = [n.lesion_id for n in query.neighbours]
        assert len(shown) == 6 == len(set(shown))
        assert query.lesion_id not in shown
        assert [n.rank for n in query.neighbours] == [1, 2, 3, 4, 5, 6]


def test_class_information_is_complete_and_readable() -> None:
    assert tuple(c.code for c in HAM10000) == CLASS_CODES
    assert len({c.colour for c in HAM10000}) == 7
    assert {c.code for c in HAM10000 if c.malignant} == {"akiec", "bcc", "mel"}
    for info in HAM10000:
        assert contrast_ratio(info.colour, info.text_colour) >= 4.5, info.code
        assert info.name and len(info.definition) > 40
    assert len(LIKERT) == 5


# --- the bundle writer and validator ----------------------------------------------------


def source_image(path: Path, seed: int) -> None:
    """A 60x45 non-symmetric JPEG with EXIF, a comment and an ICC-like profile, as cameras do."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((45, 60, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 60, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 200, 45, dtype=np.uint8)[:, None]
    pixels[5:20, 5:25, 2] = rng.integers(100, 255)
    exif = Image.Exif()
    exif[0x010E] = f"secret description {path.stem}"  # ImageDescription
    Image.fromarray(pixels).save(
        path, format="JPEG", exif=exif.tobytes(), comment=path.stem.encode(), icc_profile=b"x" * 64
    )


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Source images for 3 queries and 12 bank images, named by image id."""
    folder = tmp_path_factory.mktemp("sources")
    ids = [f"ISIC_Q{i:03d}" for i in range(3)] + [f"ISIC_B{i:03d}" for i in range(12)]
    paths = {}
    for seed, image_id in enumerate(ids):
        paths[image_id] = folder / f"{image_id}.jpg"
        source_image(paths[image_id], seed)
    assert metadata_segment(paths["ISIC_Q000"].read_bytes())  # the sources do carry metadata
    return paths


def small_pool():
    """Three queries of three lesions, each with its own neighbour order."""
    rows = [[0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [1, 12, 3, 5, 7, 9, 11, 0]]
    rows = [r + [-1] * (8 - len(r)) for r in rows]
    return pool_of(
        rows, ["HAM_QA", "HAM_QB", "HAM_QC"], [f"HAM_{i:03d}" for i in range(12)] + ["HAM_001"]
    )


PROVENANCE = {"run": "unit", "created": "2024-01-01T00:00:00+00:00"}


@pytest.fixture
def bundle(tmp_path: Path, sources: dict[str, Path]) -> Path:
    """A format-1 bundle written from the small pool."""
    return write_bundle(
        tmp_path / "study", small_pool(), sources, b"k" * 32, 40, PROVENANCE, version=1
    )


def test_bundle_has_the_documented_files_and_validates(bundle: Path) -> None:
    valid = validate_bundle(bundle)
    assert len(valid.queries) == 3 and valid.layout.max_neighbours == 6
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [c["code"] for c in manifest["classes"]] == list(CLASS_CODES)
    assert manifest["likert"] == list(LIKERT)
    assert manifest["counts"]["queries_after"] == 3
    queries = json.loads((bundle / "queries.json").read_text())
    assert [q["image_id"] for q in queries] == ["ISIC_Q000", "ISIC_Q001", "ISIC_Q002"]
    assert queries[2]["neighbours"][1]["image_id"] == "ISIC_B003"  # B012 shares HAM_001
    assert len({q["case_key"] for q in queries}) == 3
    for query in queries:
        assert "Q00" not in query["case_key"] and len(query["case_key"]) == 24


def test_images_are_content_named_resized_and_stripped(bundle: Path) -> None:
    names = sorted(p.name for p in (bundle / "images").iterdir())
    assert len(names) == 3 * 2 + 10  # two per query, ten distinct neighbours
    for name in names:
        assert "ISIC" not in name and "HAM" not in name and "Q00" not in name
        data = (bundle / "images" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest()[:32] + ".jpg" == name
        assert metadata_segment(data) is None
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            assert max(image.size) == 40 and image.size == (40, 30)
            assert "exif" not in image.info and "icc_profile" not in image.info
            assert "comment" not in image.info


def test_rotated_image_is_the_upright_one_turned_180_degrees(bundle: Path) -> None:
    query = json.loads((bundle / "queries.json").read_text())[0]

    def pixels(name: str) -> np.ndarray:
        return np.asarray(Image.open(bundle / name).convert("RGB"), dtype=float)

    upright, rotated = pixels(query["image"]), pixels(query["image_rotated"])
    assert np.abs(np.rot90(upright, 2) - rotated).mean() < 4
    assert np.abs(upright - rotated).mean() > 30


def test_output_is_deterministic(tmp_path: Path, sources: dict[str, Path], bundle: Path) -> None:
    again = write_bundle(
        tmp_path / "again", small_pool(), sources, b"k" * 32, 40, PROVENANCE, version=1
    )
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (bundle / name).read_bytes() == (again / name).read_bytes()
    other = write_bundle(tmp_path / "other", small_pool(), sources, b"z" * 32, 40, PROVENANCE)
    keys = {q["case_key"] for q in json.loads((other / "queries.json").read_text())}
    assert keys.isdisjoint(q["case_key"] for q in json.loads((bundle / "queries.json").read_text()))


def edit_queries(bundle: Path, change) -> None:
    """Rewrite queries.json through `change(queries)`."""
    path = bundle / "queries.json"
    queries = json.loads(path.read_text())
    change(queries)
    path.write_text(json.dumps(queries))


def test_validator_catches_a_missing_image(bundle: Path) -> None:
    query = json.loads((bundle / "queries.json").read_text())[1]
    (bundle / query["neighbours"][3]["image"]).unlink()
    with pytest.raises(PipelineError, match="missing from the bundle"):
        validate_bundle(bundle)


def test_validator_catches_a_neighbour_of_the_query_lesion(bundle: Path) -> None:
    def change(queries: list) -> None:
        queries[0]["neighbours"][2]["lesion_id"] = queries[0]["lesion_id"]

    edit_queries(bundle, change)
    with pytest.raises(PipelineError, match=r"json\[0\]\.neighbours\[2\] repeats a lesion"):
        validate_bundle(bundle)


def test_validator_catches_repeated_neighbour_lesions(bundle: Path) -> None:
    def change(queries: list) -> None:
        queries[0]["neighbours"][5]["lesion_id"] = queries[0]["neighbours"][0]["lesion_id"]

    edit_queries(bundle, change)
    with pytest.raises(PipelineError, match=r"json\[0\]\.neighbours\[5\] repeats a lesion"):
        validate_bundle(bundle)


def test_validator_catches_a_duplicate_case_key(bundle: Path) -> None:
    def change(queries: list) -> None:
        queries[2]["case_key"] = queries[0]["case_key"]

    edit_queries(bundle, change)
    with pytest.raises(PipelineError, match=r"queries\.json\[2\]\.case_key .* appears twice"):
        validate_bundle(bundle)


def test_validator_catches_id_in_a_file_name(bundle: Path) -> None:
    queries = json.loads((bundle / "queries.json").read_text())
    shutil.copy(bundle / queries[0]["image"], bundle / "images" / "ISIC_Q000.jpg")
    with pytest.raises(PipelineError, match=r"images/ISIC_Q000\.jpg is not named"):
        validate_bundle(bundle)


def test_validator_catches_a_wrong_rotation_and_a_renamed_image(bundle: Path) -> None:
    def change(queries: list) -> None:
        queries[0]["image_rotated"] = queries[0]["image"]

    edit_queries(bundle, change)
    with pytest.raises(PipelineError, match="turned by 180"):
        validate_bundle(bundle)


def test_validator_catches_metadata_and_hash_mismatch(bundle: Path) -> None:
    query = json.loads((bundle / "queries.json").read_text())[0]
    path = bundle / query["image"]
    with Image.open(path) as image:
        image.load()
        exif = Image.Exif()
        exif[0x010E] = "leak"
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", exif=exif.tobytes())
    path.write_bytes(buffer.getvalue())
    with pytest.raises(PipelineError, match="does not match its content hash"):
        validate_bundle(bundle)
    renamed = bundle / "images" / (hashlib.sha256(buffer.getvalue()).hexdigest()[:32] + ".jpg")
    path.rename(renamed)
    edit_queries(bundle, lambda queries: queries[0].update(image=f"images/{renamed.name}"))
    with pytest.raises(PipelineError, match=r"carries metadata \(APP1 EXIF/XMP\)"):
        validate_bundle(bundle)


def test_validator_catches_schema_problems(bundle: Path) -> None:
    original = (bundle / "manifest.json").read_text()
    manifest = json.loads(original)
    manifest["classes"] = manifest["classes"][::-1]
    manifest["likert"] = manifest["likert"][:4]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match="classes must be akiec, bcc") as caught:
        validate_bundle(bundle)
    assert "likert" in str(caught.value)
    (bundle / "manifest.json").write_text(original)
    (bundle / "queries.json").unlink()
    with pytest.raises(PipelineError, match=r"queries\.json is missing"):
        validate_bundle(bundle)


def test_empty_pool_is_an_error(tmp_path: Path, sources: dict[str, Path]) -> None:
    empty = pool_of([[0, 0, 0, 0, 0, 0]], ["QA"], BANK_LESIONS)
    with pytest.raises(PipelineError, match="empty"):
        write_bundle(tmp_path / "study", empty, sources, b"k", 40, PROVENANCE)


def test_pool_survives_a_json_round_trip() -> None:
    pool = small_pool()
    data = json.loads(json.dumps(pool_to_json(pool)))
    assert pool_from_json(data) == pool


# --- format 2: both neighbour lists, probabilities, saliency ---------------------------


def test_the_cbir_list_is_filtered_by_the_same_rule() -> None:
    ids, lesions, truth = bank(BANK_LESIONS)
    se_rows = np.array([list(range(8)), list(range(8))])
    # Query 0's CBIR candidates repeat lesion L1 (rows 1 and 12): the lesion rule skips the
    # repeat. Query 1's hold only five other lesions: it is dropped, for CBIR's sake.
    cbir_rows = np.array([[1, 12, 2, 3, 4, 5, 6, 7], [13, 1, 2, 3, 4, 5, -1, -1]])
    sims = np.tile(np.linspace(0.9, 0.2, 8), (2, 1))
    pool = build_query_pool(
        ["ISIC_Q000", "ISIC_Q001"],
        ["QX", "QA"],
        ["mel", "nv"],
        se_rows,
        ids,
        lesions,
        truth,
        similarities=sims,
        vote=first_vote,
        cbir=(cbir_rows, sims),
    )
    (query,) = pool.queries
    assert [n.lesion_id for n in query.cbir] == ["L1", "L2", "L3", "L4", "L5", "L6"]
    assert [n.rank for n in query.cbir] == [1, 2, 3, 4, 5, 6]
    assert pool.dropped == {DROP_TOO_FEW.format(n=6) + " (CBIR)": 1}
    assert pool_from_json(json.loads(json.dumps(pool_to_json(pool)))) == pool


def two_list_pool() -> QueryPool:
    """Three queries with nine SE-CBIR and nine CBIR neighbours each."""
    ids, lesions, truth = bank([f"HAM_{i:03d}" for i in range(12)])
    se_rows = np.array([list(range(12)), list(range(11, -1, -1)), [*range(3, 12), 0, 1, 2]])
    cbir_rows = se_rows[::-1].copy()
    sims = np.tile(np.linspace(0.99, 0.1, 12), (3, 1))
    return build_query_pool(
        ["ISIC_Q000", "ISIC_Q001", "ISIC_Q002"],
        ["HAM_QA", "HAM_QB", "HAM_QC"],
        ["mel", "nv", "bcc"],
        se_rows,
        ids,
        lesions,
        truth,
        similarities=sims,
        neighbours=9,
        cbir=(cbir_rows, sims),
    )


def query_aids(pool: QueryPool) -> QueryAids:
    """Probabilities of both classifiers and a saliency map per query (a bright square)."""
    rng = np.random.default_rng(0)
    probabilities, maps = {}, {}
    for query in pool.queries:
        raw = rng.random((2, 7))
        probabilities[query.image_id] = {
            "rgb_saliency": (raw[0] / raw[0].sum()).tolist(),
            "rgb": (raw[1] / raw[1].sum()).tolist(),
        }
        heat = np.zeros((32, 32), np.uint8)
        heat[4:14, 6:20] = 255
        maps[query.image_id] = heat
    return QueryAids(probabilities=probabilities, saliency=maps)


def test_format2_carries_every_aid_and_validates(tmp_path: Path, sources: dict[str, Path]) -> None:
    pool = two_list_pool()
    folder = write_bundle(
        tmp_path / "v2", pool, sources, b"k" * 32, 40, PROVENANCE, shown=6, aids=query_aids(pool)
    )
    valid = validate_bundle(folder)
    manifest = valid.manifest
    assert valid.version == 2 and manifest["aids"] == [
        "se_cbir",
        "cbir",
        "probabilities",
        "saliency",
    ]
    assert manifest["max_neighbours"] == 9 and manifest["neighbours"] == 6
    assert [c["malignant"] for c in manifest["classes"]] == [
        True,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    query = valid.queries[0]
    aids = query["aids"]
    assert [n["image_id"] for n in aids["se_cbir"]["neighbours"]][:3] == [
        "ISIC_B000",
        "ISIC_B001",
        "ISIC_B002",
    ]
    assert (
        len(aids["cbir"]["neighbours"]) == 9
        and sorted(aids["cbir"]["majority_vote"], key=int)[-1] == "9"
    )
    assert abs(sum(aids["probabilities"]["rgb"]) - 1) < 1e-5
    with (
        Image.open(folder / query["image"]) as upright,
        Image.open(folder / aids["saliency"]["image"]) as overlay,
    ):
        assert overlay.size == upright.size == (40, 30)
        difference = np.abs(
            np.asarray(overlay, dtype=float) - np.asarray(upright.convert("RGB"), dtype=float)
        ).mean(axis=-1)
    # The overlay colours where the map is high (top left) and leaves the rest as it was.
    assert difference[5:10, 10:20].mean() > 40 > 5 > difference[20:, 30:].mean()
    v1 = write_bundle(tmp_path / "v1", pool, sources, b"k" * 32, 40, PROVENANCE, version=1)
    first = validate_bundle(v1).queries[0]
    assert [n["image_id"] for n in first["neighbours"]] == [
        n["image_id"] for n in aids["se_cbir"]["neighbours"][:6]
    ]
    assert first["majority_vote"] == aids["se_cbir"]["majority_vote"]["6"]


def test_patient_context_reads_hams_metadata_as_the_bundle_carries_it() -> None:
    rows = [
        {"image_id": "ISIC_1", "age": "45.0", "sex": "male", "localization": "lower extremity"},
        {"image_id": "ISIC_2", "age": "", "sex": "unknown", "localization": "unknown"},
        {"image_id": "ISIC_3", "age": "130", "sex": "Female", "localization": " back "},
        {"image_id": "ISIC_4", "age": "n/a", "sex": "", "localization": "x" * 101},
    ]
    assert patient_context(rows) == {
        "ISIC_1": {"age": 45, "sex": "male", "site": "lower extremity"},
        "ISIC_2": {"age": None, "sex": None, "site": None},
        "ISIC_3": {"age": None, "sex": "female", "site": "back"},
        "ISIC_4": {"age": None, "sex": None, "site": None},
    }


def test_format2_with_context_carries_the_extension(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    pool = two_list_pool()
    ids = [query.image_id for query in pool.queries]
    rows = [
        {"image_id": image_id, "age": str(20 + 5 * n), "sex": "female", "localization": "face"}
        for n, image_id in enumerate(ids)
    ]
    folder = write_bundle(
        tmp_path / "ctx", pool, sources, b"k" * 32, 40, PROVENANCE, context=patient_context(rows)
    )
    valid = validate_bundle(folder)
    assert valid.manifest["extensions"] == ["context"]
    by_id = {query["image_id"]: query["context"] for query in valid.queries}
    assert by_id == {
        image_id: {"age": 20 + 5 * n, "sex": "female", "site": "face"}
        for n, image_id in enumerate(ids)
    }
    with pytest.raises(PipelineError, match="no patient context given for"):
        write_bundle(tmp_path / "miss", pool, sources, b"k" * 32, 40, PROVENANCE, context={})
    with pytest.raises(PipelineError, match="extension of format 2"):
        write_bundle(
            tmp_path / "v1", pool, sources, b"k" * 32, 40, PROVENANCE, version=1, context={}
        )


# --- the class_neighbours extension: each query's nearest images of every class ----------


def nearest_by_class(
    queries: int, order: Sequence[int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class, the bank rows of that class in `order` (the same for every query), three
    columns padded with -1, similarities falling."""
    _, _, truth = bank([f"HAM_{i:03d}" for i in range(12)])
    out = {}
    for code in CLASS_CODES:
        rows = [row for row in order if truth[row] == code][:3]
        rows += [-1] * (3 - len(rows))
        index = np.array([rows] * queries)
        out[code] = (index, np.tile(np.linspace(0.8, 0.4, 3), (queries, 1)).astype(np.float32))
    return out


def class_pool(depth: int = 2) -> QueryPool:
    """Three queries with both lists and, per aid, their nearest images of every class."""
    ids, lesions, truth = bank([f"HAM_{i:03d}" for i in range(12)])
    se_rows = np.array([list(range(12)), list(range(11, -1, -1)), [*range(3, 12), 0, 1, 2]])
    sims = np.tile(np.linspace(0.99, 0.1, 12), (3, 1))
    return build_query_pool(
        ["ISIC_Q000", "ISIC_Q001", "ISIC_Q002"],
        ["HAM_QA", "HAM_QB", "HAM_QC"],
        ["mel", "nv", "bcc"],
        se_rows,
        ids,
        lesions,
        truth,
        similarities=sims,
        neighbours=9,
        cbir=(se_rows[::-1].copy(), sims),
        by_class={
            "se_cbir": nearest_by_class(3, range(12)),
            "cbir": nearest_by_class(3, range(11, -1, -1)),
        },
        class_depth=depth,
    )


def test_each_query_keeps_its_nearest_images_of_every_class(tmp_path: Path) -> None:
    pool = class_pool()
    query = pool.queries[0]
    se = query.class_neighbours["se_cbir"]
    # akiec is rows 0 and 7 of the bank, mel rows 4 and 11, nv row 5 alone.
    assert [n.image_id for n in se["akiec"]] == ["ISIC_B000", "ISIC_B007"]
    assert [n.image_id for n in query.class_neighbours["cbir"]["akiec"]] == [
        "ISIC_B007",
        "ISIC_B000",
    ]
    assert [n.image_id for n in se["nv"]] == ["ISIC_B005"]
    assert all(n.truth == code for code, items in se.items() for n in items)
    assert [n.rank for n in se["mel"]] == [1, 2] and se["mel"][0].similarity == 0.8
    assert len(class_pool(depth=1).queries[0].class_neighbours["se_cbir"]["mel"]) == 1
    assert pool_from_json(json.loads(json.dumps(pool_to_json(pool)))) == pool


def test_class_lists_skip_query_lesions_and_repeat_no_lesion() -> None:
    # Bank rows 0 and 7 (akiec) share lesion L0; row 5 (nv) is of query lesion QA.
    lesions = [
        "L0",
        *[f"L{i}" for i in range(1, 5)],
        "QA",
        "L6",
        "L0",
        *[f"L{i}" for i in range(8, 12)],
    ]
    ids, _, truth = bank(lesions)
    rows = np.array([list(range(12))])
    sims = np.tile(np.linspace(0.99, 0.1, 12), (1, 1))
    by_class = {"se_cbir": nearest_by_class(1, range(12))}
    pool = build_query_pool(
        ["ISIC_Q000"],
        ["QA"],
        ["mel"],
        rows,
        ids,
        lesions,
        truth,
        similarities=sims,
        by_class=by_class,
    )
    (query,) = pool.queries
    assert [n.image_id for n in query.class_neighbours["se_cbir"]["akiec"]] == ["ISIC_B000"]
    assert query.class_neighbours["se_cbir"]["nv"] == ()


def test_format2_with_class_neighbours_carries_the_extension(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    pool = class_pool()
    folder = write_bundle(tmp_path / "classes", pool, sources, b"k" * 32, 40, PROVENANCE)
    valid = validate_bundle(folder)
    assert valid.manifest["extensions"] == ["class_neighbours"]
    for query in valid.queries:
        for aid in ("se_cbir", "cbir"):
            by_class = query["aids"][aid]["class_neighbours"]
            assert sorted(by_class) == sorted(CLASS_CODES)
            assert [n["image_id"] for n in by_class["nv"]] == ["ISIC_B005"]
            assert {n["image"].removeprefix("images/") for n in by_class["mel"]} <= valid.images
    # Without them, no extension; with them for some queries only, an error.
    plain = write_bundle(tmp_path / "plain", two_list_pool(), sources, b"k" * 32, 40, PROVENANCE)
    assert "extensions" not in validate_bundle(plain).manifest
    mixed = QueryPool((*pool.queries[:2], two_list_pool().queries[2]), pool.before)
    with pytest.raises(PipelineError, match="for every query or for none"):
        write_bundle(tmp_path / "mixed", mixed, sources, b"k" * 32, 40, PROVENANCE)
