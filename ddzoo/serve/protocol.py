"""KServe v2 / Triton HTTP inference messages: JSON tensors and the binary-tensor extension.

Binary extension (what ``tritonclient.http`` sends): the ``Inference-Header-Content-Length`` header gives
the length of the JSON part; the tensors' raw little-endian bytes follow, in input order, each announced by
``parameters.binary_data_size``. Every malformed request raises :class:`BadRequestError` (HTTP 400), saying what
is wrong in the request's terms (never a Python exception's name or text) and echoing its values bounded.
"""

from __future__ import annotations

import json
import math

import numpy as np
import orjson

from ddzoo.errors import BadRequestError, echo

HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES = {"FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"), "FP64": np.dtype("<f8")}  # v2 tensors are little-endian


def parse_infer_request(body: bytes, header_length: str | None, input_name: str,
                        image_shape: tuple[int, ...]) -> tuple[dict, np.ndarray]:
    """(the request JSON, float32 images (N, *image_shape)) of a v2 infer request."""
    if not body:
        raise BadRequestError("the request body is empty; send a KServe v2 infer request (JSON with 'inputs')")
    if header_length is None:
        json_size = len(body)
    else:
        if not (header_length.isascii() and header_length.isdigit()) or len(header_length) > 12:
            raise BadRequestError(f"{HEADER_LENGTH} must be a byte count, got {echo(header_length, 20)}")
        json_size = int(header_length)
        if not 0 < json_size <= len(body):
            raise BadRequestError(f"{HEADER_LENGTH} {json_size} does not fit a body of {len(body)} bytes")
    request = _loads(body[:json_size])
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise BadRequestError("the request needs an 'inputs' list with one tensor")
    _check_request_fields(request)
    if len(request["inputs"]) != 1:
        raise BadRequestError(f"this model takes exactly one input, {input_name!r}; got {len(request['inputs'])}")
    tensor = request["inputs"][0]
    if not isinstance(tensor, dict):
        raise BadRequestError("each input must be an object with name, shape, datatype and data")
    dtype, shape = check_tensor(tensor.get("name"), tensor.get("datatype"), tensor.get("shape"), input_name,
                                image_shape)
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequestError("input 'parameters' must be an object")
    binary_size = parameters.get("binary_data_size")
    if binary_size is not None:
        if not isinstance(binary_size, int) or isinstance(binary_size, bool):
            raise BadRequestError(f"binary_data_size must be a byte count, got {echo(binary_size, 20)}")
        return request, images_from_bytes(body[json_size : json_size + binary_size], dtype, shape,
                                          announced=binary_size)
    data = tensor.get("data")
    if data is None:
        raise BadRequestError("the input has neither 'data' nor binary data")
    images = _numbers(data, dtype)
    if images.size != math.prod(shape):
        raise BadRequestError(f"'data' holds {images.size} values, shape {shape} needs {math.prod(shape)}")
    return request, finite_images(images, shape)


def check_tensor(name, datatype, shape, input_name: str, image_shape: tuple[int, ...]) -> tuple[np.dtype, list[int]]:
    """The dtype and shape of an input tensor described by a request (HTTP or gRPC), or a 400."""
    if name != input_name:
        raise BadRequestError(f"unknown input {echo(name, 40)}; this model's input is {input_name!r}")
    dtype = DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BadRequestError(f"datatype {echo(datatype, 20)} is not supported; send FP32 pixels in [0, 1]")
    if (not isinstance(shape, list) or len(shape) != len(image_shape) + 1
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            or tuple(shape[1:]) != tuple(image_shape) or not 1 <= shape[0] <= 1 << 20):
        raise BadRequestError(f"shape must be [N, {', '.join(map(str, image_shape))}] with N >= 1, "
                              f"got {echo(shape)}")
    return dtype, shape


def images_from_bytes(raw: bytes, dtype: np.dtype, shape: list[int], announced: int | None = None) -> np.ndarray:
    """Little-endian tensor bytes (binary extension, gRPC raw contents) as finite float32 images, or a 400."""
    needed = math.prod(shape) * dtype.itemsize
    if announced is not None and announced != needed:
        raise BadRequestError(f"binary_data_size {announced} does not match shape {shape} of {dtype.name} "
                              f"({needed} bytes)")
    if len(raw) != needed:
        raise BadRequestError(f"the request holds {len(raw)} of the {needed} tensor bytes that shape {shape} needs")
    return finite_images(np.frombuffer(raw, dtype=dtype), shape)


def finite_images(values: np.ndarray, shape: list[int]) -> np.ndarray:
    images = values.astype(np.float32).reshape(shape)
    if not np.isfinite(images).all():
        raise BadRequestError("the input contains NaN or Inf; send finite pixels in [0, 1]")
    return images


def _loads(text: bytes):
    """The JSON part of a request; anything unparsable (deep nesting, huge integers included) is a 400 saying
    what is wrong with the request."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # the standard library also reads the NaN and Infinity some clients send
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        problem = f"{err.msg} at line {err.lineno} column {err.colno}"
    except UnicodeDecodeError:
        problem = "it is not UTF-8 text"
    except RecursionError:
        problem = "its arrays or objects are nested too deeply"
    except ValueError:  # the only other one: an integer longer than Python converts (sys.get_int_max_str_digits)
        problem = "it holds an integer with too many digits; send pixels in [0, 1]"
    raise BadRequestError(f"the request is not valid JSON: {problem}")


def _check_request_fields(request: dict) -> None:
    """The optional request-level fields, checked once so nothing later trips on a wrong type."""
    if "id" in request and not isinstance(request["id"], str):
        raise BadRequestError("'id' must be a string")
    if not isinstance(request.get("parameters", {}), dict):
        raise BadRequestError("request 'parameters' must be an object")
    outputs = request.get("outputs")
    if outputs is None:
        return
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                and isinstance(o.get("parameters", {}), dict) for o in outputs):
        raise BadRequestError("'outputs' must be a list of objects, each with a 'name' (and optional "
                              "'parameters' object)")


def _has_bool(data: list) -> bool:
    return any(v is True or v is False or (isinstance(v, list) and _has_bool(v)) for v in data)


def _numbers(data, dtype: np.dtype) -> np.ndarray:
    """JSON ``data`` (a flat or nested list) as a flat array; strings, booleans and huge values are a 400."""
    if not isinstance(data, list):
        raise BadRequestError("'data' must be a list of numbers (row-major)")
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError, TypeError, RecursionError):
        raise BadRequestError("'data' must be a flat or rectangular nested list of numbers (row-major)") from None
    if array.dtype.kind not in "fiu" or (array.dtype.kind in "iu" and array.size and np.abs(array).max() > 1e30):
        raise BadRequestError("'data' must hold only numbers (no strings, booleans or nulls); send pixels in [0, 1]")
    if _has_bool(data):  # numpy turns [True, 0.5] into floats
        raise BadRequestError("'data' must hold only numbers (no strings, booleans or nulls); send pixels in [0, 1]")
    with np.errstate(over="ignore"):
        return array.astype(dtype).reshape(-1)


def wants_binary(request: dict, output_name: str) -> bool:
    """Whether the client asked for the output as binary data (tritonclient does by default)."""
    for output in request.get("outputs") or []:  # shapes checked by parse_infer_request
        if output["name"] == output_name:
            return (output.get("parameters") or {}).get("binary_data", False) is True
    return (request.get("parameters") or {}).get("binary_data_output", False) is True


def infer_response(request: dict, model_name: str, output_name: str, logits: np.ndarray
                   ) -> tuple[bytes, dict[str, str]]:
    """The response body and headers (binary when the client asked for it)."""
    outputs = request.get("outputs")
    if outputs is not None:
        names = [o["name"] for o in outputs]
        if names != [output_name]:
            raise BadRequestError(f"unknown output(s) {echo(names)}; this model's output is {output_name!r}")
    logits = np.ascontiguousarray(logits, dtype="<f4")
    entry: dict = {"name": output_name, "datatype": "FP32", "shape": list(logits.shape)}
    response = {"model_name": model_name, "model_version": "1", "outputs": [entry]}
    if isinstance(request.get("id"), str):
        response["id"] = request["id"]
    if wants_binary(request, output_name):
        entry["parameters"] = {"binary_data_size": logits.nbytes}
        header = orjson.dumps(response)
        return header + logits.tobytes(), {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"}
    entry["data"] = logits.reshape(-1).tolist()
    return orjson.dumps(response), {"Content-Type": "application/json"}
