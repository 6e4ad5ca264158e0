"""``zoo serve`` over gRPC on 127.0.0.1, driven by the real tritonclient: the runner's logits through the shared
batcher, bad requests INVALID_ARGUMENT (as HTTP's 400, with the same words), hostile names NOT_FOUND with a
bounded message, hypothesis-built requests never INTERNAL, and the API key."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddzoo.serve.app import ServeSettings
from tests.serve.conftest import NAME, Server, _count, _failures, _loader, _metric

pytestmark = pytest.mark.release  # live servers


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
