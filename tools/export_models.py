"""Write the differential test set of real exports: tests/models/exports/NAME.onnx + NAME.npz.

Each model is built here with fixed seeds, random (untrained) weights and reduced widths,
exported by the converter its users use, and saved beside one sample input set (NAME.npz, one
array per graph input, keyed by the input's name). tests/models/test_exports.py runs every
committed model in pyonnx and in onnxruntime on those inputs and compares the outputs; it needs
neither torch nor TensorFlow. The inputs deliberately differ in size from the shapes used while
tracing wherever the export declares a dynamic dimension, so the dynamic-shape arithmetic the
exporters emit (Shape -> Gather -> Div -> Concat -> Reshape) really runs.

Each exporter stack lives in its own virtual environment (torch and TensorFlow are several GB
each and pin their own CUDA, protobuf and NumPy ranges; apart, either can be upgraded alone), so
each family is a sub-command run by its own interpreter:

    # torch.onnx, both exporters (TorchScript: dynamo=False; dynamo: dynamo=True)
    python3.11 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch==2.14.1 torchvision==0.29.1 transformers onnx \
        onnxscript onnxruntime
    /work/venv-torch/bin/python tools/export_models.py torch

    # tf2onnx from Keras and from a tf.function
    python3.11 -m venv /work/venv-tf
    /work/venv-tf/bin/pip install "tensorflow==2.21.*" "tf2onnx==1.17.*"
    /work/venv-tf/bin/python tools/export_models.py keras

    # skl2onnx pipelines (the project's test environment has scikit-learn, skl2onnx, pandas)
    /work/venv/bin/python tools/export_models.py sklearn

    # models derived from the files above (run last): graph dims rewritten to dim_value -1
    /work/venv/bin/python tools/export_models.py edit

`--only NAME [NAME ...]` limits a run to some models of the family; `--out DIR` writes elsewhere.
Running a family again with the same package versions writes the same graphs, weights and
inputs (checked by exporting every family twice). The bytes may still differ: skl2onnx
orders opset_import by set iteration; tf2onnx numbers the constants it folds from a
process-wide counter and may order independent nodes differently; the TorchScript exporter
names a local function's parameters after one of its call sites, not always the same; and the
dynamo exporter stores each node's source stack trace (file paths and line numbers of this
script) in the node's metadata_props, as it does in every export users make.

The committed files were written with torch 2.14.1, torchvision 0.29.1, transformers 5.25.0,
onnxscript 0.7.2, onnx 1.23.2; tensorflow 2.21.0, keras 3.15.1, tf2onnx 1.17.0; scikit-learn
1.9.1, skl2onnx 1.20.0 (Python 3.11).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models",
                           "exports")
SEED = 0

# The exporter registry: family -> {model name: function(out_dir) writing NAME.onnx/NAME.npz}.
EXPORTS: dict[str, dict[str, Callable[[str], None]]] = {"torch": {}, "keras": {}, "sklearn": {},
                                                         "edit": {}}


_Exporter = Callable[[str, str], None]


def export(family: str, name: str) -> Callable[[_Exporter], _Exporter]:
    """Register `fn(out_dir, name)` as the exporter of model `name` in `family`."""
    def register(fn: _Exporter) -> _Exporter:
        EXPORTS[family][name] = lambda out: fn(out, name)
        return fn
    return register


def save_inputs(out: str, name: str, feeds: dict[str, np.ndarray]) -> None:
    """The sample input set: one array per graph input. Strings are stored as fixed-width
    unicode (npz cannot hold object arrays without pickle); the test turns them into objects."""
    arrays = {k: (v.astype(str) if v.dtype == object else v) for k, v in feeds.items()}
    np.savez_compressed(os.path.join(out, f"{name}.npz"), **arrays)


def _rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def _image(shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
    """A synthetic scene, channels first (..., 3, H, W): a colour gradient with a dozen flat
    rectangles ("objects") and a little noise, as a decoded 8-bit image becomes (k / 255 in
    float32). Unlike white noise it has structure at the scale of a detector's anchors."""
    rng = np.random.default_rng(seed)
    *lead, c, h, w = shape
    out = np.empty(shape, np.float64)
    for img in out.reshape(-1, c, h, w):
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        for ch in range(c):
            img[ch] = rng.uniform(0.2, 0.8) + rng.uniform(-0.3, 0.3) * (yy - xx)
        for _ in range(12):
            y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
            y1, x1 = y0 + rng.integers(8, h // 2), x0 + rng.integers(8, w // 2)
            img[:, y0:y1, x0:x1] = rng.uniform(0, 1, (c, 1, 1))
        img += rng.normal(0, 0.03, img.shape)
    return (np.round(np.clip(out, 0, 1) * 255) / 255).astype(np.float32)


# --------------------------------------------------------------------------------------------
# torch.onnx
# --------------------------------------------------------------------------------------------

def _torch_export(model: Any, args: tuple[Any, ...], path: str, *, dynamo: bool,
                  input_names: list[str], output_names: list[str] | None = None,
                  dynamic_axes: dict[str, dict[int, str]] | None = None,
                  opset: int | None = None, **extra: Any) -> None:
    """torch.onnx.export with one of its two exporters; `dynamic_axes` (input or output name ->
    {axis: dim name}) is given to the TorchScript exporter as it is and to the dynamo exporter
    as the equivalent `dynamic_shapes` of the inputs; `extra` goes to torch.onnx.export."""
    import torch

    kwargs: dict[str, Any] = {"input_names": input_names, "dynamo": dynamo, **extra}
    if output_names:
        kwargs["output_names"] = output_names
    if dynamic_axes and not dynamo:
        kwargs["dynamic_axes"] = dynamic_axes
    elif dynamic_axes:
        # torch.export's form: per positional input, {axis: Dim}; outputs follow by tracing.
        kwargs["dynamic_shapes"] = tuple(
            {axis: torch.export.Dim.DYNAMIC for axis in dynamic_axes.get(n, {})} or None
            for n in input_names)
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamo:
        # One self-contained file, no external data, initializers folded in.
        kwargs["external_data"] = False
        kwargs["optimize"] = True
    with torch.no_grad():
        torch.onnx.export(model, args, path, **kwargs)


def _calibration(shape: tuple[int, ...]) -> Any:
    """Images for batch-norm statistics: scenes like the test inputs, drawn from another seed."""
    import torch
    return torch.from_numpy(_image(shape, seed=SEED + 1))


def _normalized(images: Any) -> Any:
    """Images normalized as torchvision's ImageNet classifiers expect them."""
    import torch
    images = torch.as_tensor(images)
    return (images - 0.45) / 0.225


def _seed_torch() -> None:
    import torch
    torch.manual_seed(SEED)


def _trained_looking(model: Any, sample: tuple[Any, ...], heads: tuple[str, ...] = ()) -> Any:
    """Give the untrained `model` the value ranges of a trained one, so that its outputs depend
    on its input, lie well away from zero and from ties, and a tolerance means something.

    torchvision's initialization alone does not: its fan-out Kaiming draw makes depthwise
    convolutions shrink the signal by sqrt(channels), and with identity batch-norm statistics
    the image is gone after a few blocks (every anchor then gets the same score to the 7th
    digit, and the order of the detections is decided by rounding); classifiers drawn at std
    0.01 leave logits near 1e-8. So: linear layers, and the convolutions of the modules whose
    names start with one of `heads`, are re-drawn at unit fan-in scale; batch norms get random
    affine parameters and then the statistics of the activations on `sample` (the positional
    arguments of one forward call), measured as training would."""
    import torch
    g = torch.Generator().manual_seed(SEED)
    norms = []
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                norms.append(m)
            elif isinstance(m, torch.nn.Linear) or (
                    heads and isinstance(m, torch.nn.Conv2d) and name.startswith(heads)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        model.eval()
        for m in norms:                 # batch statistics, accumulated over the one call
            m.reset_running_stats()
            m.momentum = None
            m.train()
        model(*sample)
        model.eval()
    return model


def _mobilenet(out: str, name: str, dynamo: bool, **extra: Any) -> None:
    import torch
    import torchvision
    _seed_torch()
    # 0.35 width, 10 classes: the same block structure (SE, hardswish, depthwise), 1/12 the size.
    model = _trained_looking(torchvision.models.mobilenet_v3_small(
        weights=None, width_mult=0.35, num_classes=10),
        (_normalized(_calibration((8, 3, 96, 96))),))
    trace = torch.randn(1, 3, 96, 96)
    _torch_export(model, (trace,), os.path.join(out, f"{name}.onnx"), dynamo=dynamo,
                  input_names=["images"], output_names=["logits"],
                  dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset=18,
                  **extra)
    save_inputs(out, name, {"images": _normalized(_image((2, 3, 96, 96))).numpy()})


@export("torch", "mobilenet_v3_small_ts")
def _mobilenet_ts(out: str, name: str) -> None:
    _mobilenet(out, name, dynamo=False)


@export("torch", "mobilenet_v3_small_functions_ts")
def _mobilenet_functions_ts(out: str, name: str) -> None:
    """The same network with its squeeze-excitation blocks and hardswish activations written as
    model-local ONNX functions (export_modules_as_functions; Hardswish's function carries an
    attribute, `inplace`, referenced from its body)."""
    import torch
    from torchvision.ops.misc import SqueezeExcitation
    _mobilenet(out, name, dynamo=False,
               export_modules_as_functions={SqueezeExcitation, torch.nn.Hardswish})


@export("torch", "mobilenet_v3_small_dynamo")
def _mobilenet_dynamo(out: str, name: str) -> None:
    _mobilenet(out, name, dynamo=True)


def _ssdlite() -> Any:
    """SSDlite as torchvision's ssdlite320_mobilenet_v3_large builds it, at toy size: a 0.35-width
    MobileNetV3-Large backbone (reduced tail), quarter-width extra blocks, 160x160 instead of
    320x320, 4 classes. Few detections are kept and the score threshold is 0, so that untrained
    weights still yield boxes. (The builder function offers no width for the extra blocks, which
    alone would be 1.5 MB.)"""
    from functools import partial

    import torch
    import torchvision
    from torchvision.models.detection import _utils as det_utils
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.ssdlite import SSDLiteFeatureExtractorMobileNet, SSDLiteHead
    _seed_torch()
    norm = partial(torch.nn.BatchNorm2d, eps=0.001, momentum=0.03)
    features = torchvision.models.mobilenet_v3_large(weights=None, width_mult=0.35,
                                                     reduced_tail=True, norm_layer=norm).features
    # the C4 stage: the last block that starts a new (strided) stage, as torchvision picks it
    c4 = [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)][-1]
    backbone = SSDLiteFeatureExtractorMobileNet(features, c4, norm, width_mult=0.25)
    size = (160, 160)
    anchors = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    head = SSDLiteHead(det_utils.retrieve_out_channels(backbone, size),
                       anchors.num_anchors_per_location(), 4, norm)
    model = SSD(backbone, anchors, size, 4, head=head, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                score_thresh=0.0, nms_thresh=0.55, detections_per_img=20, topk_candidates=50)
    return _trained_looking(model, (list(_calibration((4, 3, 160, 160))),), heads=("head.",))


@export("torch", "ssdlite_ts")
def _ssdlite_ts(out: str, name: str) -> None:
    import torch
    model = _ssdlite()
    img = torch.rand(3, 160, 160)
    # any image size: the graph resizes it to 160x160 and scales the boxes back
    _torch_export(model, ([img],), os.path.join(out, f"{name}.onnx"), dynamo=False,
                  input_names=["image"], output_names=["boxes", "scores", "labels"],
                  dynamic_axes={"image": {1: "height", 2: "width"}}, opset=17)
    save_inputs(out, name, {"image": _image((3, 150, 200))})


def _fasterrcnn() -> Any:
    """Faster R-CNN with a small FPN-less MobileNetV3-Small backbone, a 64-wide box head and few
    proposals: the detection graph (anchors, RPN top-k, NMS, RoiAlign, box decoding) at toy
    width."""
    import torch
    import torchvision
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign
    _seed_torch()
    features = torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.35).features
    # a 1x1 projection to 32 channels keeps the RPN and box heads small
    backbone = torch.nn.Sequential(features, torch.nn.Conv2d(features[-1].out_channels, 32, 1))
    backbone.out_channels = 32
    anchors = AnchorGenerator(sizes=((32, 64, 128),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=5, sampling_ratio=2)
    box_head = TwoMLPHead(backbone.out_channels * 5 * 5, 64)
    model = FasterRCNN(backbone, num_classes=None, rpn_anchor_generator=anchors,
                       box_roi_pool=pool, box_head=box_head,
                       box_predictor=FastRCNNPredictor(64, 4),
                       min_size=224, max_size=224, rpn_pre_nms_top_n_test=100,
                       rpn_post_nms_top_n_test=20, box_score_thresh=0.0,
                       box_detections_per_img=10)
    return _trained_looking(model, (list(_calibration((4, 3, 224, 224))),),
                            heads=("backbone.1", "rpn.head."))


@export("torch", "fasterrcnn_small_ts")
def _fasterrcnn_ts(out: str, name: str) -> None:
    import torch
    model = _fasterrcnn()
    img = torch.rand(3, 224, 224)
    # any image size: the graph scales its short side to 224 (shape arithmetic and Resize)
    _torch_export(model, ([img],), os.path.join(out, f"{name}.onnx"), dynamo=False,
                  input_names=["image"], output_names=["boxes", "labels", "scores"],
                  dynamic_axes={"image": {1: "height", 2: "width"}}, opset=17)
    save_inputs(out, name, {"image": _image((3, 200, 260))})


@export("torch", "fasterrcnn_rpn_dynamo")
def _fasterrcnn_rpn_dynamo(out: str, name: str) -> None:
    """The dynamo exporter cannot export the whole detector: torch.export stops at a
    data-dependent guard in torchvision's batched NMS (GuardOnDataDependentSymNode, torch 2.14,
    torchvision 0.29). So this is the part it can export, as deployments that run NMS outside
    the graph do: the backbone and the region-proposal head of fasterrcnn_small_ts (the same
    weights), on a batch of images with dynamic batch, height and width."""
    import torch
    detector = _fasterrcnn()

    class Proposals(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = detector.backbone
            self.head = detector.rpn.head

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            objectness, deltas = self.head([self.backbone(images)])
            return objectness[0], deltas[0]

    trace = torch.rand(2, 3, 160, 160)
    axes = {"images": {0: "batch", 2: "height", 3: "width"},
            "objectness": {0: "batch", 2: "fh", 3: "fw"}, "deltas": {0: "batch", 2: "fh", 3: "fw"}}
    _torch_export(Proposals().eval(), (trace,), os.path.join(out, f"{name}.onnx"), dynamo=True,
                  input_names=["images"], output_names=["objectness", "deltas"],
                  dynamic_axes=axes, opset=18)
    save_inputs(out, name, {"images": _image((2, 3, 128, 192))})


def _bert() -> Any:
    import torch
    from transformers import BertConfig, BertModel
    _seed_torch()
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
    # scaled_dot_product_attention, transformers' default and so what users export
    config._attn_implementation = "sdpa"
    bert = BertModel(config, add_pooling_layer=True).eval()

    class Encoder(torch.nn.Module):
        """Keyword call and plain tuple output: BertModel's positional order and its output
        class differ between transformers versions."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            o = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids)
            return o.last_hidden_state, o.pooler_output

    return Encoder().eval()


def _bert_feeds(batch: int, seq: int) -> dict[str, np.ndarray]:
    rng = _rng()
    mask = np.ones((batch, seq), np.int64)
    mask[-1, seq - 3:] = 0                     # one padded sequence: the mask path matters
    return {"input_ids": rng.integers(0, 120, (batch, seq)).astype(np.int64),
            "attention_mask": mask,
            "token_type_ids": (np.arange(seq)[None, :] >= seq // 2).astype(np.int64)
            .repeat(batch, 0)}


def _bert_export(out: str, name: str, dynamo: bool) -> None:
    import torch
    model = _bert()
    trace = {k: torch.from_numpy(v) for k, v in _bert_feeds(2, 8).items()}
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes.update({"last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}})
    _torch_export(model, tuple(trace[n] for n in names), os.path.join(out, f"{name}.onnx"),
                  dynamo=dynamo, input_names=names,
                  output_names=["last_hidden_state", "pooler_output"], dynamic_axes=axes,
                  opset=18 if dynamo else 14)
    save_inputs(out, name, _bert_feeds(3, 11))


@export("torch", "bert_tiny_ts")
def _bert_ts(out: str, name: str) -> None:
    _bert_export(out, name, dynamo=False)


@export("torch", "bert_tiny_dynamo")
def _bert_dynamo(out: str, name: str) -> None:
    _bert_export(out, name, dynamo=True)


class _ShapeArith:
    """Factory for a torch module whose graph is mostly integer shape arithmetic on rank-0
    tensors: space-to-depth by `size // 2`, a pooled size `(size - 1) // stride + 1`, and a
    position ramp of length `h * w // 4`."""

    @staticmethod
    def build() -> Any:
        import torch

        class ShapeArith(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = torch.nn.Conv2d(12, 8, 3, stride=2, padding=1)

            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                b, c, h, w = x.shape
                # space-to-depth: (b, c, h, w) -> (b, 4c, h/2, w/2)
                y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
                y = y.reshape(b, c * 4, h // 2, w // 2)
                y = self.conv(y)
                oh = (h // 2 - 1) // 2 + 1
                ow = (w // 2 - 1) // 2 + 1
                tokens = y.reshape(b, 8, oh * ow).transpose(1, 2)
                pos = torch.arange(oh * ow, dtype=torch.float32).unsqueeze(-1) / (h * w // 4)
                return tokens + pos, torch.tensor([oh, ow]) * (h // w + 1)

        _seed_torch()
        return ShapeArith().eval()


def _shape_arith_export(out: str, name: str, dynamo: bool) -> None:
    import torch
    model = _ShapeArith.build()
    trace = torch.randn(2, 3, 16, 24)
    _torch_export(model, (trace,), os.path.join(out, f"{name}.onnx"), dynamo=dynamo,
                  input_names=["x"], output_names=["tokens", "grid"],
                  dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"},
                                "tokens": {0: "batch", 1: "ntok"}}, opset=18)
    save_inputs(out, name, {"x": _rng().standard_normal((3, 3, 20, 12), np.float32)})


@export("torch", "shape_arith_init_inputs_ts")
def _shape_arith_init_inputs_ts(out: str, name: str) -> None:
    """The old exporters' layout (keep_initializers_as_inputs=True): the weights are also graph
    inputs, so a caller may override them. The stored inputs override the convolution weight."""
    import torch
    model = _ShapeArith.build()
    _torch_export(model, (torch.randn(2, 3, 16, 24),), os.path.join(out, f"{name}.onnx"),
                  dynamo=False, input_names=["x"], output_names=["tokens", "grid"],
                  dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"},
                                "tokens": {0: "batch", 1: "ntok"}}, opset=18,
                  keep_initializers_as_inputs=True)
    rng = _rng()
    save_inputs(out, name, {"x": rng.standard_normal((3, 3, 20, 12), np.float32),
                            "conv.weight": rng.standard_normal((8, 12, 3, 3), np.float32) * 0.2})


@export("torch", "shape_arith_ts")
def _shape_arith_ts(out: str, name: str) -> None:
    _shape_arith_export(out, name, dynamo=False)


@export("torch", "shape_arith_dynamo")
def _shape_arith_dynamo(out: str, name: str) -> None:
    _shape_arith_export(out, name, dynamo=True)


class _Tagger:
    """Factory for a sequence tagger: embedding, 2-layer bidirectional LSTM, GRU, linear and
    log-softmax over the tags, batch-first; both exporters write ONNX LSTM and GRU nodes."""

    @staticmethod
    def build() -> Any:
        import torch

        class Tagger(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = torch.nn.Embedding(50, 16)
                self.lstm = torch.nn.LSTM(16, 12, num_layers=2, bidirectional=True,
                                          batch_first=True)
                self.gru = torch.nn.GRU(24, 10, batch_first=True)
                self.out = torch.nn.Linear(10, 5)

            def forward(self, tokens: torch.Tensor) -> torch.Tensor:
                h, _ = self.lstm(self.embed(tokens))
                h, _ = self.gru(h)
                return torch.log_softmax(self.out(h), dim=-1)

        _seed_torch()
        return Tagger().eval()


def _tagger_export(out: str, name: str, dynamo: bool) -> None:
    """Traced at the sequence length of the stored inputs (11): the dynamo exporter (torch
    2.14) writes the traced length into a Reshape after the LSTM although it declares the
    length dynamic, so another length fails in onnxruntime too."""
    import torch
    model = _Tagger.build()
    trace = torch.randint(0, 50, (2, 11))
    _torch_export(model, (trace,), os.path.join(out, f"{name}.onnx"), dynamo=dynamo,
                  input_names=["tokens"], output_names=["log_probs"],
                  dynamic_axes={"tokens": {0: "batch", 1: "seq"},
                                "log_probs": {0: "batch", 1: "seq"}}, opset=18)
    save_inputs(out, name, {"tokens": _rng().integers(0, 50, (3, 11)).astype(np.int64)})


@export("torch", "tagger_lstm_gru_ts")
def _tagger_ts(out: str, name: str) -> None:
    _tagger_export(out, name, dynamo=False)


@export("torch", "tagger_lstm_gru_dynamo")
def _tagger_dynamo(out: str, name: str) -> None:
    _tagger_export(out, name, dynamo=True)


class _Decoder:
    """Factory for a segmentation-style decoder: GroupNorm (exported as InstanceNormalization),
    a transposed convolution, pixel shuffle (DepthToSpace), bilinear / nearest / bicubic
    resizes by size and by scale, an affine grid and grid_sample; opset 20 (AffineGrid)."""

    @staticmethod
    def build() -> Any:
        import torch
        import torch.nn.functional as F

        class Decoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
                self.gn = torch.nn.GroupNorm(4, 16)
                self.up = torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
                self.inorm = torch.nn.InstanceNorm2d(8, affine=True)
                self.c2 = torch.nn.Conv2d(8, 12, 3, padding=1)
                self.head = torch.nn.Conv2d(9, 4, 1)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                h = F.silu(self.gn(self.c1(x)))
                h = F.leaky_relu(self.inorm(self.up(h)), 0.1)
                h = F.pixel_shuffle(self.c2(h), 2)                  # 3 channels, 4x the input
                size = h.shape[-2:]
                a = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
                b = F.interpolate(x, scale_factor=4.0, mode="nearest")
                c = F.interpolate(x, size=size, mode="bicubic", align_corners=True)
                theta = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 0.9, 0.0]]])
                grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(h.shape),
                                     align_corners=False)
                g = F.grid_sample(h, grid, mode="bilinear", padding_mode="border",
                                  align_corners=False)
                return self.head(torch.cat([a + b, c, g], 1))

        _seed_torch()
        return Decoder().eval()


@export("torch", "decoder_ts")
def _decoder_ts(out: str, name: str) -> None:
    import torch
    _torch_export(_Decoder.build(), (torch.rand(2, 3, 12, 16),), os.path.join(out, f"{name}.onnx"),
                  dynamo=False, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "batch", 2: "h", 3: "w"}}, opset=20)
    save_inputs(out, name, {"x": _rng().random((3, 3, 10, 14), np.float32)})


@export("torch", "decoder_dynamo")
def _decoder_dynamo(out: str, name: str) -> None:
    """Only the batch is dynamic: torch.export specializes height and width (the resize by
    scale and the affine grid pin them) and refuses Dim.DYNAMIC there."""
    import torch
    _torch_export(_Decoder.build(), (torch.rand(2, 3, 12, 16),), os.path.join(out, f"{name}.onnx"),
                  dynamo=True, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "batch"}}, opset=20)
    save_inputs(out, name, {"x": _rng().random((3, 3, 12, 16), np.float32)})


class _OpsMix:
    """Factory for a module of the indexing and reduction operators models use around their
    layers: einsum, cumsum, topk, sort, argmax, gather, scatter_add, where, flip, roll,
    masked_fill + softmax, layer_norm, an RMS norm, clamp; eleven outputs."""

    @staticmethod
    def build() -> Any:
        import torch
        import torch.nn.functional as F

        class OpsMix(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w = torch.nn.Parameter(torch.randn(6, 5))

            def forward(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
                y = torch.einsum("bij,jk->bik", x, self.w)
                top, top_i = torch.topk(y, 3, dim=-1)
                picked = torch.gather(y, 2, idx)
                counts = torch.zeros_like(y).scatter_add(2, idx, torch.ones_like(picked))
                leaky = torch.where(y > 0, y, 0.1 * y)
                shifted = torch.flip(leaky, dims=[1]) + torch.roll(leaky, shifts=2, dims=1)
                ranked, _ = torch.sort(y, dim=1, descending=True)
                masked = y.masked_fill(y < -1.0, float("-inf")).softmax(-1)
                rms = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)
                return (torch.cumsum(y, dim=1), top, top_i, torch.argmax(y, dim=1), picked,
                        counts, shifted, ranked, masked, F.layer_norm(rms, (5,)),
                        torch.clamp(y, -0.5, 0.5))

        _seed_torch()
        return OpsMix().eval()


def _ops_mix_export(out: str, name: str, dynamo: bool) -> None:
    import torch
    trace = (torch.randn(2, 7, 6), torch.randint(0, 5, (2, 7, 3)))
    axes = {"x": {0: "batch", 1: "n"}, "idx": {0: "batch", 1: "n"}}
    _torch_export(_OpsMix.build(), trace, os.path.join(out, f"{name}.onnx"), dynamo=dynamo,
                  input_names=["x", "idx"], dynamic_axes=axes, opset=18)
    rng = _rng()
    save_inputs(out, name, {"x": rng.standard_normal((3, 9, 6), np.float32),
                            "idx": rng.integers(0, 5, (3, 9, 3)).astype(np.int64)})


@export("torch", "ops_mix_ts")
def _ops_mix_ts(out: str, name: str) -> None:
    _ops_mix_export(out, name, dynamo=False)


@export("torch", "ops_mix_dynamo")
def _ops_mix_dynamo(out: str, name: str) -> None:
    _ops_mix_export(out, name, dynamo=True)


# --------------------------------------------------------------------------------------------
# tf2onnx
# --------------------------------------------------------------------------------------------

def _seed_tf() -> None:
    """A fresh Keras session (layer names restart, whatever was exported before) and seeds."""
    import keras
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)


def _from_keras(model: Any, specs: list[Any], path: str) -> None:
    import tf2onnx
    tf2onnx.convert.from_keras(model, input_signature=specs, opset=17, output_path=path)


@export("keras", "keras_cnn")
def _keras_cnn(out: str, name: str) -> None:
    import keras
    import tensorflow as tf
    _seed_tf()
    L = keras.layers
    inp = keras.Input((24, 24, 3), name="image")
    x = L.Conv2D(8, 3, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.MaxPooling2D()(x)
    x = L.DepthwiseConv2D(3, padding="valid", activation="relu6")(x)
    x = L.SeparableConv2D(12, 3, strides=2, padding="same", activation="swish")(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.5)(x)
    out_ = L.Dense(5, activation="softmax")(x)
    model = keras.Model(inp, out_)
    # Non-trivial batch-norm statistics, as a trained model has.
    bn = model.layers[2]
    rng = _rng()
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, .1, 8), rng.normal(0, .1, 8),
                    rng.uniform(0.5, 2, 8)])
    _from_keras(model, [tf.TensorSpec((None, 24, 24, 3), tf.float32, name="image")],
                os.path.join(out, f"{name}.onnx"))
    save_inputs(out, name, {"image": _rng().random((2, 24, 24, 3), np.float32)})


@export("keras", "keras_lstm")
def _keras_lstm(out: str, name: str) -> None:
    import keras
    import tensorflow as tf
    _seed_tf()
    L = keras.layers
    inp = keras.Input((None, 6), name="seq")
    x = L.LSTM(16, return_sequences=True)(inp)
    x = L.LSTM(8)(x)
    out_ = L.Dense(3)(x)
    model = keras.Model(inp, out_)
    _from_keras(model, [tf.TensorSpec((None, None, 6), tf.float32, name="seq")],
                os.path.join(out, f"{name}.onnx"))
    save_inputs(out, name, {"seq": _rng().standard_normal((2, 7, 6), np.float32)})


@export("keras", "keras_gru")
def _keras_gru(out: str, name: str) -> None:
    import keras
    import tensorflow as tf
    _seed_tf()
    L = keras.layers
    inp = keras.Input((None, 5), name="seq")
    x = L.Bidirectional(L.GRU(8, return_sequences=True))(inp)
    x = L.GRU(6)(x)
    out_ = L.Dense(2, activation="sigmoid")(x)
    model = keras.Model(inp, out_)
    _from_keras(model, [tf.TensorSpec((None, None, 5), tf.float32, name="seq")],
                os.path.join(out, f"{name}.onnx"))
    save_inputs(out, name, {"seq": _rng().standard_normal((3, 9, 5), np.float32)})


@export("keras", "keras_text_transformer")
def _keras_text_transformer(out: str, name: str) -> None:
    """Token ids -> embedding -> one transformer block (MultiHeadAttention, residuals,
    LayerNormalization, gelu feed-forward) -> Conv1D -> global max pool -> softmax."""
    import keras
    import tensorflow as tf
    _seed_tf()
    L = keras.layers
    inp = keras.Input((None,), dtype="int32", name="tokens")
    x = L.Embedding(60, 16)(inp)
    a = L.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    x = L.LayerNormalization()(x + a)
    # tanh-approximated gelu: for the exact one (erfc in Keras 3) tf2onnx 1.17 writes an Erfc
    # node, which is no ONNX operator, and onnxruntime refuses the model
    f = L.Dense(32, activation=lambda t: keras.activations.gelu(t, approximate=True))(x)
    x = L.LayerNormalization()(x + L.Dense(16)(f))
    x = L.Conv1D(12, 3, padding="same", activation="relu")(x)
    x = L.GlobalMaxPooling1D()(x)
    out_ = L.Dense(4, activation="softmax")(x)
    model = keras.Model(inp, out_)
    _from_keras(model, [tf.TensorSpec((None, None), tf.int32, name="tokens")],
                os.path.join(out, f"{name}.onnx"))
    save_inputs(out, name, {"tokens": _rng().integers(0, 60, (3, 10)).astype(np.int32)})


@export("keras", "tf_while_cond")
def _tf_while_cond(out: str, name: str) -> None:
    """A tf.function with a data-dependent tf.while_loop (ONNX Loop) and tf.cond (ONNX If)."""
    import tensorflow as tf
    import tf2onnx

    specs = (tf.TensorSpec((None, 4), tf.float32, name="x"),
             tf.TensorSpec((), tf.int32, name="steps"))

    @tf.function(input_signature=specs)
    def fn(x: Any, steps: Any) -> Any:
        w = tf.constant(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4))

        def body(i: Any, h: Any) -> Any:
            h = tf.tanh(tf.matmul(h, w) + tf.cast(i, tf.float32) * 0.1)
            return i + 1, h

        _, h = tf.while_loop(lambda i, h: i < steps, body, (tf.constant(0), x))
        total = tf.reduce_sum(h)
        y = tf.cond(total > 0.0, lambda: h * 2.0, lambda: h - 1.0)
        return tf.identity(y, name="y"), tf.identity(tf.shape(h)[0] // 2, name="half_batch")

    tf2onnx.convert.from_function(fn, input_signature=specs, opset=17,
                                  output_path=os.path.join(out, f"{name}.onnx"))
    save_inputs(out, name, {"x": _rng().standard_normal((5, 4), np.float32),
                            "steps": np.array(3, np.int32)})


@export("keras", "tf_ops_mix")
def _tf_ops_mix(out: str, name: str) -> None:
    """A tf.function of the TensorFlow operations whose conversions differ most from torch's:
    image resizes (tf2onnx writes Resize with the deprecated tf_half_pixel_for_nn mode),
    space_to_depth, top_k, argsort, boolean_mask (NonZero + GatherND), gather_nd,
    tensor_scatter_nd_update (ScatterND), exclusive reverse cumsum, floordiv / floormod /
    truncatediv of negative integers, one_hot, reduce_logsumexp, unsorted_segment_sum."""
    import tensorflow as tf
    import tf2onnx

    specs = (tf.TensorSpec((None, 6, 8, 4), tf.float32, name="img"),
             tf.TensorSpec((None, 5), tf.int32, name="ints"))

    @tf.function(input_signature=specs)
    def fn(img: Any, ints: Any) -> Any:
        flat = tf.reshape(img, (-1, 6 * 8 * 4))
        top_v, top_i = tf.math.top_k(flat, k=5)
        outs = {
            "resized": tf.image.resize(img, (9, 12), method="bilinear"),
            "nearest": tf.image.resize(img, (3, 4), method="nearest"),
            "s2d": tf.nn.space_to_depth(img, 2),
            "top_v": top_v, "top_i": top_i,
            "argsort": tf.argsort(flat[:, :10], direction="DESCENDING", stable=True),
            "picked": tf.boolean_mask(flat, flat > 0.5),
            "gather_nd": tf.gather_nd(img, [[0, 1, 2], [0, 3, 4]]),
            "scatter_nd": tf.tensor_scatter_nd_update(img[0], [[0, 0], [5, 7]], tf.ones((2, 4))),
            "cumsum": tf.math.cumsum(flat[:, :7], axis=1, exclusive=True, reverse=True),
            "floordiv": tf.math.floordiv(ints, 3), "floormod": tf.math.floormod(ints, 3),
            "truncdiv": tf.truncatediv(ints, 3),
            "one_hot": tf.one_hot(tf.abs(ints) % 4, 4),
            "logsumexp": tf.reduce_logsumexp(flat, axis=1),
            "segment_sum": tf.math.unsorted_segment_sum(tf.transpose(flat[:, :8]),
                                                        [0, 1, 0, 2, 1, 0, 2, 2], 3),
        }
        return tuple(tf.identity(v, name=k) for k, v in outs.items())

    tf2onnx.convert.from_function(fn, input_signature=specs, opset=17,
                                  output_path=os.path.join(out, f"{name}.onnx"))
    rng = _rng()
    save_inputs(out, name, {"img": rng.random((2, 6, 8, 4), np.float32),
                            "ints": rng.integers(-9, 10, (2, 5)).astype(np.int32)})


@export("keras", "tf_scan")
def _tf_scan(out: str, name: str) -> None:
    """tf.scan, tf.map_fn and a TensorArray written in a while_loop: three ONNX Loops with scan
    outputs, over a time axis of dynamic length."""
    import tensorflow as tf
    import tf2onnx

    specs = (tf.TensorSpec((None, None, 3), tf.float32, name="seq"),)

    @tf.function(input_signature=specs)
    def fn(seq: Any) -> Any:
        t = tf.transpose(seq, (1, 0, 2))                    # time major
        acc = tf.scan(lambda a, x: 0.5 * a + tf.tanh(x), t, initializer=tf.zeros_like(t[0]))
        squares = tf.map_fn(lambda x: tf.reduce_sum(x * x, axis=-1), t)
        steps = tf.shape(t)[0]

        def body(i: Any, ta: Any) -> Any:
            return i + 1, ta.write(i, tf.reduce_max(t[i], axis=-1) * tf.cast(i, tf.float32))

        _, ta = tf.while_loop(lambda i, ta: i < steps, body,
                              (0, tf.TensorArray(tf.float32, size=steps)))
        return (tf.identity(acc, name="acc"), tf.identity(squares, name="squares"),
                tf.identity(ta.stack(), name="stacked"))

    tf2onnx.convert.from_function(fn, input_signature=specs, opset=17,
                                  output_path=os.path.join(out, f"{name}.onnx"))
    save_inputs(out, name, {"seq": _rng().standard_normal((2, 5, 3), np.float32)})


# --------------------------------------------------------------------------------------------
# skl2onnx
# --------------------------------------------------------------------------------------------

def _skl_save(onx: Any, out: str, name: str, feeds: dict[str, np.ndarray]) -> None:
    with open(os.path.join(out, f"{name}.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    save_inputs(out, name, feeds)


def _classification(n: int = 200, features: int = 6) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=n, n_features=features, n_informative=4, n_classes=3,
                               random_state=SEED)
    return x.astype(np.float32), y


@export("sklearn", "skl_scaler_logreg")
def _skl_scaler_logreg(out: str, name: str) -> None:
    """StandardScaler + LogisticRegression, with the default ZipMap output (a sequence of maps)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = _classification()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    onx = to_onnx(pipe, x[:1], target_opset={"": 18, "ai.onnx.ml": 3})
    _skl_save(onx, out, name, {onx.graph.input[0].name: x[:16]})


@export("sklearn", "skl_forest")
def _skl_forest(out: str, name: str) -> None:
    """A random forest classifier and a gradient-boosted regressor side by side (TreeEnsemble*),
    probabilities as a plain tensor."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    x, y = _classification()
    clf = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=SEED).fit(x, y)
    onx = to_onnx(clf, x[:1], target_opset={"": 18, "ai.onnx.ml": 3},
                  options={"zipmap": False})
    _skl_save(onx, out, name, {onx.graph.input[0].name: x[:32]})


@export("sklearn", "skl_gbr")
def _skl_gbr(out: str, name: str) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor
    x, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=SEED)
    x = x.astype(np.float32)
    reg = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=SEED).fit(x, y)
    onx = to_onnx(reg, x[:1], target_opset={"": 18, "ai.onnx.ml": 3})
    _skl_save(onx, out, name, {onx.graph.input[0].name: x[:32]})


@export("sklearn", "skl_column_transformer")
def _skl_column_transformer(out: str, name: str) -> None:
    """Numeric columns scaled, string columns one-hot encoded (unknown categories ignored), a
    decision tree on top: three graph inputs, two of them strings."""
    import pandas as pd
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier
    rng = _rng()
    n = 120
    num = rng.standard_normal((n, 2)).astype(np.float32)
    color = rng.choice(["red", "green", "blue"], n)
    size = rng.choice(["S", "M", "L", "XL"], n)
    df = pd.DataFrame({"a": num[:, 0], "b": num[:, 1], "color": color, "size": size})
    target = ((num[:, 0] > 0) ^ (color == "red")).astype(np.int64)
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "size"])])
    pipe = Pipeline([("pre", pre), ("clf", DecisionTreeClassifier(max_depth=4,
                                                                   random_state=SEED))])
    pipe.fit(df, target)
    types = [("a", FloatTensorType([None, 1])), ("b", FloatTensorType([None, 1])),
             ("color", StringTensorType([None, 1])), ("size", StringTensorType([None, 1]))]
    onx = to_onnx(pipe, initial_types=types, target_opset={"": 18, "ai.onnx.ml": 3},
                  options={"zipmap": False})
    k = 12
    color_in = color[:k].copy()
    color_in[3] = "purple"                   # an unknown category: encoded as all zeros
    _skl_save(onx, out, name, {"a": num[:k, :1], "b": num[:k, 1:],
                               "color": color_in.reshape(-1, 1).astype(object),
                               "size": size[:k].reshape(-1, 1).astype(object)})


@export("sklearn", "skl_tfidf")
def _skl_tfidf(out: str, name: str) -> None:
    """TfidfVectorizer (words and word pairs) + LogisticRegression on raw strings: skl2onnx
    writes com.microsoft::Tokenizer, TfIdfVectorizer, Normalizer, LinearClassifier.
    lowercase=False keeps StringNormalizer out of the graph: onnxruntime's StringNormalizer
    needs the en_US.UTF-8 locale installed, which CI machines need not have."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    docs = ["the cat sat on the mat", "dogs and cats living together",
            "a stitch in time saves nine", "the quick brown fox jumps", "time flies like an arrow",
            "fruit flies like a banana", "the dog chased the cat", "cats sleep all day"]
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), lowercase=False),
                         LogisticRegression()).fit(docs * 3, [0, 1, 2, 0, 1, 1, 2, 0] * 3)
    onx = to_onnx(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                  target_opset={"": 18, "ai.onnx.ml": 3},
                  options={id(pipe.steps[-1][1]): {"zipmap": False}})
    text = np.array([["the cat and the dog"], ["time flies, like an ARROW!"],
                     ["unknown words only"], [""], ["fruit flies like a banana"]], dtype=object)
    _skl_save(onx, out, name, {"text": text})


# --------------------------------------------------------------------------------------------
# derived models
# --------------------------------------------------------------------------------------------

def _minus_one_dims(out: str, name: str, source: str) -> None:
    """Copy model `source`, every dim_param of its graph inputs and outputs replaced by
    dim_value -1, as Paddle2ONNX writes a dynamic dimension; the inputs are copied too."""
    import shutil

    import onnx
    model = onnx.load(os.path.join(out, f"{source}.onnx"))
    changed = 0
    for v in list(model.graph.input) + list(model.graph.output):
        for d in v.type.tensor_type.shape.dim:
            if d.HasField("dim_param") or not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = -1
                changed += 1
    if not changed:
        raise SystemExit(f"{source}: no dynamic dimension to rewrite")
    model.graph.doc_string = f"{source} with its dynamic graph dims written as dim_value -1"
    onnx.save(model, os.path.join(out, f"{name}.onnx"))
    shutil.copyfile(os.path.join(out, f"{source}.npz"), os.path.join(out, f"{name}.npz"))


@export("edit", "mobilenet_v3_small_neg_dims")
def _mobilenet_neg_dims(out: str, name: str) -> None:
    _minus_one_dims(out, name, "mobilenet_v3_small_ts")


@export("edit", "skl_scaler_logreg_neg_dims")
def _logreg_neg_dims(out: str, name: str) -> None:
    _minus_one_dims(out, name, "skl_scaler_logreg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family", choices=sorted(EXPORTS), help="which exporter family to run")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="export only these models")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    table = EXPORTS[args.family]
    names = args.only or sorted(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown {args.family} model(s) {unknown}; known: {sorted(table)}")
    os.makedirs(args.out, exist_ok=True)
    for n in names:
        print(f"exporting {n} ...", flush=True)
        table[n](args.out)
        size = os.path.getsize(os.path.join(args.out, f"{n}.onnx"))
        print(f"  {n}.onnx: {size / 1024:.1f} KiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
