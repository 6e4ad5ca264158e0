"""A dynamic batcher: requests wait up to ``max_delay_ms`` to share one backend call of up to ``max_batch``
images; the queue is bounded (a full queue is refused at once, so callers can answer 503)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ddzoo.errors import InvalidArgumentError, ZooError


class QueueFullError(ZooError, RuntimeError):
    """The batcher's queue is full; retry later."""


@dataclass
class _Pending:
    images: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Gathers requests into batches for ``predict`` (run in a worker thread, one batch at a time).

    Args:
        predict: maps float32 images (N, C, H, W) to logits (N, K).
        max_batch: images per backend call at most (1 turns batching off).
        max_delay_ms: how long the first request of a batch waits for others.
        max_queue: images waiting at most; more are refused with :class:`QueueFullError`.
        observe: optional callback ``(batch_size, queue_seconds_list, compute_seconds)`` for metrics.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 64,
                 max_delay_ms: float = 2.0, max_queue: int = 1024, observe: Callable | None = None):
        if max_batch < 1 or max_delay_ms < 0 or max_queue < max_batch:
            raise InvalidArgumentError(f"need max_batch >= 1, max_delay_ms >= 0, max_queue >= max_batch; got "
                                       f"{max_batch}, {max_delay_ms}, {max_queue}")
        self.predict, self.max_batch, self.max_delay = predict, max_batch, max_delay_ms / 1000
        self.max_queue, self.observe = max_queue, observe
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.waiting = 0  # images queued, not yet in a batch
        self.in_flight = 0  # requests submitted and not yet answered
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop."""
        while self.in_flight:
            await asyncio.sleep(0.005)
        if self._worker:
            self._worker.cancel()

    async def submit(self, images: np.ndarray) -> np.ndarray:
        if self.waiting + len(images) > self.max_queue:
            raise QueueFullError(f"queue full ({self.waiting} images waiting, limit {self.max_queue})")
        pending = _Pending(images, asyncio.get_running_loop().create_future())
        self.waiting += len(images)
        self.in_flight += 1
        try:
            self.queue.put_nowait(pending)
            return await pending.future
        finally:
            self.in_flight -= 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry or await self.queue.get()
            carry = None
            batch, size = [first], len(first.images)
            deadline = first.enqueued + self.max_delay
            while size < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:  # poll until the deadline (cancelling a pending get could lose an item)
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    await asyncio.sleep(min(remaining, 2e-4))
                    continue
                if size + len(item.images) > self.max_batch:
                    carry = item
                    break
                batch.append(item)
                size += len(item.images)
            self.waiting -= size
            started = time.perf_counter()
            try:
                images = batch[0].images if len(batch) == 1 else np.concatenate([p.images for p in batch])
                logits = await loop.run_in_executor(None, self.predict, images)
            except Exception as err:  # the backend failed: every request of the batch gets the error
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(err)
                continue
            finished = time.perf_counter()
            if self.observe:
                self.observe(size, [started - p.enqueued for p in batch], finished - started)
            offset = 0
            for pending in batch:
                n = len(pending.images)
                if not pending.future.done():
                    pending.future.set_result(logits[offset : offset + n])
                offset += n
