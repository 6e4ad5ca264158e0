"""A dynamic batcher: requests wait up to ``max_delay_ms`` to share one backend call of up to ``max_batch``
images; the queue is bounded (a full queue is refused at once, so callers can answer 503)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ddzoo.errors import InvalidArgumentError, QueueFullError


@dataclass
class _Pending:
    images: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


def check_batching(max_batch: int, max_delay_ms: float, max_queue: int, instances: int) -> None:
    """Refuse batching settings the batcher cannot work with (:class:`InvalidArgumentError`)."""
    if max_batch < 1 or max_delay_ms < 0 or max_queue < max_batch or instances < 1:
        raise InvalidArgumentError(f"need --max-batch >= 1, --max-delay-ms >= 0, --max-queue >= --max-batch and "
                                   f"--instances >= 1; got {max_batch}, {max_delay_ms}, {max_queue}, {instances}")


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


class DynamicBatcher:
    """Gathers requests into batches for ``predict``, run in worker threads, ``instances`` batches at a time.

    A batch is gathered once an instance is free; its first request waits at most ``max_delay_ms`` for others.
    A request whose caller gave up (a timeout, a cancellation) is dropped before it reaches the backend.

    Args:
        predict: maps float32 images (N, C, H, W) to logits (N, K).
        max_batch: images per backend call at most (1 turns batching off); larger requests are refused.
        max_delay_ms: how long the first request of a batch waits for others.
        max_queue: images waiting at most; more are refused with :class:`QueueFullError`.
        observe: optional callback ``(batch_size, queue_seconds_list, compute_seconds)`` for metrics.
        instances: batches computed concurrently (``predict`` must be thread-safe when above 1).
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 64,
                 max_delay_ms: float = 2.0, max_queue: int = 1024, observe: Callable | None = None,
                 instances: int = 1):
        check_batching(max_batch, max_delay_ms, max_queue, instances)
        self.predict, self.max_batch, self.max_delay = predict, max_batch, max_delay_ms / 1000
        self.instances = instances
        self.max_queue, self.observe = max_queue, observe
        self.queue: deque[_Pending] = deque()
        self.waiting = 0  # images queued, not yet in a batch
        self.in_flight = 0  # requests submitted and not yet answered
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop."""
        while self.in_flight:
            await asyncio.sleep(0.005)
        if self._worker:
            self._worker.cancel()

    def full(self) -> bool:
        """Whether not even one more image fits in the queue (a request can be refused before it is parsed)."""
        return self.waiting >= self.max_queue

    def submit_nowait(self, images: np.ndarray) -> asyncio.Future:
        """Queue ``images``; the returned future gets their logits (cancel it to give up)."""
        if len(images) > self.max_batch:
            raise InvalidArgumentError(f"a request holds {len(images)} images; this server takes at most "
                                       f"{self.max_batch} per request (--max-batch)")
        if self.waiting + len(images) > self.max_queue:
            raise QueueFullError(f"queue full ({self.waiting} images waiting, limit {self.max_queue})")
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(self._answered)
        self.queue.append(_Pending(images, future))
        self.waiting += len(images)
        self.in_flight += 1
        self._arrived.set()
        return future

    async def submit(self, images: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """The logits of ``images``; ``asyncio.TimeoutError`` after ``timeout`` seconds (then dropped)."""
        future = self.submit_nowait(images)
        if timeout is None:
            return await future
        expiry = asyncio.get_running_loop().call_later(timeout, _expire, future)  # no task per request
        try:
            return await future
        finally:
            expiry.cancel()

    def _answered(self, _: asyncio.Future) -> None:
        self.in_flight -= 1

    def _take(self, batch: list[_Pending], size: int) -> int:
        """Move queued requests into ``batch`` while they fit; returns the new image count."""
        while self.queue and (not batch or size + len(self.queue[0].images) <= self.max_batch):
            pending = self.queue.popleft()
            self.waiting -= len(pending.images)
            if not pending.future.done():  # done here means cancelled: the caller gave up
                batch.append(pending)
                size += len(pending.images)
        return size

    async def _gather(self) -> list[_Pending]:
        while not self.queue:
            self._arrived.clear()
            await self._arrived.wait()
        batch: list[_Pending] = []
        deadline = self.queue[0].enqueued + self.max_delay
        size = self._take(batch, 0)
        while size < self.max_batch and not self.queue:  # an empty queue: wait for more until the deadline
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
            size = self._take(batch, size)
        return batch

    async def _run(self) -> None:
        free = asyncio.Semaphore(self.instances)
        executor = ThreadPoolExecutor(self.instances, thread_name_prefix="ddzoo-batch")
        running: set[asyncio.Task] = set()
        try:
            while True:
                await free.acquire()
                batch = await self._gather()
                if not batch:
                    free.release()
                    continue
                task = asyncio.get_running_loop().create_task(self._compute(batch, executor))
                running.add(task)
                task.add_done_callback(lambda done: (running.discard(done), free.release()))
        finally:
            executor.shutdown(wait=False)

    async def _compute(self, batch: list[_Pending], executor: ThreadPoolExecutor) -> None:
        started = time.perf_counter()
        try:
            images = batch[0].images if len(batch) == 1 else np.concatenate([p.images for p in batch])
            logits = await asyncio.get_running_loop().run_in_executor(executor, self.predict, images)
        except Exception as err:  # the backend failed: every request of the batch gets the error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(err)
            return
        finished = time.perf_counter()
        if self.observe:
            self.observe(len(images), [started - p.enqueued for p in batch], finished - started)
        offset = 0
        for pending in batch:
            n = len(pending.images)
            if not pending.future.done():
                pending.future.set_result(logits[offset : offset + n])
            offset += n
