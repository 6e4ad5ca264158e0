"""Fixtures and helpers of the service tests: the app on a real uvicorn server in a thread, a loader of the
verified test package that can be slowed down or made to fail, and readers of /metrics."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
import uvicorn

from ddzoo.serve.app import ServeSettings, create_app, open_artifact

NAME = "lenet-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, seconds: float = 60) -> None:
    """Poll GET ``url`` until it answers 200."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {seconds} s")


class Server:
    """The app on a real uvicorn server in a thread; entering waits until ``wait_path`` answers 200."""

    def __init__(self, load, settings: ServeSettings | None = None, wait_path: str = "/v2/health/ready"):
        self.wait_path = wait_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(load, NAME, settings or ServeSettings())
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        _wait_for(self.url + self.wait_path)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _loader(package, delay_s: float = 0.0, fail: bool = False):
    def load():
        runner, metadata = open_artifact(package, "model.onnx")
        predict = runner._predict

        def slow_or_failing(x):
            time.sleep(delay_s)
            if fail:
                raise RuntimeError("device lost")
            return predict(x)

        runner._predict = slow_or_failing
        return runner, {**metadata, "classes": 10}
    return load


@pytest.fixture(scope="module")
def server(verified_package):
    with Server(_loader(verified_package[0]), ServeSettings(max_batch=32, max_delay_ms=5)) as running:
        yield running


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


def _count(metrics: str, code: int) -> float:
    """``ddzoo_requests_total`` of one status code (0 if none was counted yet)."""
    counted = f'ddzoo_requests_total{{code="{code}",model="lenet-test"}}'
    return float(metrics.split(counted)[1].split()[0]) if counted in metrics else 0.0


def _failures(metrics: str, reason: str) -> float:
    return _metric("\n".join(line for line in metrics.splitlines() if f'reason="{reason}"' in line),
                   "ddzoo_request_failures_total")


GOOD = {"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [0.5] * 784}
