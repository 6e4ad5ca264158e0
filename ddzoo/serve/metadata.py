"""The served model as both protocols describe it, built once when it is loaded: KServe v2 model metadata and
the Triton model configuration (HTTP answers them as JSON, gRPC as the same messages)."""

from __future__ import annotations

from dataclasses import dataclass

PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan", "torch": "pytorch_libtorch"}
VERSION = "1"  # the one version a package is served as


@dataclass(frozen=True)
class ServedModel:
    """What a client may ask about the served model."""

    name: str
    platform: str
    input_name: str
    image_shape: tuple[int, ...]
    output_name: str
    classes: int
    max_batch: int
    max_delay_us: int
    instances: int
    parameters: dict  # the artifact, its backend and verification record (HTTP metadata only)

    @classmethod
    def of(cls, name: str, runner, parameters: dict, settings) -> ServedModel:
        """The description of ``runner`` served as ``name`` with ``settings`` (a ServeSettings);
        ``parameters`` carries ``classes``."""
        spec = runner.input_spec
        return cls(name, PLATFORMS[runner.backend], spec.name, tuple(spec.shape), spec.output_name,
                   parameters["classes"], settings.max_batch, int(settings.max_delay_ms * 1000), settings.instances,
                   parameters)

    def metadata(self) -> dict:
        """KServe v2 model metadata (``GET /v2/models/{name}``, gRPC ``ModelMetadata`` without parameters)."""
        return {"name": self.name, "versions": [VERSION], "platform": self.platform,
                "inputs": [{"name": self.input_name, "datatype": "FP32", "shape": [-1, *self.image_shape]}],
                "outputs": [{"name": self.output_name, "datatype": "FP32", "shape": [-1, self.classes]}],
                "parameters": self.parameters}

    def config(self) -> dict:
        """The model configuration as Triton answers it (what tritonclient's ``get_model_config`` reads)."""
        return {"name": self.name, "platform": self.platform, "max_batch_size": self.max_batch,
                "input": [{"name": self.input_name, "data_type": "TYPE_FP32", "dims": list(self.image_shape)}],
                "output": [{"name": self.output_name, "data_type": "TYPE_FP32", "dims": [self.classes]}],
                "dynamic_batching": {"max_queue_delay_microseconds": self.max_delay_us},
                "instance_group": [{"count": self.instances, "kind": "KIND_AUTO"}]}
