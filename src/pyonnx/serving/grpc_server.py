"""KServe v2 over gRPC: the ``inference.GRPCInferenceService`` service on grpcio.

The messages are pyonnx's own (``pyonnx.serving.proto.kserve_pb2``, package
``pyonnx.serving.kserve``), wire-compatible with the protocol; the service is registered by
hand under the protocol's name, so clients call ``/inference.GRPCInferenceService/ModelInfer``
as they would on Triton, and tritonclient's own ``inference.*`` messages can live in the same
process. Inputs come as ``raw_input_contents`` (what tritonclient sends) or typed
``contents``; outputs always go back as ``raw_output_contents``.
"""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import numpy as np

from pyonnx.serving.datatypes import KSERVE_TO_NUMPY, decode_raw, element_count, encode_raw
from pyonnx.serving.errors import BadRequest, RequestTimeout, ServingError
from pyonnx.serving.metrics import log_access, outcome_of
from pyonnx.serving.proto import kserve_pb2 as pb
from pyonnx.serving.server import InferenceServer

SERVICE = "inference.GRPCInferenceService"

# datatype -> the InferTensorContents field that carries it (FP16/BF16 travel only as raw bytes)
_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def _from_contents(inp, name: str) -> np.ndarray:
    field = _CONTENTS_FIELD.get(inp.datatype)
    if field is None:
        raise BadRequest(f"input {name!r}: {inp.datatype} data must come in raw_input_contents")
    values = list(getattr(inp.contents, field))
    shape = list(inp.shape)
    count = element_count(shape, name)
    if len(values) != count:
        raise BadRequest(f"input {name!r}: {len(values)} elements in contents.{field}, shape "
                         f"{shape} needs {count}")
    if inp.datatype == "BYTES":
        return np.array(values, dtype=object).reshape(shape)
    dtype = KSERVE_TO_NUMPY[inp.datatype]
    arr = np.array(values)
    if dtype.kind in "iu" and values:
        info = np.iinfo(dtype)
        if min(values) < info.min or max(values) > info.max:
            raise BadRequest(f"input {name!r}: a value is out of the range of {inp.datatype}")
    return arr.astype(dtype).reshape(shape)


class _Service:
    """The RPC methods; each raises ServingError, turned into a gRPC status by ``_wrap``."""

    def __init__(self, server: InferenceServer) -> None:
        self.server = server

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=self.server.live())

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.server.ready())

    def ModelReady(self, request, context):
        return pb.ModelReadyResponse(ready=self.server.model_ready(request.name, request.version))

    def ServerMetadata(self, request, context):
        md = self.server.metadata()
        return pb.ServerMetadataResponse(name=md["name"], version=md["version"],
                                         extensions=md["extensions"])

    def ModelMetadata(self, request, context):
        md = self.server.model_metadata(request.name, request.version)
        resp = pb.ModelMetadataResponse(name=md["name"], versions=md["versions"],
                                        platform=md["platform"])
        for key, target in (("inputs", resp.inputs), ("outputs", resp.outputs)):
            for t in md[key]:
                target.add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        return resp

    def ModelConfig(self, request, context):
        m = self.server.model(request.name, request.version)
        return pb.ModelConfigResponse(config=m.settings.to_config())

    def ModelStatistics(self, request, context):
        resp = pb.ModelStatisticsResponse()
        for s in self.server.statistics(request.name, request.version):
            ms = resp.model_stats.add(name=s["name"], version=s["version"],
                                      last_inference=s["last_inference"],
                                      inference_count=s["inference_count"],
                                      execution_count=s["execution_count"])
            for k, d in s["inference_stats"].items():
                getattr(ms.inference_stats, k).CopyFrom(pb.StatisticDuration(**d))
            for b in s["batch_stats"]:
                ms.batch_stats.add(batch_size=b["batch_size"],
                                   compute_input=pb.StatisticDuration(**b["compute_input"]),
                                   compute_infer=pb.StatisticDuration(**b["compute_infer"]),
                                   compute_output=pb.StatisticDuration(**b["compute_output"]))
        return resp

    def RepositoryIndex(self, request, context):
        resp = pb.RepositoryIndexResponse()
        for e in self.server.index(request.ready):
            resp.models.add(name=e["name"], version=e.get("version", ""), state=e["state"],
                            reason=e.get("reason", ""))
        return resp

    def RepositoryModelLoad(self, request, context):
        if request.parameters:
            raise BadRequest("load parameters (config override, files) are not supported; edit "
                             "the repository and load again")
        self.server.load(request.model_name)
        return pb.RepositoryModelLoadResponse()

    def RepositoryModelUnload(self, request, context):
        self.server.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    def ModelInfer(self, request, context):
        start = time.monotonic_ns()
        name, version = request.model_name, request.model_version
        model = None
        try:
            self.server.check_accepting()
            model = self.server.model(name, version)
            resp = self._infer(model, request, context)
        except ServingError as e:
            if model is not None:
                model.runner.stats.record_failure(time.monotonic_ns() - start)
            self.server.metrics.count(name, version or (model.version if model else ""), "grpc",
                                      outcome_of(e.http_status))
            raise
        self.server.metrics.count(name, model.version, "grpc", "success")
        return resp

    def _infer(self, model, request, context):
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise BadRequest(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs; "
                             f"give one per input or none")
        arrays = {}
        for i, inp in enumerate(request.inputs):
            if inp.name in arrays:
                raise BadRequest(f"input {inp.name!r} is given twice")
            if "shared_memory_region" in inp.parameters:
                raise BadRequest(f"input {inp.name!r}: shared memory is not supported by this "
                                 f"server")
            shape = list(inp.shape)
            model.input_spec(inp.name, inp.datatype, shape)
            if raw:
                if inp.HasField("contents"):
                    raise BadRequest(f"input {inp.name!r} has both contents and raw_input_contents")
                arrays[inp.name] = decode_raw(raw[i], inp.datatype, shape, inp.name)
            else:
                arrays[inp.name] = _from_contents(inp, inp.name)
        for out in request.outputs:
            if "classification" in out.parameters or "shared_memory_region" in out.parameters:
                raise BadRequest(f"output {out.name!r}: classification and shared memory are "
                                 f"not supported by this server")
        names = model.output_names([o.name for o in request.outputs])
        timeout_s = None
        if "timeout" in request.parameters:
            t = request.parameters["timeout"].int64_param
            if t <= 0:
                raise BadRequest("parameters.timeout must be a positive number of microseconds")
            timeout_s = t / 1e6
        remaining = context.time_remaining()
        if remaining is not None:
            timeout_s = remaining if timeout_s is None else min(timeout_s, remaining)
        future = model.submit(arrays, timeout_s)
        wait = min(timeout_s or model.settings.request_timeout_s, model.settings.request_timeout_s)
        try:
            results = future.result(timeout=wait)
        except futures.TimeoutError:
            future.cancel()
            raise RequestTimeout(f"model {model.name!r}: no result within the request timeout "
                                 f"of {wait:g} s") from None
        resp = pb.ModelInferResponse(model_name=model.name, model_version=model.version,
                                     id=request.id)
        for n in names:
            arr = results[n]
            dt = model.output_spec(n).datatype
            resp.outputs.add(name=n, datatype=dt, shape=list(arr.shape))
            resp.raw_output_contents.append(encode_raw(arr, dt))
        return resp

    def ModelStreamInfer(self, request_iterator, context):
        for request in request_iterator:
            try:
                yield pb.ModelStreamInferResponse(infer_response=self.ModelInfer(request, context))
            except ServingError as e:
                yield pb.ModelStreamInferResponse(error_message=str(e))


_METHODS = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
    "ModelConfig": (pb.ModelConfigRequest, pb.ModelConfigResponse),
    "ModelStatistics": (pb.ModelStatisticsRequest, pb.ModelStatisticsResponse),
    "RepositoryIndex": (pb.RepositoryIndexRequest, pb.RepositoryIndexResponse),
    "RepositoryModelLoad": (pb.RepositoryModelLoadRequest, pb.RepositoryModelLoadResponse),
    "RepositoryModelUnload": (pb.RepositoryModelUnloadRequest, pb.RepositoryModelUnloadResponse),
}


def _wrap(method_name: str, fn):
    """``fn`` with ServingErrors turned into gRPC statuses, and an access-log line per call."""
    def call(request, context):
        start = time.monotonic()
        status = "OK"
        try:
            return fn(request, context)
        except ServingError as e:
            status = e.grpc_code
            context.abort(getattr(grpc.StatusCode, e.grpc_code), str(e))
        except Exception as e:  # noqa: BLE001  (reported to the client, not swallowed)
            status = "INTERNAL"
            context.abort(grpc.StatusCode.INTERNAL,
                          f"internal server error: {type(e).__name__}: {e}")
        finally:
            peer = context.peer()
            log_access(protocol="grpc", method=method_name, status=status,
                       ms=round((time.monotonic() - start) * 1000, 3), client=peer,
                       model=getattr(request, "model_name", None) or getattr(request, "name", None))
    return call


def build_grpc_server(server: InferenceServer, address: str, max_workers: int = 32) -> tuple[grpc.Server, int]:
    """A grpcio server for ``server`` bound to ``address`` ("host:port"; port 0 picks one);
    returns it (not yet started) and the bound port."""
    service = _Service(server)
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            _wrap(name, getattr(service, name)), request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString)
        for name, (req, resp) in _METHODS.items()
    }
    handlers["ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
        service.ModelStreamInfer, request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelStreamInferResponse.SerializeToString)
    limit = server.defaults.max_request_bytes
    g = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                               thread_name_prefix="pyonnx-grpc"),
                    options=[("grpc.max_receive_message_length", limit),
                             ("grpc.max_send_message_length", -1),
                             ("grpc.so_reuseport", 0)])
    g.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = g.add_insecure_port(address)
    if port == 0:
        raise OSError(98, "cannot bind the gRPC port", address)
    return g, port
