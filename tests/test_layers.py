"""The layering rule: each room imports only its own layer or layers below it (module-level and lazy imports
alike), only training and the CLI import ``ddzoo.train``, and the light entry points stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ddzoo"
LAYERS = [
    {"errors", "constants", "fileio", "names", "optional", "device", "distributed", "printing", "stats"},
    {"data", "models", "attacks"},
    {"package", "records"},
    {"runtime"},
    {"train", "eval"},
    {"export"},
    {"verification"},
    {"zoo"},
    {"serve", "site", "cli", "demo"},
    {"api", "__init__"},
]
RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def _room(module: str) -> str:
    parts = module.split(".")
    if parts[1:] == ["__version__"]:
        return "errors"  # the version string: bottom layer (the root module defines nothing else eagerly)
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str, int]]:
    """(importing module, imported ddzoo module, line) for every import statement in the package."""
    found = []
    for path in ROOT.rglob("*.py"):
        module = "ddzoo." + ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ddzoo"):
                targets = [node.module] if node.module != "ddzoo" else [f"ddzoo.{a.name}" for a in node.names]
                found += [(module, target, node.lineno) for target in targets]
            elif isinstance(node, ast.Import):
                found += [(module, a.name, node.lineno) for a in node.names if a.name.startswith("ddzoo.")]
    return found


def test_every_room_has_a_layer():
    rooms = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert rooms <= set(RANK), f"rooms without a layer: {rooms - set(RANK)}"


def test_imports_only_go_down():
    upward = [f"{m}:{line} imports {t}" for m, t, line in _imports()
              if t != "ddzoo" and RANK[_room(t)] > RANK[_room(m)]]
    assert upward == []


def test_only_training_and_the_cli_import_train():
    users = sorted({m for m, t, _ in _imports() if _room(t) == "train" and _room(m) not in ("train", "cli")})
    assert users == []


@pytest.mark.parametrize(("entry", "forbidden"), [
    ("ddzoo", ("torch", "onnxruntime", "tensorrt", "ddzoo.train", "huggingface_hub")),
    ("ddzoo.zoo", ("ddzoo.train", "ddzoo.verification", "ddzoo.export", "onnxruntime", "huggingface_hub")),
    ("ddzoo.runtime", ("ddzoo.train", "onnxruntime", "tensorrt")),
    ("ddzoo.package", ("ddzoo.train", "ddzoo.runtime", "onnx")),
])
def test_entry_points_stay_light(entry, forbidden):
    code = (f"import sys, {entry}; "
            "print(sorted({m.split('.')[0] if not m.startswith('ddzoo') else m for m in sys.modules}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not [f for f in forbidden if f"'{f}'" in loaded], loaded
