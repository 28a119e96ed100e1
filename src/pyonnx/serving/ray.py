"""pyonnx on Ray: batch inference over Ray Data, and the KServe v2 REST server on Ray Serve.

Needs the ``ray`` extra (``pip install "pyonnx[ray]"``). Both connect to the Ray cluster at
``RAY_ADDRESS`` when that is set, and otherwise start (or reuse) a local Ray instance.

- :func:`batch_inference`: runs a model over a dataset with ``map_batches`` on a fixed pool of
  actors, each holding one :class:`pyonnx.InferenceSession`; Ray Data reports progress.
- :func:`serve_deployment`: a Ray Serve application answering the same KServe v2 REST routes as
  ``pyonnx serve`` (the same ASGI application, in each replica).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import ray

from pyonnx.errors import InvalidArgument


def init_ray(**kwargs: Any) -> None:
    """Connect to ``RAY_ADDRESS`` if set, else start a local Ray; no-op when already connected.

    ``kwargs`` go to ``ray.init`` (e.g. ``num_cpus``, ``object_store_memory``)."""
    if ray.is_initialized():
        return
    kwargs.setdefault("include_dashboard", False)
    kwargs.setdefault("log_to_driver", False)
    address = os.environ.get("RAY_ADDRESS")
    if address:
        kwargs.setdefault("address", address)
    ray.init(**kwargs)


def _model_bytes(model: str | os.PathLike | bytes) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    return Path(model).read_bytes()


class _SessionActor:
    """One actor of the pool: an InferenceSession, run on each batch it is handed."""

    def __init__(self, model: bytes, inputs: dict[str, str], outputs: list[str] | None,
                 prefix: str, keep_inputs: bool) -> None:
        from pyonnx.runtime import InferenceSession

        self.session = InferenceSession(model)
        self.inputs = inputs            # model input name -> dataset column
        self.outputs = outputs
        self.prefix = prefix
        self.keep_inputs = keep_inputs
        self.names = outputs or [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        for name, column in self.inputs.items():
            col = batch[column]
            if col.dtype == object:  # a column of arrays Ray could not stack: stack them here
                col = np.stack(list(col))
            feeds[name] = col
        results = self.session.run(self.names, feeds)
        out = dict(batch) if self.keep_inputs else {}
        for name, value in zip(self.names, results):
            out[self.prefix + name] = value
        return out


def batch_inference(dataset, model: str | os.PathLike | bytes, *, batch_size: int = 64,
                    concurrency: int = 2, num_cpus: float = 1.0,
                    input_columns: dict[str, str] | None = None,
                    output_names: list[str] | None = None, output_prefix: str = "",
                    keep_inputs: bool = True, progress: bool = True):
    """Run ``model`` on every row of ``dataset`` (a ``ray.data.Dataset``, or anything
    ``ray.data.from_items`` takes) and return the dataset with the outputs as new columns.

    Each row holds one sample (without the batch dimension); rows are batched ``batch_size``
    at a time along dimension 0, which must be dynamic on every input and output of the model.
    ``concurrency`` actors each hold one session (``num_cpus`` each; they hold those CPUs for
    the whole job, so leave Ray CPUs for the tasks that read or reshape the dataset upstream,
    or those tasks wait forever). ``input_columns`` maps model
    input names to dataset columns (default: the same names). The result is lazy, like every
    Ray dataset: ``.take_all()``, ``.to_pandas()`` or ``.write_parquet()`` runs it.
    """
    from ray.data import DataContext

    from pyonnx.runtime import InferenceSession

    init_ray()
    blob = _model_bytes(model)
    sess = InferenceSession(blob)
    for a in list(sess.get_inputs()) + list(sess.get_outputs()):
        if not a.shape or isinstance(a.shape[0], int):
            raise InvalidArgument(
                f"batch_inference batches along dimension 0, which must be dynamic on every "
                f"input and output; {a.name!r} has shape {a.shape}")
    names = [a.name for a in sess.get_inputs()]
    inputs = {n: (input_columns or {}).get(n, n) for n in names}
    if batch_size < 1 or concurrency < 1:
        raise InvalidArgument("batch_size and concurrency must be >= 1")
    if not isinstance(dataset, ray.data.Dataset):
        dataset = ray.data.from_items(list(dataset))
    DataContext.get_current().enable_progress_bars = progress
    return dataset.map_batches(
        _SessionActor, batch_size=batch_size, batch_format="numpy", concurrency=concurrency,
        num_cpus=num_cpus, fn_constructor_kwargs={
            "model": blob, "inputs": inputs, "outputs": output_names, "prefix": output_prefix,
            "keep_inputs": keep_inputs})


class _KServeIngress:
    """A Ray Serve replica: an InferenceServer and its REST app; requests go through the app."""

    def __init__(self, location: str, defaults) -> None:
        from pyonnx.serving.rest import build_app
        from pyonnx.serving.server import InferenceServer

        self.server = InferenceServer(location, defaults)
        self.server.start()
        self.app = build_app(self.server)

    async def __call__(self, request):
        from starlette.responses import Response

        messages: list[dict] = []

        async def send(message: dict) -> None:
            messages.append(message)

        await self.app(request.scope, request.receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])
                   if k.lower() != b"content-length"}
        return Response(body, status_code=start["status"], headers=headers)


def serve_deployment(location: str | os.PathLike, *, defaults=None, num_replicas: int = 1,
                     name: str = "pyonnx-kserve", ray_actor_options: dict | None = None):
    """A Ray Serve application (``serve.run(app, route_prefix="/")``) answering the KServe v2
    REST routes of ``pyonnx serve`` for the model or repository at ``location`` (a path every
    replica can read)."""
    from ray import serve

    from pyonnx.serving.config import ServerDefaults

    deployment = serve.deployment(name=name, num_replicas=num_replicas,
                                  ray_actor_options=ray_actor_options or {"num_cpus": 0.5})(
        _KServeIngress)
    return deployment.bind(str(Path(location).resolve()), defaults or ServerDefaults())
