"""Package-level guarantees: light import, CLI error handling."""

import json
import subprocess
import sys

from ddzoo.cli import main


def test_import_does_not_load_optional_backends():
    code = ("import sys, ddzoo, ddzoo.data, ddzoo.models, ddzoo.attacks, ddzoo.train, ddzoo.eval.checkpoint, "
            "ddzoo.runtime, ddzoo.export, ddzoo.verification, ddzoo.cli; "
            "print([m for m in ('onnxruntime', 'tensorrt', 'onnx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_model_is_one_line_listing_valid_names(capsys, tmp_path):
    code = main(["train", "--model", "vgg99", "--dataset", "mnist", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2  # usage: an unknown name
    assert err.count("\n") == 0
    assert err == "zoo: error: unknown model 'vgg99'; choose one of: convnet, lenet, mlp, resnet20, resnet20-parseval"
    assert not (tmp_path / "x").exists()


def test_unknown_recipe_and_dataset(capsys, tmp_path):
    assert main(["train", "--recipe", "magic", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'magic'; choose one of: reference, deep-defense, adversarial, parseval" in err
    assert main(["eval", str(tmp_path), "--dataset", "imagenet"]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_usage_error_exit_code(capsys):
    assert main(["eval"]) == 2


def test_json_listings(capsys):
    assert main(["models", "list", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in models] == ["convnet", "lenet", "mlp", "resnet20", "resnet20-parseval"]
    assert main(["data", "list", "--json"]) == 0
    names = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert names["cifar10"]["shape"] == [3, 32, 32] and names["mnist"]["test"] == 10_000
