"""A dynamic batcher: requests wait up to ``max_delay_ms`` to share one backend call of up to ``max_batch``
images; the queue is bounded (a full queue is refused at once, so callers can answer 503).

Batches are gathered and computed in worker threads, not on the event loop: under overload the loop is busy
refusing requests, and a batch that needed several loop iterations to form, start and finish would wait that
long each time (measured: 2-3 % of capacity completed with 200 clients on a 16-image queue, bench/serve_load.py).
Only the answers go back through the loop, one callback per batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ddzoo.errors import BadRequestError, InvalidArgumentError, QueueFullError


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


def _settle(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


class DynamicBatcher:
    """Gathers requests into batches for ``predict``, run in worker threads, ``instances`` batches at a time.

    A batch is gathered once an instance is free; its first request waits at most ``max_delay_ms`` for others.
    A request whose caller gave up (a timeout, a cancellation) is dropped before it reaches the backend.

    Args:
        predict: maps float32 images (N, C, H, W) to logits (N, K).
        max_batch: images per backend call at most (1 turns batching off); larger requests are refused
            (:class:`~ddzoo.errors.BadRequestError`).
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
        self.queue: deque[_Pending] = deque()  # guarded by _changed, like waiting
        self.waiting = 0  # images queued, not yet in a batch
        self.in_flight = 0  # requests submitted and not yet answered (event loop only)
        self._changed = threading.Condition()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[threading.Thread] = []
        self._room_waiters: deque[asyncio.Future] = deque()  # requests waiting for room in a full queue
        self._let_in_count = 0  # requests let in by wait_for_room that have not queued their images yet

    def start(self) -> None:
        """Start the ``instances`` worker threads; answers go back to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._workers = [threading.Thread(target=self._work, name=f"ddzoo-batch-{i}", daemon=True)
                         for i in range(self.instances)]
        for worker in self._workers:
            worker.start()

    async def stop(self) -> None:
        """Finish every queued request, then stop the workers."""
        while self.in_flight:
            await asyncio.sleep(0.005)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        workers = self._workers
        await asyncio.get_running_loop().run_in_executor(None, lambda: [w.join(10) for w in workers])

    def full(self) -> bool:
        """Whether not even one more image fits in the queue, counting requests let in and not yet queued."""
        return self.waiting + self._let_in_count >= self.max_queue

    async def wait_for_room(self, timeout: float) -> bool:
        """Let a request in if the queue has room, waiting in line (first come, first served) up to ``timeout``
        seconds while it is full; False: refuse it. A request let in holds one image's room until it calls
        :meth:`leave` (right after :meth:`submit_nowait`, or when it fails before). Waiting costs the event loop
        nothing, where refusing at once invites clients to retry at once, and answering them starves the
        batches."""
        if not self._room_waiters and not self.full():
            self._let_in_count += 1
            return True
        if timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._room_waiters.append(waiter)
        give_up = loop.call_later(timeout, _settle, waiter, False)  # a timer, not a task per waiting request
        try:
            return await waiter
        except asyncio.CancelledError:  # the caller was cancelled, perhaps just after being let in
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.leave()
            raise
        finally:
            give_up.cancel()
            if not waiter.done():
                waiter.cancel()

    def leave(self) -> None:
        """Give back the room :meth:`wait_for_room` held for a request (its images are queued, or it failed)."""
        self._let_in_count -= 1
        self._let_in()

    def _let_in(self) -> None:
        """On the event loop, when room frees: let in as many waiting requests as there is room for."""
        while self._room_waiters and not self.full():
            waiter = self._room_waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                self._let_in_count += 1

    def submit_nowait(self, images: np.ndarray) -> asyncio.Future:
        """Queue ``images``; the returned future gets their logits (cancel it to give up)."""
        if len(images) > self.max_batch:  # the request's fault: both protocols answer it like a malformed one
            raise BadRequestError(f"a request holds {len(images)} images; this server takes at most "
                                  f"{self.max_batch} per request (--max-batch)")
        future = asyncio.get_running_loop().create_future()
        with self._changed:
            if self.waiting + len(images) > self.max_queue:
                raise QueueFullError(f"queue full ({self.waiting} images waiting, limit {self.max_queue})")
            self.queue.append(_Pending(images, future))
            self.waiting += len(images)
            self._changed.notify()
        future.add_done_callback(self._answered)
        self.in_flight += 1
        return future

    async def submit(self, images: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """The logits of ``images``; ``asyncio.TimeoutError`` after ``timeout`` seconds (then dropped)."""
        return await self.result(self.submit_nowait(images), timeout)

    @staticmethod
    async def result(future: asyncio.Future, timeout: float | None = None) -> np.ndarray:
        """The logits a :meth:`submit_nowait` future gets; ``asyncio.TimeoutError`` after ``timeout`` s."""
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
        """Move queued requests into ``batch`` while they fit (lock held); returns the new image count."""
        while self.queue and (not batch or size + len(self.queue[0].images) <= self.max_batch):
            pending = self.queue.popleft()
            self.waiting -= len(pending.images)
            if not pending.future.done():  # done here means timed out or cancelled: the caller gave up
                batch.append(pending)
                size += len(pending.images)
        return size

    def _gather(self) -> list[_Pending] | None:
        """The next batch (possibly empty: every request in it gave up), or None once stopping."""
        with self._changed:
            while not self.queue:
                if self._stopping:
                    return None
                self._changed.wait()
            batch: list[_Pending] = []
            deadline = self.queue[0].enqueued + self.max_delay
            size = self._take(batch, 0)
            while size < self.max_batch and not self.queue:  # an empty queue: wait for more until the deadline
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._stopping:
                    break
                self._changed.wait(remaining)
                size = self._take(batch, size)
        self._on_loop(self._let_in)
        return batch

    def _work(self) -> None:
        while (batch := self._gather()) is not None:
            if not batch:
                continue
            started = time.perf_counter()
            try:
                images = batch[0].images if len(batch) == 1 else np.concatenate([p.images for p in batch])
                logits = self.predict(images)
            except Exception as err:  # the backend failed: every request of the batch gets the error
                self._answer_soon(batch, err, started)
                continue
            self._answer_soon(batch, logits, started)

    def _answer_soon(self, batch: list[_Pending], outcome: np.ndarray | Exception, started: float) -> None:
        self._on_loop(self._answer, batch, outcome, started, time.perf_counter())

    def _on_loop(self, callback: Callable, *args) -> None:
        """Run ``callback(*args)`` on the event loop (from a worker thread)."""
        try:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop has closed: nobody is waiting for these answers
            pass

    def _answer(self, batch: list[_Pending], outcome: np.ndarray | Exception, started: float,
                finished: float) -> None:
        """On the event loop: each request of the batch gets its rows of the logits (or the backend's error)."""
        if isinstance(outcome, Exception):
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(outcome)
            return
        if self.observe:
            self.observe(len(outcome), [started - p.enqueued for p in batch], finished - started)
        offset = 0
        for pending in batch:
            n = len(pending.images)
            if not pending.future.done():
                pending.future.set_result(outcome[offset : offset + n])
            offset += n
