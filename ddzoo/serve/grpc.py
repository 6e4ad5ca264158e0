"""KServe v2 / Triton gRPC (``inference.GRPCInferenceService``) beside the HTTP service, on its own port.

The generated servicer base and message classes come from ``tritonclient.grpc`` (the Triton protos), so
nothing is vendored; the server is ``grpc.aio`` on the HTTP service's event loop and shares its batcher,
verification gate, metrics and API key (``authorization: Bearer <key>`` metadata; the health RPCs stay
open). Failures are answered through the HTTP service's mapping (:mod:`ddzoo.serve.status`): every bad
request is INVALID_ARGUMENT with a one-line, bounded reason, as HTTP's 400; no answer carries internal errors.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import numpy as np

from ddzoo.errors import BadRequestError, echo
from ddzoo.optional import require
from ddzoo.serve.metadata import VERSION, ServedModel
from ddzoo.serve.protocol import DTYPES, check_tensor, finite_images, images_from_bytes
from ddzoo.serve.status import Refusal, refusal_for, unauthenticated

if TYPE_CHECKING:
    from ddzoo.serve.service import ModelService

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


async def start_grpc_server(host: str, port: int, service: ModelService, *, max_message_bytes: int):
    """Start gRPC for ``service`` (its batcher, API key, metrics and timeout, as HTTP's); returns the
    ``grpc.aio`` server (``await server.stop(grace)`` to drain it) and the port it bound."""
    grpc, messages, stubs, model_config = import_grpc()
    from google.protobuf.json_format import ParseDict
    api_key, timeout_s, metrics = service.settings.api_key, service.settings.timeout_s, service.metrics
    expected = None if api_key is None else f"Bearer {api_key}"

    async def refuse(context, refusal: Refusal):
        metrics.refused(refusal)
        await context.abort(getattr(grpc.StatusCode, refusal.grpc_code), refusal.message)

    def authorised(context) -> bool:
        if expected is None:
            return True
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def guarded(method):
        async def call(self, request, context):
            if method.__name__ not in OPEN_RPCS and not authorised(context):
                await refuse(context, unauthenticated("metadata 'authorization: Bearer <key>'"))
            return await method(self, request, context)
        call.__name__ = method.__name__
        return call

    async def check_model(context, model: str, version: str) -> ServedModel:
        problem = service.unavailable(model, version or None)
        if problem is not None:
            await refuse(context, problem)
        return service.model

    class Servicer(stubs.GRPCInferenceServiceServicer):
        @guarded
        async def ServerLive(self, request, context):
            return messages.ServerLiveResponse(live=True)

        @guarded
        async def ServerReady(self, request, context):
            return messages.ServerReadyResponse(ready=service.state["runner"] is not None)

        @guarded
        async def ModelReady(self, request, context):
            ready = service.unavailable(request.name, request.version or None) is None
            return messages.ModelReadyResponse(ready=ready)

        @guarded
        async def ServerMetadata(self, request, context):
            from ddzoo import __version__

            return messages.ServerMetadataResponse(name="ddzoo", version=__version__,
                                                   extensions=["binary_tensor_data"])

        @guarded
        async def ModelMetadata(self, request, context):
            model = await check_model(context, request.name, request.version)
            metadata = {key: value for key, value in model.metadata().items() if key != "parameters"}
            return ParseDict(metadata, messages.ModelMetadataResponse())

        @guarded
        async def ModelConfig(self, request, context):
            model = await check_model(context, request.name, request.version)
            return messages.ModelConfigResponse(config=ParseDict(model.config(), model_config.ModelConfig()))

        @guarded
        async def ModelInfer(self, request, context):
            model = await check_model(context, request.model_name, request.model_version)
            try:
                images = _images(request, model)
                logits = np.ascontiguousarray(await service.submit_when_room(images), dtype="<f4")
            except Exception as err:  # noqa: BLE001 - one mapping for both protocols; a backend failure is logged
                await refuse(context, refusal_for(err, timeout_s))
            names = [o.name for o in request.outputs]
            if names not in ([], [model.output_name]):
                await refuse(context, Refusal(400, f"unknown output(s) {echo(names)}; this model's output is "
                                                   f"{model.output_name!r}", "bad request"))
            metrics.count(200)
            output = messages.ModelInferResponse.InferOutputTensor(name=model.output_name, datatype="FP32",
                                                                    shape=list(logits.shape))
            return messages.ModelInferResponse(model_name=model.name, model_version=VERSION, id=request.id,
                                               outputs=[output], raw_output_contents=[logits.tobytes()])

    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes)]
    server = grpc.aio.server(options=options)
    stubs.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC; pick another --grpc-port (0: no gRPC)")
    await server.start()
    return server, bound


def _images(request, model: ServedModel) -> np.ndarray:
    """The one input tensor of a ModelInferRequest as float32 images, or a 400."""
    if len(request.inputs) != 1:
        raise BadRequestError(f"this model takes exactly one input, {model.input_name!r}; "
                              f"got {len(request.inputs)}")
    tensor = request.inputs[0]
    dtype, shape = check_tensor(tensor.name, tensor.datatype, list(tensor.shape), model.input_name,
                                model.image_shape)
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
