"""The dynamic batcher on its own: batch formation, limits, errors, timeouts and draining."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from ddzoo.errors import BadRequestError
from ddzoo.serve.batcher import DynamicBatcher, QueueFullError


class Backend:
    """Logits = the first pixel of each image, twice; records every batch; can be held or made to fail."""

    def __init__(self):
        self.batches: list[list[float]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail = False
        self.entered = 0  # calls that have started, held or not

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.entered += 1
        self.release.wait(10)
        self.batches.append(images[:, 0, 0, 0].tolist())
        if self.fail:
            raise RuntimeError("backend down")
        first = images[:, 0, 0, 0:1]
        return np.concatenate([first, 2 * first], axis=1)


def images(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def run(coroutine_fn, **settings):
    backend = Backend()

    async def main():
        batcher = DynamicBatcher(backend, **settings)
        batcher.start()
        try:
            return await coroutine_fn(batcher, backend)
        finally:
            await batcher.stop()

    return asyncio.run(main()), backend


def test_requests_share_a_batch_and_get_their_own_rows():
    async def scenario(batcher, backend):
        return await asyncio.gather(*(batcher.submit(images(float(i), i + 0.5)) for i in range(5)))

    answers, backend = run(scenario, max_batch=64, max_delay_ms=50)
    assert backend.batches == [[0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5]]
    for i, logits in enumerate(answers):
        np.testing.assert_array_equal(logits, [[i, 2 * i], [i + 0.5, 2 * i + 1]])


def test_batches_never_exceed_max_batch_and_keep_order():
    async def scenario(batcher, backend):
        return await asyncio.gather(*(batcher.submit(images(float(i))) for i in range(10)))

    answers, backend = run(scenario, max_batch=4, max_delay_ms=50)
    assert [len(b) for b in backend.batches] == [4, 4, 2]
    assert sum(backend.batches, []) == list(range(10))
    assert [float(a[0, 0]) for a in answers] == list(range(10))


def test_a_request_that_does_not_fit_waits_for_the_next_batch():
    async def scenario(batcher, backend):
        return await asyncio.gather(batcher.submit(images(0, 1, 2)), batcher.submit(images(3, 4)))

    _, backend = run(scenario, max_batch=4, max_delay_ms=50)
    assert backend.batches == [[0, 1, 2], [3, 4]]


def test_oversized_request_and_full_queue_are_refused():
    async def scenario(batcher, backend):
        with pytest.raises(BadRequestError, match="at most 4 per request"):
            batcher.submit_nowait(images(*range(5)))
        backend.release.clear()  # hold the backend so the queue fills
        first = batcher.submit_nowait(images(0))
        await asyncio.sleep(0.05)  # the first batch is now in the backend
        queued = [batcher.submit_nowait(images(1, 2, 3, 4)), batcher.submit_nowait(images(5, 6, 7, 8))]
        with pytest.raises(QueueFullError, match="queue full"):
            batcher.submit_nowait(images(9))
        backend.release.set()
        return await asyncio.gather(first, *queued)

    answers, _ = run(scenario, max_batch=4, max_delay_ms=1, max_queue=8)
    assert [a.shape[0] for a in answers] == [1, 4, 4]


def test_backend_failure_reaches_every_request_of_the_batch_and_serving_goes_on():
    async def scenario(batcher, backend):
        backend.fail = True
        failed = await asyncio.gather(batcher.submit(images(0)), batcher.submit(images(1)), return_exceptions=True)
        backend.fail = False
        return failed, await batcher.submit(images(2))

    (failed, after), backend = run(scenario, max_batch=8, max_delay_ms=20)
    assert all(isinstance(f, RuntimeError) and "backend down" in str(f) for f in failed)
    np.testing.assert_array_equal(after, [[2, 4]])


def test_a_timed_out_request_never_reaches_the_backend():
    async def scenario(batcher, backend):
        backend.release.clear()
        busy = batcher.submit_nowait(images(0))
        await asyncio.sleep(0.05)
        with pytest.raises(asyncio.TimeoutError):
            await batcher.submit(images(1), timeout=0.01)
        backend.release.set()
        await busy
        return await batcher.submit(images(2))

    _, backend = run(scenario, max_batch=8, max_delay_ms=1)
    assert backend.batches == [[0], [2]]


@pytest.mark.parametrize("instances", [1, 2])
def test_instances_bound_the_batches_computed_at_once(instances):
    async def scenario(batcher, backend):
        backend.release.clear()
        first = batcher.submit_nowait(images(0))
        await asyncio.sleep(0.05)  # the first batch is in the backend, held there
        second = batcher.submit_nowait(images(1))
        await asyncio.sleep(0.05)
        entered = backend.entered
        backend.release.set()
        return entered, await first, await second

    (entered, first, second), _ = run(scenario, max_batch=8, max_delay_ms=1, instances=instances)
    assert entered == instances
    np.testing.assert_array_equal(first, [[0, 0]])
    np.testing.assert_array_equal(second, [[1, 2]])


def test_stop_finishes_queued_requests():
    async def main():
        backend = Backend()
        batcher = DynamicBatcher(backend, max_batch=2, max_delay_ms=1)
        batcher.start()
        futures = [batcher.submit_nowait(images(float(i))) for i in range(5)]
        await batcher.stop()
        assert batcher.in_flight == 0
        return [f.result()[0, 0] for f in futures]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_a_full_queue_lets_waiting_requests_in_first_come_first_served_as_room_frees():
    async def scenario(batcher, backend):
        backend.release.clear()  # hold the backend: one batch in it, the queue fills behind
        first = batcher.submit_nowait(images(0))
        await asyncio.sleep(0.05)
        queued = batcher.submit_nowait(images(1))
        assert batcher.full()
        order: list[int] = []

        async def wait_then_submit(value: int):
            assert await batcher.wait_for_room(5.0)
            order.append(value)
            try:
                future = batcher.submit_nowait(images(float(value)))
            finally:
                batcher.leave()
            return await batcher.result(future)

        waiting = [asyncio.ensure_future(wait_then_submit(v)) for v in (2, 3)]
        await asyncio.sleep(0.05)
        refused_at_once = await batcher.wait_for_room(0)  # others are in line: no jumping it
        assert order == []  # nobody was let in while the queue stayed full
        backend.release.set()
        answers = await asyncio.gather(first, queued, *waiting)
        return refused_at_once, order, answers

    (refused_at_once, order, answers), backend = run(scenario, max_batch=1, max_delay_ms=1, max_queue=1)
    assert refused_at_once is False
    assert order == [2, 3]
    assert [float(a[0, 0]) for a in answers] == [0, 1, 2, 3]
    assert backend.batches == [[0], [1], [2], [3]]


def test_a_request_waiting_for_room_is_refused_after_its_wait():
    async def scenario(batcher, backend):
        backend.release.clear()
        first = batcher.submit_nowait(images(0))
        await asyncio.sleep(0.05)
        queued = batcher.submit_nowait(images(1))
        start = asyncio.get_running_loop().time()
        let_in = await batcher.wait_for_room(0.05)
        waited = asyncio.get_running_loop().time() - start
        backend.release.set()
        await asyncio.gather(first, queued)
        return let_in, waited, await batcher.wait_for_room(0)

    (let_in, waited, later), _ = run(scenario, max_batch=1, max_delay_ms=1, max_queue=1)
    assert let_in is False and waited >= 0.04
    assert later is True  # room again once the queue drained
