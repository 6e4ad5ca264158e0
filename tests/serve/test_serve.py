"""``zoo serve``: KServe v2 over real HTTP and gRPC on 127.0.0.1, driven by the real tritonclient; batching seen
in /metrics; bad input is 4xx / INVALID_ARGUMENT never 5xx / INTERNAL (hypothesis-built requests on both
protocols), answered alike by both through one mapping, in the request's terms and with hostile input echoed
bounded; overload gives 503 and the server recovers."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddzoo.errors import InvalidArgumentError
from ddzoo.serve.app import ServeSettings, choose_artifact, create_app, open_artifact
from ddzoo.verification import VerificationFailedError

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


def test_tritonclient_gets_the_runner_logits(server, verified_package, mnist_test):
    import tritonclient.http as httpclient

    from ddzoo.runtime import open_runner

    x, _ = mnist_test.tensors(limit=8)
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
    metadata = client.get_model_metadata(NAME)
    assert metadata["inputs"][0]["shape"] == [-1, 1, 28, 28] and metadata["platform"] == "onnxruntime_onnx"
    record = verified_package[1]["records"]["model.onnx"]
    params = metadata["parameters"]
    assert params["sha256"] == record["sha256"] and params["rho2"] == record["deepfool"]["50"]["rho2"]
    assert params["precision"] == "fp32" and params["provider"] == "CPUExecutionProvider" and params["verified"]
    inputs = [httpclient.InferInput("input", list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x.numpy(), binary_data=True)
    logits = client.infer(NAME, inputs).as_numpy("logits")
    with open_runner(verified_package[0] / "model.onnx") as runner:
        expected = runner.predict(x).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    inputs[0].set_data_from_numpy(x.numpy(), binary_data=False)  # JSON tensors both ways
    json_out = client.infer(NAME, inputs, outputs=[httpclient.InferRequestedOutput("logits", binary_data=False)])
    np.testing.assert_allclose(json_out.as_numpy("logits"), expected, atol=1e-5)


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_concurrent_requests_are_batched(server, mnist_test):
    x, _ = mnist_test.tensors(limit=64)
    before = requests.get(f"{server.url}/metrics").text

    def one(i: int) -> int:
        body = {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                            "data": x[i].reshape(-1).tolist()}]}
        return requests.post(f"{server.url}/v2/models/{NAME}/infer", json=body, timeout=30).status_code

    with ThreadPoolExecutor(32) as pool:
        assert set(pool.map(one, range(64))) == {200}
    after = requests.get(f"{server.url}/metrics").text
    calls = _metric(after, "ddzoo_batch_size_count") - _metric(before, "ddzoo_batch_size_count")
    images = _metric(after, "ddzoo_batch_size_sum") - _metric(before, "ddzoo_batch_size_sum")
    assert images == 64 and calls < 64  # fewer backend calls than requests: they were batched
    assert _metric(after, "ddzoo_queue_seconds_count") > 0 and "ddzoo_compute_seconds_bucket" in after


GOOD = {"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [0.5] * 784}


@pytest.mark.parametrize("path, body, status, message", [
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "shape": [1, 3, 28, 28]}]}, 400, "shape must be"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "datatype": "INT8"}]}, 400, "datatype 'INT8'"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "name": "x"}]}, 400, "unknown input 'x'"),
    ("/v2/models/other/infer", {"inputs": [GOOD]}, 404, "unknown model 'other'"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{k: v for k, v in GOOD.items() if k != "data"}]}, 400, "neither"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": [float("nan")] * 784}]}, 400, "NaN or Inf"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": [0.5] * 783}]}, 400, "holds 783 values"),
    (f"/v2/models/{NAME}/infer", {"inputs": [GOOD], "outputs": [{"name": "probs"}]}, 400, "unknown output"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "shape": [33, 1, 28, 28], "data": [0.5] * 784 * 33}]}, 400,
     "at most 32 per request"),
    (f"/v2/models/{NAME}/infer", {"inputs": [GOOD], "parameters": [1, 2]}, 400, "request 'parameters'"),
    (f"/v2/models/{NAME}/infer", {"inputs": [GOOD], "outputs": [{"name": "logits", "parameters": []}]}, 400,
     "'outputs' must be a list"),
    (f"/v2/models/{NAME}/infer", {"inputs": [GOOD], "outputs": "x"}, 400, "'outputs' must be a list"),
    (f"/v2/models/{NAME}/infer", {"inputs": [GOOD], "id": 7}, 400, "'id' must be a string"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": ["0.5"] * 784}]}, 400, "only numbers"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": [True] + [0.5] * 783}]}, 400, "only numbers"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": [[True, 0.5]] * 392}]}, 400, "only numbers"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": [None] * 784}]}, 400, "only numbers"),
    (f"/v2/models/{NAME}/infer", {"inputs": [{**GOOD, "data": 0.5}]}, 400, "list of numbers"),
    (f"/v2/models/{NAME}/versions/2/infer", {"inputs": [GOOD]}, 404, "unknown version '2'"),
])
def test_bad_input_is_a_clear_4xx(server, path, body, status, message):
    response = requests.post(server.url + path, data=json.dumps(body, allow_nan=True), timeout=10)
    assert response.status_code == status and message in response.json()["error"]


HEAD = b'{"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": ['
INTERNALS = ("Error", "Exceeds the limit", "set_int_max_str_digits", "maximum recursion", "setting an array element",
             "inhomogeneous", "Traceback", "numpy", "orjson", "char ")


@pytest.mark.parametrize("raw, message", [
    (b"", "body is empty"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON: its arrays or objects are nested too deeply"),
    (HEAD + b"9" * 5000 + b"]}]}", "not valid JSON: it holds an integer with too many digits"),
    (HEAD + b",".join([b"9" * 40] * 784) + b"]}]}", "NaN or Inf"),  # too big for float32
    (b'{"inputs": "\xff\xfe"}', "not valid JSON: it is not UTF-8 text"),
    (b'{"inputs": [', "not valid JSON: Expecting value at line 1 column 13"),
    (HEAD + b"[0.5, 0.5], [0.5]]}]}", "rectangular nested list of numbers"),
    (HEAD + b"[" * 70 + b"0.5" + b"]" * 70 + b"]}]}", "rectangular nested list of numbers"),
])
def test_malformed_bodies_are_a_400_in_the_requests_terms(server, raw, message):
    response = requests.post(f"{server.url}/v2/models/{NAME}/infer", data=raw, timeout=30)
    error = response.json()["error"]
    assert response.status_code == 400 and message in error, error
    assert not [word for word in INTERNALS if word in error], error  # Python's words are not the client's
    assert "header" not in error.lower()  # no header was sent: the message must not blame one


def test_hostile_names_are_echoed_bounded_over_http(server):
    long = "m" * 10_000
    for response in (requests.post(f"{server.url}/v2/models/{long}/infer", json={"inputs": [GOOD]}, timeout=10),
                     requests.get(f"{server.url}/v2/models/{long}", timeout=10),
                     requests.get(f"{server.url}/v2/models/{NAME}/versions/{long}/ready", timeout=10)):
        assert response.status_code == 404 and len(response.content) < 300, response.content[:200]
        assert "(10,002 characters)" in response.json()["error"]
    for body in ({"inputs": [GOOD], "outputs": [{"name": "o" * 10_000}] * 20},
                 {"inputs": [{**GOOD, "name": "i" * 100_000}]},
                 {"inputs": [{**GOOD, "datatype": "d" * 100_000}]},
                 {"inputs": [{**GOOD, "shape": [1] * 50_000}]}):
        response = requests.post(f"{server.url}/v2/models/{NAME}/infer", json=body, timeout=10)
        assert response.status_code == 400 and len(response.content) < 400, response.content[:200]


def test_model_config_answers_like_triton(server):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    config = client.get_model_config(NAME)
    assert config["name"] == NAME and config["max_batch_size"] == 32 and config["platform"] == "onnxruntime_onnx"
    assert config["input"][0] == {"name": "input", "data_type": "TYPE_FP32", "dims": [1, 28, 28]}
    assert requests.get(f"{server.url}/v2/models/{NAME}/versions/3").status_code == 404
    assert requests.get(f"{server.url}/v2/models/{NAME}/versions/1").status_code == 200


def test_api_key_guards_every_route_but_health(verified_package, mnist_test):
    import tritonclient.http as httpclient

    key = "k" * 24
    with Server(_loader(verified_package[0]), ServeSettings(api_key=key)) as guarded:
        assert requests.get(f"{guarded.url}/v2/health/live").status_code == 200
        for path in (f"/v2/models/{NAME}", "/metrics", "/v2"):
            response = requests.get(guarded.url + path)
            assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
        wrong = requests.post(f"{guarded.url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]},
                              headers={"Authorization": "Bearer " + "x" * 24})
        assert wrong.status_code == 401 and key not in wrong.text
        metrics = requests.get(f"{guarded.url}/metrics", headers={"Authorization": f"Bearer {key}"}).text
        assert _count(metrics, 401) == 4 and _failures(metrics, "unauthenticated") == 4  # HTTP counts 401 as gRPC does
        client = httpclient.InferenceServerClient(guarded.url.removeprefix("http://"))
        x = mnist_test.tensors(limit=2)[0].numpy()
        tensor = httpclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        result = client.infer(NAME, [tensor], headers={"Authorization": f"Bearer {key}"})
        assert result.as_numpy("logits").shape == (2, 10)
    with pytest.raises(InvalidArgumentError, match="at least 16"):
        ServeSettings(api_key="short")


def test_a_model_that_fails_to_load_is_reported_not_silent(verified_package, capsys):
    def broken():
        raise RuntimeError("INVALID_PROTOBUF: not an ONNX file")

    with Server(broken, wait_path="/v2/health/live") as server:
        deadline = time.time() + 10
        while requests.get(f"{server.url}/v2/health/ready").json().get("error") is None and time.time() < deadline:
            time.sleep(0.05)
        ready = requests.get(f"{server.url}/v2/health/ready")
        assert ready.status_code == 503 and "INVALID_PROTOBUF" in ready.json()["error"]
        infer = requests.post(f"{server.url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]})
        assert infer.status_code == 503 and "failed to load" in infer.json()["error"]
    assert "cannot load the model: RuntimeError: INVALID_PROTOBUF" in capsys.readouterr().err


def test_zoo_serve_exits_1_with_one_line_when_the_artifact_cannot_load(verified_package, tmp_path):
    import shutil
    import subprocess
    import sys

    package = tmp_path / "broken"
    shutil.copytree(verified_package[0], package)
    (package / "model.onnx").write_bytes(b"not an onnx file")
    process = subprocess.run([sys.executable, "-m", "ddzoo.cli", "serve", str(package), "--allow-unverified",
                              "--port", str(_free_port()), "--grpc-port", "0"], capture_output=True, text=True,
                             timeout=120)
    assert process.returncode == 1
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr  # one line, as documented: not a log line and then the error
    assert lines[0].startswith("zoo: error: ") and "cannot load the model" in lines[0]


def test_the_body_limit_follows_the_model_and_max_batch():
    settings_ = ServeSettings(max_batch=8)
    assert settings_.body_limit((1, 28, 28)) == 8 * 784 * 32 + 65536
    assert ServeSettings(max_body_bytes=4096).body_limit((3, 32, 32)) == 4096


def test_a_non_loopback_bind_without_a_key_warns(verified_package, monkeypatch, capsys):
    from ddzoo.serve import app as serve_app

    class NoServer:
        def __init__(self, config):
            self.config = config

        def run(self):
            pass

    monkeypatch.setattr(serve_app._Server, "make", staticmethod(NoServer))
    serve_app.serve(verified_package[0], NAME, host="0.0.0.0", port=_free_port())  # nothing is bound
    assert "without an API key" in capsys.readouterr().err
    serve_app.serve(verified_package[0], NAME, host="127.0.0.1", port=_free_port())
    assert "without an API key" not in capsys.readouterr().err


def _count(metrics: str, code: int) -> float:
    """``ddzoo_requests_total`` of one status code (0 if none was counted yet)."""
    counted = f'ddzoo_requests_total{{code="{code}",model="lenet-test"}}'
    return float(metrics.split(counted)[1].split()[0]) if counted in metrics else 0.0


def test_versioned_path_wrong_method_and_unknown_model_are_counted(server):
    before = requests.get(f"{server.url}/metrics").text
    body = {"inputs": [GOOD]}
    assert requests.post(f"{server.url}/v2/models/{NAME}/versions/1/infer", json=body, timeout=10).status_code == 200
    response = requests.get(f"{server.url}/v2/models/{NAME}/infer", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert requests.post(f"{server.url}/v2/models/nope/infer", json=body, timeout=10).status_code == 404
    after = requests.get(f"{server.url}/metrics").text
    assert {code: _count(after, code) - _count(before, code) for code in (200, 404, 405)} == {200: 1, 404: 1, 405: 1}
    assert _failures(after, "method not allowed") - _failures(before, "method not allowed") == 1
    assert _metric(after, "ddzoo_request_failures_total") - _metric(before, "ddzoo_request_failures_total") == 2


def test_backend_failure_is_a_500_naming_it_and_the_server_keeps_serving(verified_package, capsys):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    settings_ = ServeSettings(max_batch=4, max_delay_ms=1, grpc_port=0)
    with Server(_loader(verified_package[0], fail=True), settings_) as broken:
        response = requests.post(f"{broken.url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]}, timeout=10)
        error = response.json()["error"]
        assert response.status_code == 500 and "device lost" not in error and "server log" in error
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{broken.app.state['grpc_port']}")
        tensor = grpcclient.InferInput("input", [1, 1, 28, 28], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
        with pytest.raises(InferenceServerException) as raised:
            client.infer(NAME, [tensor])
        assert "INTERNAL" in str(raised.value.status()) and "device lost" not in raised.value.message()
        assert _failures(requests.get(f"{broken.url}/metrics").text, "backend error") == 2
        assert requests.get(f"{broken.url}/v2/health/ready").status_code == 200
    assert capsys.readouterr().err.count("inference failed: RuntimeError: device lost") == 2  # logged, both


def test_oversized_payload_is_413(verified_package):
    with Server(_loader(verified_package[0]), ServeSettings(max_body_bytes=2048)) as small:
        response = requests.post(f"{small.url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]}, timeout=10)
        assert response.status_code == 413 and "exceeds the limit" in response.json()["error"]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)
near_valid = st.fixed_dictionaries({"parameters": st.none() | json_values, "id": json_values,
                                    "inputs": st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["input", "x", ""]) | st.text(max_size=5),
    "shape": st.lists(st.integers(-2, 30), max_size=5) | json_values,
    "datatype": st.sampled_from(["FP32", "FP16", "FP64", "INT8", "BYTES"]) | st.text(max_size=4),
    "data": st.lists(st.floats(), max_size=30) | json_values,
    "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), st.integers(-5, 4000)) | json_values,
}), max_size=2), "outputs": st.none() | json_values | st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["logits", "x"]) | json_values, "parameters": json_values}), max_size=2)})


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(near_valid.map(lambda d: json.dumps(d).encode()), json_values.map(lambda d: json.dumps(d)
       .encode()), st.binary(max_size=64)), header=st.none() | st.integers(-10, 200).map(str) | st.text(max_size=4))
def test_fuzzed_infer_requests_never_get_a_5xx(server, body, header):
    headers = {} if header is None else {"Inference-Header-Content-Length": header}
    try:
        response = requests.post(f"{server.url}/v2/models/{NAME}/infer", data=body, headers=headers, timeout=10)
    except (requests.exceptions.InvalidHeader, ValueError):
        return  # the client refused to send this header at all
    assert response.status_code < 500, response.text


def test_overload_gets_503_then_recovers(verified_package, mnist_test):
    settings_ = ServeSettings(max_batch=4, max_delay_ms=1, max_queue=8)
    with Server(_loader(verified_package[0], delay_s=0.05), settings_) as slow:
        body = {"inputs": [{**GOOD, "shape": [2, 1, 28, 28], "data": [0.5] * 1568}]}

        def one(_):
            response = requests.post(f"{slow.url}/v2/models/{NAME}/infer", json=body, timeout=60)
            return response.status_code, response.headers.get("Retry-After")

        with ThreadPoolExecutor(48) as pool:
            answers = list(pool.map(one, range(96)))
        codes = [code for code, _ in answers]
        assert 503 in codes and 200 in codes and set(codes) <= {200, 503}
        assert all(retry == "1" for code, retry in answers if code == 503)
        assert requests.get(f"{slow.url}/v2/health/ready").status_code == 200
        assert requests.post(f"{slow.url}/v2/models/{NAME}/infer", json=body, timeout=30).status_code == 200
        assert _metric(requests.get(f"{slow.url}/metrics").text, "ddzoo_request_failures_total") > 0


def test_ready_is_503_until_the_model_is_loaded(verified_package):
    gate = threading.Event()
    load = _loader(verified_package[0])

    def blocked():
        gate.wait(30)
        return load()

    with Server(blocked, wait_path="/v2/health/live") as server:  # up and live, the model still loading
        url = server.url
        try:
            assert requests.get(f"{url}/v2/health/live").status_code == 200
            assert requests.get(f"{url}/v2/health/ready").status_code == 503
            assert requests.post(f"{url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]}).status_code == 503
            gate.set()
            _wait_for(f"{url}/v2/health/ready")
            assert requests.post(f"{url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]}).status_code == 200
        finally:
            gate.set()  # never leave the loader blocked while the server shuts down


def test_auto_backend_and_verification_gate(verified_package, tmp_path):
    import shutil

    package = verified_package[0]
    assert choose_artifact(package) == "model.onnx"  # no TensorRT here: onnxruntime
    assert choose_artifact(package, backend="torch") == "model.safetensors"
    with pytest.raises(InvalidArgumentError, match="no TensorRT engine"):
        choose_artifact(package, backend="trt")
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(VerificationFailedError, match="model.onnx: stale"):
        choose_artifact(copy)
    assert choose_artifact(copy, allow_unverified=True) == "model.onnx"


def test_triton_repository_config_parses(verified_package, tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from ddzoo.cli import main

    assert main(["export", "triton", str(verified_package[0]), str(tmp_path / "repo"), "--name", NAME,
                 "--max-batch", "32", "--instances", "2"]) == 0
    config = text_format.Parse((tmp_path / "repo" / NAME / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == NAME and config.platform == "onnxruntime_onnx" and config.max_batch_size == 32
    assert config.input[0].name == "input" and list(config.input[0].dims) == [1, 28, 28]
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    assert config.output[0].name == "logits" and list(config.output[0].dims) == [10]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    (group,) = config.instance_group
    assert group.count == 2 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_AUTO
    served = tmp_path / "repo" / NAME / "1" / "model.onnx"
    assert served.read_bytes() == (verified_package[0] / "model.onnx").read_bytes()


def test_zoo_serve_cli_serves_and_shuts_down_gracefully(verified_package):
    import os
    import signal
    import subprocess
    import sys

    port = _free_port()
    env = {**os.environ, "ZOO_DATA_DIR": os.environ.get("ZOO_DATA_DIR", "")}
    grpc_port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "ddzoo.cli", "serve", str(verified_package[0]), "--name", NAME,
                                "--port", str(port), "--grpc-port", str(grpc_port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/v2/health/ready")
        assert requests.get(f"{url}/v2").json()["extensions"] == ["binary_tensor_data"]
        import tritonclient.grpc as grpcclient

        assert grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}").is_model_ready(NAME)

        def one(_):
            try:
                return requests.post(f"{url}/v2/models/{NAME}/infer", json={"inputs": [GOOD]}, timeout=30).status_code
            except requests.ConnectionError:
                return None  # arrived after shutdown began

        with ThreadPoolExecutor(8) as pool:
            pending = [pool.submit(one, i) for i in range(32)]
            time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            codes = [p.result() for p in pending]
        assert process.wait(timeout=60) == 0  # a clean drain is a normal exit
        assert 200 in codes and set(codes) <= {200, None}
        banner = process.stdout.read()
        assert "serving lenet-test" in banner and "onnxruntime (CPUExecutionProvider, fp32)" in banner
        assert f"grpc://127.0.0.1:{grpc_port}" in banner
    finally:
        process.kill()


@pytest.mark.parametrize("option, value", [("--instances", "0"), ("--max-batch", "0"), ("--max-queue", "8")])
def test_zoo_serve_refuses_bad_batching_settings_before_serving(verified_package, capsys, option, value):
    from ddzoo.cli import main

    assert main(["serve", str(verified_package[0]), "--port", str(_free_port()), option, value]) != 0
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{option} >= " in error and "Traceback" not in error


@pytest.fixture(scope="module")
def grpc_server(verified_package):
    settings_ = ServeSettings(max_batch=32, max_delay_ms=5, grpc_port=0, api_key="g" * 20)
    with Server(_loader(verified_package[0]), settings_) as running:
        yield running, f"127.0.0.1:{running.app.state['grpc_port']}"


AUTH = {"authorization": "Bearer " + "g" * 20}


def test_tritonclient_grpc_gets_the_runner_logits(grpc_server, verified_package, mnist_test):
    import tritonclient.grpc as grpcclient

    from ddzoo.runtime import open_runner

    server, address = grpc_server
    client = grpcclient.InferenceServerClient(address)
    assert client.is_server_live() and client.is_server_ready()  # health needs no key
    assert client.is_model_ready(NAME, headers=AUTH)
    metadata = client.get_model_metadata(NAME, headers=AUTH, as_json=True)
    assert metadata["inputs"][0]["name"] == "input" and metadata["inputs"][0]["shape"] == ["-1", "1", "28", "28"]
    config = client.get_model_config(NAME, headers=AUTH, as_json=True)["config"]
    assert config["max_batch_size"] == 32 and config["input"][0]["dims"] == ["1", "28", "28"]
    x = mnist_test.tensors(limit=5)[0].numpy()
    tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    before = _metric(requests.get(f"{server.url}/metrics", headers={"Authorization": AUTH["authorization"]}).text,
                     "ddzoo_batch_size_sum")
    result = client.infer(NAME, [tensor], outputs=[grpcclient.InferRequestedOutput("logits")], headers=AUTH)
    with open_runner(verified_package[0] / "model.onnx") as runner:
        expected = runner.predict(torch_tensor(x)).numpy()
    np.testing.assert_allclose(result.as_numpy("logits"), expected, rtol=1e-5, atol=1e-5)
    after = _metric(requests.get(f"{server.url}/metrics", headers={"Authorization": AUTH["authorization"]}).text,
                    "ddzoo_batch_size_sum")
    assert after - before == 5  # through the shared batcher


def torch_tensor(x):
    import torch

    return torch.from_numpy(x)


@pytest.mark.parametrize("shape, datatype, name, code, message", [
    ([1, 3, 28, 28], "FP32", "input", "INVALID_ARGUMENT", "shape must be"),
    ([1, 1, 28, 28], "INT8", "input", "INVALID_ARGUMENT", "datatype 'INT8'"),
    ([1, 1, 28, 28], "FP32", "x", "INVALID_ARGUMENT", "unknown input 'x'"),
])
def test_grpc_bad_requests_are_invalid_argument(grpc_server, shape, datatype, name, code, message):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    _, address = grpc_server
    client = grpcclient.InferenceServerClient(address)
    tensor = grpcclient.InferInput(name, shape, datatype)
    dtype = {"FP32": np.float32, "INT8": np.int8}[datatype]
    tensor.set_data_from_numpy(np.zeros(shape, dtype=dtype))
    with pytest.raises(InferenceServerException) as raised:
        client.infer(NAME, [tensor], headers=AUTH)
    assert code in str(raised.value.status()) and message in raised.value.message()


def _failures(metrics: str, reason: str) -> float:
    return _metric("\n".join(line for line in metrics.splitlines() if f'reason="{reason}"' in line),
                   "ddzoo_request_failures_total")


@pytest.mark.parametrize("images, message", [
    (np.zeros((33, 1, 28, 28), np.float32), "at most 32 per request (--max-batch)"),
    (np.full((1, 1, 28, 28), np.nan, np.float32), "NaN or Inf"),
    (np.zeros((1, 3, 28, 28), np.float32), "shape must be [N, 1, 28, 28]"),
], ids=["more images than --max-batch", "NaN", "shape"])
def test_both_protocols_refuse_a_faulty_request_alike(grpc_server, images, message):
    """One mapping of errors: HTTP's 400 is gRPC's INVALID_ARGUMENT, with the same words, counted as a bad
    request (not a backend error) in /metrics."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    from ddzoo.serve.status import GRPC_CODES

    server, address = grpc_server
    before = requests.get(f"{server.url}/metrics", headers=AUTH).text
    raw = images.tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": list(images.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}]}).encode()
    http = requests.post(f"{server.url}/v2/models/{NAME}/infer", data=header + raw, timeout=10,
                         headers={**AUTH, "Inference-Header-Content-Length": str(len(header))})
    request = service_pb2.ModelInferRequest(model_name=NAME, raw_input_contents=[raw])
    request.inputs.add(name="input", datatype="FP32").shape.extend(images.shape)
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as raised:
        service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, metadata=list(AUTH.items()))
    assert http.status_code == 400 and message in http.json()["error"], http.text
    assert raised.value.code().name == GRPC_CODES[400] and raised.value.details() == http.json()["error"]
    after = requests.get(f"{server.url}/metrics", headers=AUTH).text
    assert _failures(after, "bad request") - _failures(before, "bad request") == 2
    assert _failures(after, "backend error") == _failures(before, "backend error") == 0


@pytest.mark.parametrize("size", [10_000, 100_000])
def test_grpc_hostile_names_get_not_found_with_a_bounded_message(grpc_server, size):
    """A 100 KB model name once made the answer's status details exceed gRPC's metadata limit
    (RESOURCE_EXHAUSTED) instead of NOT_FOUND."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    _, address = grpc_server
    client = grpcclient.InferenceServerClient(address)
    tensor = grpcclient.InferInput("input", [1, 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
    long = "m" * size
    calls = {"metadata": lambda: client.get_model_metadata(long, headers=AUTH),
             "config": lambda: client.get_model_config(long, headers=AUTH),
             "infer": lambda: client.infer(long, [tensor], headers=AUTH),
             "version": lambda: client.get_model_metadata(NAME, model_version=long, headers=AUTH)}
    for what, call in calls.items():
        with pytest.raises(InferenceServerException) as raised:
            call()
        assert "NOT_FOUND" in str(raised.value.status()), (what, raised.value.status())
        assert len(raised.value.message()) < 200 and f"({size + 2:,} characters)" in raised.value.message()
    bad_input = grpcclient.InferInput("i" * size, [1, 1, 28, 28], "FP32")
    bad_input.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(InferenceServerException) as raised:
        client.infer(NAME, [bad_input], headers=AUTH)
    assert "INVALID_ARGUMENT" in str(raised.value.status()) and len(raised.value.message()) < 200


grpc_tensors = st.fixed_dictionaries({
    "name": st.sampled_from(["input", "x", ""]) | st.text(max_size=6),
    "datatype": st.sampled_from(["FP32", "FP16", "FP64", "INT8", "BYTES"]) | st.text(max_size=4),
    "shape": st.sampled_from([[1, 1, 28, 28], [2, 1, 28, 28], [33, 1, 28, 28]]) | st.lists(st.integers(-3, 40),
                                                                                              max_size=5),
    "fp32": st.lists(st.floats(width=32), max_size=30) | st.just([0.5] * 784),
    "fp64": st.lists(st.floats(), max_size=8),
})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(model=st.sampled_from([NAME, NAME, "other", ""]) | st.text(max_size=12),
       version=st.sampled_from(["", "", "1", "2"]) | st.text(max_size=4), tensors=st.lists(grpc_tensors, max_size=2),
       raw=st.lists(st.binary(max_size=48) | st.just(bytes(784 * 4)) | st.just(bytes(784 * 8)), max_size=2),
       outputs=st.lists(st.sampled_from(["logits", "probs"]) | st.text(max_size=4), max_size=2))
def test_fuzzed_grpc_infer_requests_never_get_an_internal_error(grpc_server, model, version, tensors, raw, outputs):
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    _, address = grpc_server
    request = service_pb2.ModelInferRequest(model_name=model, model_version=version, raw_input_contents=raw)
    for t in tensors:
        tensor = request.inputs.add(name=t["name"], datatype=t["datatype"])
        tensor.shape.extend(t["shape"])
        tensor.contents.fp32_contents.extend(t["fp32"])
        tensor.contents.fp64_contents.extend(t["fp64"])
    for name in outputs:
        request.outputs.add(name=name)
    with grpc.insecure_channel(address) as channel:
        try:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, metadata=list(AUTH.items()),
                                                                           timeout=30)
        except grpc.RpcError as err:
            assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), err


def test_grpc_needs_the_api_key_and_knows_only_its_model(grpc_server):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    server, address = grpc_server
    client = grpcclient.InferenceServerClient(address)

    def count_401() -> float:
        return _count(requests.get(f"{server.url}/metrics", headers={"Authorization": AUTH["authorization"]}).text, 401)

    before = count_401()
    with pytest.raises(InferenceServerException, match="API key") as raised:
        client.get_model_metadata(NAME)
    assert "UNAUTHENTICATED" in str(raised.value.status())
    assert count_401() - before == 1  # counted as HTTP counts its 401
    with pytest.raises(InferenceServerException, match="unknown model 'other'"):
        client.get_model_metadata("other", headers=AUTH)
    with pytest.raises(InferenceServerException, match="unknown version"):
        client.get_model_metadata(NAME, model_version="7", headers=AUTH)


@pytest.mark.parametrize("queue_wait_ms", [0, 5000])
def test_a_full_queue_sheds_before_parsing_or_lets_the_request_wait_its_turn(verified_package, queue_wait_ms):
    """--queue-wait-ms 0: a full queue refuses at once (503 + Retry-After) without reading or parsing the body.
    With a wait, the request waits in line and is served as room frees (refusing at once invites clients to
    retry at once)."""
    settings_ = ServeSettings(max_batch=1, max_delay_ms=0, max_queue=1, queue_wait_ms=queue_wait_ms)
    with Server(_loader(verified_package[0], delay_s=0.5), settings_) as slow:
        url = f"{slow.url}/v2/models/{NAME}/infer"
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(requests.post, url, json={"inputs": [GOOD]}, timeout=30)  # computing
            time.sleep(0.2)
            second = pool.submit(requests.post, url, json={"inputs": [GOOD]}, timeout=30)  # queued: full
            time.sleep(0.2)
            if queue_wait_ms:
                third = pool.submit(requests.post, url, json={"inputs": [GOOD]}, timeout=30)  # waits for room
                assert third.result().status_code == 200
            else:
                refused = requests.post(url, data=b"{not json", timeout=30)
                assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
                assert "queue is full" in refused.json()["error"]  # not the 400 a parsed body would get
            assert first.result().status_code == 200 and second.result().status_code == 200
        assert ("queue full" in requests.get(f"{slow.url}/metrics").text) == (queue_wait_ms == 0)


@pytest.mark.parametrize("header", ["²", "٣", "1e3", " 12", "-1", "9" * 20])
def test_a_non_ascii_or_odd_length_header_is_a_400(header):
    """str.isdigit() accepts '²' and Arabic-Indic digits, which int() then refuses: found by the fuzz test."""
    from ddzoo.errors import BadRequestError
    from ddzoo.serve.protocol import parse_infer_request

    with pytest.raises(BadRequestError):
        parse_infer_request(b'{"inputs": []}', header, "input", (1, 28, 28))
