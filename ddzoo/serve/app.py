"""``zoo serve``: a KServe v2 / Triton-protocol HTTP service over one verified artifact on uvicorn: the infer
route is a plain ASGI function (the hot path), every other route a Starlette app.

Lifecycle: the app answers ``/v2/health/live`` at once and ``/v2/health/ready`` with 503 until the runner is
loaded; requests go through the :class:`~ddzoo.serve.batcher.DynamicBatcher`; on shutdown uvicorn stops
accepting connections, in-flight requests finish, then the batcher drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ddzoo.serve import require_serve_extra

require_serve_extra()  # before the imports below: a missing extra is one line naming the install, not a traceback

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ddzoo import __version__
from ddzoo.errors import InvalidArgumentError, ModelLoadError, echo
from ddzoo.package import ONNX, WEIGHTS, read_config, read_verification
from ddzoo.serve.batcher import DynamicBatcher, QueueFullError, check_batching
from ddzoo.serve.protocol import HEADER_LENGTH, infer_response, parse_infer_request
from ddzoo.serve.status import Refusal, log, refusal_for

INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
VERSION = "1"  # the one version a package is served as
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")  # answered without the API key (load balancers probe them)
PARSE_IN_THREAD_BYTES = 256 << 10  # bigger bodies are parsed off the event loop, so health checks stay prompt
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan", "torch": "pytorch_libtorch"}


@dataclass(frozen=True)
class ServeSettings:
    """Batching and limits of the service."""

    max_batch: int = 64
    max_delay_ms: float = 2.0
    max_queue: int = 1024
    queue_wait_ms: float = 100.0  # a request finding the queue full waits this long for room, then 503
    timeout_s: float = 30.0
    max_body_bytes: int | None = None  # default: what --max-batch images of this model can take (body_limit)
    instances: int = 1
    api_key: str | None = None
    grpc_port: int | None = None  # KServe v2 gRPC on this port (0: any free port); None: HTTP only
    grpc_host: str = "127.0.0.1"

    def __post_init__(self):  # refused here, before the server starts, not at model load
        check_batching(self.max_batch, self.max_delay_ms, self.max_queue, self.instances)
        if self.queue_wait_ms < 0:
            raise InvalidArgumentError(f"need --queue-wait-ms >= 0; got {self.queue_wait_ms}")
        if self.timeout_s <= 0 or (self.max_body_bytes is not None and self.max_body_bytes < 1024):
            raise InvalidArgumentError("timeout must be > 0 s and the body limit at least 1024 bytes")
        if self.api_key is not None and len(self.api_key) < 16:
            raise InvalidArgumentError("the API key must be at least 16 characters; generate one with "
                                       "'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'")

    def body_limit(self, image_shape: tuple[int, ...]) -> int:
        """The largest body accepted: ``--max-body-mb`` if given, else ``max_batch`` images as JSON (32 bytes
        a value, generous for any float's text) plus 64 KiB — so parsing cost is bounded before it starts."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_batch * math.prod(image_shape) * 32 + (64 << 10)


@dataclass(frozen=True)
class QueuedRequest:
    """An infer request whose images are in the batcher: its parsed body and the future of its logits."""

    parsed: dict
    future: asyncio.Future


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


def _error(refusal: Refusal) -> JSONResponse:
    return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=refusal.headers)


def _failure(refusal: Refusal) -> tuple[int, bytes, dict, str]:
    """An infer answer for a failed request: (status, JSON body, headers, failure reason for the metrics)."""
    return (refusal.status, orjson.dumps({"error": refusal.message}),
            {**refusal.headers, "Content-Type": "application/json"}, refusal.reason)


def create_app(load, name: str, settings: ServeSettings = ServeSettings(), on_load_failure=None):
    """The ASGI app serving model ``name``; ``load()`` returns ``(runner, metadata)`` (called at startup).

    If ``load`` fails, ``/v2/health/ready`` answers 503 with the failure and ``on_load_failure(message)`` is
    called (``zoo serve`` stops the server and prints it as its one error line); without that callback the
    failure is logged at once instead.
    """
    metrics = Metrics()
    state: dict = {"runner": None, "metadata": {}, "batcher": None, "error": None, "body_limit": None}
    batch_size, compute, queue = (metrics.batch.labels(name), metrics.compute.labels(name),
                                  metrics.queue.labels(name))
    latency = metrics.latency.labels(name)
    requests_by_code: dict = {}  # status -> counter child

    def observe(size: int, waits: list[float], seconds: float) -> None:
        batch_size.observe(size)
        compute.observe(seconds)
        for wait in waits:
            queue.observe(wait)

    async def submit_when_room(images):
        """gRPC's way into the batcher: like HTTP's, waits up to --queue-wait-ms for room in a full queue."""
        batcher = state["batcher"]
        if not await batcher.wait_for_room(settings.queue_wait_ms / 1000):
            raise QueueFullError(f"queue full (limit {settings.max_queue} images)")
        try:
            future = batcher.submit_nowait(images)
        finally:
            batcher.leave()
        return await batcher.result(future, settings.timeout_s)

    def report_load_failure() -> None:
        """One report of a load failure: the owner's (``zoo serve`` prints it as its error), else the log's."""
        if on_load_failure is not None:
            on_load_failure(state["error"])
        else:
            log(state["error"])

    async def load_model() -> None:
        try:
            runner, metadata = await asyncio.get_running_loop().run_in_executor(None, load)
        except Exception as err:  # noqa: BLE001 - any loader failure is reported the same way
            first = (str(err).splitlines() or [""])[0][:300]
            state["error"] = f"cannot load the model: {type(err).__name__}: {first}"
            report_load_failure()
            return
        state["body_limit"] = settings.body_limit(runner.input_spec.shape)
        batcher = DynamicBatcher(lambda x: runner.predict(x).numpy(), max_batch=settings.max_batch,
                                 max_delay_ms=settings.max_delay_ms, max_queue=settings.max_queue, observe=observe,
                                 instances=settings.instances)
        batcher.start()
        state.update(runner=runner, metadata=metadata, batcher=batcher)
        if settings.grpc_port is not None:
            await start_grpc()

    def describe() -> dict:
        runner = state["runner"]
        spec = runner.input_spec
        return {"ready": True, "input_name": spec.name, "image_shape": tuple(spec.shape),
                "output_name": spec.output_name, "classes": state["metadata"]["classes"],
                "platform": PLATFORMS[runner.backend], "max_batch": settings.max_batch,
                "max_delay_us": int(settings.max_delay_ms * 1000), "instances": settings.instances}

    async def start_grpc() -> None:
        from ddzoo.serve.grpc import start_grpc_server

        try:
            state["grpc"], state["grpc_port"] = await start_grpc_server(
                settings.grpc_host, settings.grpc_port, name=name, max_message_bytes=state["body_limit"],
                api_key=settings.api_key, unavailable=unavailable, describe=describe, count=count,
                submit=submit_when_room, timeout_s=settings.timeout_s)
        except Exception as err:  # noqa: BLE001 - a port in use, a missing extra: reported like a load failure
            state["error"] = f"cannot start gRPC: {(str(err).splitlines() or [''])[0][:300]}"
            state["runner"] = None
            report_load_failure()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loading = asyncio.get_running_loop().create_task(load_model())  # serve health checks meanwhile
        try:
            yield
        finally:
            await loading
            runner, batcher = state["runner"], state["batcher"]
            state["runner"] = None
            if state.get("grpc") is not None:
                await state["grpc"].stop(settings.timeout_s)  # in-flight RPCs finish first
            if batcher is not None:
                await batcher.stop()
                runner.close()

    def unavailable(model: str, version: str | None = None) -> Refusal | None:
        """Why ``model`` cannot be answered now (both protocols); None if it can."""
        if model != name:
            return Refusal(404, f"unknown model {echo(model)}; this server serves {name!r}", "unknown model")
        if version not in (None, VERSION):
            return Refusal(404, f"unknown version {echo(version, 20)} of {name!r}; it is served as version "
                                f"{VERSION}", "unknown model")
        if state["error"] is not None:
            return Refusal(503, "the model failed to load; see the server log", "load failed")
        if state["runner"] is None:
            return Refusal(503, "the model is loading; retry shortly", "loading", {"Retry-After": "1"})
        return None

    def model_or_404(request: Request) -> JSONResponse | None:
        problem = unavailable(request.path_params["model"], request.path_params.get("version"))
        return None if problem is None else _error(problem)

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        body = {"ready": state["runner"] is not None, **({"error": state["error"]} if state["error"] else {})}
        return JSONResponse(body, status_code=200 if state["runner"] else 503)

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

    async def model_config(request: Request) -> Response:
        """The model configuration as Triton answers it (what tritonclient's get_model_config reads)."""
        if (missing := model_or_404(request)) is not None:
            return missing
        spec = state["runner"].input_spec
        return JSONResponse({
            "name": name, "platform": PLATFORMS[state["runner"].backend], "max_batch_size": settings.max_batch,
            "input": [{"name": spec.name, "data_type": "TYPE_FP32", "dims": list(spec.shape)}],
            "output": [{"name": spec.output_name, "data_type": "TYPE_FP32", "dims": [state["metadata"]["classes"]]}],
            "dynamic_batching": {"max_queue_delay_microseconds": int(settings.max_delay_ms * 1000)},
            "instance_group": [{"count": settings.instances, "kind": "KIND_AUTO"}]})

    async def model_ready(request: Request) -> Response:
        if (missing := model_or_404(request)) is not None:
            return missing
        return JSONResponse({"name": name, "ready": True})

    async def infer(model: str, version: str | None, scope: dict, receive, send) -> None:
        """POST .../infer as plain ASGI: the hot path skips Starlette's routing, request and response layers."""
        started = time.perf_counter()
        try:
            answer = await answer_infer(model, version, scope, receive)
        except Exception as err:  # noqa: BLE001 - one mapping for both protocols; a backend failure is logged there
            answer = _failure(refusal_for(err, settings.timeout_s))
        if answer is None:  # the client went away before sending its whole request
            return
        status, content, headers, reason = answer
        raw_headers = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        raw_headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})
        count(status, reason)
        latency.observe(time.perf_counter() - started)

    def count(status: int, reason: str | None) -> None:
        """One answered request (HTTP, or gRPC by its HTTP-equivalent status) in the metrics."""
        if status not in requests_by_code:
            requests_by_code[status] = metrics.requests.labels(name, str(status))
        requests_by_code[status].inc()
        if reason:
            metrics.failures.labels(name, reason).inc()

    async def read_and_queue(scope: dict, receive, runner, batcher, limit: int):
        """Read, check and parse one infer body and queue its images: a :class:`QueuedRequest`, a failure
        answer, or None if the client left."""
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        too_large = _failure(Refusal(413, f"the body exceeds the limit of {limit} bytes ({settings.max_batch} "
                                          "images as JSON); send the binary tensor extension or fewer images",
                                     "payload too large"))
        if declared.isdigit() and int(declared) > limit:
            return too_large
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > limit:
                return too_large
            if not message.get("more_body", False):
                break
        spec = runner.input_spec
        header_length = headers.get(HEADER_LENGTH.lower().encode())
        header_text = None if header_length is None else header_length.decode("latin-1")
        if len(body) > PARSE_IN_THREAD_BYTES:  # keep the event loop (health, metrics) responsive
            parsed, images = await asyncio.get_running_loop().run_in_executor(
                None, parse_infer_request, bytes(body), header_text, spec.name, spec.shape)
        else:
            parsed, images = parse_infer_request(bytes(body), header_text, spec.name, spec.shape)
        return QueuedRequest(parsed, batcher.submit_nowait(images))

    async def answer_infer(model: str, version: str | None, scope: dict, receive):
        """``(status, body, headers, failure reason)``, or None if the client left."""
        if (problem := unavailable(model, version)) is not None:
            return _failure(problem)
        runner, batcher, limit = state["runner"], state["batcher"], state["body_limit"]
        if not await batcher.wait_for_room(settings.queue_wait_ms / 1000):  # shed before reading or parsing
            return _failure(refusal_for(QueueFullError("the queue is full"), settings.timeout_s))
        try:
            queued = await read_and_queue(scope, receive, runner, batcher, limit)
        finally:
            batcher.leave()  # the room it was let in with: its images are queued now, or it failed
        if not isinstance(queued, QueuedRequest):
            return queued
        logits = await batcher.result(queued.future, settings.timeout_s)
        content, response_headers = infer_response(queued.parsed, name, runner.input_spec.output_name, logits)
        return 200, content, response_headers, None

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/v2/health/live", live), Route("/v2/health/ready", ready), Route("/v2", server_metadata),
        Route("/v2/models/{model}", model_metadata), Route("/v2/models/{model}/versions/{version}", model_metadata),
        Route("/v2/models/{model}/ready", model_ready),
        Route("/v2/models/{model}/versions/{version}/ready", model_ready),
        Route("/v2/models/{model}/config", model_config),
        Route("/v2/models/{model}/versions/{version}/config", model_config),
        Route("/metrics", prometheus),
    ]
    cold_paths = Starlette(routes=routes, lifespan=lifespan)

    expected_key = None if settings.api_key is None else f"Bearer {settings.api_key}".encode()

    async def refuse(send, refusal: Refusal) -> None:
        body = orjson.dumps({"error": refusal.message})
        headers = [(key.lower().encode(), value.encode()) for key, value in refusal.headers.items()]
        await send({"type": "http.response.start", "status": refusal.status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict, receive, send) -> None:
        if scope["type"] == "http" and expected_key is not None and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected_key):
                await refuse(send, Refusal(401, "missing or wrong API key; send the header 'Authorization: "
                                                "Bearer <key>'", "unauthenticated", {"WWW-Authenticate": "Bearer"}))
                return
        match = INFER_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await cold_paths(scope, receive, send)
        elif scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"allow", b"POST"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
        else:
            await infer(match[1], match[2], scope, receive, send)

    app.state = state  # for tests and embedding: the runner, the bound gRPC port ...
    return app


def choose_artifact(package: Path, *, artifact: str | None = None, backend: str = "auto",
                    allow_unverified: bool = False) -> str:
    """The artifact to serve: ``artifact`` if given, else a TensorRT engine for this GPU (auto, trt), else
    ``model.onnx`` (onnxruntime takes CUDA when it has it, else the CPU); refuses one without a passing
    verification for its bytes unless ``allow_unverified``."""
    from ddzoo.runtime import check_backend, local_engine
    from ddzoo.verification import require_passing

    check_backend(backend)

    if artifact is None:
        artifact = {"torch": WEIGHTS, "ort": ONNX}.get(backend)
    if artifact is None and backend in ("auto", "trt"):
        engine = local_engine(package)
        artifact = None if engine is None else engine.relative_to(package).as_posix()
        if artifact is None:
            if backend == "trt":
                raise InvalidArgumentError(f"{package} has no TensorRT engine for this GPU and TensorRT version; "
                                           "build one with 'zoo export --formats trt-fp16' or use --backend ort")
            artifact = ONNX
    if not allow_unverified:
        require_passing(package, [artifact])
    return artifact


def open_artifact(package: Path, artifact: str, *, spin_wait: bool = True):
    """``(runner, metadata)`` for a served artifact; the metadata carries its verification record."""
    from ddzoo.records import ArtifactRecord
    from ddzoo.runtime import open_runner

    runner = open_runner(package / artifact, spin_wait=spin_wait)
    found = read_verification(package)["records"].get(artifact)
    record = ArtifactRecord.from_json(found, f"{package}: {artifact}") if found else None
    metadata = {"artifact": artifact, **runner.describe(), "verified": bool(record and record.gate.passed),
                "sha256": record.sha256 if record else "", "clean_accuracy": record.clean.accuracy if record else None,
                "rho2": record.headline_rho2 if record else None}
    return runner, metadata


class _Server:
    """uvicorn's server, exiting normally after a clean drain on SIGTERM/SIGINT (uvicorn re-raises the signal,
    which makes the exit status 143)."""

    @staticmethod
    def make(config):
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                with super().capture_signals():
                    yield
                    self._captured_signals.clear()  # drained: nothing to re-raise

        return Server(config)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(package: Path, name: str, *, host: str = "127.0.0.1", port: int = 8000, artifact: str | None = None,
          backend: str = "auto", allow_unverified: bool = False, settings: ServeSettings = ServeSettings()) -> None:
    """Run the service until interrupted (graceful: in-flight requests finish).

    Raises:
        ModelLoadError: the artifact could not be loaded (the server stops at once).
    """
    import uvicorn

    classes = len(read_config(package)["classes"])
    artifact = choose_artifact(package, artifact=artifact, backend=backend, allow_unverified=allow_unverified)
    if settings.api_key is None and not _is_loopback(host):
        log(f"warning: serving on {host} without an API key: anyone who can reach port {port} can use the "
             "model; pass --api-key or set ZOO_API_KEY")

    def load():
        # onnxruntime's threads spin only without batching: between batches the HTTP path needs the cores
        runner, metadata = open_artifact(package, artifact, spin_wait=settings.max_batch == 1)
        grpc = f" and grpc://{host}:{settings.grpc_port}" if settings.grpc_port else ""
        print(f"serving {name} from {package / metadata['artifact']} on {metadata['backend']} "
              f"({metadata['provider']}, {metadata['precision']}) at http://{host}:{port}{grpc}", flush=True)
        return runner, {**metadata, "classes": classes}

    failures: list[str] = []

    def stop(message: str) -> None:
        failures.append(message)
        server.should_exit = True

    if settings.grpc_port is not None:
        settings = dataclasses.replace(settings, grpc_host=host)
    app = create_app(load, name, settings, on_load_failure=stop)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                            timeout_graceful_shutdown=settings.timeout_s)
    server = _Server.make(config)
    server.run()
    if failures:
        raise ModelLoadError(f"{package / artifact}: {failures[0]}; check the package ('zoo verify') or choose "
                             "another --artifact / --backend")


__all__ = ["ServeSettings", "choose_artifact", "create_app", "open_artifact", "serve"]
