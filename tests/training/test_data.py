"""Loading HAM10000: folder layouts, one error listing every bad file, malformed CSVs."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data import (
    CLASSES,
    Record,
    label_indices,
    load_dataset,
    load_metadata,
    read_image,
    read_images,
)
from training.errors import PipelineError

HEADER = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]


def make_rows(count: int) -> list[dict[str, str]]:
    """`count` metadata rows, two images per lesion, cycling through the classes."""
    return [
        {
            "lesion_id": f"HAM_{index // 2:07d}",
            "image_id": f"ISIC_{index:07d}",
            "dx": CLASSES[(index // 2) % len(CLASSES)],
            "dx_type": "histo",
            "age": "50",
            "sex": "female",
            "localization": "back",
            "dataset": "vidir_modern",
        }
        for index in range(count)
    ]


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    """Write `rows` with `header` (columns not in the header are left out)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jpeg(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> None:
    """A small flat-coloured JPEG whose red channel encodes `value`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 90, 40)).save(path, "JPEG", quality=95)


def make_dataset(root: Path, count: int, folders: tuple[str, ...]) -> list[dict[str, str]]:
    """A dataset of `count` images spread round-robin over `folders` ("." = root itself)."""
    rows = make_rows(count)
    write_csv(root / "HAM10000_metadata.csv", rows)
    for index, row in enumerate(rows):
        write_jpeg(root / folders[index % len(folders)] / f"{row['image_id']}.jpg", 10 * index)
    return rows


@pytest.mark.parametrize(
    "folders",
    [
        ("HAM10000_images_part_1", "HAM10000_images_part_2"),
        ("HAM10000_images_part1", "HAM10000_images_part2"),
        ("images",),
        (".",),
        ("HAM10000_images_part_1", "."),
    ],
)
def test_loader_finds_images_in_each_layout(tmp_path: Path, folders: tuple[str, ...]) -> None:
    rows = make_dataset(tmp_path, 10, folders)
    records = load_dataset(tmp_path)
    assert [record.image_id for record in records] == [row["image_id"] for row in rows]
    for index, record in enumerate(records):
        assert record.path == (tmp_path / folders[index % len(folders)] / f"{record.image_id}.jpg")
        assert record.lesion_id == rows[index]["lesion_id"]
        assert record.dx == rows[index]["dx"]


def test_metadata_without_dataset_column_loads(tmp_path: Path) -> None:
    rows = make_dataset(tmp_path, 4, ("images",))
    write_csv(tmp_path / "HAM10000_metadata.csv", rows, HEADER[:-1])
    assert len(load_dataset(tmp_path)) == 4


def test_one_error_names_every_missing_unreadable_and_unknown_file(tmp_path: Path) -> None:
    rows = make_dataset(tmp_path, 12, ("HAM10000_images_part_1", "HAM10000_images_part_2"))
    folder = tmp_path / "HAM10000_images_part_1"
    (folder / "ISIC_0000000.jpg").unlink()
    (tmp_path / "HAM10000_images_part_2" / "ISIC_0000003.jpg").unlink()
    (folder / "ISIC_0000002.jpg").write_bytes(b"")  # empty file
    (folder / "ISIC_0000004.jpg").write_text("not an image")
    whole = (folder / "ISIC_0000006.jpg").read_bytes()
    (folder / "ISIC_0000006.jpg").write_bytes(whole[: len(whole) // 2])  # truncated JPEG
    rows[8]["dx"] = "melanoma"
    rows[9]["dx"] = "NV"
    write_csv(tmp_path / "HAM10000_metadata.csv", rows)

    with pytest.raises(PipelineError) as raised:
        load_dataset(tmp_path)
    message = str(raised.value)
    for name in ("ISIC_0000000.jpg", "ISIC_0000003.jpg"):
        assert name in message
    assert "2 missing" in message
    for name in ("ISIC_0000002.jpg", "ISIC_0000004.jpg", "ISIC_0000006.jpg"):
        assert name in message
    assert "3 unreadable" in message
    assert "ISIC_0000008 has unknown class 'melanoma'" in message
    assert "ISIC_0000009 has unknown class 'NV'" in message
    for fine in ("ISIC_0000001", "ISIC_0000005", "ISIC_0000007", "ISIC_0000010"):
        assert fine not in message


def test_missing_folder_and_missing_csv_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="data folder not found"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(PipelineError, match=r"HAM10000_metadata\.csv not found"):
        load_dataset(tmp_path)
    with pytest.raises(PipelineError, match="metadata file not found"):
        load_metadata(tmp_path / "absent.csv")


def test_csv_missing_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", make_rows(3), [c for c in HEADER if c != "dx"])
    with pytest.raises(PipelineError, match=r"missing column\(s\) dx"):
        load_metadata(path)


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_csv_is_reported(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(PipelineError, match="is empty"):
        load_metadata(path)


def test_header_only_csv_is_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [])
    with pytest.raises(PipelineError, match="no rows"):
        load_metadata(path)


def test_duplicate_image_id_names_both_lines(tmp_path: Path) -> None:
    rows = make_rows(4)
    rows[3]["image_id"] = rows[1]["image_id"]
    path = write_csv(tmp_path / "m.csv", rows)
    with pytest.raises(
        PipelineError, match=r"line 5: duplicate image_id ISIC_0000001 \(first on line 3\)"
    ):
        load_metadata(path)


def test_every_bad_row_is_named_in_one_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", make_rows(5))
    lines = path.read_text().splitlines()
    lines[2] = "HAM_1,ISIC_1,nv"  # too few fields
    lines[4] = lines[4].replace(",bcc,", ",,")  # empty dx
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PipelineError) as raised:
        load_metadata(path)
    message = str(raised.value)
    assert "2 malformed row(s)" in message
    assert "line 3: 3 fields, expected 8" in message
    assert "line 5: empty dx" in message


def test_metadata_rows_are_stripped_dicts_and_accept_a_bom(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", make_rows(2))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    rows = load_metadata(path)
    assert rows[0]["lesion_id"] == "HAM_0000000"
    assert rows[1]["image_id"] == "ISIC_0000001"
    assert set(rows[0]) == set(HEADER)


def test_real_metadata_loads(reference_dir: Path) -> None:
    rows = load_metadata(reference_dir / "HAM10000_metadata.csv")
    assert len(rows) == 10015
    assert len({row["lesion_id"] for row in rows}) == 7470
    assert {row["dx"] for row in rows} == set(CLASSES)


def test_read_image_squashes_to_a_square_rgb_array(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "a.jpg", 200, size=(60, 45))
    Image.new("L", (20, 20), 128).save(tmp_path / "grey.jpg")
    image = read_image(tmp_path / "a.jpg", 16)
    assert image.shape == (16, 16, 3)
    assert image.dtype == np.uint8
    assert abs(int(image[8, 8, 0]) - 200) <= 3
    grey = read_image(tmp_path / "grey.jpg", 24)
    assert grey.shape == (24, 24, 3)
    batch = read_images([tmp_path / "a.jpg", tmp_path / "grey.jpg"], 8)
    assert batch.shape == (2, 8, 8, 3)
    assert batch.dtype == np.uint8
    assert read_images([], 8).shape == (0, 8, 8, 3)


def test_read_image_of_a_broken_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_text("nope")
    with pytest.raises(PipelineError, match=r"bad\.jpg"):
        read_image(tmp_path / "bad.jpg", 8)


def test_label_indices_follow_class_order() -> None:
    records = [Record(f"i{n}", f"l{n}", dx, Path(".")) for n, dx in enumerate(CLASSES)]
    assert label_indices(records).tolist() == list(range(len(CLASSES)))
    assert label_indices([{"image_id": "x", "dx": "vasc"}]).tolist() == [6]
    with pytest.raises(PipelineError, match="unknown class 'foo'"):
        label_indices([Record("x", "l", "foo", Path("."))])
