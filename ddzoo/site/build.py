"""``zoo site OUT``: the leaderboards and model pages, written atomically into a folder that opens from disk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddzoo import __version__
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.fileio import building_dir
from ddzoo.package import ONNX
from ddzoo.records import HEADLINE_ITERATIONS
from ddzoo.site.entries import (
    ARTIFACT_KINDS,
    MAX_CARD_BYTES,
    Figure,
    ModelEntry,
    RobustColumn,
    Skipped,
    read_entries,
)
from ddzoo.site.render import STATIC, card_html, count, environment, pct, render, size
from ddzoo.stats import interval_text

SITE_MARKER = ".ddzoo-site"  # in every built site: the only kind of folder ``zoo site`` replaces
SITE_FORMAT = "ddzoo-site/1"
DATASET_TITLES = {"cifar10": "CIFAR-10", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
MAX_SKIP_REASON = 300
_MARKS = {"pass": "✓", "fail": "✗", "not shipped": "✗"}
_STATUS = {"pass": "passed the gate", "fail": "failed the gate", "stale": "changed since it was verified",
           "unverified": "not verified", "not shipped": "failed the gate and was left out of the package"}


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, an optional second line (interval, n), and the value it sorts by."""

    text: str
    value: float | str | None = None
    note: str = ""
    items: tuple[tuple[str, str, str], ...] = ()  # (text, CSS class, title): a list shown instead of ``text``


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    detail: str = ""
    numeric: bool = True  # sorts by number (else by text)
    right: bool = True  # numeric columns are right-aligned unless they hold lists


@dataclass
class Row:
    kind: str  # "model" | "anchor"
    name: str
    href: str
    cells: list[Cell]
    defence: str = ""
    passed: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Leaderboard:
    dataset: str
    title: str
    page: str
    columns: list[Column]
    rows: list[Row]
    defences: list[tuple[str, str]] = field(default_factory=list)  # (value, label) for the filter

    @property
    def models(self) -> int:
        return sum(row.kind == "model" for row in self.rows)

    @property
    def anchors(self) -> int:
        return sum(row.kind == "anchor" for row in self.rows)


@dataclass(frozen=True)
class SiteSummary:
    """What :func:`build_site` wrote."""

    out: Path
    models: dict[str, int]  # dataset → models on its leaderboard
    pages: int
    skipped: list[Skipped]
    seconds: float


def _figures(name: str, label: str, where: str, figures: list[Figure | None], fmt) -> tuple[Column, Any]:
    """A column of measured figures: n in its header when every row has the same n, else in each cell."""
    sizes = {f.images for f in figures if f is not None and f.images is not None}
    per_cell = len(sizes) > 1
    n = "n per cell" if per_cell else (f"n = {sizes.pop():,}" if sizes else "")

    def cell(figure: Figure | None) -> Cell:
        if figure is None:
            return Cell("–")
        note = [interval_text(figure.ci95)] + ([f"n={figure.images:,}"] if per_cell and figure.images else [])
        return Cell(fmt(figure.value), figure.value, " ".join(p for p in note if p))

    return Column(name, label, " · ".join(p for p in (where, n) if p)), cell


def _where(entry: ModelEntry) -> str:
    """Under a model's name: where a copy other than the bundled one lives, and its revision."""
    if (entry.where, entry.revision) == ("bundled", "main"):
        return ""
    revision = entry.revision if len(entry.revision) <= 16 else entry.revision[:15] + "…"
    return entry.where if entry.revision == "main" else f"{entry.where} · {revision}"


def _gate(entry: ModelEntry) -> Cell:
    items = tuple((f"{a.label} {_MARKS.get(a.status, a.status)}", "pass" if a.status == "pass" else "fail",
                   "; ".join([f"{a.file}: {_STATUS.get(a.status, a.status)}", *a.reasons])) for a in entry.artifacts)
    return Cell("–", float(len(entry.passed)), items=items)


def _sizes(entry: ModelEntry) -> Cell:
    fp32 = next((a.size for a in entry.artifacts if a.file == ONNX), None)
    return Cell("–", fp32, items=tuple((f"{a.label} {size(a.size)}", "size", a.file) for a in entry.artifacts
                                       if a.size is not None))


def _leaderboard(dataset: str, entries: list[ModelEntry]) -> Leaderboard:
    """One dataset's table: a row per model, then RobustBench's entries for the dataset as greyed reference rows
    (an entry per threat model, one row per RobustBench model)."""
    from ddzoo.eval.anchors import robustbench_anchors

    anchors = robustbench_anchors(dataset)
    threats = sorted({t for e in entries for t in e.robust} | {RobustColumn("AutoAttack", a.norm, a.eps)
                                                                for a in anchors},
                     key=lambda t: (t.attack, t.norm != "Linf", t.norm, t.eps))  # ℓ∞ first, as RobustBench
    clean, clean_cell = _figures("clean", "clean accuracy", "fp32 ONNX", [e.clean for e in entries], pct)
    robust = [_figures(t.key, f"{t.attack} {t.budget}", "checkpoint", [e.robust.get(t) for e in entries],
                       lambda v: pct(v, 1)) for t in threats]
    rho2, rho2_cell = _figures("rho2", "DeepFool ρ₂", f"fp32 ONNX · {HEADLINE_ITERATIONS} it",
                               [e.rho2 for e in entries], lambda v: f"{v:.4f}")
    best, best_cell = _figures("bestof", "best-of min ‖r‖₂", "mean · checkpoint", [e.best_of for e in entries],
                               lambda v: f"{v:.3f}")
    columns = [Column("model", "model", numeric=False), Column("defence", "defence", numeric=False), clean,
               *(column for column, _ in robust), rho2, best, Column("arch", "architecture", numeric=False),
               Column("params", "parameters"),
               Column("passed", "passed the gate", "✓ passed · ✗ failed", right=False),
               Column("sizes", "artifact sizes", "sorts by fp32", right=False)]
    rows = [Row("model", e.name, f"models/{e.slug}.html",
                [Cell(e.name, e.name, _where(e)), Cell(e.defence_name, e.defence_name), clean_cell(e.clean),
                 *(cell(e.robust.get(t)) for t, (_, cell) in zip(threats, robust, strict=True)), rho2_cell(e.rho2),
                 best_cell(e.best_of), Cell(e.config.arch, e.config.arch), Cell(count(e.params), e.params),
                 _gate(e), _sizes(e)], e.defence, e.passed) for e in entries]
    groups: dict[tuple[str, float], list] = {}
    for anchor in anchors:
        groups.setdefault((anchor.model_id, anchor.clean_accuracy), []).append(anchor)
    for group in groups.values():
        first, n = group[0], f"n={group[0].images:,}"
        measured = {RobustColumn("AutoAttack", a.norm, a.eps): a.autoattack_accuracy for a in group}
        cells = [Cell(first.citation, first.citation, first.name), Cell(first.defence, first.defence),
                 Cell(pct(first.clean_accuracy), first.clean_accuracy, n),
                 *(Cell(pct(measured[t], 1), measured[t], n) if t in measured else Cell("–") for t in threats),
                 Cell("–"), Cell("–"), Cell(first.architecture, first.architecture), Cell("–"), Cell("–"), Cell("–")]
        rows.append(Row("anchor", first.name, first.source, cells, note="RobustBench's published figures: " + ", ".join(
            f"{t.attack} {t.budget}" for t in measured)))
    defences = sorted({(e.defence, e.defence_name) for e in entries}, key=lambda d: d[1].lower())
    return Leaderboard(dataset, DATASET_TITLES.get(dataset, dataset), f"leaderboard-{dataset}.html", columns, rows,
                       defences)


def _verification_rows(entry: ModelEntry) -> tuple[list[str], list[dict[str, Any]]]:
    """The verification table of a model page: :func:`ddzoo.verification.table_row` per record, plus the
    status of the artifact's current bytes and the gate's reasons."""
    from ddzoo.records import ArtifactRecord
    from ddzoo.verification import table_row

    status = {a.file: a.status for a in entry.artifacts}
    rows, header = [], ["artifact"]
    for name, record in entry.records.items():
        try:
            cells = {str(k): str(v) for k, v in table_row(ArtifactRecord.from_json(record)).items()}
        except (CheckpointError, KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            cells = {"artifact": name, "gate": f"incomplete record ({type(err).__name__})"}
        cells["artifact"] = name
        gate = record.get("gate") if isinstance(record.get("gate"), dict) else {}
        reasons = [str(r) for r in gate.get("reasons", []) if isinstance(r, str)] if isinstance(
            gate.get("reasons"), list) else []
        note = gate.get("note") if isinstance(gate.get("note"), str) else ""
        cells["current bytes"] = "checkpoint" if name == "model.safetensors" else status.get(name, "not shipped")
        cells["gate reasons"] = "; ".join(reasons) or note or "–"
        header += [k for k in cells if k not in header]
        rows.append(cells)
    return header, rows


def _card(entry: ModelEntry):
    """The rendered card, or None with the reason."""
    path = entry.card
    if not path.is_file():
        return None, "this package has no model card"
    if path.stat().st_size > MAX_CARD_BYTES:
        return None, f"the model card is larger than {MAX_CARD_BYTES:,} bytes and is not shown"
    return card_html(path.read_bytes().decode("utf-8", errors="replace")), ""


def _write(folder: Path, relative: str, data: bytes) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _check_out(out: Path) -> None:
    """Refuse to replace anything but an earlier site (or an empty folder)."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise InvalidArgumentError(f"{out} exists and is not a folder; choose a new or empty folder for the site")
    if any(out.iterdir()) and not (out / SITE_MARKER).is_file():
        raise InvalidArgumentError(f"{out} is not empty and was not built by 'zoo site' (no {SITE_MARKER}); "
                                   "choose a new or empty folder, or remove it first")


def build_site(out: Path | str, *, hubs: list[Path | str] | None = None) -> SiteSummary:
    """Build the static site: a leaderboard per dataset and a page per model, from the packages' records.

    Opens from disk (``file://``), offline: no server, nothing fetched from the network; the same records give
    the same bytes. The site is built in a temporary folder beside ``out`` and renamed into place.

    Args:
        out: the site's folder: new, empty, or a site built before (replaced whole).
        hubs: directory hubs to show instead of what ``zoo list`` sees (the bundled and cached packages).

    Returns:
        What was written: models per dataset, page count, the packages left out and why, seconds taken.

    Raises:
        InvalidArgumentError: ``out`` holds something other than a site.
    """
    from ddzoo.site.plots import PLOTS, model_plots

    started = time.perf_counter()
    out = Path(out)
    _check_out(out)
    entries, skipped = read_entries(hubs)
    datasets = sorted({e.dataset for e in entries})
    boards = [_leaderboard(d, [e for e in entries if e.dataset == d]) for d in datasets]
    env = environment()
    common = {"version": __version__, "boards": boards, "kinds": ARTIFACT_KINDS}
    pages = 0
    with building_dir(out) as site:
        site.chmod(0o755)  # a temporary folder is private; the site is not
        for name in sorted(p.name for p in STATIC.iterdir() if p.suffix in (".css", ".js")):
            _write(site, f"static/{name}", (STATIC / name).read_bytes())
        _write(site, "index.html", render(env, "index.html", root="", skipped=[
            Skipped(s.name, s.where, s.reason[:MAX_SKIP_REASON]) for s in skipped], **common))
        for board in boards:
            _write(site, board.page, render(env, "leaderboard.html", root="", board=board, **common))
        for entry in entries:
            family = [e for e in entries if e.dataset == entry.dataset]
            for file, svg in model_plots(entry, family).items():
                _write(site, f"models/{entry.slug}/{file}", svg)
            header, rows = _verification_rows(entry)
            card, card_note = _card(entry)
            board = next(b for b in boards if b.dataset == entry.dataset)
            _write(site, f"models/{entry.slug}.html", render(
                env, "model.html", root="../", entry=entry, board=board, header=header, rows=rows, card=card,
                card_note=card_note, plots=PLOTS, **common))
        pages = len(boards) + len(entries) + 1
        _write(site, SITE_MARKER, f"{SITE_FORMAT}\n".encode())
    return SiteSummary(out, {b.dataset: b.models for b in boards}, pages, skipped, time.perf_counter() - started)


__all__ = ["SITE_MARKER", "SiteSummary", "build_site"]
