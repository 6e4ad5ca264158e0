"""``zoo site OUT``: the leaderboards and model pages, written atomically into a folder that opens from disk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddzoo import __version__
from ddzoo.errors import InvalidArgumentError
from ddzoo.fileio import building_dir
from ddzoo.site.entries import ARTIFACT_KINDS, MAX_CARD_BYTES, ModelEntry, Skipped, ThreatModel, read_entries
from ddzoo.site.render import STATIC, card_html, count, environment, interval, pct, render, size

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


def _n(images: set[int | None]) -> str:
    known = sorted(i for i in images if i is not None)
    if not known:
        return ""
    return f"n = {known[0]:,}" if len(set(known)) == 1 and None not in images else "n per cell"


def _figure_cell(figure, per_cell_n: bool, fmt=pct) -> Cell:
    if figure is None:
        return Cell("–")
    note = " ".join(p for p in (interval(figure.ci95), f"n={figure.images:,}" if per_cell_n and figure.images
                                else "") if p)
    return Cell(fmt(figure.value), figure.value, note)


def _leaderboard(dataset: str, entries: list[ModelEntry]) -> Leaderboard:
    """One dataset's table: a row per model, then RobustBench's entries for the dataset as reference rows."""
    from ddzoo.eval.anchors import robustbench_anchors

    anchors = robustbench_anchors(dataset)
    threats = sorted({t for e in entries for t in e.robust} | {ThreatModel("AutoAttack", a.norm, a.eps)
                                                                for a in anchors},
                     key=lambda t: (t.attack, t.norm != "Linf", t.norm, t.eps))  # ℓ∞ first, as RobustBench
    clean_n = {e.clean.images if e.clean else None for e in entries}
    rho_n = {e.rho2.images if e.rho2 else None for e in entries}
    best_n = {e.best_of.images if e.best_of else None for e in entries}
    threat_n = {t: {e.robust[t].images if t in e.robust else None for e in entries} for t in threats}
    columns = [Column("model", "model", numeric=False), Column("defence", "defence", numeric=False),
               Column("clean", "clean accuracy", " · ".join(p for p in ("fp32 ONNX", _n(clean_n)) if p)),
               *(Column(t.key, f"{t.attack} {t.budget}", " · ".join(p for p in ("checkpoint", _n(threat_n[t])) if p))
                 for t in threats),
               Column("rho2", "DeepFool ρ₂", " · ".join(p for p in ("fp32 ONNX · 50 it", _n(rho_n)) if p)),
               Column("bestof", "best-of min ‖r‖₂", " · ".join(p for p in ("mean · checkpoint", _n(best_n)) if p)),
               Column("arch", "architecture", numeric=False), Column("params", "parameters"),
               Column("passed", "passed the gate", "✓ passed · ✗ failed", right=False),
               Column("sizes", "artifact sizes", "sorts by fp32", right=False)]
    rows = []
    for e in entries:
        shipped = [a for a in e.artifacts if a.size is not None]
        onnx = next((a.size for a in e.artifacts if a.file == "model.onnx"), None)
        gate = tuple((f"{a.label} {_MARKS.get(a.status, a.status)}", "pass" if a.status == "pass" else "fail",
                      "; ".join([f"{a.file}: {_STATUS[a.status] if a.status in _STATUS else a.status}", *a.reasons]))
                     for a in e.artifacts)
        where = "" if (e.where, e.revision) == ("bundled", "main") else " · ".join(
            [e.where, *([e.revision if len(e.revision) <= 16 else e.revision[:15] + "…"] if e.revision != "main"
                        else [])])
        cells = [Cell(e.name, e.name, where), Cell(e.defence_name, e.defence_name),
                 _figure_cell(e.clean, len({i for i in clean_n if i}) > 1 or None in clean_n),
                 *(_figure_cell(e.robust.get(t), len({i for i in threat_n[t] if i}) > 1, lambda v: pct(v, 1))
                   for t in threats),
                 _figure_cell(e.rho2, len({i for i in rho_n if i}) > 1, lambda v: f"{v:.4f}"),
                 _figure_cell(e.best_of, len({i for i in best_n if i}) > 1, lambda v: f"{v:.3f}"),
                 Cell(e.config.arch, e.config.arch), Cell(count(e.params), e.params),
                 Cell("–", float(len(e.passed)), items=gate),
                 Cell("–", onnx, items=tuple((f"{a.label} {size(a.size)}", "size", a.file) for a in shipped))]
        rows.append(Row("model", e.name, f"models/{e.slug}.html", cells, e.defence, e.passed))
    by_model: dict[tuple[str, float], list] = {}
    for anchor in anchors:
        by_model.setdefault((anchor.model_id, anchor.clean_accuracy), []).append(anchor)
    for group in by_model.values():
        first = group[0]
        robust = {ThreatModel("AutoAttack", a.norm, a.eps): a for a in group}
        cells = [Cell(first.citation, first.citation, first.name), Cell(first.defence, first.defence),
                 Cell(pct(first.clean_accuracy), first.clean_accuracy, f"n={first.images:,}"),
                 *(Cell(pct(robust[t].autoattack_accuracy, 1), robust[t].autoattack_accuracy,
                        f"n={first.images:,}") if t in robust else Cell("–") for t in threats),
                 Cell("–"), Cell("–"), Cell(first.architecture, first.architecture), Cell("–"), Cell("–"), Cell("–")]
        rows.append(Row("anchor", first.name, first.source, cells,
                        note="reference: RobustBench's published figures (" + ", ".join(
                            f"{t.attack} {t.budget}" for t in robust) + ")"))
    defences = sorted({(e.defence, e.defence_name) for e in entries}, key=lambda d: d[1].lower())
    return Leaderboard(dataset, DATASET_TITLES.get(dataset, dataset), f"leaderboard-{dataset}.html", columns, rows,
                       defences)


def _verification_rows(entry: ModelEntry) -> tuple[list[str], list[dict[str, Any]]]:
    """The verification table of a model page: :func:`ddzoo.verification.summary_row` per record, plus the
    status of the artifact's current bytes and the gate's reasons."""
    from ddzoo.verification import summary_row

    status = {a.file: a.status for a in entry.artifacts}
    rows, header = [], ["artifact"]
    for name, record in entry.records.items():
        try:
            cells = {str(k): str(v) for k, v in summary_row(record).items()}
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
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
