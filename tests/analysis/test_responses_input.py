"""The responses CSV reader faces files as people save them: other encodings, old Mac line
ends, enormous fields. Each is read, or refused with a ResponsesError naming the line."""

import io
from pathlib import Path

import pytest

from app.analysis import ResponsesError, read_responses

HEADER = "reader,image_id,truth,task,diagnosis,confidence,majority_vote\n"
ROWS = "R-1,img-a,nv,1,nv,3,nv\nR-1,img-a,nv,2,mel,4,nv\n"


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_every_line_end_reads_alike(line_end: str, tmp_path: Path) -> None:
    text = (HEADER + ROWS).replace("\n", line_end)
    path = tmp_path / "responses.csv"
    path.write_bytes(text.encode())
    for source in (io.StringIO(text, newline=""), io.BytesIO(text.encode()), path):
        responses = read_responses(source)
        assert len(responses) == 2 and responses.readers == ("R-1",)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line() -> None:
    latin1 = (HEADER + ROWS + "R-2,Bäckerei,nv,1,nv,3,nv\n").encode("latin-1")
    with pytest.raises(ResponsesError, match="not UTF-8") as refused:
        read_responses(io.BytesIO(latin1))
    assert refused.value.line == 4
    assert "line 4" in str(refused.value)


def test_a_caller_s_binary_file_stays_open() -> None:
    source = io.BytesIO((HEADER + ROWS).encode())
    read_responses(source)
    assert not source.closed


def test_a_huge_field_is_refused_naming_its_line() -> None:
    text = HEADER + ROWS + "R-2," + "x" * 200_000 + ",nv,1,nv,3,nv\n"
    with pytest.raises(ResponsesError, match="longer than 131,072 characters") as refused:
        read_responses(io.StringIO(text))
    assert refused.value.line == 4


def test_a_text_stream_with_another_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "R-1,Bäckerei,nv,1,nv,3,nv\n").encode("latin-1"))
    with path.open(encoding="utf-8") as stream, pytest.raises(ResponsesError, match="UTF-8"):
        read_responses(stream)
