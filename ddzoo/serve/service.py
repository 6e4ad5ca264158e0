"""The served model behind both protocols: its settings, loading, availability, batcher and metrics.

Lifecycle: :meth:`ModelService.start` loads the runner off the event loop (health answers meanwhile), starts
the :class:`~ddzoo.serve.batcher.DynamicBatcher` and gRPC; :meth:`ModelService.stop` lets in-flight RPCs finish,
then drains the batcher. HTTP (:mod:`.http`) and gRPC (:mod:`.grpc`) ask :meth:`ModelService.unavailable`
before answering and count every answer in the same :class:`~ddzoo.serve.metrics.Metrics`.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from ddzoo.errors import InvalidArgumentError, echo
from ddzoo.serve.batcher import DynamicBatcher, QueueFullError, check_batching
from ddzoo.serve.metadata import VERSION, ServedModel
from ddzoo.serve.metrics import Metrics
from ddzoo.serve.status import Refusal, log


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


class ModelService:
    """Model ``name`` as loaded by ``load() -> (runner, parameters)`` (``parameters`` carries ``classes``).

    If ``load`` fails, :meth:`unavailable` answers 503 with the failure and ``on_load_failure(message)`` is
    called (``zoo serve`` stops the server and prints it as its one error line); without that callback the
    failure is logged at once instead. ``state`` holds the runner, batcher, served model, load error, body
    limit and the bound gRPC port.
    """

    def __init__(self, load, name: str, settings: ServeSettings, on_load_failure=None):
        self.load, self.name, self.settings, self.on_load_failure = load, name, settings, on_load_failure
        self.metrics = Metrics(name)
        self.state: dict = {"runner": None, "model": None, "batcher": None, "error": None, "body_limit": None}
        self._runner = None

    @property
    def model(self) -> ServedModel:
        return self.state["model"]

    async def start(self) -> None:
        """Load the runner (off the event loop), start the batcher and, if asked, gRPC."""
        try:
            runner, parameters = await asyncio.get_running_loop().run_in_executor(None, self.load)
        except Exception as err:  # noqa: BLE001 - any loader failure is reported the same way
            self._failed(f"cannot load the model: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:300]}")
            return
        settings = self.settings
        batcher = DynamicBatcher(lambda x: runner.predict(x).numpy(), max_batch=settings.max_batch,
                                 max_delay_ms=settings.max_delay_ms, max_queue=settings.max_queue,
                                 observe=self.metrics.observe_batch, instances=settings.instances)
        batcher.start()
        self._runner = runner  # closed on stop, even if gRPC failed to start
        self.state.update(batcher=batcher, body_limit=settings.body_limit(runner.input_spec.shape),
                          model=ServedModel.of(self.name, runner, parameters, settings))
        if settings.grpc_port is not None:
            await self._start_grpc()
        if self.state.get("error") is None:
            self.state["runner"] = runner  # ready only now: with its gRPC port, when it has one

    async def _start_grpc(self) -> None:
        from ddzoo.serve.grpc import start_grpc_server

        try:
            self.state["grpc"], self.state["grpc_port"] = await start_grpc_server(
                self.settings.grpc_host, self.settings.grpc_port, self, max_message_bytes=self.state["body_limit"])
        except Exception as err:  # noqa: BLE001 - a port in use, a missing extra: reported like a load failure
            self._failed(f"cannot start gRPC: {(str(err).splitlines() or [''])[0][:300]}")

    def _failed(self, message: str) -> None:
        """One report of a load failure: the owner's (``zoo serve`` prints it as its error), else the log's."""
        self.state["error"] = message
        if self.on_load_failure is not None:
            self.on_load_failure(message)
        else:
            log(message)

    async def stop(self) -> None:
        """In-flight RPCs finish, then the batcher drains and the runner closes."""
        self.state["runner"] = None
        if self.state.get("grpc") is not None:
            await self.state["grpc"].stop(self.settings.timeout_s)
        if self.state["batcher"] is not None:
            await self.state["batcher"].stop()
            self._runner.close()

    def unavailable(self, model: str, version: str | None = None) -> Refusal | None:
        """Why ``model`` cannot be answered now (both protocols); None if it can."""
        if model != self.name:
            return Refusal(404, f"unknown model {echo(model)}; this server serves {self.name!r}", "unknown model")
        if version not in (None, VERSION):
            return Refusal(404, f"unknown version {echo(version, 20)} of {self.name!r}; it is served as version "
                                f"{VERSION}", "unknown model")
        if self.state["error"] is not None:
            return Refusal(503, "the model failed to load; see the server log", "load failed")
        if self.state["runner"] is None:
            return Refusal(503, "the model is loading; retry shortly", "loading", {"Retry-After": "1"})
        return None

    async def submit_when_room(self, images):
        """Logits of ``images`` through the batcher, waiting up to ``queue_wait_ms`` for room in a full queue."""
        batcher = self.state["batcher"]
        if not await batcher.wait_for_room(self.settings.queue_wait_ms / 1000):
            raise QueueFullError(f"queue full (limit {self.settings.max_queue} images)")
        try:
            future = batcher.submit_nowait(images)
        finally:
            batcher.leave()
        return await batcher.result(future, self.settings.timeout_s)
