"""``zoo serve``: a KServe v2 / Triton-protocol HTTP service over one verified artifact (Starlette + uvicorn).

Lifecycle: the app answers ``/v2/health/live`` at once and ``/v2/health/ready`` with 503 until the runner is
loaded; requests go through the :class:`~ddzoo.serve.batcher.DynamicBatcher`; on shutdown uvicorn stops
accepting connections, in-flight requests finish, then the batcher drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ddzoo import __version__
from ddzoo.errors import InvalidArgumentError
from ddzoo.serve.batcher import DynamicBatcher, QueueFullError
from ddzoo.serve.protocol import HEADER_LENGTH, BadRequestError, infer_response, parse_infer_request

PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan", "torch": "pytorch_libtorch"}


@dataclass(frozen=True)
class ServeSettings:
    """Batching and limits of the service."""

    max_batch: int = 64
    max_delay_ms: float = 2.0
    max_queue: int = 1024
    timeout_s: float = 30.0
    max_body_bytes: int = 64 << 20

    def __post_init__(self):
        if self.timeout_s <= 0 or self.max_body_bytes < 1024:
            raise InvalidArgumentError("timeout must be > 0 s and the body limit at least 1024 bytes")


class Metrics:
    """Prometheus metrics of one app (its own registry)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("ddzoo_requests", "Inference requests answered", ["model", "code"],
                                registry=self.registry)
        self.failures = Counter("ddzoo_request_failures", "Inference requests that failed", ["model", "reason"],
                                registry=self.registry)
        latency = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
        self.queue = Histogram("ddzoo_queue_seconds", "Time a request waited for its batch", ["model"],
                               buckets=latency, registry=self.registry)
        self.compute = Histogram("ddzoo_compute_seconds", "Backend time per batch", ["model"], buckets=latency,
                                 registry=self.registry)
        self.latency = Histogram("ddzoo_request_seconds", "End-to-end request time", ["model"], buckets=latency,
                                 registry=self.registry)
        self.batch = Histogram("ddzoo_batch_size", "Images per backend call", ["model"],
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=self.registry)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(load, name: str, settings: ServeSettings = ServeSettings()) -> Starlette:
    """The Starlette app serving model ``name``; ``load()`` returns ``(runner, metadata)`` (called at startup)."""
    metrics = Metrics()
    state: dict = {"runner": None, "metadata": {}, "batcher": None}

    def observe(size: int, waits: list[float], compute: float) -> None:
        metrics.batch.labels(name).observe(size)
        metrics.compute.labels(name).observe(compute)
        for wait in waits:
            metrics.queue.labels(name).observe(wait)

    async def load_model() -> None:
        runner, metadata = await asyncio.get_running_loop().run_in_executor(None, load)
        batcher = DynamicBatcher(lambda x: runner.predict(x).numpy(), max_batch=settings.max_batch,
                                 max_delay_ms=settings.max_delay_ms, max_queue=settings.max_queue, observe=observe)
        batcher.start()
        state.update(runner=runner, metadata=metadata, batcher=batcher)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loading = asyncio.get_running_loop().create_task(load_model())  # serve health checks meanwhile
        try:
            yield
        finally:
            await loading
            runner, batcher = state["runner"], state["batcher"]
            state["runner"] = None
            await batcher.stop()
            runner.close()

    def model_or_404(request: Request) -> JSONResponse | None:
        if request.path_params["model"] != name:
            return _error(404, f"unknown model {request.path_params['model']!r}; this server serves {name!r}")
        if state["runner"] is None:
            return _error(503, "the model is loading; retry shortly", {"Retry-After": "1"})
        return None

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": state["runner"] is not None}, status_code=200 if state["runner"] else 503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "ddzoo", "version": __version__, "extensions": ["binary_tensor_data"]})

    async def model_metadata(request: Request) -> Response:
        if (missing := model_or_404(request)) is not None:
            return missing
        spec = state["runner"].input_spec
        return JSONResponse({
            "name": name, "versions": ["1"], "platform": PLATFORMS[state["runner"].backend],
            "inputs": [{"name": spec.name, "datatype": "FP32", "shape": [-1, *spec.shape]}],
            "outputs": [{"name": spec.output_name, "datatype": "FP32", "shape": [-1, state["metadata"]["classes"]]}],
            "parameters": state["metadata"]})

    async def model_ready(request: Request) -> Response:
        if (missing := model_or_404(request)) is not None:
            return missing
        return JSONResponse({"name": name, "ready": True})

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        if (missing := model_or_404(request)) is not None:
            return missing
        code, reason = 200, None
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
                code, reason = 413, "payload too large"
                return _error(413, f"the body of {declared} bytes exceeds the limit of {settings.max_body_bytes}")
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > settings.max_body_bytes:
                    code, reason = 413, "payload too large"
                    return _error(413, f"the body exceeds the limit of {settings.max_body_bytes} bytes")
            spec = state["runner"].input_spec
            parsed, images = parse_infer_request(bytes(body), request.headers.get(HEADER_LENGTH), spec.name,
                                                 spec.shape)
            logits = await state["batcher"].submit(images, settings.timeout_s)
            content, headers = infer_response(parsed, name, spec.output_name, logits)
            return Response(content, headers=headers)
        except (BadRequestError, InvalidArgumentError) as err:
            code, reason = 400, "bad request"
            return _error(400, str(err))
        except QueueFullError as err:
            code, reason = 503, "queue full"
            return _error(503, f"{err}; retry later", {"Retry-After": "1"})
        except asyncio.TimeoutError:
            code, reason = 503, "timeout"
            return _error(503, f"no answer within {settings.timeout_s} s; retry later", {"Retry-After": "1"})
        finally:
            metrics.requests.labels(name, str(code)).inc()
            if reason:
                metrics.failures.labels(name, reason).inc()
            metrics.latency.labels(name).observe(time.perf_counter() - started)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/v2/health/live", live), Route("/v2/health/ready", ready), Route("/v2", server_metadata),
        Route("/v2/models/{model}", model_metadata), Route("/v2/models/{model}/versions/{version}", model_metadata),
        Route("/v2/models/{model}/ready", model_ready),
        Route("/v2/models/{model}/versions/{version}/ready", model_ready),
        Route("/v2/models/{model}/infer", infer, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/metrics", prometheus),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def choose_artifact(package: Path, *, artifact: str | None = None, backend: str = "auto",
                    allow_unverified: bool = False) -> str:
    """The artifact to serve: ``artifact`` if given, else a TensorRT engine for this GPU (auto, trt), else
    ``model.onnx`` (onnxruntime takes CUDA when it has it, else the CPU); refuses one without a passing
    verification for its bytes unless ``allow_unverified``."""
    from ddzoo.runtime import check_backend
    from ddzoo.verify import CHECKPOINT_ARTIFACT, require_passing

    check_backend(backend)

    if artifact is None:
        artifact = {"torch": CHECKPOINT_ARTIFACT, "ort": "model.onnx"}.get(backend)
    if artifact is None and backend in ("auto", "trt"):
        artifact = _local_engine(package)
        if artifact is None:
            if backend == "trt":
                raise InvalidArgumentError(f"{package} has no TensorRT engine for this GPU and TensorRT version; "
                                           "build one with 'zoo export --formats trt-fp16' or use --backend ort")
            artifact = "model.onnx"
    if not allow_unverified:
        require_passing(package, [artifact])
    return artifact


def open_artifact(package: Path, artifact: str):
    """``(runner, metadata)`` for a served artifact; the metadata carries its verification record."""
    from ddzoo.runtime import open_runner
    from ddzoo.verify import headline, read_verification

    runner = open_runner(package / artifact)
    record = read_verification(package)["records"].get(artifact, {})
    metadata = {"artifact": artifact, **runner.describe(),
                "verified": bool(record.get("gate", {}).get("passed")), "sha256": record.get("sha256", ""),
                **headline(record)}
    return runner, metadata


def _local_engine(package: Path) -> str | None:
    import importlib.util

    import torch

    if importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available():
        return None
    import tensorrt

    major, minor = torch.cuda.get_device_capability()
    folder = package / "engines" / tensorrt.__version__ / f"sm{major}{minor}"
    for precision in ("fp16", "int8", "fp32"):
        if (folder / f"model.{precision}.plan").is_file():
            return str((folder / f"model.{precision}.plan").relative_to(package))
    return None


def serve(package: Path, name: str, *, host: str = "127.0.0.1", port: int = 8000, artifact: str | None = None,
          backend: str = "auto", allow_unverified: bool = False, settings: ServeSettings = ServeSettings()) -> None:
    """Run the service until interrupted (graceful: in-flight requests finish)."""
    import uvicorn

    from ddzoo.train.checkpoint import read_config

    classes = len(read_config(package)["classes"])

    artifact = choose_artifact(package, artifact=artifact, backend=backend, allow_unverified=allow_unverified)

    def load():
        runner, metadata = open_artifact(package, artifact)
        print(f"serving {name} from {package / metadata['artifact']} on {metadata['backend']} "
              f"({metadata['provider']}, {metadata['precision']}) at http://{host}:{port}", flush=True)
        return runner, {**metadata, "classes": classes}

    app = create_app(load, name, settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=settings.timeout_s)


__all__ = ["ServeSettings", "choose_artifact", "create_app", "open_artifact", "serve"]
