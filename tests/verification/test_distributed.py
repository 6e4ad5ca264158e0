"""``torchrun -m ddzoo.cli verify``: two gloo processes split the batches and write the record one process writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ddzoo.cli import main
from ddzoo.package import WEIGHTS
from tests.verification.conftest import comparable

ARGS = ["--limit", "36", "--batch-size", "12", "--square", "0", "--crosscheck", "0", "--json"]  # 3 batches: 2 + 1




def test_two_gloo_processes_write_the_record_of_one(lenet_package, tmp_path, data_dir, capsys):
    env = {**os.environ, "ZOO_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1", "ZOO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "ddzoo.cli", "verify", str(lenet_package), *ARGS, "--out", str(tmp_path / "two")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)  # one JSON document: only rank 0 prints
    assert main(["verify", str(lenet_package), *ARGS, "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    two = json.loads((tmp_path / "two" / "verification.json").read_text())
    one = json.loads((tmp_path / "one" / "verification.json").read_text())
    assert set(printed) == set(two["records"]) == {WEIGHTS, "model.onnx", "model.fp16.onnx",
                                                   "model.int8.onnx"}
    assert comparable(two) == comparable(one)
    assert two["records"]["model.onnx"]["images"] == 36


def test_more_processes_than_batches_is_a_clear_error(lenet_package, monkeypatch, capsys):
    """Checked before any collective (rank 0 of two, in this process: torchrun itself is the test above's)."""
    from ddzoo.distributed import DistContext
    from ddzoo.verification import pipeline

    monkeypatch.setattr(pipeline, "init_distributed", lambda device: DistContext(rank=0, world_size=2))
    assert main(["verify", str(lenet_package), "--limit", "20", "--square", "0", "--crosscheck", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 processes need as many batches of 500 images; 20 images make 1" in err


def test_a_stray_world_size_is_a_clear_error_not_a_hang(lenet_package, monkeypatch, capsys):
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["verify", str(lenet_package), "--limit", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RANK, MASTER_ADDR, MASTER_PORT not: unset WORLD_SIZE, or start" in err
