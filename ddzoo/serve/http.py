"""KServe v2 / Triton HTTP over a :class:`~ddzoo.serve.service.ModelService`: the infer route is a plain ASGI
function (the hot path), every other route a Starlette app; the API key guards every route but health."""

from __future__ import annotations

from ddzoo.serve import require_serve_extra

require_serve_extra()

import asyncio
import contextlib
import hmac
import re
import time
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ddzoo import __version__
from ddzoo.serve.batcher import QueueFullError
from ddzoo.serve.metrics import MEDIA_TYPE
from ddzoo.serve.protocol import HEADER_LENGTH, infer_response, parse_infer_request
from ddzoo.serve.service import ModelService
from ddzoo.serve.status import Refusal, method_not_allowed, refusal_for, unauthenticated

INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")  # answered without the API key (load balancers probe them)
PARSE_IN_THREAD_BYTES = 256 << 10  # bigger bodies are parsed off the event loop, so health checks stay prompt


@dataclass(frozen=True)
class QueuedRequest:
    """An infer request whose images are in the batcher: its parsed body and the future of its logits."""

    parsed: dict
    future: asyncio.Future


Answer = tuple[int, bytes, dict, str | None]  # status, body, headers, failure reason (metrics)


def _failure(refusal: Refusal) -> Answer:
    """The answer to a refused request: its message as JSON (no body when it has none)."""
    if not refusal.message:
        return refusal.status, b"", refusal.headers, refusal.reason
    body = orjson.dumps({"error": refusal.message})
    return refusal.status, body, {**refusal.headers, "Content-Type": "application/json"}, refusal.reason


async def _send(send, answer: Answer) -> None:
    status, content, headers, _ = answer
    raw_headers = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    raw_headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


class HttpApp:
    """The ASGI app of one :class:`ModelService`; ``app.state`` is the service's state (tests, embedding)."""

    def __init__(self, service: ModelService):
        self.service, self.settings = service, service.settings
        self.state = service.state
        key = self.settings.api_key
        self.expected_key = None if key is None else f"Bearer {key}".encode()
        self.cold_paths = Starlette(routes=self._routes(), lifespan=self._lifespan)

    async def __call__(self, scope: dict, receive, send) -> None:
        metrics = self.service.metrics
        if scope["type"] == "http" and self.expected_key is not None and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected_key):
                refusal = metrics.refused(unauthenticated("the header 'Authorization: Bearer <key>'"))
                await _send(send, _failure(refusal))
                return
        match = INFER_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.cold_paths(scope, receive, send)
        elif scope["method"] != "POST":
            await _send(send, _failure(metrics.refused(method_not_allowed("POST"))))
        else:
            await self._infer(match[1], match[2], scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        loading = asyncio.get_running_loop().create_task(self.service.start())  # serve health checks meanwhile
        try:
            yield
        finally:
            await loading
            await self.service.stop()

    # ------------------------------------------------------------------------------------------- infer
    async def _infer(self, model: str, version: str | None, scope: dict, receive, send) -> None:
        """POST .../infer as plain ASGI: the hot path skips Starlette's routing, request and response layers."""
        started = time.perf_counter()
        try:
            answer = await self._answer_infer(model, version, scope, receive)
        except Exception as err:  # noqa: BLE001 - one mapping for both protocols; a backend failure is logged there
            answer = _failure(refusal_for(err, self.settings.timeout_s))
        if answer is None:  # the client went away before sending its whole request
            return
        await _send(send, answer)
        self.service.metrics.count(answer[0], answer[3])
        self.service.metrics.latency.observe(time.perf_counter() - started)

    async def _answer_infer(self, model: str, version: str | None, scope: dict, receive) -> Answer | None:
        """The answer, or None if the client left."""
        if (problem := self.service.unavailable(model, version)) is not None:
            return _failure(problem)
        runner, batcher, limit = self.state["runner"], self.state["batcher"], self.state["body_limit"]
        if not await batcher.wait_for_room(self.settings.queue_wait_ms / 1000):  # shed before reading or parsing
            return _failure(refusal_for(QueueFullError("the queue is full"), self.settings.timeout_s))
        try:
            queued = await self._read_and_queue(scope, receive, runner, batcher, limit)
        finally:
            batcher.leave()  # the room it was let in with: its images are queued now, or it failed
        if not isinstance(queued, QueuedRequest):
            return queued
        logits = await batcher.result(queued.future, self.settings.timeout_s)
        content, response_headers = infer_response(queued.parsed, self.service.name, runner.input_spec.output_name,
                                                   logits)
        return 200, content, response_headers, None

    async def _read_and_queue(self, scope: dict, receive, runner, batcher, limit: int):
        """Read, check and parse one infer body and queue its images: a :class:`QueuedRequest`, a failure
        answer, or None if the client left."""
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        too_large = _failure(Refusal(413, f"the body exceeds the limit of {limit} bytes ({self.settings.max_batch} "
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

    # -------------------------------------------------------------------------------------- cold paths
    def _routes(self) -> list[Route]:
        return [
            Route("/v2/health/live", self._live), Route("/v2/health/ready", self._ready),
            Route("/v2", self._server_metadata),
            Route("/v2/models/{model}", self._model_metadata),
            Route("/v2/models/{model}/versions/{version}", self._model_metadata),
            Route("/v2/models/{model}/ready", self._model_ready),
            Route("/v2/models/{model}/versions/{version}/ready", self._model_ready),
            Route("/v2/models/{model}/config", self._model_config),
            Route("/v2/models/{model}/versions/{version}/config", self._model_config),
            Route("/metrics", self._prometheus),
        ]

    def _refusal(self, request: Request) -> JSONResponse | None:
        """The counted error answer if the request's model cannot be answered now, else None."""
        problem = self.service.unavailable(request.path_params["model"], request.path_params.get("version"))
        if problem is None:
            return None
        self.service.metrics.refused(problem)
        return JSONResponse({"error": problem.message}, status_code=problem.status, headers=problem.headers)

    async def _live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def _ready(self, request: Request) -> Response:
        error = self.state["error"]
        body = {"ready": self.state["runner"] is not None, **({"error": error} if error else {})}
        return JSONResponse(body, status_code=200 if self.state["runner"] else 503)

    async def _server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "ddzoo", "version": __version__, "extensions": ["binary_tensor_data"]})

    async def _model_metadata(self, request: Request) -> Response:
        return self._refusal(request) or JSONResponse(self.service.model.metadata())

    async def _model_config(self, request: Request) -> Response:
        return self._refusal(request) or JSONResponse(self.service.model.config())

    async def _model_ready(self, request: Request) -> Response:
        return self._refusal(request) or JSONResponse({"name": self.service.name, "ready": True})

    async def _prometheus(self, request: Request) -> Response:
        return Response(self.service.metrics.exposition(), media_type=MEDIA_TYPE)
