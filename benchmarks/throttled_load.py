"""A Task 2 case page (the case and six similar images) on a slow connection, in Chromium.

`python benchmarks/throttled_load.py [--runs 3] [--kbps 1600] [--rtt 150] [--size 450]
[--against REF] [--waterfall]`

gunicorn (gunicorn.conf.py, one worker) serves a generated study whose images are `--size` px
on their longest side (the thesis configuration's web size) with texture added, so that each
JPEG weighs about what a dermoscopy photograph of that size does. A reader in Task 2 opens
case 1 at 1366x768 under Chromium's network emulation (`--kbps` down, half that up, `--rtt` ms
per request): on a first visit (a fresh browser, cold cache), on a repeat visit (the same
page again, the cache filled by the first load), and, as the baseline of this machine's
server and browser time, a first visit without throttling. `--against REF` also serves the
code of git commit REF (exported with `git archive`) from a second gunicorn on the same
database and images, the loads of both interleaved, and prints the ratio now/REF.

Figures (ms from navigation start, median of the runs):
- case image: the load event of the case image (the first image a reader needs);
- LCP: Chromium's largest contentful paint (the case image is the largest element);
- interactive: DOMContentLoaded; the deferred scripts have run, so the viewer, the shortcuts
  and the answer form work (checked: the viewer's toolbar is shown by then);
- last neighbour: when the last similar image arrived; every image: all seven;
- requests that went to the network, and the bytes transferred (headers included) of text
  (page, CSS, JavaScript) and of images.
Target (issue 14): the first image within 1 s when throttled, the page usable before every
neighbour has loaded."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import _loadkit
import numpy as np
from _loadkit import ROOT, Server, export, fresh_database, prepare_study
from PIL import Image

sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
PROBE = """
window.__m = {images: [], lcp: null};
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) window.__m.lcp = entry.startTime;
}).observe({type: 'largest-contentful-paint', buffered: true});
document.addEventListener('load', event => {
  const el = event.target;
  if (el.tagName === 'IMG') window.__m.images.push(
    {t: performance.now(), query: el.hasAttribute('data-query-image')});
}, true);
document.addEventListener('DOMContentLoaded', () => {
  window.__m.dcl = performance.now();
  window.__m.loadedAtDcl = [...document.querySelectorAll('figure.tile img')]
    .filter(i => i.complete && i.naturalWidth > 0).length;
  window.__m.toolsAtDcl = !!document.querySelector('.query .viewer-tools:not([hidden])');
});
window.addEventListener('load', () => { window.__m.load = performance.now(); });
"""


def textured(seed: int, size: int) -> Image.Image:
    """The generator's picture with fine texture, so JPEGs weigh like photographs."""
    base = np.asarray(ORIGINAL_PICTURE(seed, size), dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0, 9, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


ORIGINAL_PICTURE = _loadkit.picture


TRANSFERS = """() => {
  const entries = [...performance.getEntriesByType('navigation'),
                   ...performance.getEntriesByType('resource')];
  const fetched = entries.filter(e => e.transferSize > 0);
  const kB = test => fetched.filter(test).reduce((sum, e) => sum + e.transferSize, 0) / 1000;
  return {requests: fetched.length,
          text: kB(e => e.initiatorType !== 'img' && !e.name.includes('/images/')),
          images: kB(e => e.name.includes('/images/'))};
}"""


def measure(
    browser, url: str, cookies: list, throttle: dict | None, repeat: bool, waterfall: bool
) -> dict:
    """One load of `url` in a fresh context; with `repeat`, its second load (the browser's
    cache filled by the first, as on the next visit). The probe's figures."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_cookies(cookies)
    context.add_init_script(PROBE)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": not repeat})
    if throttle:
        cdp.send("Network.emulateNetworkConditions", throttle)
    for _ in range(2 if repeat else 1):
        page.goto(url, wait_until="load", timeout=60000)
        # Lazy tiles may arrive after the window's load event: wait for all seven images.
        page.wait_for_function(
            "() => window.__m.lcp !== null && window.__m.load && window.__m.images.length >= 7",
            timeout=30000,
        )
    if waterfall:  # [file, start, first byte, end, bytes] of every request
        for entry in page.evaluate(
            "performance.getEntriesByType('resource').map(e => [e.name.split('/').pop(),"
            " Math.round(e.startTime), Math.round(e.responseStart), Math.round(e.responseEnd),"
            " e.transferSize])"
        ):
            print("   ", entry)
    m = page.evaluate("window.__m")
    transfers = page.evaluate(TRANSFERS)
    context.close()
    query = [i["t"] for i in m["images"] if i["query"]]
    neighbours = [i["t"] for i in m["images"] if not i["query"]]
    assert "/task/2/case/1" in url and query and len(neighbours) == 6, m
    return {
        "case image": query[0],
        "LCP": m["lcp"],
        "interactive": m["dcl"],
        "last neighbour": max(neighbours),
        "every image": max(i["t"] for i in m["images"]),
        "requests": transfers["requests"],
        "text kB": transfers["text"],
        "image kB": transfers["images"],
        "neighbours at interactive": m["loadedAtDcl"],
        "toolbar at interactive": m["toolsAtDcl"],
    }


def log_in(browser, base: str, email: str) -> list:
    """The session cookies of a reader logged in on `base` (valid on every port of the host)."""
    from tests.e2e.stages import PASSWORD

    login = browser.new_context()
    page = login.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/survey/**")
    cookies = login.cookies()
    login.close()
    return cookies


def main() -> None:
    """Set up, measure throttled and unthrottled loads, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kbps", type=float, default=1600)
    parser.add_argument("--rtt", type=float, default=150)
    parser.add_argument("--size", type=int, default=450)
    parser.add_argument(
        "--against", metavar="REF", help="also serve the code of git REF and compare, side by side"
    )
    parser.add_argument("--waterfall", action="store_true", help="print every request's times")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from app.factory import create_app
    from tests.e2e.stages import add_reader

    _loadkit.picture = lambda seed, size: textured(seed, size)
    throttle = {
        "offline": False,
        "latency": args.rtt,
        "downloadThroughput": args.kbps * 1000 / 8,
        "uploadThroughput": args.kbps * 1000 / 16,
    }
    with tempfile.TemporaryDirectory(prefix="throttled-") as folder:
        workdir = Path(folder)
        database = fresh_database("sqlite", workdir, "throttled")
        setup = prepare_study(database, workdir, 0, 4, 8, args.size)
        app = create_app(
            {
                "SECRET_KEY": setup.secret,
                "SQLALCHEMY_DATABASE_URI": database.url,
                "STUDY_IMAGES": setup.images,
                "TRUSTED_HOSTS": _loadkit.LOCAL_HOSTS,
            }
        )
        email = "throttled@load.test"
        add_reader(SimpleNamespace(app=app, study_id=setup.study_id), email, answered=(1,))
        roots = {"now": ROOT}
        if args.against:
            roots = {args.against: export(args.against, workdir / "before"), **roots}
        servers = {
            name: Server(database, setup, workdir, workers=1, root=root)
            for name, root in roots.items()
        }
        path = f"/survey/{setup.study_id}/task/2/case/1"
        rows: dict[tuple[str, str], list[dict]] = {}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                some = next(iter(servers.values()))
                cookies = log_in(browser, f"http://127.0.0.1:{some.port}", email)
                for _ in range(args.runs):  # interleaved, so that the machine's load is shared
                    for scenario in SCENARIOS:
                        for name, server in servers.items():
                            url = f"http://127.0.0.1:{server.port}{path}"
                            rows.setdefault((scenario, name), []).append(
                                measure(
                                    browser,
                                    url,
                                    cookies,
                                    throttle if "throttled" in scenario else None,
                                    repeat="repeat" in scenario,
                                    waterfall=args.waterfall and name == "now",
                                )
                            )
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
            database.drop()
    report(rows, list(roots), args)


SCENARIOS = ("first visit, throttled", "repeat visit, throttled", "first visit, no throttling")
KEYS = ["case image", "LCP", "interactive", "last neighbour", "every image"]
SIZES = ["requests", "text kB", "image kB"]


def report(rows: dict[tuple[str, str], list[dict]], names: list[str], args) -> None:
    """The medians side by side (and the ratio to the compared code), the targets' verdict."""
    print(
        f"Task 2 case page, 7 images of {args.size} px, 1366x768; throttled: {args.kbps:g} "
        f"kbit/s down, {args.rtt:g} ms RTT; median of {args.runs} runs (ms from navigation)"
    )
    ratio = len(names) == 2
    for scenario in SCENARIOS:
        med = {
            name: {k: statistics.median(r[k] for r in rows[scenario, name]) for k in KEYS + SIZES}
            for name in names
        }
        print(f"\n{scenario:<28}" + "".join(f"{n:>12}" for n in names) + ("  now/before" * ratio))
        for key in KEYS + SIZES:
            values = [med[n][key] for n in names]
            line = f"{key:<28}" + "".join(f"{v:>12.0f}" for v in values)
            if ratio and values[0]:
                line += f"{values[1] / values[0]:>12.2f}"
            print(line)
    throttled = rows["first visit, throttled", "now"]
    waiting = [6 - r["neighbours at interactive"] for r in throttled]
    print(f"\nneighbours still loading when the page became interactive: {waiting} (of 6)")
    shown = [r["toolbar at interactive"] for r in throttled]
    print(f"viewer toolbar shown at interactive: {shown}")
    first = statistics.median(r["LCP"] for r in throttled)
    verdict = "met" if first < 1000 else "NOT met"
    print(f"target: case image painted under 1000 ms throttled (now): {first:.0f} ms -> {verdict}")
    usable = all(r["interactive"] < r["last neighbour"] for r in throttled)
    print(f"target: usable before every neighbour loaded: {'met' if usable else 'NOT met'}")


if __name__ == "__main__":
    main()
