"""The landscape page in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real uvicorn server on a loopback port (`bash deploy/ensure-chromium.sh` installs
the browser; `make test` runs it first)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.service.servers import free_port, running_server, uvicorn_command

CHROMIUM = os.environ.get("NLD_CHROMIUM", "/usr/bin/chromium")
KEY = "browser-s3cret"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no browser at {CHROMIUM}: run `bash deploy/ensure-chromium.sh` first")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(ui_models, redis_url, key_prefix_module) -> Iterator[str]:
    """Two workers sharing their stream sessions through Redis, with an API key."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "NLD_MODELS_DIR": str(ui_models),
        "NLD_API_KEY": KEY,
        "NLD_SESSION_STORE": redis_url,
        "NLD_SESSION_KEY_PREFIX": key_prefix_module,
    }
    with running_server(uvicorn_command(port, "--workers", "2"), env, url):
        yield url


def open_page(
    browser: Browser, url: str, key: str, init: str = ""
) -> tuple[Page, list[str], list[str]]:
    """The page with `key` kept from an earlier visit (the page keeps the key typed in for the
    browser tab), and a script `init` run before the page's; its console errors and every URL
    it asked for."""
    page = browser.new_page()
    errors: list[str] = []
    asked: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: asked.append(r.url))
    page.add_init_script(f"sessionStorage.setItem('nld-key', {key!r}); {init}")
    page.goto(f"{url}/ui")
    return page, errors, asked


def api(page: Page, path: str, body: dict | None = None) -> dict:
    """An API call from the page's own context, with the key."""
    return page.evaluate(
        """async ([path, body, key]) => {
            const init = {headers: {"X-API-Key": key, "Content-Type": "application/json"}};
            if (body) { init.method = "POST"; init.body = JSON.stringify(body); }
            return (await fetch(path, init)).json();
        }""",
        [path, body, KEY],
    )


# What #landscape held, in order: the service's picture, then Plotly.js's plot.
SHOWN = """window.__shown = [];
new MutationObserver(() => {
    const el = document.getElementById("landscape");
    const now = el?.querySelector("#landscape-image") ? "picture" : el?.data ? "plot" : null;
    if (now && window.__shown.at(-1) !== now) window.__shown.push(now);
}).observe(document, {childList: true, subtree: true});"""


def test_the_page_shows_the_landscape_and_streams_the_api_labels(browser, server):
    page, errors, asked = open_page(browser, server, KEY, SHOWN)
    page.wait_for_function(
        "document.getElementById('landscape').data?.some(t => t.name === 'minima')"
    )
    # The picture first (Plotly.js runs after it is on screen), then the plot in its place.
    assert page.evaluate("window.__shown") == ["picture", "plot"]
    assert page.query_selector("#landscape-image") is None
    minima = api(page, "/landscape/minima")["minima"]
    shown = page.evaluate(
        "document.getElementById('landscape').data.find(t => t.name === 'minima').x.length"
    )
    assert shown == len(minima) == 2
    saddles = api(page, "/landscape/transitions")["saddles"]
    path_points = page.evaluate(
        "document.getElementById('landscape').data"
        ".find(t => t.name === 'minimum energy paths').x.length"
    )
    assert path_points == sum(len(s["path"]) + 1 for s in saddles) > 0  # each ends in a gap
    basins = page.evaluate(
        "document.getElementById('landscape').data.find(t => t.type === 'contour').customdata"
    )
    assert {b for row in basins for b in row} == {0, 1}  # hover shows each point's basin
    assert page.text_content("#facts").count("states (minima)2") == 1

    # Stream the bundled example, 7 steps a chunk: the labels shown are the API's one pass.
    page.select_option("#example", "one.csv")
    page.wait_for_selector("#play:not([disabled])")
    page.fill("#chunk", "7")
    page.eval_on_selector("#speed", "el => { el.value = 200; }")
    page.click("#play")
    page.wait_for_function("document.getElementById('play').textContent === 'Done'")
    shown_labels = [int(v) for v in page.text_content("#stream-labels").split()]
    example = api(page, "/ui/examples/one.csv")
    one_pass = api(page, "/segment/stream", {"observations": example["observations"], "end": True})
    assert shown_labels == [r["label"] for r in one_pass["results"]]
    assert len(shown_labels) == 80
    assert page.evaluate("document.getElementById('band').data.length") >= 2  # labels, truth

    # The 3-D surface (the full Plotly.js, loaded on demand), and back.
    page.check("#surface")
    page.wait_for_function(
        "document.getElementById('landscape').data?.some(t => t.type === 'surface')"
    )
    page.uncheck("#surface")
    page.wait_for_function(
        "document.getElementById('landscape').data?.some(t => t.type === 'contour')"
    )

    # Prior paths drawn on the landscape.
    page.click("#sample")
    page.wait_for_function(
        "document.getElementById('landscape').data?.some(t => t.name === 'prior paths')"
    )
    assert errors == []
    assert {u.split("/")[2] for u in asked} == {server.split("/")[2]}  # nothing from outside


def test_a_bad_table_shows_the_loaders_error(browser, server):
    page, errors, _ = open_page(browser, server, KEY)
    page.wait_for_function("document.getElementById('example').options.length > 1")
    page.set_input_files(
        "#upload",
        files=[{"name": "mine.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n3,4\n"}],
    )
    page.wait_for_selector("#stream-error:not([hidden])")
    text = page.text_content("#stream-error")
    assert "HTTP 422: mine.csv: observations have D = 2, the model expects D = 4" in text
    assert page.is_disabled("#play")
    assert [e for e in errors if "422" not in e] == []  # the browser logs the 422 response


def test_a_wrong_key_shows_the_auth_message_and_the_right_one_loads(browser, server):
    page, _, _ = open_page(browser, server, "wrong-key")
    page.wait_for_selector("#error:not([hidden])")
    assert "The service refused the API key (HTTP 401)" in page.text_content("#error")
    page.fill("#key", KEY)
    page.click("#key-form button")
    page.wait_for_selector("#error", state="hidden")
    page.wait_for_function("document.getElementById('model').options.length === 1")
