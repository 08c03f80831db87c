"""The landscape page (`GET /ui`) in a real browser: how soon it is usable, whether the
stream view keeps up, what it weighs; and the screenshots the README and docs show.

    python bench/ui.py [--models models] [--loads 5] [--steps 1000]
    python bench/ui.py --screenshots docs/figures/ui   # regenerate the screenshots only

`nld serve` with the models directory on a loopback port (its stored analyses), Debian's
Chromium headless through Playwright (`bash deploy/ensure-chromium.sh`):
- landscape: from navigation to the landscape on screen (the service's picture of it, which
  the page shows while Plotly.js runs), and interactive: to the Plotly.js plot drawn with its
  minima (hover, the stream's point); each load in a fresh browser context (empty cache),
  medians of `--loads`; beside them the floor, a bare page that only loads the same Plotly.js
  bundle and draws a 2 x 2 contour;
- stream: a recording of `--steps` steps (the bundled example repeated) uploaded as a CSV and
  streamed at the page's top speed (200 steps/s, 10 steps a request): the rate the page
  labelled and drew them at, and how far behind 200/s it ended;
- weight: the bytes of every response the page asked for (the page, its script and style,
  Plotly.js, the API's answers), and whether any request left 127.0.0.1.
A row goes to bench/results/ui.jsonl.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.request
from pathlib import Path

from record import ROOT, append_row, free_port, nld_serve, wait_ready

RESULTS = ROOT / "bench" / "results" / "ui.jsonl"
CHROMIUM = os.environ.get("NLD_CHROMIUM", "/usr/bin/chromium")
TOP_SPEED = 200  # steps per second: the page's speed slider at its top
DRAWN = "document.getElementById('landscape').data?.some(t => t.name === 'minima')"
PICTURE = f"document.getElementById('landscape-image')?.complete || {DRAWN}"
LOADED = "document.getElementById('example').options.length > 1"  # the page's last request
WEIGHT = """["navigation", "resource"].flatMap((kind) => performance.getEntriesByType(kind))
    .reduce((bytes, entry) => bytes + entry.decodedBodySize, 0)"""
DONE = "document.getElementById('play').textContent === 'Done'"


def long_table(url: str, model: str, example: str, steps: int) -> bytes:
    """The bundled example repeated to `steps` rows, as a CSV."""
    with urllib.request.urlopen(f"{url}/ui/examples/{example}?model={model}") as r:
        import json

        obs = json.load(r)["observations"]
    rows = [",".join(f"c{i}" for i in range(len(obs[0])))]
    rows += [",".join(map(str, obs[t % len(obs)])) for t in range(steps)]
    return ("\n".join(rows) + "\n").encode()


def measure(browser, url: str, loads: int, steps: int) -> dict:
    landscape_seconds, load_seconds = [], []
    weight = 0
    hosts: set[str] = set()
    for i in range(loads):
        context = browser.new_context()
        page = context.new_page()
        page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        t0 = time.perf_counter()
        page.goto(f"{url}/ui", wait_until="commit")
        page.wait_for_function(PICTURE, timeout=60_000)
        landscape_seconds.append(time.perf_counter() - t0)
        page.wait_for_function(DRAWN, timeout=60_000)
        load_seconds.append(time.perf_counter() - t0)
        page.wait_for_function(LOADED, timeout=60_000)
        if i == 0:
            weight = page.evaluate(WEIGHT)
            model = page.eval_on_selector("#model", "el => el.value")
            example = page.eval_on_selector("#example", "el => el.options[1]?.value")
            stream = stream_rate(page, long_table(url, model, example, steps), steps)
        context.close()
    return {
        "loads": loads,
        "landscape_seconds_median": statistics.median(landscape_seconds),
        "interactive_seconds_median": statistics.median(load_seconds),
        "plotly_floor_seconds_median": statistics.median(floor(browser, url) for _ in range(loads)),
        "landscape_seconds": [round(s, 3) for s in landscape_seconds],
        "interactive_seconds": [round(s, 3) for s in load_seconds],
        "page_bytes": weight,
        "hosts": sorted(hosts),
        **stream,
    }


def floor(browser, url: str) -> float:
    """Seconds for a bare page to load the page's Plotly.js bundle and draw a contour."""
    context = browser.new_context()
    page = context.new_page()
    t0 = time.perf_counter()
    page.set_content(
        f'<script src="{url}/ui/assets/vendor/plotly-cartesian.min.js"></script><div id="a">'
        '</div><script>Plotly.newPlot("a", [{type: "contour", z: [[1, 2], [3, 4]]}])</script>'
    )
    page.wait_for_function("document.getElementById('a').data")
    seconds = time.perf_counter() - t0
    context.close()
    return seconds


def stream_rate(page, table: bytes, steps: int) -> dict:
    page.set_input_files(
        "#upload", files=[{"name": "long.csv", "mimeType": "text/csv", "buffer": table}]
    )
    page.wait_for_selector("#play:not([disabled])")
    page.fill("#chunk", "10")
    page.eval_on_selector(
        "#speed", f"el => {{ el.value = {TOP_SPEED}; el.dispatchEvent(new Event('input')); }}"
    )
    t0 = time.perf_counter()
    page.click("#play")
    page.wait_for_function(DONE, timeout=600_000)
    seconds = time.perf_counter() - t0
    shown = len(page.text_content("#stream-labels").split())
    assert shown == steps, f"{shown} labels shown for {steps} steps"
    return {
        "stream_steps": steps,
        "stream_seconds": seconds,
        "stream_events_per_second": steps / seconds,
        "stream_behind_seconds": seconds - steps / TOP_SPEED,
    }


def screenshots(browser, url: str, out: Path) -> None:
    """The page with the shipped model: the whole page after streaming its example, and the
    landscape alone."""
    out.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/ui")
    page.wait_for_function(DRAWN, timeout=60_000)
    page.select_option("#example", index=1)
    page.wait_for_selector("#play:not([disabled])")
    page.eval_on_selector(
        "#speed", f"el => {{ el.value = {TOP_SPEED}; el.dispatchEvent(new Event('input')); }}"
    )
    page.click("#play")
    page.wait_for_function(DONE, timeout=120_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "ui-page.png"), full_page=True)
    page.locator("#landscape-panel").screenshot(path=str(out / "ui-landscape.png"))
    print(f"wrote {out / 'ui-page.png'} and {out / 'ui-landscape.png'}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--loads", type=int, default=5)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--screenshots", type=Path, help="write the screenshots here, measure nothing")
    a = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = nld_serve(a.models, port)
    try:
        wait_ready(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            if a.screenshots:
                screenshots(browser, url, a.screenshots)
            else:
                row = {"models": a.models.name, **measure(browser, url, a.loads, a.steps)}
                append_row(RESULTS, row)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
