"""Serving throughput: onnxruntime ``session.run`` called directly vs ``zoo serve`` (KServe v2 over HTTP) with
batch-1 clients at concurrency 1, 16 and 64, with dynamic batching (max batch 64) and without (max batch 1).

The server runs as its own process (``zoo serve``); clients are threads with keep-alive connections sending
the binary-tensor request tritonclient sends. Targets: the service reaches >= 90 % of direct throughput at its
best setting; dynamic batching gives >= 3x the throughput of no batching at concurrency 16.

    python bench/serve.py PACKAGE [--seconds 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ddzoo.data import load_split
from ddzoo.runtime import open_runner
from ddzoo.train.checkpoint import read_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_bytes(image: np.ndarray) -> tuple[bytes, str]:
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, *image.shape], "datatype": "FP32",
                                     "parameters": {"binary_data_size": image.nbytes}}],
                         "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    return header + image.astype("<f4").tobytes(), str(len(header))


def direct(session_runner, images: np.ndarray, batch: int, seconds: float) -> dict:
    session, name = session_runner.session, session_runner.input_spec.name
    batches = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)]
    done, latencies, start = 0, [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        for xb in batches:
            t0 = time.perf_counter()
            session.run(None, {name: xb})
            latencies.append(time.perf_counter() - t0)
            done += len(xb)
    return summary(done, time.perf_counter() - start, latencies)


def summary(images: int, seconds: float, latencies: list[float]) -> dict:
    lat = np.array(latencies) * 1000
    return {"images_per_s": images / seconds, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "requests": len(latencies)}


def load(port: int, model: str, bodies: list[tuple[bytes, str]], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, i = [], offset
        while time.perf_counter() < stop:
            body, length = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            headers = {"Inference-Header-Content-Length": length, "Content-Type": "application/octet-stream"}
            conn.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors[0] += 1
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k * 7,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = summary(len(latencies), time.perf_counter() - start, latencies)
    result["errors"] = errors[0]
    return result


def start_server(package: Path, port: int, max_batch: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "ddzoo.cli", "serve", str(package), "--name", "bench",
                                "--port", str(port), "--max-batch", str(max_batch), "--max-delay-ms", "2",
                                "--max-queue", "4096"], stdout=subprocess.DEVNULL, env=os.environ.copy())
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    config = read_config(args.package)
    x, _ = load_split(config["dataset"], "test").tensors(limit=1024)
    images = x.numpy()
    bodies = [request_bytes(img) for img in images[:256]]
    report: dict = {"package": str(args.package), "cpus": os.cpu_count(), "direct": {}, "service": {}}
    with open_runner(args.package / "model.onnx", providers=["CPUExecutionProvider"]) as runner:
        for batch in (1, 16, 64):
            report["direct"][f"batch {batch}"] = direct(runner, images, batch, args.seconds)
    for max_batch in (1, 64):
        port = free_port()
        server = start_server(args.package, port, max_batch)
        try:
            for concurrency in (1, 16, 64):
                key = f"max_batch {max_batch}, concurrency {concurrency}"
                report["service"][key] = load(port, "bench", bodies, concurrency, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"{'setting':42s} {'img/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for group in ("direct", "service"):
        for key, row in report[group].items():
            print(f"{group + ' ' + key:42s} {row['images_per_s']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}")
    best_service = max(r["images_per_s"] for r in report["service"].values())
    best_direct = max(r["images_per_s"] for r in report["direct"].values())
    batching = (report["service"]["max_batch 64, concurrency 16"]["images_per_s"]
                / report["service"]["max_batch 1, concurrency 16"]["images_per_s"])
    report["ratios"] = {"best_service_over_best_direct": best_service / best_direct,
                        "best_service_over_direct_batch1": best_service / report["direct"]["batch 1"]["images_per_s"],
                        "batching_gain_at_concurrency_16": batching}
    print(json.dumps(report["ratios"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
