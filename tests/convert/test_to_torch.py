"""pyonnx.convert.to_torch: ONNX models as torch.fx GraphModules (issue 15).

Every shared model and the nine light CNNs (random weights) convert and match onnxruntime;
silero_vad's data-dependent If runs both ways; a converted model fine-tunes; torch.onnx.export
of a converted module gives back the same outputs; the claimed backend node cases pass.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="to_torch needs the torch extra (pip install "
                                            "'pyonnx[torch]')")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import pyonnx  # noqa: E402
from pyonnx.convert import to_torch  # noqa: E402
from pyonnx.errors import UnsupportedOperatorError  # noqa: E402
from tests.backends.torch.cases import claimed_cases, pass_rate, run_with_to_torch  # noqa: E402
from tests.convert.light_models import light_feed, light_paths, random_light  # noqa: E402
from tests.models.test_real_models import (  # noqa: E402
    SHARED,
    _SKIP_SHARED,
    assert_close_to_reference,
    shared_feeds,
)

SHARED_MODELS = sorted(f for f in os.listdir(SHARED) if f.endswith(".onnx")) \
    if os.path.isdir(SHARED) else []


def _run(gm, sess, feeds):
    args = [torch.from_numpy(feeds[i.name]) for i in sess.get_inputs()]
    with torch.no_grad():
        out = gm(*args)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _ort(model):
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def test_import_pyonnx_does_not_import_torch():
    # nor do listing the providers and running a session on the CPU provider
    code = ("import sys, numpy as np, pyonnx, pyonnx.convert\n"
            "assert 'TorchExecutionProvider' in pyonnx.get_available_providers()\n"
            "m = pyonnx.parse_model('<ir_version: 8, opset_import: [\"\" : 17]> "
            "g (float[2] x) => (float[2] y) { y = Relu(x) }')\n"
            "pyonnx.InferenceSession(m).run(None, {'x': np.ones(2, np.float32)})\n"
            "assert 'torch' not in sys.modules, 'import pyonnx imported torch'\n")
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


@_SKIP_SHARED
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_model_converts_and_matches_onnxruntime(name):
    path = os.path.join(SHARED, name)
    gm = to_torch(path)
    assert isinstance(gm, torch.fx.GraphModule)
    sess = _ort(path)
    # one module, two sequence lengths: shapes are computed at run time, not baked in
    for seq in (16, 40):
        feeds = shared_feeds(name, batch=2 if not name.startswith("silero") else 1, seq=seq)
        assert_close_to_reference(_run(gm, sess, feeds), sess.run(None, feeds))


@pytest.mark.parametrize("path", light_paths(), ids=lambda p: os.path.basename(p)[6:-5])
def test_light_model_converts_and_matches_onnxruntime(path):
    model = random_light(path)
    feeds = light_feed(model)
    sess = _ort(model)
    ref = sess.run(None, feeds)
    assert float(np.std(ref[0])) > 0  # random weights: the output is not a constant
    assert_close_to_reference(_run(to_torch(model), sess, feeds), ref)


@_SKIP_SHARED
def test_silero_if_is_data_dependent_and_both_branches_match():
    path = os.path.join(SHARED, "silero_vad.onnx")
    gm = to_torch(path)
    assert "onnx_if" in gm.code  # the sample-rate test is decided at run time
    sess = _ort(path)
    rng = np.random.default_rng(1)
    for sr, n in ((16000, 512), (8000, 256)):
        feeds = {"input": rng.standard_normal((1, n)).astype(np.float32) * 0.1,
                 "state": rng.standard_normal((2, 1, 128)).astype(np.float32) * 0.1,
                 "sr": np.array(sr, np.int64)}
        assert_close_to_reference(_run(gm, sess, feeds), sess.run(None, feeds))


def test_constant_condition_inlines_the_taken_branch():
    from onnx import TensorProto, helper, numpy_helper

    def branch(op, name):
        return helper.make_graph([helper.make_node(op, ["x"], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])])

    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch("Neg", "t"),
                          else_branch=branch("Abs", "e"))],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[numpy_helper.from_array(np.array(False), "c")])
    gm = to_torch(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert "onnx_if" not in gm.code and "abs" in gm.code
    assert torch.equal(gm(torch.tensor([-1.0, 2.0])), torch.tensor([1.0, 2.0]))


@_SKIP_SHARED
def test_converted_model_fine_tunes():
    name = "gpt2_small.onnx"
    gm = to_torch(os.path.join(SHARED, name))
    params = [p for p in gm.parameters() if p.requires_grad]
    assert params, "float initializers become trainable parameters"
    torch.manual_seed(0)
    ids = torch.from_numpy(shared_feeds(name, batch=2, seq=16)["input_ids"])
    target = torch.roll(ids, -1, 1)
    opt = torch.optim.Adam(params, lr=1e-3)
    losses = []
    for _ in range(5):
        logits = gm(ids)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(p.grad is not None for p in params[:3])
    assert losses[-1] < losses[0], losses


@_SKIP_SHARED
def test_reexport_matches_the_converted_module():
    name = "bert_small.onnx"
    gm = to_torch(os.path.join(SHARED, name))
    feeds = shared_feeds(name, batch=1, seq=16)
    names = ["input_ids", "attention_mask"]
    args = tuple(torch.from_numpy(feeds[n]) for n in names)
    with torch.no_grad():
        want = gm(*args)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: the dynamo one needs onnxscript, which CI does not install
        torch.onnx.export(gm, args, buf, dynamo=False, input_names=names)
    got = _ort(buf.getvalue()).run(None, feeds)
    want = want if isinstance(want, tuple) else (want,)
    assert_close_to_reference(got, [w.numpy() for w in want])


def test_unclaimed_operator_is_refused_with_its_reason():
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("StringNormalizer", ["x"], ["y"], name="norm")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.STRING, [2])])
    with pytest.raises(UnsupportedOperatorError, match="norm.*StringNormalizer"):
        to_torch(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_claimed_backend_node_cases_pass_through_to_torch():
    cases = claimed_cases()
    passed, failed = pass_rate(run_with_to_torch, cases)
    rate = passed / len(cases)
    print(f"to_torch: {passed}/{len(cases)} claimed node cases pass ({rate:.1%}); "
          f"failing: {sorted(failed)}")
    assert len(cases) > 1000
    assert rate >= 0.95, failed


def test_to_torch_leaves_the_model_unchanged():
    # the same model object converts without being changed
    path = next(p for p in light_paths() if "squeezenet" in p)
    m = pyonnx.load(random_light(path))
    before = pyonnx.serialize(m)
    to_torch(m)
    assert pyonnx.serialize(m) == before


def test_data_dependent_if_exports_as_torch_cond():
    from onnx import TensorProto, helper

    def branch(op, name):
        return helper.make_graph([helper.make_node(op, ["x"], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])])

    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["y"], then_branch=branch("Neg", "t"),
                          else_branch=branch("Abs", "e"))],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    gm = to_torch(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    ep = torch.export.export(gm, (torch.tensor([1.0, 2.0]),))
    assert any("cond" in str(n.target).lower() for n in ep.graph.nodes
               if n.op == "call_function")
    m = ep.module()  # both branches live in the exported program
    assert torch.equal(m(torch.tensor([1.0, 2.0])), torch.tensor([-1.0, -2.0]))
    assert torch.equal(m(torch.tensor([-1.0, -2.0])), torch.tensor([1.0, 2.0]))
