"""The torch execution provider (issue 15): names and options, fallback of unclaimed nodes to
the CPU provider (counted in the profile), partitions of consecutive torch nodes (the same
results as node by node, failures naming the node, compile=1 against eager), real models
against onnxruntime, the claimed backend node cases, DLPack exchange with torch, torch tensor
feeds, and bad devices and feeds."""

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


@pytest.mark.parametrize("bias_shape", [None, (1, 1, 5, 5), (2, 4, 5, 5)])
def test_multi_head_attention_runs_on_torch_like_the_cpu_kernel(bias_shape):
    """The form the optimizer's extended level writes (3-D Q, K, V, optional attention_bias)."""
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 5, 32]) for n in "qkv"]
    names = ["q", "k", "v"]
    if bias_shape is not None:
        ins.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, list(bias_shape)))
        names += ["", "", "m"]
    node = helper.make_node("MultiHeadAttention", names, ["y"], name="mha", domain="com.microsoft",
                            num_heads=4, scale=0.3)
    g = helper.make_graph([node], "g", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, 32])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("com.microsoft", 1)])
    rng = np.random.default_rng(3)
    feeds = {n: rng.standard_normal((2, 5, 32)).astype(np.float32) for n in "qkv"}
    if bias_shape is not None:
        feeds["m"] = np.where(rng.random(bias_shape) < 0.3, -1e4, 0).astype(np.float32)
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    sess = pyonnx.InferenceSession(model.SerializeToString(), so, providers=[TORCH])
    where = {n.name: s.ep_name for s in sess.get_provider_graph_assignment_info()
             for n in s.get_nodes()}
    assert where["mha"] == TORCH and CPU not in where.values()
    want = pyonnx.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_allclose(sess.run(None, feeds)[0], want, rtol=1e-5, atol=1e-6)


@_SKIP_SHARED
def test_fused_attention_of_written_models_stays_on_torch():
    """gpt2_small's attention becomes com.microsoft MultiHeadAttention at the extended level,
    which sessions with several providers run too: the torch provider claims every one."""
    path = os.path.join(SHARED, "gpt2_small.onnx")
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    sess = pyonnx.InferenceSession(path, so, providers=[TORCH, CPU])
    on = {n.op_type: s.ep_name for s in sess.get_provider_graph_assignment_info()
          for n in s.get_nodes() if n.op_type == "MultiHeadAttention"}
    assert on == {"MultiHeadAttention": TORCH}


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet"])
def test_light_cnns_match_onnxruntime_as_partitions(name):
    from tests.convert.light_models import light_feed, light_paths, random_light

    model = random_light(next(p for p in light_paths() if name in p))
    feeds = light_feed(model)
    ref = ort.InferenceSession(model, providers=[CPU]).run(None, feeds)
    sess = pyonnx.InferenceSession(model, providers=[TORCH])
    for _ in range(2):  # the first run fills the semi-constant cache, the second reads it
        assert_close_to_reference(sess.run(None, feeds), ref)


def test_compile_option_runs_and_matches():
    pytest.importorskip("torch._inductor", reason="torch.compile needs inductor")
    sess = pyonnx.InferenceSession(SMALL, providers=[(TORCH, {"compile": "1"})])
    want = pyonnx.InferenceSession(SMALL).run(None, {"x": _x()})[0]
    np.testing.assert_allclose(sess.run(None, {"x": _x()})[0], want, rtol=1e-6)


# ---------------------------------------------------------------- partitions and compile


def _block(opset=17):
    """x[N,8] -> softmax(relu(x @ w + b) @ w2) * scale, reshaped and back: a chain of claimed
    nodes with a dynamic batch, weights as initializers."""
    rng = np.random.default_rng(3)
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 16], rng.standard_normal(128).tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [16], rng.standard_normal(16).tolist())
    w2 = helper.make_tensor("w2", TensorProto.FLOAT, [16, 4], rng.standard_normal(64).tolist())
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 2])
    back = helper.make_tensor("back", TensorProto.INT64, [2], [-1, 4])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"], name="mm"),
             helper.make_node("Add", ["xw", "b"], ["h"], name="add"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["z"], name="mm2"),
             helper.make_node("Reshape", ["z", "shape"], ["z2"], name="reshape"),
             helper.make_node("Softmax", ["z2"], ["s"], name="softmax", axis=-1),
             helper.make_node("Reshape", ["s", "back"], ["s4"], name="reshape_back"),
             helper.make_node("Mul", ["s4", "z"], ["y"], name="mul"),
             helper.make_node("ReduceSum", ["y"], ["total"], name="sum", keepdims=0)]
    g = helper.make_graph(nodes, "block",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
                           helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
                          [w, b, w2, shape, back])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _bx(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)


def test_consecutive_torch_nodes_run_as_one_partition_with_the_same_results():
    sess = pyonnx.InferenceSession(_block(), providers=[TORCH])
    plan = sess._plan
    # nine nodes and the copies in and out: one step for a plain run
    assert len(plan._plain_calls) == 1 and plan._plain_calls[0][-1].members
    so = pyonnx.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = "torchpart"
    observed = pyonnx.InferenceSession(_block(), so, providers=[TORCH])
    want = pyonnx.InferenceSession(_block()).run(None, {"x": _bx(3)})
    for n in (3, 5):  # a second batch size: the partition has dynamic shapes
        got = sess.run(None, {"x": _bx(n)})
        one_by_one = observed.run(None, {"x": _bx(n)})  # profiled: node by node
        for a, b in zip(got, one_by_one):
            assert isinstance(a, np.ndarray)
            np.testing.assert_array_equal(a, b)
    for a, b in zip(sess.run(None, {"x": _bx(3)}), want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    os.remove(observed.end_profiling())


def test_a_failure_inside_a_partition_names_the_node():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "t"], ["s"], name="add_them"),
             helper.make_node("Sigmoid", ["s"], ["y"], name="sigmoid")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"]),
                                       helper.make_tensor_value_info("t", TensorProto.FLOAT, ["M"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    sess = pyonnx.InferenceSession(model, providers=[TORCH])
    assert sess._plan._plain_calls[0][-1].members  # the three nodes are one partition
    ok = sess.run(None, {"x": np.ones(3, np.float32), "t": np.ones(3, np.float32)})[0]
    np.testing.assert_allclose(ok, 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    with pytest.raises(pyonnx.ExecutionError, match="add_them"):
        sess.run(None, {"x": np.ones(3, np.float32), "t": np.ones(2, np.float32)})


def test_partitions_run_from_several_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    sess = pyonnx.InferenceSession(_block(), providers=[TORCH])
    feeds = [{"x": _bx(2 + k % 3, seed=k)} for k in range(12)]
    want = [sess.run(None, f) for f in feeds]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda f: sess.run(None, f), feeds))
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            np.testing.assert_array_equal(a, b)


def test_the_session_sets_torchs_threads_from_the_thread_budget():
    from pyonnx.backends.cpu import threads

    so = pyonnx.SessionOptions()
    so.intra_op_num_threads = 1
    pyonnx.InferenceSession(SMALL, so, providers=[TORCH])
    assert torch.get_num_threads() == threads.budget()


def test_compiled_partitions_match_eager_ones():
    # the heavier compile test: one small model, two batch sizes (dynamic shapes)
    pytest.importorskip("torch._inductor", reason="torch.compile needs inductor")
    eager = pyonnx.InferenceSession(_block(), providers=[TORCH])
    compiled = pyonnx.InferenceSession(_block(), providers=[(TORCH, {"compile": "1"})])
    part = compiled._plan._plain_calls[0][0]
    assert part.fn is not part.module  # the partition's module went through torch.compile
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to eager
        for n in (4, 6):
            for a, b in zip(compiled.run(None, {"x": _bx(n)}), eager.run(None, {"x": _bx(n)})):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert part.fn is not part.module


def test_a_partition_torch_cannot_compile_runs_eagerly_with_a_warning(monkeypatch):
    def broken(module, **kwargs):
        def fn(*args):
            raise RuntimeError("no compiler here")
        return fn

    monkeypatch.setattr(torch, "compile", broken)
    sess = pyonnx.InferenceSession(_block(), providers=[(TORCH, {"compile": "1"})])
    want = pyonnx.InferenceSession(_block(), providers=[TORCH]).run(None, {"x": _bx(2)})
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*runs eagerly"):
        got = sess.run(None, {"x": _bx(2)})
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # warned once; eager from now on
        sess.run(None, {"x": _bx(2)})


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


def test_a_torch_tensor_feed_runs_without_a_copy_and_one_off_the_host_is_refused():
    from pyonnx.runtime.session import _torch_feed

    want = pyonnx.InferenceSession(SMALL).run(None, {"x": _x()})[0]
    for providers in ([TORCH], [CPU]):
        sess = pyonnx.InferenceSession(SMALL, providers=providers)
        t = torch.from_numpy(_x()).requires_grad_(True)  # a tensor of a training loop
        np.testing.assert_allclose(sess.run(None, {"x": t})[0], want, rtol=1e-6)
    t = torch.from_numpy(_x())
    assert np.shares_memory(_torch_feed("x", t), t.numpy())  # the feed is the tensor's memory
    off_host = torch.empty((2, 3), device="meta")  # stands in for a GPU tensor here
    with pytest.raises(InvalidArgument, match=r"'x' is a torch tensor on meta.*x\.cpu\(\)"):
        sess.run(None, {"x": off_host})


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
