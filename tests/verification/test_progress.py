"""``zoo verify --state DIR``: a run stopped midway goes on from its last save and writes the record an
uninterrupted run writes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ddzoo.errors import InvalidArgumentError
from ddzoo.package import WEIGHTS
from ddzoo.verification import VerifySettings, pipeline, verify_package
from ddzoo.verification.progress import STATE, load_progress
from tests.verification.conftest import comparable

SETTINGS = VerifySettings(limit=24, batch_size=4, square_images=0, crosscheck_images=0)  # 6 batches: a save after 5


class Stopped(Exception):
    pass




def test_a_stopped_run_goes_on_from_its_last_save_and_writes_the_same_record(lenet_package, tmp_path, monkeypatch):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    for copy in (whole, stopped):  # without a stored ε_ref: found by bisection on the verification images
        shutil.copytree(lenet_package, copy)
        config = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "eps_ref"}))
    expected = verify_package(whole, settings=SETTINGS)
    assert expected["records"][WEIGHTS]["eps_ref"]["source"] == "bisection on the 24 verification images (none " \
        "stored with the package)"

    attack, calls = pipeline.attack_checkpoint, []

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6 and stop:
            raise Stopped  # the sixth batch: after the save of the first five
        return attack(*args, **kwargs)

    monkeypatch.setattr(pipeline, "attack_checkpoint", counted)
    stop = True
    with pytest.raises(Stopped):
        verify_package(stopped, settings=SETTINGS, state=tmp_path / "state")
    assert (tmp_path / "state" / STATE).is_file()
    assert load_progress(tmp_path / "state", "another run", 36, 4) is None  # another run starts afresh
    stop, calls[:] = False, []
    resumed = verify_package(stopped, settings=SETTINGS, state=tmp_path / "state")
    assert len(calls) == 1  # only the sixth batch attacked again
    assert comparable(resumed) == comparable(expected)
    assert not (tmp_path / "state" / STATE).exists()  # cleared once the record is made


def test_an_unreadable_state_is_a_one_line_error(lenet_package, tmp_path, capsys):
    from ddzoo.cli import main

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / STATE).write_bytes((12).to_bytes(8, "little") + b"not a header")
    args = ["--limit", "24", "--batch-size", "4", "--square", "0", "--crosscheck", "0"]
    assert main(["verify", str(lenet_package), *args, "--state", str(tmp_path / "state")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read the verification state" in err and "delete it" in err
    from ddzoo.data import load_split
    from ddzoo.fileio import sha256_file
    from ddzoo.package import package_artifacts
    from ddzoo.verification.plan import eps_ref_record
    from ddzoo.verification.progress import run_key, save_progress

    names = [WEIGHTS, *package_artifacts(lenet_package)]
    eps_ref = eps_ref_record(lenet_package, *load_split("mnist", "test").tensors(limit=24))
    key = run_key({name: sha256_file(lenet_package / name) for name in names}, SETTINGS.record(), 24, eps_ref)
    save_progress(tmp_path / "crafted", key, 1, {f"{WEIGHTS}:correct": torch.ones(3, dtype=torch.bool)}, {})
    assert main(["verify", str(lenet_package), *args, "--state", str(tmp_path / "crafted")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "verification state" in err and "is malformed" in err
    beyond = torch.ones(24 * 4 * 4096 + 1_048_577, dtype=torch.bool)  # more than 24 images x 4 runners can hold
    save_progress(tmp_path / "crafted", key, 1, {f"{WEIGHTS}:correct": beyond}, {})
    assert load_progress(tmp_path / "crafted", "another run", 24, 4) is None  # another run's: started afresh
    assert main(["verify", str(lenet_package), *args, "--state", str(tmp_path / "crafted")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is larger than this run's results can be" in err
    (tmp_path / "crafted" / STATE).write_bytes((2**40).to_bytes(8, "little") + b"{}")  # a header of 1 TB
    assert main(["verify", str(lenet_package), *args, "--state", str(tmp_path / "crafted")]) == 2
    assert "is malformed" in capsys.readouterr().err


def _without_seconds(value):
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    return value


def test_a_run_stopped_in_square_keeps_the_runners_square_already_attacked(lenet_package, tmp_path, monkeypatch):
    """After the batches, each runner's Square run is saved as it ends: a stop in the third one (fp16) attacks
    only fp16 and INT8 again, and the record is the uninterrupted run's (Square is seeded)."""
    from ddzoo.eval import strong
    from ddzoo.verification.progress import SAVED_RUN

    settings = VerifySettings(limit=24, batch_size=12, square_images=12, square_queries=50, crosscheck_images=0)
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    shutil.copytree(lenet_package, whole)
    shutil.copytree(lenet_package, stopped)
    expected = verify_package(whole, settings=settings)

    square, calls = strong.square_robust, []

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and stop:
            raise Stopped  # fp16's: the checkpoint's and fp32's are saved
        return square(*args, **kwargs)

    monkeypatch.setattr(strong, "square_robust", counted)
    stop = True
    with pytest.raises(Stopped):
        verify_package(stopped, settings=settings, state=tmp_path / "state")
    assert len(list((tmp_path / "state").glob(f"*{SAVED_RUN}"))) == 2
    stop, calls[:] = False, []
    resumed = verify_package(stopped, settings=settings, state=tmp_path / "state")
    assert len(calls) == 2  # fp16 and INT8 only
    assert _without_seconds(comparable(resumed)) == _without_seconds(comparable(expected))
    assert list((tmp_path / "state").iterdir()) == []  # cleared once the record is made


def test_a_crafted_square_run_is_a_one_line_error(tmp_path):
    from ddzoo.package import save_tensors
    from ddzoo.verification.progress import SavedRuns

    runs = SavedRuns(tmp_path, "run")
    flags, _ = runs.flags("square model.onnx", 3, lambda: torch.tensor([True, False, True]))
    assert torch.equal(runs.flags("square model.onnx", 3, lambda: 1 / 0)[0], flags)  # saved: not run again
    assert SavedRuns(tmp_path, "another run").flags("square model.onnx", 3, lambda: ~flags)[0].tolist() == [
        False, True, False]  # another run's file is not taken
    (path,) = tmp_path.glob("*.run.safetensors")
    save_tensors(path, {"flags": torch.ones(5, dtype=torch.bool)}, metadata={"run": "run", "name": "square model.onnx",
                                                                            "seconds": "1.0"})
    with pytest.raises(InvalidArgumentError, match="is malformed; delete it"):
        runs.flags("square model.onnx", 3, lambda: flags)
    save_tensors(path, {"flags": torch.ones(100_000, dtype=torch.bool)}, metadata={
        "run": "run", "name": "square model.onnx", "seconds": "1.0"})  # far larger than three flags
    with pytest.raises(InvalidArgumentError, match="is larger than this run's results can be"):
        runs.flags("square model.onnx", 3, lambda: flags)
    path.write_bytes((12).to_bytes(8, "little") + b"not a header")
    with pytest.raises(InvalidArgumentError, match="cannot read the verification state"):
        runs.flags("square model.onnx", 3, lambda: flags)
