"""Static files for a slow line: versioned URLs cached for a year, CSS and JavaScript compressed."""

import gzip
import re
from pathlib import Path

from flask import Flask, url_for
from flask.testing import FlaskClient

from app.assets import IMMUTABLE, version_of

ROOT = Path(__file__).resolve().parents[2]


def test_a_static_url_carries_the_digest_of_the_file(app: Flask, tmp_path: Path) -> None:
    with app.test_request_context():
        url = url_for("static", filename="css/app.css")
    assert re.fullmatch(r"/static/css/app\.css\?v=[0-9a-f]{12}", url), url
    # The tag follows the content: a changed file gets a new URL.
    sheet = tmp_path / "a.css"
    sheet.write_text("body { color: red }")
    before = version_of(str(tmp_path), "a.css")
    sheet.write_text("body { color: blue }")
    assert version_of(str(tmp_path), "a.css") not in (None, before)
    # Nothing outside the folder, and no tag for a file that is not there.
    assert version_of(str(tmp_path / "sub"), "../a.css") is None
    assert version_of(str(tmp_path), "missing.css") is None


def test_pages_link_the_versioned_files(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert re.search(r'href="/static/css/app\.css\?v=[0-9a-f]{12}"', html)
    assert re.search(r'src="/static/js/app\.js\?v=[0-9a-f]{12}"', html)


def test_the_current_version_is_immutable_and_an_old_one_is_checked(
    app: Flask, client: FlaskClient
) -> None:
    with app.test_request_context():
        current = url_for("static", filename="js/viewer.js")
    assert client.get(current).headers["Cache-Control"] == IMMUTABLE
    for stale in ("/static/js/viewer.js?v=000000000000", "/static/js/viewer.js"):
        response = client.get(stale)
        assert response.status_code == 200
        assert "immutable" not in response.headers.get("Cache-Control", "")


def test_css_and_javascript_are_compressed_and_pages_are_not(
    app: Flask, client: FlaskClient
) -> None:
    with app.test_request_context():
        sheet = url_for("static", filename="css/survey.css")
    response = client.get(sheet, headers={"Accept-Encoding": "gzip, deflate"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    body = gzip.decompress(response.get_data())
    assert body == (ROOT / "static/css/survey.css").read_bytes()
    assert len(response.get_data()) < len(body) / 2
    # Without the header the file goes out as it is.
    plain = client.get(sheet)
    assert "Content-Encoding" not in plain.headers
    assert plain.get_data() == body
    # A page holds the CSRF token: never compressed (BREACH).
    page = client.get("/login", headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in page.headers
