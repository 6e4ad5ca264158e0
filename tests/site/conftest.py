"""Fixtures of the site tests: the site of the bundled zoo (built once per test run, through the CLI) and a
directory hub of crafted packages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ddzoo import constants
from ddzoo.package import CARD, CONFIG, VERIFICATION, write_manifest
from ddzoo.zoo.hubs import BUNDLED_HUB
from tests.conftest import _built_once

BUNDLED = sorted(p.parent.parent.name for p in BUNDLED_HUB.glob("*/main/manifest.json"))
HOSTILE_REVISION = "<img src=x onerror=alert(4)>"  # a valid folder name
SCRIPT = "<script>alert(1)</script>"


def build_bundled_site(out: Path, home: Path) -> None:
    """``zoo site OUT`` with an empty cache: the bundled zoo only."""
    from ddzoo.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "ZOO_HOME", home)
        patch.setattr(constants, "OFFLINE", True)
        assert main(["site", str(out)]) == 0


@pytest.fixture(scope="session")
def bundled_site(tmp_path_factory) -> Path:
    """The site of the bundled zoo, built once for every site test (and every xdist worker)."""
    home = tmp_path_factory.mktemp("site_home")
    return _built_once(tmp_path_factory, "site-bundled", lambda out: build_bundled_site(out, home))


def _craft(hub: Path, name: str, revision: str, edit) -> Path:
    """A copy of the bundled lenet-mnist-ref at ``hub/name/revision``, changed by ``edit(folder)``, with a
    manifest that matches (so only the site's own checks stand between the files and the page)."""
    folder = hub / name / revision
    shutil.copytree(BUNDLED_HUB / "lenet-mnist-ref" / "main", folder)
    edit(folder)
    write_manifest(folder)
    return folder


FAILED_INT8_REASON = "accuracy dropped by 2.10 points, up to 2.90 at 95 % (more than 0.5)"


def failed_int8(folder: Path) -> None:
    """The INT8 artifact failed its gate and was left out, as ``zoo publish --skip-unverified`` leaves it."""
    verification = json.loads((folder / VERIFICATION).read_text())
    verification["records"]["model.int8.onnx"]["gate"] = {"passed": False, "reasons": [FAILED_INT8_REASON]}
    (folder / VERIFICATION).write_text(json.dumps(verification))
    (folder / "model.int8.onnx").unlink()


def _hostile(folder: Path) -> None:
    card = (folder / CARD).read_text()
    (folder / CARD).write_text(card + f"\n\n{SCRIPT}\n\n<img src=x onerror=alert(2)>\n\n"
                               "[click](javascript:alert(3)) [page](evil.html) ![tracker](http://evil.example/t.png)\n"
                               "\n<iframe src=http://evil.example></iframe>\n")
    config = json.loads((folder / CONFIG).read_text())
    config["arch"] = SCRIPT
    config["recipe"]["name"] = '"><script>alert(5)</script>'
    (folder / CONFIG).write_text(json.dumps(config))
    verification = json.loads((folder / VERIFICATION).read_text())
    records = verification["records"]
    crafted = json.loads(json.dumps(records["model.onnx"]))
    crafted["gate"] = {"passed": False, "reasons": [SCRIPT, "$\\frac{a}{b}$ mathtext"]}
    records["<img src=x onerror=alert(6)>.onnx"] = crafted
    records["$\\frac{1}{0}$.onnx"] = {"clean_accuracy": "NaN", "deepfool": [], "gate": "yes", "images": -3}
    records["model.safetensors"]["strong"]["autoattack"]["Linf"]["eps"] = SCRIPT
    (folder / VERIFICATION).write_text(json.dumps(verification))


@pytest.fixture(scope="session")
def hostile_hub(tmp_path_factory) -> Path:
    """A directory hub: one package whose card, config and records carry markup, and four to leave out: an unsafe
    model name, an unsafe revision, an unsafe dataset name, files that fail their manifest."""
    hub = tmp_path_factory.mktemp("hostile_hub")
    _craft(hub, "lenet-hostile", "main", _hostile)
    _craft(hub, "bad name<b>", "main", lambda folder: None)
    _craft(hub, "lenet-revision", HOSTILE_REVISION, lambda folder: None)

    def dataset(folder: Path) -> None:
        config = json.loads((folder / CONFIG).read_text())
        config["dataset"] = "../../escape"
        (folder / CONFIG).write_text(json.dumps(config))

    _craft(hub, "lenet-escape", "main", dataset)
    damaged = _craft(hub, "lenet-damaged", "main", lambda folder: None)
    (damaged / "model.onnx").write_bytes(b"tampered")
    return hub
