"""ε_ref has one definition: stored with the checkpoint or its reference, else found on the reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ddzoo.errors import CheckpointError
from ddzoo.eval.eps_ref import resolve_eps_ref, stored_eps_ref
from ddzoo.package import CONFIG, WEIGHTS, write_eps_ref
from ddzoo.zoo.hubs import BUNDLED_HUB

STORED = {"fgs": 0.25, "bim": 0.125, "samples": 10, "split": "test"}
LENET = BUNDLED_HUB / "lenet-mnist-ref" / "main"  # any checkpoint: nothing here bisects


def _copy(checkpoint: Path, folder: Path, recipe: dict) -> Path:
    folder.mkdir()
    shutil.copyfile(checkpoint / WEIGHTS, folder / WEIGHTS)
    config = json.loads((checkpoint / CONFIG).read_text())
    config.pop("eps_ref", None)
    (folder / CONFIG).write_text(json.dumps({**config, "recipe": recipe}))
    return folder


def test_a_fine_tuned_checkpoint_takes_its_references_eps_ref(tmp_path):
    reference = _copy(LENET, tmp_path / "ref", {"name": "reference"})
    write_eps_ref(reference, STORED)
    tuned = _copy(LENET, tmp_path / "dd", {"name": "deep-defense", "init": str(reference)})
    x, y = torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)
    assert resolve_eps_ref(reference, x, y) == ({"fgs": 0.25, "bim": 0.125}, reference)
    assert resolve_eps_ref(tuned, x, y) == ({"fgs": 0.25, "bim": 0.125}, reference)
    assert stored_eps_ref(tuned) == (STORED, reference)  # the whole record, as export copies it


def test_no_bisection_on_a_checkpoint_that_is_not_the_reference(tmp_path):
    tuned = _copy(LENET, tmp_path / "dd", {"name": "deep-defense", "init": str(tmp_path / "gone")})
    x, y = torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)
    assert stored_eps_ref(tuned) is None
    with pytest.raises(CheckpointError, match="no eps_ref stored") as err:
        resolve_eps_ref(tuned, x, y)
    assert "\n" not in str(err.value)
