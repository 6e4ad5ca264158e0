"""Build a model package from a checkpoint: ONNX fp32 / fp16 / INT8 and TensorRT artifacts with parity records.

The package is built in a temporary folder beside ``out`` and renamed into place, so an interrupted export
leaves either the old package or none. ``export.json`` records, per artifact, its sha256, precision, how it
was made (calibration set for INT8) and its parity with the checkpoint on real test images.
"""


from __future__ import annotations

import shutil
from pathlib import Path

from ddzoo.data import load_split
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.eval.eps_ref import stored_eps_ref
from ddzoo.export.onnx_export import OPSET, export_onnx
from ddzoo.export.parity import parity_record
from ddzoo.fileio import building_dir, sha256_file, write_json
from ddzoo.package import (
    DEFAULT_EXPORT_FORMATS,
    ENGINE_FORMATS,
    EXPORT_FORMATS,
    EXPORT_RECORD,
    ONNX_FILES,
    WEIGHTS,
    load_checkpoint,
    package_versions,
    read_eps_ref,
    write_config,
)
from ddzoo.runtime import open_runner


def parse_formats(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"onnx,int8"`` → the formats in build order, ONNX prerequisites of engines added."""
    wanted = [f.strip() for f in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [f for f in wanted if f not in EXPORT_FORMATS]
    if unknown or not wanted:
        raise InvalidArgumentError(f"unknown format(s) {unknown or wanted}; choose from: {', '.join(EXPORT_FORMATS)}")
    wanted += [ENGINE_FORMATS[f] for f in wanted if f in ENGINE_FORMATS]
    return [f for f in EXPORT_FORMATS if f in wanted]


def onnx_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("onnx", "onnxruntime", "onnxruntime-gpu", "onnxscript"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def _eps_ref(checkpoint: Path, reference: Path | str | None) -> dict | None:
    """The ε_ref record a package takes: the given reference's, else the checkpoint's or its ``init``'s."""
    if reference is None:
        stored = stored_eps_ref(checkpoint)
        return stored[0] if stored else None
    record = read_eps_ref(reference)
    if record is None:
        raise CheckpointError(f"--reference {reference} holds no eps_ref record; run 'zoo eval {reference}' first "
                              "(it stores one)")
    return record


def export_package(checkpoint: Path | str, out: Path | str, *, formats: str | list[str] = DEFAULT_EXPORT_FORMATS,
                   calibration_count: int = 512, calibration_seed: int = 0, calibration_method: str = "minmax",
                   parity_limit: int | None = None, reference: Path | str | None = None) -> dict:
    """Export ``checkpoint`` into the package folder ``out``.

    Args:
        checkpoint: a folder written by ``zoo train``.
        out: the package folder to create (replaced atomically if it exists).
        formats: any of ``onnx, fp16, int8, trt-fp32, trt-fp16, trt-int8`` (engines need TensorRT and a GPU).
        calibration_count, calibration_seed, calibration_method: the INT8 calibration set (training images).
        parity_limit: parity on the first N test images (default: the whole test set).
        reference: the family's reference checkpoint or package whose stored ε_ref the package takes, for a model
            trained from scratch that records none (default: the checkpoint's own, or its ``init``'s).

    Returns:
        the ``export.json`` record.
    """
    from ddzoo.export.precision import to_fp16, to_int8

    checkpoint, out = Path(checkpoint), Path(out)
    wanted = parse_formats(formats)
    model, config = load_checkpoint(checkpoint)
    if out.resolve() == checkpoint.resolve():
        raise InvalidArgumentError(f"--out {out} is the checkpoint itself; choose a new package folder")
    with building_dir(out) as build:
        shutil.copyfile(checkpoint / WEIGHTS, build / WEIGHTS)
        stored = None if "eps_ref" in config else _eps_ref(checkpoint, reference)  # verification's ε grid
        write_config(build, {**config, **({"eps_ref": stored} if stored else {})})
        metadata = {"ddzoo.arch": config["arch"], "ddzoo.dataset": config["dataset"],
                    "ddzoo.classes": ",".join(config["classes"]), "ddzoo.input_range": "0,1",
                    "ddzoo.recipe": config.get("recipe", {}).get("name", "reference")}
        artifacts: dict[str, dict] = {}
        fp32 = export_onnx(model, tuple(config["input_shape"]), build / ONNX_FILES["fp32"], metadata)
        if "onnx" in wanted:
            artifacts[fp32.name] = {"format": "onnx", "precision": "fp32", "opset": OPSET}
        if "fp16" in wanted:
            to_fp16(fp32, build / ONNX_FILES["fp16"])
            artifacts[ONNX_FILES["fp16"]] = {"format": "onnx", "precision": "fp16", "opset": OPSET,
                                             "io": "float32 (casts inside the graph)"}
        if "int8" in wanted:
            calibration = to_int8(fp32, build / ONNX_FILES["int8"], dataset=config["dataset"],
                                  count=calibration_count, seed=calibration_seed, method=calibration_method)
            artifacts[ONNX_FILES["int8"]] = {"format": "onnx", "precision": "int8", "opset": OPSET,
                                             "quantization": calibration}
        if "onnx" not in wanted:
            fp32.unlink()
        for engine in [f for f in wanted if f.startswith("trt-")]:
            from ddzoo.export.tensorrt import build_engine

            meta = build_engine(build, engine.removeprefix("trt-"))
            artifacts[meta["engine"]] = {"format": "tensorrt", **meta}
        x, y = load_split(config["dataset"], "test").tensors(limit=parity_limit)
        with open_runner(build, backend="torch") as reference:
            for name, record in artifacts.items():
                with open_runner(build / name) as runner:
                    record["parity"] = parity_record(reference, runner, x, y, config["dataset"])
                    record["runtime"] = runner.runtime_record()
                record["sha256"] = sha256_file(build / name)
                record["bytes"] = (build / name).stat().st_size
        export = {"checkpoint": str(checkpoint), "arch": config["arch"], "dataset": config["dataset"],
                  "artifacts": artifacts, "versions": {**package_versions(), **onnx_versions()}}
        write_json(build / EXPORT_RECORD, export)
    return export
