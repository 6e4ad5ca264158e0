"""The built site in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright) opens it from
disk, sorts, filters, follows every link and takes the screenshots of the docs.

``ZOO_UPDATE_SCREENSHOTS=1`` also writes them to docs/img/site-leaderboard.png and site-leaderboard-phone.png.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ddzoo.eval.anchors import robustbench_anchors
from ddzoo.package import verification_status
from ddzoo.site import build_site
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.site.conftest import BUNDLED, SCRIPT, _craft, failed_int8

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
INSTALL_HINT = "headless Chromium not found: apt-get install chromium (or set ZOO_CHROMIUM to its path)"
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}


def _chromium() -> str | None:
    """``ZOO_CHROMIUM`` if set (a path or a command name), else Debian's ``chromium`` or a Chrome on PATH."""
    chosen = os.environ.get("ZOO_CHROMIUM")
    for candidate in [chosen] if chosen else ["chromium", "chromium-browser", "google-chrome"]:
        found = shutil.which(candidate)
        if found:
            return found
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:  # one line for the whole module
    pytest.skip(INSTALL_HINT, allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright missing: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Visit:
    """A fresh browser tab that records every console error or warning, script error, dialog and request that
    leaves the disk."""

    def __init__(self, browser, viewport=DESKTOP, scheme: str = "light"):
        self.context = browser.new_context(viewport=viewport, color_scheme=scheme)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        page = self.page
        page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda err: self.problems.append(f"script error: {err}"))
        page.on("dialog", lambda dialog: (self.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        page.on("request", lambda r: r.url.startswith("file://") or self.problems.append(f"network: {r.url}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))

    def open(self, path: Path) -> None:
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def __enter__(self) -> Visit:
        return self

    def __exit__(self, *exc) -> None:
        self.context.close()


ROWS = """(kind) => Array.from(document.querySelectorAll('#leaderboard tbody tr.' + kind))
    .filter(row => !row.hidden).map(row => row.cells[0].textContent.trim())"""
COLUMN = """(index) => Array.from(document.querySelectorAll('#leaderboard tbody tr')).filter(row => !row.hidden)
    .map(row => row.cells[index].getAttribute('data-value'))"""
BOXES = """() => Array.from(document.querySelectorAll('#leaderboard thead th, #leaderboard'))
    .map(e => { const r = e.getBoundingClientRect(); return [r.x, r.width, r.height].map(Math.round); })"""
LINKS = """() => ({
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    resources: Array.from(document.querySelectorAll('img[src], script[src], link[href]')).map(e => e.src || e.href),
    broken_images: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id)})"""
MODELS = """() => Array.from(document.querySelectorAll('#leaderboard tbody tr.model')).filter(row => !row.hidden)
    .map(row => row.cells[0].querySelector('a').textContent)"""  # the names alone, without their hub's note


def test_every_page_opens_from_disk_offline_without_errors_and_every_link_resolves(browser, bundled_site):
    seen, queue, broken = set(), deque([bundled_site / "index.html"]), []
    with Visit(browser) as visit:
        while queue:
            path = queue.popleft()
            if path in seen:
                continue
            seen.add(path)
            visit.open(path)
            found = visit.page.evaluate(LINKS)
            broken += [f"{path.name}: image {src}" for src in found["broken_images"]]
            for url in found["links"] + found["resources"]:
                parts = urlsplit(url)
                if parts.scheme in ("http", "https", "mailto") and url in found["links"]:
                    continue  # a link out (RobustBench's files, the card's links), never loaded by the page
                target = Path(unquote(parts.path))
                if parts.scheme != "file" or not target.is_file():
                    broken.append(f"{path.name}: {url}")
                elif target == path and parts.fragment and parts.fragment not in found["ids"]:
                    broken.append(f"{path.name}: no #{parts.fragment}")
                elif target.suffix == ".html":
                    queue.append(target)
        assert visit.problems == []
    assert broken == []
    expected = {bundled_site / "index.html", *bundled_site.glob("leaderboard-*.html"),
                *(bundled_site / "models" / f"{name}.html" for name in BUNDLED)}
    assert seen == expected
    with Visit(browser, PHONE) as visit:  # at phone width only tables and code scroll, never the page
        wide = []
        for path in sorted(seen):
            visit.open(path)
            if visit.page.evaluate("document.documentElement.scrollWidth") > PHONE["width"]:
                wide.append(path.name)
        assert wide == [] and visit.problems == []


def test_every_bundled_model_has_a_row_in_the_browser(browser, bundled_site):
    shown = []
    with Visit(browser) as visit:
        for board in sorted(bundled_site.glob("leaderboard-*.html")):
            visit.open(board)
            shown += visit.page.evaluate(ROWS, "model")
            models = len(visit.page.evaluate(ROWS, "model"))
            assert visit.page.locator("#filters output").inner_text() == f"{models} of {models} models shown"
        assert visit.problems == []
    assert sorted(shown) == BUNDLED


def _numbers(values: list[str | None]) -> tuple[list[float], int]:
    """The sort values present, in page order, and how many rows lack one (they must come last)."""
    present = [float(v) for v in values if v is not None]
    missing = len(values) - len(present)
    assert values[len(present):] == [None] * missing, "rows without the figure must stay last"
    return present, missing


def test_sorting_by_robust_accuracy_orders_the_rows_and_moves_no_column(browser, bundled_site):
    with Visit(browser) as visit:
        for board in sorted(bundled_site.glob("leaderboard-*.html")):
            visit.open(board)
            headers = visit.page.locator("#leaderboard thead th")
            labels = headers.all_inner_texts()
            index = next(i for i, label in enumerate(labels) if label.startswith("AutoAttack"))
            boxes = visit.page.evaluate(BOXES)
            button = headers.nth(index).locator("button")
            button.click()
            assert headers.nth(index).get_attribute("aria-sort") == "descending"
            values, _ = _numbers(visit.page.evaluate(COLUMN, index))
            assert values == sorted(values, reverse=True) and len(set(values)) > 1
            assert visit.page.evaluate(BOXES) == boxes  # no layout shift
            button.click()
            assert headers.nth(index).get_attribute("aria-sort") == "ascending"
            values, _ = _numbers(visit.page.evaluate(COLUMN, index))
            assert values == sorted(values)
            assert [headers.nth(i).get_attribute("aria-sort") for i in range(len(labels)) if i != index] == [
                "none"] * (len(labels) - 1)
            headers.nth(0).locator("button").click()  # a text column: A to Z
            names = visit.page.evaluate(ROWS, "model")
            assert names == sorted(names)
            assert visit.page.evaluate(BOXES) == boxes
            assert "sorted by model (ascending)" in visit.page.locator("#filters output").inner_text()
        assert visit.problems == []


def test_the_filters_hide_what_they_should(browser, bundled_site):
    cifar = [n for n in BUNDLED if "cifar10" in n]
    int8 = sorted(n for n in cifar if verification_status(BUNDLED_HUB / n / "main").get("model.int8.onnx") == "pass")
    assert int8  # every one since their full-test-set records: the next test has one without
    with Visit(browser) as visit:
        visit.open(bundled_site / "leaderboard-cifar10.html")
        page = visit.page
        anchors = len(page.evaluate(ROWS, "anchor"))
        # RobustBench's reference rows: one per entry, an entry's two threat models share a row when its clean
        # accuracy is the same
        assert anchors == len({(a.model_id, a.clean_accuracy) for a in robustbench_anchors("cifar10")}) == 7
        page.select_option("#filters select[name=defence]", "deep-defense")
        assert page.evaluate(ROWS, "model") == ["resnet-cifar10-dd"]
        assert len(page.evaluate(ROWS, "anchor")) == anchors  # reference rows follow their own switch
        assert page.locator("#filters output").inner_text() == f"1 of {len(cifar)} models shown"
        page.uncheck("#filters input[name=anchors]")
        assert page.evaluate(ROWS, "anchor") == []
        page.select_option("#filters select[name=defence]", "")
        page.select_option("#filters select[name=artifact]", "int8")
        assert sorted(page.evaluate(ROWS, "model")) == int8
        page.select_option("#filters select[name=artifact]", "trt")  # no bundled package has an engine
        assert page.evaluate(ROWS, "model") == []
        assert page.locator("#filters output").inner_text() == f"0 of {len(cifar)} models shown"
        page.select_option("#filters select[name=artifact]", "")
        page.check("#filters input[name=anchors]")
        assert len(page.evaluate(ROWS, "model")) == len(cifar) and len(page.evaluate(ROWS, "anchor")) == anchors
        assert visit.problems == []


def test_the_artifact_filter_hides_a_model_whose_int8_failed_its_gate(browser, tmp_path):
    _craft(tmp_path / "hub", "lenet-int8-failed", "main", failed_int8)
    _craft(tmp_path / "hub", "lenet-int8-passed", "main", lambda folder: None)
    build_site(tmp_path / "site", hubs=[tmp_path / "hub"])
    with Visit(browser) as visit:
        visit.open(tmp_path / "site" / "leaderboard-mnist.html")
        visit.page.select_option("#filters select[name=artifact]", "int8")
        assert visit.page.evaluate(MODELS) == ["lenet-int8-passed"]
        assert visit.page.locator("#filters output").inner_text() == "1 of 2 models shown"
        visit.page.select_option("#filters select[name=artifact]", "fp16")
        assert sorted(visit.page.evaluate(MODELS)) == ["lenet-int8-failed", "lenet-int8-passed"]
        assert visit.problems == []


def test_a_model_page_fits_a_phone_and_copies_its_commands(browser, bundled_site):
    with Visit(browser, PHONE) as visit:
        visit.open(bundled_site / "models" / "lenet-mnist-dd.html")
        assert visit.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # tables scroll
        button = visit.page.locator("button[data-copy=cmd-pull]")
        assert button.is_visible() and button.bounding_box()["x"] + button.bounding_box()["width"] <= PHONE["width"]
        button.click()
        visit.page.wait_for_function("() => document.querySelector('button[data-copy=cmd-pull]').textContent !== "
                                     "'copy'")
        assert button.inner_text() in ("copied", "selected")
        assert visit.problems == []


def test_screenshots_at_desktop_and_phone_width_light_and_dark(browser, bundled_site, tmp_path):
    shots = {}
    for name, viewport, scheme in (("site-leaderboard.png", DESKTOP, "light"),
                                   ("site-leaderboard-phone.png", PHONE, "dark")):
        with Visit(browser, viewport, scheme) as visit:
            visit.open(bundled_site / "leaderboard-cifar10.html")
            page = visit.page
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # the table scrolls
            if viewport == DESKTOP:  # ... but not on a desktop: every column in view
                assert page.evaluate("(w => w.scrollWidth <= w.clientWidth)(document.querySelector('.table-wrap'))")
            assert float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")) >= 14
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            red, green, blue = (int(v) for v in background[background.index("(") + 1:-1].split(",")[:3])
            assert (red + green + blue < 150) == (scheme == "dark"), background
            shots[name] = tmp_path / name
            page.screenshot(path=str(shots[name]))
            assert visit.problems == []
    assert all(path.stat().st_size > 10_000 for path in shots.values())
    if os.environ.get("ZOO_UPDATE_SCREENSHOTS"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for name, path in shots.items():
            shutil.copyfile(path, DOCS_IMG / name)


def test_a_crafted_package_runs_no_script_and_loads_nothing_from_the_network(browser, hostile_hub, tmp_path):
    site = tmp_path / "site"
    build_site(site, hubs=[hostile_hub])
    with Visit(browser) as visit:
        for path, shown in ((site / "index.html", "bad name<b>"), (site / "leaderboard-mnist.html", SCRIPT),
                            (site / "models" / "lenet-hostile.html", SCRIPT)):
            visit.open(path)
            assert visit.page.evaluate("document.scripts.length") == 1
            assert shown in visit.page.locator("main").inner_text()  # as text
        assert visit.problems == []
