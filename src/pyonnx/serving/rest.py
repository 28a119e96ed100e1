"""KServe v2 REST (with Triton's extensions) as a Starlette ASGI application.

Routes: ``/v2/health/live``, ``/v2/health/ready``, ``/v2`` (server metadata),
``/v2/models/{m}[/versions/{v}]`` (model metadata) with ``/ready``, ``/config``, ``/stats``
and ``/infer``; ``/v2/models/stats``; ``/v2/repository/index`` and
``/v2/repository/models/{m}/load|unload``; ``/metrics`` (Prometheus).

Inference takes JSON tensors (``data``) and the binary tensor data extension: with an
``Inference-Header-Content-Length: N`` header the body is N bytes of JSON followed by the
inputs' raw bytes, in input order, each input saying its size in ``parameters.binary_data_size``.
Outputs are returned in binary form when asked (``parameters.binary_data`` on an output, or
``binary_data_output`` on the request), the same way. Every error is answered with the
protocol's body ``{"error": "..."}`` and a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pyonnx.serving.datatypes import decode_raw, encode_raw, from_json_data, to_json_data
from pyonnx.serving.errors import BadRequest, PayloadTooLarge, RequestTimeout, ServingError
from pyonnx.serving.metrics import CONTENT_TYPE_LATEST, log_access, outcome_of
from pyonnx.serving.server import InferenceServer, ServedModel

HEADER_LENGTH = "inference-header-content-length"
_DISCARD_CAP = 1 << 30  # past this much of an oversized body, stop reading and drop the connection


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _json(obj: object, status: int = 200) -> Response:
    # allow_nan: float outputs may hold NaN/Inf, which KServe clients' JSON parsers accept
    return Response(json.dumps(obj, separators=(",", ":")), status_code=status,
                    media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body; PayloadTooLarge past ``limit`` (the rest is read and dropped, so the
    client sees the 413 instead of a reset connection)."""
    declared = request.headers.get("content-length")
    chunks: list[bytes] = []
    size = 0
    too_large = declared is not None and declared.isdigit() and int(declared) > limit
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            too_large = True
        if too_large:
            chunks.clear()
            if size > _DISCARD_CAP:
                break
            continue
        chunks.append(chunk)
    if too_large:
        raise PayloadTooLarge(f"the request body ({declared or size} bytes) exceeds the server's "
                              f"limit of {limit} bytes")
    return b"".join(chunks)


def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body with its Content-Encoding (gzip or deflate, as tritonclient's
    request_compression_algorithm sends) undone; at most ``limit`` bytes once inflated."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        return body
    if enc not in ("gzip", "deflate"):
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported (gzip, deflate)")
    inflater = zlib.decompressobj(wbits=31 if enc == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise BadRequest(f"the {enc} body does not decompress: {e}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the request body inflates past the server's limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequest(f"the {enc} body is truncated")
    return out


def _params(obj: dict, where: str) -> dict:
    p = obj.get("parameters", {})
    if not isinstance(p, dict):
        raise BadRequest(f"{where}: 'parameters' must be an object")
    return p


def _decode_request(model: ServedModel, body: bytes, header_length: str | None):
    """Parse an infer request: (input arrays, [(output name, binary?)], request id, timeout_s)."""
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not a length "
                             f"within the {len(body)}-byte body")
        n = int(header_length)
        header, binary = body[:n], memoryview(body)[n:]
    else:
        header, binary = body, memoryview(b"")
    try:
        req = json.loads(header)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the request is not valid JSON: {e}") from None
    if not isinstance(req, dict):
        raise BadRequest("the request must be a JSON object")
    params = _params(req, "request")
    inputs = req.get("inputs")
    if not isinstance(inputs, list):
        raise BadRequest("the request must have an 'inputs' list")
    arrays = {}
    offset = 0
    for i, inp in enumerate(inputs):
        if not isinstance(inp, dict):
            raise BadRequest(f"inputs[{i}] must be an object")
        name, datatype, shape = inp.get("name"), inp.get("datatype"), inp.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str) or not isinstance(shape, list):
            raise BadRequest(f"inputs[{i}] needs 'name' (string), 'datatype' (string) and "
                             f"'shape' (list)")
        if name in arrays:
            raise BadRequest(f"input {name!r} is given twice")
        p = _params(inp, f"input {name!r}")
        if "shared_memory_region" in p:
            raise BadRequest(f"input {name!r}: shared memory is not supported by this server")
        model.input_spec(name, datatype, shape)
        if "binary_data_size" in p:
            size = p["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"input {name!r}: binary_data_size must be a non-negative integer")
            chunk = binary[offset:offset + size]
            if len(chunk) < size:
                raise BadRequest(f"input {name!r}: binary_data_size is {size} but only "
                                 f"{len(chunk)} bytes of binary data remain (truncated body?)")
            offset += size
            arrays[name] = decode_raw(chunk, datatype, shape, name)
        elif "data" in inp:
            arrays[name] = from_json_data(inp["data"], datatype, shape, name)
        else:
            raise BadRequest(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data follow the JSON header "
                         f"that no input claims")
    binary_default = params.get("binary_data_output", False) is True
    outputs = req.get("outputs", [])
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list")
    wanted = []
    for i, out in enumerate(outputs):
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise BadRequest(f"outputs[{i}] must be an object with a 'name'")
        p = _params(out, f"output {out['name']!r}")
        for unsupported in ("classification", "shared_memory_region"):
            if unsupported in p:
                raise BadRequest(f"output {out['name']!r}: {unsupported} is not supported by "
                                 f"this server")
        wanted.append((out["name"], p.get("binary_data", binary_default) is True))
    names = model.output_names([w[0] for w in wanted])
    if not wanted:
        wanted = [(n, binary_default) for n in names]
    timeout_s = None
    if "timeout" in params:  # Triton's per-request timeout, in microseconds
        t = params["timeout"]
        if not isinstance(t, int) or isinstance(t, bool) or t <= 0:
            raise BadRequest("parameters.timeout must be a positive number of microseconds")
        timeout_s = t / 1e6
    rid = req.get("id")
    return arrays, wanted, (rid if isinstance(rid, str) else None), timeout_s


def _encode_response(model: ServedModel, results: dict, wanted, rid) -> Response:
    outs, chunks = [], []
    for name, binary in wanted:
        arr = results[name]
        spec = model.output_spec(name)
        entry = {"name": name, "datatype": spec.datatype, "shape": list(arr.shape)}
        if binary:
            raw = encode_raw(arr, spec.datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = to_json_data(arr, spec.datatype, name)
        outs.append(entry)
    resp = {"model_name": model.name, "model_version": model.version, "outputs": outs}
    if rid is not None:
        resp["id"] = rid
    header = json.dumps(resp, separators=(",", ":")).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(header + b"".join(chunks), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))})


def build_app(server: InferenceServer) -> Starlette:
    """The ASGI application serving ``server`` over KServe v2 REST."""
    limit = server.defaults.max_request_bytes

    def mv(request: Request) -> tuple[str, str]:
        return request.path_params["name"], request.path_params.get("version", "")

    async def live(request: Request) -> Response:
        return Response(status_code=200 if server.live() else 400)

    async def ready(request: Request) -> Response:
        return Response(status_code=200 if server.ready() else 400)

    async def server_metadata(request: Request) -> Response:
        return _json(server.metadata())

    async def model_metadata(request: Request) -> Response:
        return _json(server.model_metadata(*mv(request)))

    async def model_ready(request: Request) -> Response:
        name, version = mv(request)
        server.model(name, version)  # unknown model or bad name: the error body says why
        return Response(status_code=200 if server.model_ready(name, version) else 400)

    async def model_config(request: Request) -> Response:
        return _json(server.model(*mv(request)).settings.config_json())

    async def model_stats(request: Request) -> Response:
        name = request.path_params.get("name", "")
        return _json({"model_stats": server.statistics(name, request.path_params.get("version", ""))})

    async def infer(request: Request) -> Response:
        name, version = mv(request)
        start = time.monotonic_ns()
        model = None
        try:
            server.check_accepting()
            model = server.model(name, version)
            body = await _read_body(request, limit)
            body = await run_in_threadpool(_decompress, body,
                                           request.headers.get("content-encoding"), limit)
            arrays, wanted, rid, timeout_s = await run_in_threadpool(
                _decode_request, model, body, request.headers.get(HEADER_LENGTH))
            future = model.submit(arrays, timeout_s)
            wait = min(timeout_s or model.settings.request_timeout_s,
                       model.settings.request_timeout_s)
            try:
                results = await asyncio.wait_for(asyncio.wrap_future(future), wait)
            except asyncio.TimeoutError:
                raise RequestTimeout(f"model {name!r}: no result within the request timeout of "
                                     f"{wait:g} s") from None
            response = await run_in_threadpool(_encode_response, model, results, wanted, rid)
        except ServingError as e:
            if model is not None:
                model.runner.stats.record_failure(time.monotonic_ns() - start)
            server.metrics.count(name, version or (model.version if model else ""), "http",
                                 outcome_of(e.http_status))
            return _error(e.http_status, str(e))
        server.metrics.count(name, model.version, "http", "success")
        return response

    async def repository_index(request: Request) -> Response:
        body = await _read_body(request, limit)
        ready_only = False
        if body.strip():
            try:
                req = json.loads(body)
            except ValueError as e:
                raise BadRequest(f"the request is not valid JSON: {e}") from None
            ready_only = isinstance(req, dict) and req.get("ready") is True
        return _json(server.index(ready_only))

    async def repository_load(request: Request) -> Response:
        name = request.path_params["name"]
        body = await _read_body(request, limit)
        if body.strip():
            try:
                req = json.loads(body)
            except ValueError as e:
                raise BadRequest(f"the request is not valid JSON: {e}") from None
            if isinstance(req, dict) and req.get("parameters"):
                raise BadRequest("load parameters (config override, files) are not supported; "
                                 "edit the repository and load again")
        await run_in_threadpool(server.load, name)
        return Response(status_code=200)

    async def repository_unload(request: Request) -> Response:
        await _read_body(request, limit)
        server.unload(request.path_params["name"])
        return Response(status_code=200)

    async def metrics(request: Request) -> Response:
        return Response(server.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def serving_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServingError)
        return _error(exc.http_status, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def internal_error(request: Request, exc: Exception) -> Response:
        return _error(500, f"internal server error: {type(exc).__name__}: {exc}")

    m = "/v2/models/{name}"
    mv_ = "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/models/stats", model_stats, methods=["GET"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", repository_load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", repository_unload, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    for prefix in (m, mv_):
        routes += [
            Route(prefix, model_metadata, methods=["GET"]),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(prefix + "/config", model_config, methods=["GET"]),
            Route(prefix + "/stats", model_stats, methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
        ]
    app = Starlette(routes=routes, exception_handlers={
        ServingError: serving_error, HTTPException: http_error, Exception: internal_error})
    return AccessLog(app)


class AccessLog:
    """ASGI middleware writing one JSON access-log line per HTTP request."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        info = {"status": 500, "bytes_out": 0, "bytes_in": 0}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                info["bytes_in"] += len(message.get("body", b""))
            return message

        async def counting_send(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
            elif message["type"] == "http.response.body":
                info["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            client = scope.get("client")
            log_access(protocol="http", method=scope["method"], path=scope["path"],
                       status=info["status"], ms=round((time.monotonic() - start) * 1000, 3),
                       bytes_in=info["bytes_in"], bytes_out=info["bytes_out"],
                       client=f"{client[0]}:{client[1]}" if client else None)
