"""Serving throughput: onnxruntime ``session.run`` called directly vs ``zoo serve`` (KServe v2 over HTTP) with
batch-1 clients at concurrency 1, 16 and 64, with dynamic batching (max batch 64) and without (max batch 1),
each with one and with two batches computed at once (``--instances``).

The server runs as its own process (``zoo serve``, served with ``--allow-unverified``: only speed is measured
here). The load comes from ``wrk`` (Debian package ``wrk``), a compiled load generator whose connections each
keep one binary-tensor request in flight, as a tritonclient ``infer`` call does; without wrk, Python threads
with keep-alive connections send the same request (slower: they share the GIL and the two cores with the
server). Each service row is ``--seconds`` 1-s slices of load, each slice right after 1 s of direct batch 1
(this machine's speed drifts by tens of percent within minutes, so every row is compared with its own
neighbouring direct runs). Targets: the service reaches >= 90 % of direct throughput on the same batch-1
requests at its best setting; dynamic batching gives >= 3x the throughput of no batching at concurrency 16
(the best setting of each).

Two anchors explain the first target: the HTTP floor (the same requests answered by a bare uvicorn app with
no model, concurrency 64: no service on this stack can beat it) and, per row, the server's main-thread CPU
per request (from /proc, Linux only).

    python bench/serve.py PACKAGE [PACKAGE ...] [--seconds 5] [--client wrk|python] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ddzoo.data import load_split
from ddzoo.package import read_config
from ddzoo.runtime import open_runner

WRK_REQUEST = """
local f = assert(io.open(os.getenv("ZOO_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = os.getenv("ZOO_BENCH_HEADER_LENGTH")
"""  # wrk's Lua: every request is the binary-tensor body in the file $ZOO_BENCH_BODY

WRK_SCRIPT = WRK_REQUEST + """done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


SERVICE_SETTINGS = [(1, 1), (1, 2), (64, 1), (64, 2)]  # (--max-batch, --instances); max batch 1: no batching


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_bytes(image: np.ndarray) -> tuple[bytes, str]:
    """tritonclient's binary-tensor request for one image: JSON header, then the raw float32 bytes."""
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, *image.shape], "datatype": "FP32",
                                     "parameters": {"binary_data_size": image.nbytes}}],
                         "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    return header + image.astype("<f4").tobytes(), str(len(header))


def summary(images: int, seconds: float, latencies: list[float]) -> dict:
    lat = np.array(latencies) * 1000
    return {"images_per_s": images / seconds, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "requests": len(latencies)}


def direct(runner, images: np.ndarray, batch: int, seconds: float) -> dict:
    session, name = runner.session, runner.input_spec.name
    batches = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)]
    done, latencies, start = 0, [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        for xb in batches:
            t0 = time.perf_counter()
            session.run(None, {name: xb})
            latencies.append(time.perf_counter() - t0)
            done += len(xb)
    return summary(done, time.perf_counter() - start, latencies)


def run_wrk(script: str, url: str, body: tuple[bytes, str], connections: int, seconds: float,
            *options: str) -> dict:
    """The JSON line that ``script``'s ``done`` writes after wrk (one thread) ran ``seconds`` on ``url``."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body").write_bytes(body[0])
        (Path(tmp) / "infer.lua").write_text(script)
        env = {**os.environ, "ZOO_BENCH_BODY": str(Path(tmp) / "body"), "ZOO_BENCH_HEADER_LENGTH": body[1]}
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                              *options, "-s", str(Path(tmp) / "infer.lua"), url], env=env, capture_output=True,
                             text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def load_wrk(url: str, body: tuple[bytes, str], concurrency: int, seconds: float) -> dict:
    row = run_wrk(WRK_SCRIPT, url, body, concurrency, seconds)
    return {"images_per_s": row["requests"] / (row["duration_us"] / 1e6), "p50_ms": row["p50_us"] / 1000,
            "p99_ms": row["p99_us"] / 1000, "requests": row["requests"],
            "errors": row["non_2xx"] + row["socket_errors"]}


def load_python(url: str, bodies: list[tuple[bytes, str]], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    parts = urlsplit(url)

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, i = [], offset
        while time.perf_counter() < stop:
            body, length = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            headers = {"Inference-Header-Content-Length": length, "Content-Type": "application/octet-stream"}
            conn.request("POST", parts.path, body=body, headers=headers)
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


async def fixed_answer_app(scope, receive, send) -> None:
    """The HTTP floor: plain ASGI that reads the request and answers a fixed small JSON body, no model."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


@contextlib.contextmanager
def launch(args: list[str], port: int):
    """``python ARGS`` as a server process, yielded once it answers on ``port``; terminated on exit."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, env=os.environ.copy())
    try:
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/v2/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def start_server(package: Path, port: int, max_batch: int, instances: int):
    return launch(["-m", "ddzoo.cli", "serve", str(package), "--name", "bench", "--port", str(port), "--max-batch",
                   str(max_batch), "--max-delay-ms", "2", "--max-queue", "4096", "--instances", str(instances),
                   "--allow-unverified"], port)


def start_floor(port: int):
    """uvicorn serving :func:`fixed_answer_app`."""
    return launch(["-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "serve:fixed_answer_app", "--port",
                   str(port), "--log-level", "warning", "--no-access-log", "--no-proxy-headers"], port)


def loader(client: str, url: str, bodies: list[tuple[bytes, str]], concurrency: int):
    """``load(seconds)`` from the chosen client: wrk repeats the first body, Python threads cycle through all."""
    return (partial(load_wrk, url, bodies[0], concurrency) if client == "wrk"
            else partial(load_python, url, bodies, concurrency))


def thread_cpu(pid: int) -> np.ndarray:
    """CPU seconds so far of process ``pid``: [main thread, all other threads] (Linux /proc; zeros elsewhere)."""
    used = np.zeros(2)
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # utime and stime are fields 14 and 15 of stat
            used[0 if tid == str(pid) else 1] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return used


def server_cpu(pid: int, load, seconds: float) -> tuple[dict, np.ndarray]:
    """``load(seconds)``'s result and the server's [main, other threads] CPU ms per request meanwhile."""
    before = thread_cpu(pid)
    row = load(seconds)
    return row, (thread_cpu(pid) - before) * 1000 / max(row["requests"], 1)


def paired(runner, images: np.ndarray, load, slices: int, pid: int) -> dict:
    """The service under ``load(seconds)`` in 1-s slices, each right after 1 s of direct batch 1: this machine's
    speed drifts by tens of percent within minutes, so the ratio is taken per pair (median over pairs)."""
    pairs = [(direct(runner, images, 1, 1.0)["images_per_s"], server_cpu(pid, load, 1.0)) for _ in range(slices)]
    rows = [row for _, (row, _) in pairs]
    cpu = np.median([used for _, (_, used) in pairs], axis=0)
    return {"server_main_thread_cpu_ms_per_request": float(cpu[0]),
            "server_other_threads_cpu_ms_per_request": float(cpu[1]),
            "images_per_s": float(np.median([row["images_per_s"] for row in rows])),
            "p50_ms": float(np.median([row["p50_ms"] for row in rows])),
            "p99_ms": float(np.median([row["p99_ms"] for row in rows])),
            "requests": sum(row["requests"] for row in rows), "errors": sum(row.get("errors", 0) for row in rows),
            "direct_batch1_beside": float(np.median([d for d, _ in pairs])),
            "over_direct_batch1_beside": float(np.median([row["images_per_s"] / d for d, (row, _) in pairs]))}


def bench_package(package: Path, seconds: float, client: str) -> dict:
    config = read_config(package)
    x, _ = load_split(config["dataset"], "test").tensors(limit=1024)
    images = x.numpy()
    bodies = [request_bytes(img) for img in images[:256]]
    report: dict = {"package": str(package), "model": config["arch"], "dataset": config["dataset"],
                    "client": client, "direct": {}, "service": {}}
    with open_runner(package / "model.onnx", providers=["CPUExecutionProvider"]) as runner:
        for batch in (1, 16, 64):
            report["direct"][f"batch {batch}"] = direct(runner, images, batch, seconds)
        port = free_port()
        with start_floor(port) as floor:  # the same requests answered by a bare uvicorn app: the stack's best
            row, cpu = server_cpu(floor.pid, loader(client, f"http://127.0.0.1:{port}/", bodies, 64), seconds)
            report["http_floor"] = {**row, "server_main_thread_cpu_ms_per_request": float(cpu[0]),
                                    "direct_batch1_beside": direct(runner, images, 1, seconds)["images_per_s"]}
        for max_batch, instances in SERVICE_SETTINGS:
            port = free_port()
            url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
            with start_server(package, port, max_batch, instances) as server:
                for concurrency in (1, 16, 64):
                    key = f"max_batch {max_batch}, instances {instances}, concurrency {concurrency}"
                    report["service"][key] = paired(runner, images, loader(client, url, bodies, concurrency),
                                                    max(1, round(seconds)), server.pid)
    service = {key: row["images_per_s"] for key, row in report["service"].items()}
    best = max(report["service"], key=lambda key: report["service"][key]["over_direct_batch1_beside"])

    def best_at_16(batching: bool) -> float:
        return max(v for k, v in service.items() if k.endswith("concurrency 16") and batching != k.startswith(
            "max_batch 1,"))

    report["ratios"] = {
        "best_service_setting": best,
        "best_service_over_direct_batch1_beside": report["service"][best]["over_direct_batch1_beside"],
        "best_service_over_direct_batch1": service[best] / report["direct"]["batch 1"]["images_per_s"],
        "best_service_over_direct_batch64": service[best] / report["direct"]["batch 64"]["images_per_s"],
        "http_floor_over_direct_batch1_beside": report["http_floor"]["images_per_s"]
        / report["http_floor"]["direct_batch1_beside"],
        "batching_gain_at_concurrency_16": best_at_16(batching=True) / best_at_16(batching=False),
        "direct_batch64_over_batch1": report["direct"]["batch 64"]["images_per_s"]
        / report["direct"]["batch 1"]["images_per_s"],
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", type=Path, nargs="+")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--json")
    args = parser.parse_args()
    reports = [bench_package(package, args.seconds, args.client) for package in args.packages]
    for report in reports:
        print(f"\n{report['model']} on {report['dataset']} ({report['package']}), client {report['client']}")
        print(f"{'setting':58s} {'img/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'direct b1':>10s} "
              f"{'ratio':>6s} {'main ms/req':>11s}")
        rows = [("direct " + key, row) for key, row in report["direct"].items()]
        rows += [("HTTP floor (bare uvicorn), concurrency 64", report["http_floor"])]
        rows += [("service " + key, row) for key, row in report["service"].items()]
        for name, row in rows:
            main_ms = row.get("server_main_thread_cpu_ms_per_request", 0)
            print(f"{name:58s} {row['images_per_s']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
                  f"{row.get('errors', 0):7d} {row.get('direct_batch1_beside', 0):10.0f} "
                  f"{row.get('over_direct_batch1_beside', 0):6.2f} {main_ms:11.3f}")
        print(json.dumps(report["ratios"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "reports": reports}, indent=2))


if __name__ == "__main__":
    main()
