"""``zoo export triton``: a Triton Inference Server model repository from a model package, for scale-out on
Triton or KServe: ``<out>/<name>/config.pbtxt`` (platform, max batch, dynamic batching, instances, tensors)
and the artifact as ``<out>/<name>/1/model.onnx`` (or ``model.plan``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ddzoo.errors import InvalidArgumentError
from ddzoo.export.onnx_export import INPUT_NAME, OUTPUT_NAME
from ddzoo.fileio import building_dir
from ddzoo.names import validate_name
from ddzoo.package import ONNX, read_config

PLATFORMS = {".onnx": ("onnxruntime_onnx", "model.onnx"), ".plan": ("tensorrt_plan", "model.plan")}


def model_config(name: str, platform: str, input_name: str, image_shape: list[int], output_name: str,
                 classes: int, max_batch: int, max_delay_us: int, instances: int = 1) -> str:
    """The ``config.pbtxt`` text (protobuf text format of Triton's ``ModelConfig``)."""
    dims = ", ".join(str(d) for d in image_shape)
    return (f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch}\n'
            f'input [\n  {{\n    name: "{input_name}"\n    data_type: TYPE_FP32\n    dims: [ {dims} ]\n  }}\n]\n'
            f'output [\n  {{\n    name: "{output_name}"\n    data_type: TYPE_FP32\n    dims: [ {classes} ]\n  }}\n]\n'
            f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_delay_us}\n}}\n"
            f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_AUTO\n  }}\n]\n"
            f'version_policy: {{ latest: {{ num_versions: 1 }} }}\n')


def export_triton(package: Path | str, out: Path | str, *, name: str, artifact: str = ONNX,
                  max_batch: int = 64, max_delay_us: int = 2000, instances: int = 1) -> Path:
    """Write (atomically) the Triton repository entry ``out/name`` for ``artifact`` of ``package``;
    ``instances`` model instances run batches at once (per GPU, or on the CPU)."""
    package, out = Path(package), Path(out)
    validate_name(name)
    source = package / artifact
    if source.suffix not in PLATFORMS or not source.is_file():
        raise InvalidArgumentError(f"{source}: not an ONNX file or TensorRT engine of the package")
    if max_batch < 1 or max_delay_us < 0 or instances < 1:
        raise InvalidArgumentError("max batch and instances must be >= 1 and the delay >= 0")
    config = read_config(package)
    platform, filename = PLATFORMS[source.suffix]
    # tensor names: those ``zoo export`` gives every ONNX file (engines built from them keep them)
    text = model_config(name, platform, INPUT_NAME, list(config["input_shape"]), OUTPUT_NAME,
                        len(config["classes"]), max_batch, max_delay_us, instances)
    with building_dir(out / name) as staging:
        (staging / "1").mkdir()
        shutil.copyfile(source, staging / "1" / filename)
        (staging / "config.pbtxt").write_text(text)
    return out / name

