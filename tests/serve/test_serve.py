"""``zoo serve``: KServe v2 over real HTTP on 127.0.0.1, driven by the real tritonclient; batching seen in
/metrics; bad input is a 4xx never a 5xx (hypothesis-built requests), in the request's terms and with hostile
input echoed bounded; overload gives 503 and the server recovers; the command itself. gRPC: test_grpc.py."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddzoo.errors import InvalidArgumentError
from ddzoo.serve.app import ServeSettings, choose_artifact
from ddzoo.verification import VerificationFailedError
from tests.serve.conftest import GOOD, NAME, Server, _count, _failures, _free_port, _loader, _metric, _wait_for

pytestmark = pytest.mark.release  # live servers


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


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
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


