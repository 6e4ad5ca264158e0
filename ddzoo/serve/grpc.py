"""KServe v2 / Triton gRPC (``inference.GRPCInferenceService``) beside the HTTP service, on its own port.

The generated servicer base and message classes come from ``tritonclient.grpc`` (the Triton protos), so
nothing is vendored; the server is ``grpc.aio`` on the HTTP service's event loop and shares its batcher,
verification gate, metrics and API key (``authorization: Bearer <key>`` metadata; the health RPCs stay
open). Failures are answered through the HTTP service's mapping (:mod:`ddzoo.serve.status`): every bad
request is INVALID_ARGUMENT with a one-line, bounded reason, as HTTP's 400; no answer carries internal errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import numpy as np

from ddzoo.errors import BadRequestError, echo
from ddzoo.optional import require
from ddzoo.serve.protocol import DTYPES, check_tensor, finite_images, images_from_bytes
from ddzoo.serve.status import Refusal, refusal_for

OPEN_RPCS = ("ServerLive", "ServerReady")


def import_grpc():
    """grpc and tritonclient's generated service modules (the ``serve`` extra)."""
    grpc = require("grpc", "zoo serve over gRPC", extra="serve", package="grpcio")
    service = require("tritonclient.grpc.service_pb2", "zoo serve over gRPC", extra="serve", package="tritonclient")
    stubs = require("tritonclient.grpc.service_pb2_grpc", "zoo serve over gRPC", extra="serve",
                    package="tritonclient")
    config = require("tritonclient.grpc.model_config_pb2", "zoo serve over gRPC", extra="serve",
                     package="tritonclient")
    return grpc, service, stubs, config


async def start_grpc_server(host: str, port: int, *, name: str, max_message_bytes: int, api_key: str | None,
                            unavailable: Callable[[str, str | None], Refusal | None],
                            submit: Callable[[np.ndarray], Awaitable[np.ndarray]],
                            describe: Callable[[], dict], count: Callable[[int, str | None], None],
                            timeout_s: float = 30.0):
    """Start the gRPC service; returns the ``grpc.aio`` server (``await server.stop(grace)`` to drain it).

    Args:
        unavailable: ``(model, version) -> Refusal | None``, the HTTP service's.
        submit: images -> logits through the shared batcher (raises QueueFullError / TimeoutError).
        describe: the served model: ``input_name``, ``image_shape``, ``output_name``, ``classes``, ``platform``,
            ``max_batch``, ``max_delay_us``, ``instances``, ``ready``.
        count: records an answer in the shared metrics (HTTP-equivalent status, failure reason).
        timeout_s: the per-request timeout ``submit`` applies (for the message when it expires).
    """
    grpc, service, stubs, model_config = import_grpc()
    expected = None if api_key is None else f"Bearer {api_key}"

    async def refuse(context, refusal: Refusal):
        count(refusal.status, refusal.reason)
        await context.abort(getattr(grpc.StatusCode, refusal.grpc_code), refusal.message)

    def authorised(context) -> bool:
        if expected is None:
            return True
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def guarded(method):
        async def call(self, request, context):
            if method.__name__ not in OPEN_RPCS and not authorised(context):
                await refuse(context, Refusal(401, "missing or wrong API key; send metadata 'authorization: "
                                                   "Bearer <key>'", "unauthenticated"))
            return await method(self, request, context)
        call.__name__ = method.__name__
        return call

    async def check_model(context, model: str, version: str) -> dict:
        problem = unavailable(model, version or None)
        if problem is not None:
            await refuse(context, problem)
        return describe()

    class Servicer(stubs.GRPCInferenceServiceServicer):
        @guarded
        async def ServerLive(self, request, context):
            return service.ServerLiveResponse(live=True)

        @guarded
        async def ServerReady(self, request, context):
            return service.ServerReadyResponse(ready=describe()["ready"])

        @guarded
        async def ModelReady(self, request, context):
            ready = unavailable(request.name, request.version or None) is None
            return service.ModelReadyResponse(ready=ready)

        @guarded
        async def ServerMetadata(self, request, context):
            from ddzoo import __version__

            return service.ServerMetadataResponse(name="ddzoo", version=__version__,
                                                  extensions=["binary_tensor_data"])

        @guarded
        async def ModelMetadata(self, request, context):
            model = await check_model(context, request.name, request.version)
            tensor = service.ModelMetadataResponse.TensorMetadata
            return service.ModelMetadataResponse(
                name=name, versions=["1"], platform=model["platform"],
                inputs=[tensor(name=model["input_name"], datatype="FP32", shape=[-1, *model["image_shape"]])],
                outputs=[tensor(name=model["output_name"], datatype="FP32", shape=[-1, model["classes"]])])

        @guarded
        async def ModelConfig(self, request, context):
            model = await check_model(context, request.name, request.version)
            config = model_config.ModelConfig(
                name=name, platform=model["platform"], max_batch_size=model["max_batch"],
                input=[model_config.ModelInput(name=model["input_name"], data_type=model_config.TYPE_FP32,
                                               dims=list(model["image_shape"]))],
                output=[model_config.ModelOutput(name=model["output_name"], data_type=model_config.TYPE_FP32,
                                                 dims=[model["classes"]])],
                dynamic_batching=model_config.ModelDynamicBatching(max_queue_delay_microseconds=model["max_delay_us"]),
                instance_group=[model_config.ModelInstanceGroup(count=model["instances"],
                                                                kind=model_config.ModelInstanceGroup.KIND_AUTO)])
            return service.ModelConfigResponse(config=config)

        @guarded
        async def ModelInfer(self, request, context):
            model = await check_model(context, request.model_name, request.model_version)
            try:
                images = _images(request, model)
                logits = np.ascontiguousarray(await submit(images), dtype="<f4")
            except Exception as err:  # noqa: BLE001 - one mapping for both protocols; a backend failure is logged
                await refuse(context, refusal_for(err, timeout_s))
            names = [o.name for o in request.outputs]
            if names not in ([], [model["output_name"]]):
                await refuse(context, Refusal(400, f"unknown output(s) {echo(names)}; this model's output is "
                                                   f"{model['output_name']!r}", "bad request"))
            count(200, None)
            output = service.ModelInferResponse.InferOutputTensor(name=model["output_name"], datatype="FP32",
                                                                   shape=list(logits.shape))
            return service.ModelInferResponse(model_name=name, model_version="1", id=request.id, outputs=[output],
                                              raw_output_contents=[logits.tobytes()])

    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes)]
    server = grpc.aio.server(options=options)
    stubs.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC; pick another --grpc-port (0: no gRPC)")
    await server.start()
    return server, bound


def _images(request, model: dict) -> np.ndarray:
    """The one input tensor of a ModelInferRequest as float32 images, or a 400."""
    if len(request.inputs) != 1:
        raise BadRequestError(f"this model takes exactly one input, {model['input_name']!r}; "
                              f"got {len(request.inputs)}")
    tensor = request.inputs[0]
    dtype, shape = check_tensor(tensor.name, tensor.datatype, list(tensor.shape), model["input_name"],
                                tuple(model["image_shape"]))
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise BadRequestError("raw_input_contents must hold exactly one tensor")
        return images_from_bytes(request.raw_input_contents[0], dtype, shape)
    values = {"FP32": tensor.contents.fp32_contents, "FP64": tensor.contents.fp64_contents}.get(tensor.datatype)
    if values is None or len(values) == 0:
        raise BadRequestError(f"send the pixels as raw_input_contents or {tensor.datatype.lower()}_contents")
    if len(values) != int(np.prod(shape)):
        raise BadRequestError(f"the contents hold {len(values)} values, shape {shape} needs {int(np.prod(shape))}")
    return finite_images(np.asarray(values, dtype=DTYPES[tensor.datatype]), shape)
