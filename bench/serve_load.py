"""The service under heavy and hostile load (issue 17), each figure beside an anchor measured in the same run.

1. **Big bodies.** Three 50 MB JSON infer bodies at once, sent with a Content-Length (refused before a byte is
   read) and chunked (no length: refused once the body passes the limit while streaming), while a prober asks
   ``/v2/health/ready`` every 20 ms. Reported: the answers, the server's resident memory (VmRSS before, VmHWM
   peak after), and the health latency during the bodies against the same prober on the idle server.
2. **Overload with a small queue.** ``--max-batch 8 --max-queue 16`` and 200 wrk connections for ``--seconds``,
   with ``--queue-wait-ms 0`` (a full queue refuses at once) and the default 100: images/s completed against the
   same server's capacity (16 connections, no shedding), how many requests were shed (503), what a well-behaved
   client sees meanwhile (one request every 50 ms: its share of answers and their latency) and the health
   prober's latency.
3. **gRPC beside HTTP.** ``tritonclient.grpc.aio`` and ``tritonclient.http.aio`` (both asyncio, one client
   process) at concurrency 1, 16 and 64 against one server (max batch 64), each 1-s slice right after 1 s of
   direct onnxruntime batch 1 (ratio per pair, median), as bench/serve.py does for HTTP.

Needs ``wrk`` (Debian package) for part 2.

    python bench/serve_load.py PACKAGE [--seconds 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from serve import WRK_REQUEST, direct, free_port, launch, paired, request_bytes, run_wrk

from ddzoo.data import load_split
from ddzoo.package import read_config
from ddzoo.runtime import open_runner

BIG_BODY_MB = 50

WRK_STATUS_SCRIPT = WRK_REQUEST + """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; shed = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 503 then shed = shed + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local ok, shed, other = 0, 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("ok"); shed = shed + t:get("shed"); other = other + t:get("other") end
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "ok": %d, "shed": %d, "other": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration, ok, shed, other,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def memory_kib(pid: int) -> dict:
    """VmRSS (now) and VmHWM (peak so far) of ``pid`` in KiB (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


class Prober(threading.Thread):
    """GETs (or POSTs ``body`` to) ``path`` one request at a time every ``every`` s; latencies and statuses."""

    def __init__(self, port: int, path: str, every: float, body: tuple[bytes, str] | None = None):
        super().__init__(daemon=True)
        self.port, self.path, self.every, self.body = port, path, every, body
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if self.body is None:
                    conn.request("GET", self.path)
                else:
                    conn.request("POST", self.path, body=self.body[0], headers={
                        "Inference-Header-Content-Length": self.body[1], "Content-Type": "application/octet-stream"})
                response = conn.getresponse()
                response.read()
                status = response.status
                conn.close()
            except OSError:
                status = 0
            self.latencies.append(time.perf_counter() - t0)
            self.statuses.append(status)
            self.halt.wait(self.every)

    def stop(self) -> dict:
        self.halt.set()
        self.join()
        lat = np.array(self.latencies or [0.0]) * 1000
        return {"requests": len(self.latencies), "ok": sum(s == 200 for s in self.statuses),
                "statuses": sorted(set(self.statuses)), "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


def probe_idle(port: int, seconds: float = 2.0) -> dict:
    prober = Prober(port, "/v2/health/ready", 0.02)
    prober.start()
    time.sleep(seconds)
    return prober.stop()


def big_json_body(megabytes: int) -> bytes:
    """A well-formed infer request of about ``megabytes`` MB: one input whose data are many pixel values."""
    count = megabytes * 1_000_000 // 6
    data = b",".join([b"0.123"] * count)
    return b'{"inputs": [{"name": "input", "shape": [%d], "datatype": "FP32", "data": [' % count + data + b"]}]}"


def send_big(port: int, url: str, body: bytes, chunked: bool) -> dict:
    """POST ``body`` (chunked: as 1 MB chunks with no Content-Length); the answer, or how the server ended it."""
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        if chunked:
            chunks = (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20))
            conn.request("POST", url, body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
        else:
            conn.request("POST", url, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = {"status": response.status, "reason": json.loads(response.read() or b"{}").get("error", "")}
    except OSError as error:  # the server may close the connection once it has answered 413
        answer = {"status": 0, "reason": f"connection ended by the server ({type(error).__name__})"}
    return {**answer, "seconds": time.perf_counter() - t0}


def big_bodies(package: Path) -> dict:
    port = free_port()
    url = "/v2/models/bench/infer"
    body = big_json_body(BIG_BODY_MB)
    report: dict = {"body_mb": len(body) / 1e6, "concurrent": 3}
    with launch(["-m", "ddzoo.cli", "serve", str(package), "--name", "bench", "--port", str(port),
                 "--grpc-port", "0", "--allow-unverified"], port) as server:
        report["idle_health"] = probe_idle(port)
        report["memory_before_kib"] = memory_kib(server.pid)
        for chunked in (False, True):
            prober = Prober(port, "/v2/health/ready", 0.02)
            prober.start()
            with ThreadPoolExecutor(3) as pool:
                answers = list(pool.map(lambda _, c=chunked: send_big(port, url, body, c), range(3)))
            time.sleep(0.2)
            report["chunked" if chunked else "with_content_length"] = {
                "answers": answers, "health_during": prober.stop(), "memory_after_kib": memory_kib(server.pid)}
    return report


def wrk_statuses(url: str, body: tuple[bytes, str], connections: int, seconds: float) -> dict:
    row = run_wrk(WRK_STATUS_SCRIPT, url, body, connections, seconds, "--timeout", "30s")
    duration = row["duration_us"] / 1e6
    return {"connections": connections, "seconds": duration, "completed_images_per_s": row["ok"] / duration,
            "ok": row["ok"], "shed_503": row["shed"], "other_status": row["other"],
            "socket_errors": row["socket_errors"], "p50_ms_all": row["p50_us"] / 1000,
            "p99_ms_all": row["p99_us"] / 1000}


def overload(package: Path, images: np.ndarray, seconds: float, queue_wait_ms: float) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
    body = request_bytes(images[0])
    report: dict = {"max_batch": 8, "max_queue": 16, "queue_wait_ms": queue_wait_ms}
    with launch(["-m", "ddzoo.cli", "serve", str(package), "--name", "bench", "--port", str(port), "--grpc-port",
                 "0", "--max-batch", "8", "--max-queue", "16", "--queue-wait-ms", str(queue_wait_ms),
                 "--allow-unverified"], port):
        report["capacity"] = wrk_statuses(url, body, 16, seconds / 2)
        health = Prober(port, "/v2/health/ready", 0.1)
        client = Prober(port, "/v2/models/bench/infer", 0.05, body)
        health.start()
        client.start()
        report["overload"] = wrk_statuses(url, body, 200, seconds)
        report["health_during"] = health.stop()
        report["polite_client_during"] = client.stop()
    report["completed_over_capacity"] = (report["overload"]["completed_images_per_s"]
                                         / report["capacity"]["completed_images_per_s"])
    return report


def triton_aio_load(protocol: str, port: int, image: np.ndarray, concurrency: int, seconds: float) -> dict:
    """``concurrency`` coroutines each keeping one tritonclient ``infer`` in flight for ``seconds``."""

    async def run() -> dict:
        if protocol == "grpc":
            import tritonclient.grpc.aio as client_module
        else:
            import tritonclient.http.aio as client_module
        client = client_module.InferenceServerClient(f"127.0.0.1:{port}")
        tensor = client_module.InferInput("input", [1, *image.shape], "FP32")
        tensor.set_data_from_numpy(image[None].astype(np.float32))
        latencies: list[float] = []
        errors = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    await client.infer("bench", [tensor])
                    latencies.append(time.perf_counter() - t0)
                except Exception:  # noqa: BLE001 - counted: any failed call is an error row
                    errors += 1
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        await client.close()
        lat = np.array(latencies or [0.0]) * 1000
        return {"images_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)), "requests": len(latencies), "errors": errors}

    return asyncio.run(run())


def grpc_beside_http(package: Path, runner, images: np.ndarray, slices: int) -> dict:
    port, grpc_port = free_port(), free_port()
    report: dict = {}
    with launch(["-m", "ddzoo.cli", "serve", str(package), "--name", "bench", "--port", str(port), "--grpc-port",
                 str(grpc_port), "--max-batch", "64", "--max-queue", "4096", "--allow-unverified"], port) as server:
        for protocol, target in (("http", port), ("grpc", grpc_port)):
            for concurrency in (1, 16, 64):
                load = lambda s, p=protocol, t=target, c=concurrency: triton_aio_load(p, t, images[0], c, s)  # noqa: E731
                report[f"{protocol}, concurrency {concurrency}"] = paired(runner, images, load, slices, server.pid)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    config = read_config(args.package)
    images = load_split(config["dataset"], "test").tensors(limit=256)[0].numpy()
    report: dict = {"package": str(args.package), "model": config["arch"], "dataset": config["dataset"],
                    "cpus": os.cpu_count()}
    report["big_bodies"] = big_bodies(args.package)
    report["overload"] = [overload(args.package, images, args.seconds, wait) for wait in (0.0, 100.0)]
    with open_runner(args.package / "model.onnx", providers=["CPUExecutionProvider"]) as runner:
        report["direct_batch1"] = direct(runner, images, 1, 2.0)
        report["grpc_beside_http"] = grpc_beside_http(args.package, runner, images, max(1, round(args.seconds / 4)))
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
