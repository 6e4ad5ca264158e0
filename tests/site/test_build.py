"""``zoo site``: built from the packages' records, the same bytes every time, every bundled model on its
dataset's leaderboard, and nothing a package says ever becomes markup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ddzoo.cli import main
from ddzoo.errors import InvalidArgumentError
from ddzoo.eval.anchors import robustbench_anchors
from ddzoo.package import ONNX, read_manifest, read_model_config, read_verification
from ddzoo.records import ArtifactRecord
from ddzoo.site import SITE_MARKER, build_site
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.site.conftest import BUNDLED, FAILED_INT8_REASON, HOSTILE_REVISION, SCRIPT, _craft, failed_int8


class Page(HTMLParser):
    """Every tag with its attributes, the visible text, and the table rows (cells with attributes and text)."""

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.rows: list[dict] = []  # {"attrs": ..., "table": its table's class, "cells": [(tag, attrs, text)]}
        self._cell: list | None = None
        self._table: str | None = None
        self.feed(path.read_text())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("class")
        elif tag == "tr":
            self.rows.append({"attrs": attrs, "table": self._table, "cells": []})
        elif tag in ("td", "th") and self.rows:
            self._cell = [tag, attrs, ""]
            self.rows[-1]["cells"].append(self._cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[2] += data

    def model_rows(self) -> dict[str, list]:
        return {row["cells"][0][2].strip(): row["cells"] for row in self.rows if row["attrs"].get("class") == "model"}

    def header(self) -> list[str]:
        return [text for tag, _, text in self.rows[0]["cells"]]


def _bundled_dataset(name: str) -> str:
    return read_model_config(BUNDLED_HUB / name / "main").dataset


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_bundled_model_has_a_row_on_its_datasets_leaderboard(bundled_site):
    found = {}
    for board in sorted(bundled_site.glob("leaderboard-*.html")):
        dataset = board.stem.removeprefix("leaderboard-")
        for name in Page(board).model_rows():
            found[name] = dataset
    assert found == {name: _bundled_dataset(name) for name in BUNDLED}
    assert all((bundled_site / "models" / f"{name}.html").is_file() for name in BUNDLED)
    assert (bundled_site / SITE_MARKER).is_file() and (bundled_site / "index.html").is_file()


def test_the_leaderboard_shows_the_records_figures_with_their_n(bundled_site):
    for board in sorted(bundled_site.glob("leaderboard-*.html")):
        dataset = board.stem.removeprefix("leaderboard-")
        page = Page(board)
        header = page.header()
        names = [n for n in BUNDLED if _bundled_dataset(n) == dataset]
        records = {n: read_verification(BUNDLED_HUB / n / "main")["records"] for n in names}
        sizes = {records[n][ONNX]["images"] for n in names}
        clean = next(h for h in header if h.startswith("clean accuracy"))
        assert (f"n = {sizes.pop():,}" in clean) if len(sizes) == 1 else ("n per cell" in clean)
        rows = page.model_rows()
        robust = [i for i, h in enumerate(header) if h.startswith("AutoAttack")]
        assert len(robust) == 2 and "ℓ∞ ε = " in header[robust[0]] and "ℓ2 ε = " in header[robust[1]]
        for name in names:
            cells = rows[name]
            onnx, checkpoint = records[name][ONNX], records[name]["model.safetensors"]
            typed = ArtifactRecord.from_json(onnx)
            assert float(cells[2][1]["data-value"]) == typed.clean.accuracy
            assert float(cells[header.index(next(h for h in header if h.startswith("DeepFool")))][1][
                "data-value"]) == typed.headline_rho2
            autoattack = (checkpoint.get("strong") or {}).get("autoattack") or {}
            declared = {f["norm"]: f for f in (checkpoint.get("robust") or {}).values()}
            for column, norm in zip(robust, ("Linf", "L2"), strict=True):
                figure = declared.get(norm) or autoattack.get(norm)  # a declared threat model's figure wins
                if figure is None:
                    assert "data-value" not in cells[column][1] and cells[column][2] == "–"
                    continue
                assert float(cells[column][1]["data-value"]) == figure["accuracy"]
                n = f"n = {figure['images']:,}"
                per_cell = "n per cell" in header[column] and n.replace(" ", "") in cells[column][2]
                assert n in header[column] or per_cell
            assert cells[1][2] in {"Deep Defense", "adversarial training", "Parseval", "none (reference)"}


def test_robustbench_anchors_are_reference_rows(bundled_site):
    page = Page(bundled_site / "leaderboard-cifar10.html")
    anchors = [row for row in page.rows if row["attrs"].get("class") == "anchor"]
    expected = robustbench_anchors("cifar10")
    assert len(anchors) == len({(a.model_id, a.clean_accuracy) for a in expected}) == 7
    values = {float(cell[1]["data-value"]) for row in anchors for cell in row["cells"][2:] if "data-value" in cell[1]
              and cell[1].get("class") == "num"}
    assert {a.autoattack_accuracy for a in expected} | {a.clean_accuracy for a in expected} <= values
    assert all(row["attrs"].get("data-defence") == "" for row in anchors)  # never match a defence filter
    assert not [row for row in Page(bundled_site / "leaderboard-mnist.html").rows
                if row["attrs"].get("class") == "anchor"]


def test_the_anchors_are_the_figures_docs_results_quotes():
    results = (Path(__file__).resolve().parents[2] / "docs" / "results" / "cifar10.md").read_text().splitlines()
    for anchor in robustbench_anchors("cifar10"):
        cells = f"| {100 * anchor.clean_accuracy:.2f} % | {100 * anchor.autoattack_accuracy:.2f} % ("
        assert [line for line in results if anchor.architecture in line and cells in line], anchor


def test_a_directory_hub_that_does_not_exist_is_an_error(tmp_path, capsys):
    assert main(["site", str(tmp_path / "site"), "--hub", str(tmp_path / "nowhere")]) == 2  # usage
    assert "no directory hub at" in capsys.readouterr().err and not (tmp_path / "site").exists()


def test_a_model_page_has_the_card_the_records_the_plots_the_commands_and_every_hash(bundled_site):
    name = "resnet-cifar10-at"
    folder = BUNDLED_HUB / name / "main"
    path = bundled_site / "models" / f"{name}.html"
    page = Page(path)
    text = "".join(page.text)
    for line in (f"zoo pull {name}", f'ddzoo.load("{name}")', f"zoo serve {name}"):
        assert line in text
    for file, entry in read_manifest(folder)["files"].items():
        assert file in text and entry["sha256"] in text
    verified = [row["cells"][0][2] for row in page.rows
                if row["table"] == "verification" and row["cells"][0][1].get("scope") == "row"]
    assert verified == list(read_verification(folder)["records"])  # every record, in deployment order
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert images == [f"{name}/budget.svg", f"{name}/rho2.svg", f"{name}/pairing.svg"]
    for src in images:
        assert (path.parent / src).read_bytes().startswith(b"<?xml")
    assert "Robustness as deployed" in text  # from the card
    card_headers = [attrs for tag, attrs in page.tags if tag == "th"]
    assert card_headers and all("scope" in attrs for attrs in card_headers)


def test_an_artifact_that_failed_its_gate_is_shown_not_shipped_with_the_gates_reason(tmp_path):
    """As ``zoo publish --skip-unverified`` leaves it: the record kept, the file left out."""
    _craft(tmp_path / "hub", "lenet-int8-failed", "main", failed_int8)
    build_site(tmp_path / "site", hubs=[tmp_path / "hub"])
    page = Page(tmp_path / "site" / "models" / "lenet-int8-failed.html")
    int8 = next(row for row in page.rows if row["cells"] and row["cells"][0][2] == "model.int8.onnx")
    assert "not shipped" in [c[2] for c in int8["cells"]]
    assert FAILED_INT8_REASON in "".join(page.text)  # the gate's reason, verbatim


def test_two_builds_give_the_same_bytes(bundled_site, tmp_path):
    from tests.site.conftest import build_bundled_site

    build_bundled_site(tmp_path / "again", tmp_path / "home")
    first, second = _files(bundled_site), _files(tmp_path / "again")
    assert list(first) == list(second)
    assert [f for f in first if first[f] != second[f]] == []


def _check_no_markup_from_records(folder: Path) -> None:
    for path in folder.rglob("*.html"):
        raw = path.read_text()
        assert "<script>alert" not in raw and "<img src=x" not in raw and "<iframe" not in raw, path
        for tag, attrs in Page(path).tags:
            assert not [a for a in attrs if a.startswith("on")], (path, tag, attrs)
            if tag == "script":
                assert attrs.get("src", "").endswith("static/site.js"), (path, attrs)
            if tag in ("img", "link", "iframe", "object", "embed"):
                url = attrs.get("src") or attrs.get("href") or ""
                assert "://" not in url and not url.startswith("//"), (path, tag, attrs)
            if tag == "a":
                assert not attrs.get("href", "").lower().startswith(("javascript:", "data:", "vbscript:")), attrs


def test_crafted_packages_are_escaped_or_left_out(hostile_hub, tmp_path):
    built = build_site(tmp_path / "site", hubs=[hostile_hub])
    assert sorted(s.name for s in built.skipped) == ["bad name<b>", "lenet-damaged", "lenet-escape", "lenet-revision"]
    assert built.models == {"mnist": 1}
    site = tmp_path / "site"
    _check_no_markup_from_records(site)
    page = site / "models" / "lenet-hostile.html"
    text = "".join(Page(page).text)
    assert SCRIPT in text  # shown as text
    assert "[click](javascript:alert(3))" in text  # not a link
    index = "".join(Page(site / "index.html").text)
    assert "bad name<b>" in index and "unsafe dataset name" in index and HOSTILE_REVISION in index
    assert "damaged: lenet-damaged: model.onnx" in index  # no local path
    assert not [p for p in site.rglob("*") if p.name.startswith(".") and p.name != SITE_MARKER]
    assert sorted(p.name for p in (site / "models").iterdir()) == ["lenet-hostile", "lenet-hostile.html"]


def test_a_folder_that_is_not_a_site_is_never_replaced(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("years of work")
    with pytest.raises(InvalidArgumentError, match="was not built by 'zoo site'"):
        build_site(notes, hubs=[tmp_path / "no-hub"])
    assert main(["site", str(notes)]) == 2  # usage
    assert "choose a new or empty folder" in capsys.readouterr().err
    assert [p.name for p in notes.iterdir()] == ["thesis.tex"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        build_site(tmp_path / "file", hubs=[tmp_path / "no-hub"])


def test_a_site_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    shutil.copytree(BUNDLED_HUB / "lenet-mnist-ref", hub / "lenet-mnist-ref")
    out = tmp_path / "site"
    out.mkdir()  # an empty folder is fine
    build_site(out, hubs=[hub])
    (out / "stale.html").write_text("from an older build")
    build_site(out, hubs=[hub])
    assert not (out / "stale.html").exists() and (out / "models" / "lenet-mnist-ref.html").is_file()
    before = _files(out)

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr("ddzoo.site.plots.model_plots", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        build_site(out, hubs=[hub])
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub", "site"]  # no temporary folder left


def test_the_site_and_the_cli_do_not_load_their_heavy_libraries_on_import():
    code = ("import sys, ddzoo, ddzoo.cli, ddzoo.site; "
            "print(sorted(m for m in ('matplotlib', 'jinja2', 'markdown_it', 'playwright') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
