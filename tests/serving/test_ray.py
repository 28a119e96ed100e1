"""pyonnx on Ray: batch inference over Ray Data with an actor pool, and the KServe v2 REST routes
on Ray Serve answering tritonclient.http. Ray starts small: 2 CPUs, a 200 MB object store, no
dashboard, usage statistics off, ephemeral ports."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'pyonnx[ray]')")
pytest.importorskip("ray.data", reason="the ray extra (ray[data]) is not installed")
pytest.importorskip("ray.serve", reason="the ray extra (ray[serve]) is not installed")

import pyonnx  # noqa: E402
from tests.serving.conftest import SRC, save_add_model  # noqa: E402


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # workers are new processes: they must find this checkout's pyonnx too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield
    try:
        from ray import serve
        serve.shutdown()
    finally:
        ray.shutdown()


def test_batch_inference_over_10000_rows_with_2_actors(local_ray, tmp_path):
    from pyonnx.serving.ray import batch_inference

    model = save_add_model(tmp_path / "add.onnx")
    x = np.random.default_rng(0).standard_normal((10_000, 4)).astype(np.float32)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    # one column, "data", a row per sample, in 8 blocks so that both actors get work (made
    # from 8 arrays rather than repartitioned: the two actors hold both of Ray's CPUs, and a
    # repartition task would wait for a CPU forever)
    ds = ray.data.from_numpy(np.array_split(x, 8))
    out = batch_inference(ds, model, batch_size=256, concurrency=2,
                          input_columns={"x": "data"}, progress=False)
    got = out.to_pandas()
    assert len(got) == 10_000
    want_y, want_z = pyonnx.InferenceSession(str(model)).run(None, {"x": x})
    assert np.array_equal(np.stack(got["y"].to_numpy()), want_y)
    assert np.array_equal(np.stack(got["z"].to_numpy()), want_z)
    assert np.array_equal(np.stack(got["data"].to_numpy()), x)   # the inputs are kept


def test_batch_inference_refuses_a_model_without_a_batch_dimension(local_ray, tmp_path):
    from onnx import TensorProto, helper

    from pyonnx.errors import InvalidArgument
    from pyonnx.serving.ray import batch_inference

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InvalidArgument, match="dimension 0"):
        batch_inference([{"x": np.zeros(4, np.float32)}], m.SerializeToString())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_serve_deployment_answers_tritonclient_http(local_ray, client, tmp_path):
    from ray import serve

    from pyonnx.serving.ray import serve_deployment

    repo = tmp_path / "repo"
    save_add_model(repo / "add" / "1" / "model.onnx")
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(serve_deployment(repo), route_prefix="/", name="pyonnx")
    result = client("http_add.py", f"127.0.0.1:{port}")
    assert result == {"live": True, "ready": True,
                      "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                      "max_batch_size": 0, "json": True, "binary": True}
