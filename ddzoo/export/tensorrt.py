"""TensorRT engines from the package's ONNX files (thin; TensorRT is imported lazily).

Each engine is built from the ONNX variant of its precision as a *strongly typed* network, so the precision
comes from the ONNX file itself (fp32, fp16, or INT8 through its Q/DQ nodes — explicit quantisation, the only
INT8 path TensorRT 11 keeps). Engines are not portable: they are filed under
``engines/<tensorrt-version>/sm<compute capability>/model.<precision>.plan`` with a metadata file, and a
timing cache beside them makes rebuilds fast.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ddzoo.errors import InvalidArgumentError, echo
from ddzoo.fileio import atomic_write_bytes, write_json
from ddzoo.package import ONNX_FILES, engine_dir, engine_name
from ddzoo.runtime.trt import import_tensorrt

ENGINE_SOURCES = ONNX_FILES


def build_engine(package: Path, precision: str, *, max_batch: int = 256, opt_batch: int = 64,
                 workspace_mb: int = 1024) -> dict:
    """Build ``model.<precision>.plan`` for this GPU from the package's ONNX variant; returns its metadata."""
    if precision not in ENGINE_SOURCES:
        raise InvalidArgumentError(f"unknown engine precision {echo(precision)}; choose: {', '.join(ENGINE_SOURCES)}")
    source = package / ENGINE_SOURCES[precision]
    if not source.is_file():
        raise InvalidArgumentError(f"{source} is missing; export the '{precision if precision != 'fp32' else 'onnx'}'"
                                   " format first")
    trt = import_tensorrt()
    capability = torch.cuda.get_device_capability()
    folder = engine_dir(package, trt.__version__, capability)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(source.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InvalidArgumentError(f"{source}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    cache_path = folder / "timing.cache"
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    name = network.get_input(0).name
    image_shape = tuple(network.get_input(0).shape)[1:]
    profile = builder.create_optimization_profile()
    profile.set_shape(name, (1, *image_shape), (min(opt_batch, max_batch), *image_shape), (max_batch, *image_shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InvalidArgumentError(f"{source}: TensorRT failed to build a {precision} engine (see its log above)")
    plan = folder / engine_name(precision)
    atomic_write_bytes(plan, bytes(serialized))
    atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))
    metadata = {"engine": str(plan.relative_to(package)), "source": source.name, "precision": precision,
                "tensorrt": trt.__version__, "compute_capability": f"{capability[0]}.{capability[1]}",
                "gpu": torch.cuda.get_device_name(), "min_batch": 1, "opt_batch": min(opt_batch, max_batch),
                "max_batch": max_batch, "strongly_typed": True}
    write_json(plan.with_suffix(".json"), metadata)
    return metadata
