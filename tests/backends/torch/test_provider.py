"""The torch execution provider (issue 15): names and options, fallback of unclaimed nodes to
the CPU provider (counted in the profile), real models against onnxruntime, the claimed backend
node cases, DLPack exchange with torch, and bad devices and feeds."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch provider needs the torch extra (pip "
                                            "install 'pyonnx[torch]')")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.errors import InvalidArgument  # noqa: E402
from tests.backends.torch.cases import claimed_cases, pass_rate, run_with_provider  # noqa: E402
from tests.models.test_real_models import (  # noqa: E402
    SHARED,
    _SKIP_SHARED,
    assert_close_to_reference,
    shared_feeds,
)

TORCH = "TorchExecutionProvider"
CPU = "CPUExecutionProvider"
HAS_CUDA = torch.cuda.is_available()


def _model(nodes, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


SMALL = _model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                helper.make_node("Sigmoid", ["r"], ["y"], name="sigmoid")])


def _x(seed=0):
    return np.random.default_rng(seed).standard_normal((2, 3)).astype(np.float32)


def test_names_are_offered_without_importing_torch_until_asked():
    names = pyonnx.get_available_providers()
    assert TORCH in names and names[-1] == CPU
    assert ("CUDAExecutionProvider" in names) == HAS_CUDA


def test_small_model_runs_on_torch_and_matches_the_cpu_provider():
    sess = pyonnx.InferenceSession(SMALL, providers=[TORCH, CPU])
    assert sess.get_providers() == [TORCH, CPU]
    got = sess.run(None, {"x": _x()})[0]
    want = pyonnx.InferenceSession(SMALL).run(None, {"x": _x()})[0]
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_unclaimed_nodes_fall_back_to_cpu_and_the_profile_counts_them():
    # Det is on the exclusion list: it runs on the CPU provider between torch nodes
    model = _model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                    helper.make_node("Hardmax", ["r"], ["h"], name="hardmax", axis=1),
                    helper.make_node("Det", ["x33"], ["d"], name="det"),
                    helper.make_node("Add", ["r", "h"], ["rh"], name="add"),
                    helper.make_node("Mul", ["rh", "d"], ["y"], name="mul")])
    m = onnx.load_from_string(model)
    m.graph.input.append(helper.make_tensor_value_info("x33", TensorProto.FLOAT, [3, 3]))
    model = m.SerializeToString()
    so = pyonnx.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = "torchprof"
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    sess = pyonnx.InferenceSession(model, so, providers=[TORCH])
    where = {n.name: s.ep_name for s in sess.get_provider_graph_assignment_info()
             for n in s.get_nodes()}
    assert where["relu"] == where["hardmax"] == where["add"] == where["mul"] == TORCH
    assert where["det"] == CPU
    feeds = {"x": _x(), "x33": np.eye(3, dtype=np.float32) * 2}
    got = sess.run(["y"], feeds)[0]
    want = pyonnx.InferenceSession(model).run(["y"], feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    path = sess.end_profiling()
    try:
        events = json.load(open(path))
    finally:
        os.remove(path)
    by_provider = {}
    for e in events:
        if e.get("cat") == "Node":
            p = e["args"]["provider"]
            by_provider[p] = by_provider.get(p, 0) + 1
    assert by_provider.get(CPU, 0) >= 1 and by_provider.get(TORCH, 0) >= 3


@_SKIP_SHARED
@pytest.mark.parametrize("name", ["bert_small.onnx", "gpt2_small.onnx", "silero_vad.onnx",
                                  "magika_standard_v3_3.onnx", "vit_tiny.onnx"])
def test_shared_models_match_onnxruntime(name):
    path = os.path.join(SHARED, name)
    feeds = shared_feeds(name, batch=1, seq=32)
    ref = ort.InferenceSession(path, providers=[CPU]).run(None, feeds)
    sess = pyonnx.InferenceSession(path, providers=[TORCH, CPU])
    assert_close_to_reference(sess.run(None, feeds), ref)


def test_compile_option_runs_and_matches():
    pytest.importorskip("torch._inductor", reason="torch.compile needs inductor")
    sess = pyonnx.InferenceSession(SMALL, providers=[(TORCH, {"compile": "1"})])
    want = pyonnx.InferenceSession(SMALL).run(None, {"x": _x()})[0]
    np.testing.assert_allclose(sess.run(None, {"x": _x()})[0], want, rtol=1e-6)


def test_claimed_backend_node_cases_pass_on_the_torch_provider():
    cases = claimed_cases()
    passed, failed = pass_rate(run_with_provider, cases)
    rate = passed / len(cases)
    print(f"torch provider (cpu): {passed}/{len(cases)} claimed node cases pass ({rate:.1%}); "
          f"failing: {sorted(failed)}")
    assert rate >= 0.95, failed


# ---------------------------------------------------------------- bad input


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU: CUDA is available")
def test_cuda_without_a_gpu_falls_back_with_onnxruntimes_warning():
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider is not available"):
        sess = pyonnx.InferenceSession(SMALL, providers=["CUDAExecutionProvider", CPU])
    assert sess.get_providers() == [CPU]


@pytest.mark.parametrize("device", ["cuda:7", "tpu", "cuda:0" if not HAS_CUDA else "cuda:99"])
def test_a_device_that_is_not_there_is_invalid_argument_naming_it(device):
    with pytest.raises(InvalidArgument, match=device.split(":")[0]):
        pyonnx.InferenceSession(SMALL, providers=[(TORCH, {"device": device})])


def test_unknown_option_is_refused():
    with pytest.raises(InvalidArgument, match="unknown provider option"):
        pyonnx.InferenceSession(SMALL, providers=[(TORCH, {"devise": "cpu"})])
    with pytest.raises(InvalidArgument, match="compile"):
        pyonnx.InferenceSession(SMALL, providers=[(TORCH, {"compile": "maybe"})])


def test_unknown_provider_name_warns_and_falls_back_like_onnxruntime():
    with pytest.warns(RuntimeWarning, match="not available"):
        sess = pyonnx.InferenceSession(SMALL, providers=["FooExecutionProvider"])
    assert sess.get_providers() == [CPU]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ort.InferenceSession(SMALL, providers=["FooExecutionProvider"]).get_providers() \
            == [CPU]


def test_a_torch_tensor_feed_is_refused_with_a_message():
    sess = pyonnx.InferenceSession(SMALL, providers=[TORCH])
    with pytest.raises(Exception, match="numpy.ndarray"):
        sess.run(None, {"x": torch.from_numpy(_x())})


# ---------------------------------------------------------------- DLPack


def test_dlpack_exchange_with_torch_shares_memory():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    ov = pyonnx.OrtValue.from_dlpack(t)
    t[0, 0] = 42.0
    assert ov.numpy()[0, 0] == 42.0  # no copy
    back = torch.from_dlpack(ov)
    ov.numpy()[1, 2] = -1.0
    assert back[1, 2].item() == -1.0
    sess = pyonnx.InferenceSession(SMALL, providers=[TORCH])
    out = sess.run_with_ort_values(["y"], {"x": ov})[0]
    np.testing.assert_allclose(torch.from_dlpack(out).numpy(),
                               1 / (1 + np.exp(-np.maximum(t.numpy(), 0))), rtol=1e-6)


def test_values_move_without_copies_on_the_cpu():
    from pyonnx.backends import create_provider

    p = create_provider(TORCH, {})
    a = _x()
    t = p.from_host(a)
    assert isinstance(t, torch.Tensor) and t.data_ptr() == a.ctypes.data
    assert p.to_host(t).ctypes.data == a.ctypes.data


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU: the value is made there")
def test_ortvalue_on_a_missing_gpu_is_refused_naming_it():
    with pytest.raises(RuntimeError, match="cuda"):
        pyonnx.OrtValue.ortvalue_from_numpy(_x(), "cuda", 0)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (benchmarks/gpu/check.sh runs this "
                                         "on a lent machine)")
def test_ortvalue_holds_gpu_tensors_without_copies():
    t = torch.arange(6, dtype=torch.float32, device="cuda").reshape(2, 3)
    ov = pyonnx.OrtValue.from_dlpack(t)
    assert ov.device_name() == "cuda" and ov.shape() == [2, 3]
    assert torch.from_dlpack(ov).data_ptr() == t.data_ptr() == ov.data_ptr()
    np.testing.assert_array_equal(ov.numpy(), t.cpu().numpy())
    made = pyonnx.OrtValue.ortvalue_from_numpy(_x(), "cuda", 0)
    assert made.device_name() == "cuda"
    sess = pyonnx.InferenceSession(SMALL, providers=["CUDAExecutionProvider"])
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    got = sess.run(None, {"x": _x()})[0]
    np.testing.assert_allclose(got, pyonnx.InferenceSession(SMALL).run(None, {"x": _x()})[0],
                               rtol=1e-5)
