"""Write the deployed-model benchmark set of issue 12 (mobile CNNs, RNNs, small transformer
encoders) as ONNX files into --out (default benchmarks/models/, git-ignored: never committed).

Every model is built from its constructor or config at full size with seeded random weights
(no hub, no download), put in eval mode and exported by the TorchScript exporter
(``dynamo=False``) at opset 17 with batch 1 as the traced batch; the batch dimension is
declared dynamic (named ``batch``) where the model allows it. Each file is run once in
onnxruntime on random inputs of its declared shapes. Run with the torch environment:

    /work/venv-torch/bin/python tools/export_bench_models.py [--out DIR] [--only NAME ...]

then benchmark them with ``benchmarks/run.py --models-dir benchmarks/models``.

Models (input at batch 1):
  mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, efficientnet_b0   image 3x224x224
  lraspp_mobilenet_v3                                                    image 3x520x520
  ssdlite320_mobilenet_v3                          image 3x320x320 (boxes, scores, labels)
  lstm2_tagger   token ids x128 -> Embedding(5000, 128) -> 2-layer LSTM(256) -> Linear(256, 17)
  gru_tagger     token ids x128 -> Embedding(5000, 128) -> 2-layer GRU(256)  -> Linear(256, 17)
  distilbert_encoder    input_ids + attention_mask x128 (DistilBertConfig defaults)
  t5_small_encoder      input_ids + attention_mask x128 (t5-small sizes)
  whisper_tiny_encoder  input_features 80x3000 (30 s of log-mel, whisper-tiny sizes)
  wav2vec2_base         input_values 16000 (1 s at 16 kHz, Wav2Vec2Config defaults = base)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "benchmarks", "models"))
OPSET = 17
SEED = 0

MODELS: dict[str, Callable[[], tuple[Any, tuple[Any, ...], list[str], list[str],
                                     dict[str, dict[int, str]]]]] = {}


def model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        MODELS[name] = fn
        return fn
    return register


def _image_batch(*names: str) -> dict[str, dict[int, str]]:
    return {n: {0: "batch"} for n in names}


def _tv(ctor: str, size: int) -> Any:
    import torch
    import torchvision

    m = getattr(torchvision.models, ctor)(weights=None)
    return (m.eval(), (torch.randn(1, 3, size, size),), ["input"], ["output"],
            _image_batch("input", "output"))


@model("mobilenet_v2")
def _mobilenet_v2() -> Any:
    return _tv("mobilenet_v2", 224)


@model("mobilenet_v3_large")
def _mobilenet_v3_large() -> Any:
    return _tv("mobilenet_v3_large", 224)


@model("mobilenet_v3_small")
def _mobilenet_v3_small() -> Any:
    return _tv("mobilenet_v3_small", 224)


@model("efficientnet_b0")
def _efficientnet_b0() -> Any:
    return _tv("efficientnet_b0", 224)


@model("lraspp_mobilenet_v3")
def _lraspp() -> Any:
    import torch
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    class Seg(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)

        def forward(self, x: Any) -> Any:
            return self.m(x)["out"]

    return (Seg().eval(), (torch.randn(1, 3, 520, 520),), ["input"], ["out"],
            _image_batch("input", "out"))


@model("ssdlite320_mobilenet_v3")
def _ssdlite() -> Any:
    import torch
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    class Det(torch.nn.Module):
        """One image in, (boxes, scores, labels) out: the detector with its post-processing."""

        def __init__(self) -> None:
            super().__init__()
            self.m = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)

        def forward(self, x: Any) -> Any:
            d = self.m([x[0]])[0]
            return d["boxes"], d["scores"], d["labels"]

    # random weights give near-uniform scores: keep the default thresholds, the NMS still runs
    return (Det().eval(), (torch.rand(1, 3, 320, 320),), ["input"],
            ["boxes", "scores", "labels"], {})



def _rnn(cell: str) -> Any:
    import torch

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(5000, 128)
            self.rnn = getattr(torch.nn, cell)(128, 256, num_layers=2, batch_first=True)
            self.out = torch.nn.Linear(256, 17)

        def forward(self, ids: Any) -> Any:
            y, _ = self.rnn(self.emb(ids))
            return self.out(y)

    ids = torch.randint(0, 5000, (1, 128))
    return (Tagger().eval(), (ids,), ["input_ids"], ["logits"],
            {"input_ids": {0: "batch"}, "logits": {0: "batch"}})


@model("lstm2_tagger")
def _lstm() -> Any:
    return _rnn("LSTM")


@model("gru_tagger")
def _gru() -> Any:
    return _rnn("GRU")


def _text(m: Any, vocab: int) -> Any:
    import torch

    class Enc(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = m

        def forward(self, ids: Any, mask: Any) -> Any:
            return self.m(input_ids=ids, attention_mask=mask).last_hidden_state

    ids = torch.randint(0, vocab, (1, 128))
    mask = torch.ones(1, 128, dtype=torch.int64)
    return (Enc().eval(), (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state"],
            {"input_ids": {0: "batch"}, "attention_mask": {0: "batch"},
             "last_hidden_state": {0: "batch"}})


@model("distilbert_encoder")
def _distilbert() -> Any:
    from transformers import DistilBertConfig, DistilBertModel

    cfg = DistilBertConfig(attn_implementation="eager")
    return _text(DistilBertModel(cfg), cfg.vocab_size)


@model("t5_small_encoder")
def _t5() -> Any:
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                   vocab_size=32128, attn_implementation="eager")
    return _text(T5EncoderModel(cfg), cfg.vocab_size)


@model("whisper_tiny_encoder")
def _whisper() -> Any:
    import torch
    from transformers import WhisperConfig, WhisperModel

    cfg = WhisperConfig(d_model=384, encoder_layers=4, decoder_layers=4,
                        encoder_attention_heads=6, decoder_attention_heads=6,
                        encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80,
                        max_source_positions=1500, vocab_size=51865,
                        attn_implementation="eager")
    enc = WhisperModel(cfg).get_encoder()

    class Enc(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = enc

        def forward(self, x: Any) -> Any:
            return self.m(input_features=x).last_hidden_state

    return (Enc().eval(), (torch.randn(1, 80, 3000),), ["input_features"],
            ["last_hidden_state"], _image_batch("input_features", "last_hidden_state"))


@model("wav2vec2_base")
def _wav2vec2() -> Any:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(attn_implementation="eager")
    m = Wav2Vec2Model(cfg)

    class Enc(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: Any) -> Any:
            return self.m(input_values=x).last_hidden_state

    return (Enc().eval(), (torch.randn(1, 16000) * 0.1,), ["input_values"],
            ["last_hidden_state"], _image_batch("input_values", "last_hidden_state"))


def _check(path: str) -> str:
    """Run the file once in onnxruntime on random inputs of its declared shapes."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(SEED)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        if "int64" in i.type:
            feeds[i.name] = (np.ones(shape, np.int64) if "mask" in i.name
                             else rng.integers(0, 257, shape).astype(np.int64))
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    outs = sess.run(None, feeds)
    return ", ".join(f"{o.name}{list(v.shape)}" for o, v in zip(sess.get_outputs(), outs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", default=[], choices=sorted(MODELS))
    args = ap.parse_args(argv)
    import torch

    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name, build in MODELS.items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(SEED)
        path = os.path.join(args.out, f"{name}.onnx")
        t0 = time.time()
        try:
            m, inputs, in_names, out_names, dyn = build()
            with torch.no_grad():
                torch.onnx.export(m, inputs, path, dynamo=False, opset_version=OPSET,
                                  input_names=in_names, output_names=out_names,
                                  dynamic_axes=dyn or None, do_constant_folding=True)
            outs = _check(path)
            print(f"{name}: {os.path.getsize(path) / 2**20:.1f} MiB, "
                  f"{time.time() - t0:.0f} s, onnxruntime ok: {outs}", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            failed.append(name)
            traceback.print_exc()
            print(f"{name}: FAILED ({type(e).__name__}: {e})", flush=True)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
