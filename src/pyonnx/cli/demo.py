"""``pyonnx demo``: classify handwritten digits with a small model bundled in the package."""

from __future__ import annotations

import argparse
import os

import numpy as np

from pyonnx.runtime import InferenceSession

DATA = os.path.join(os.path.dirname(__file__), "data")

# darker pixels print as denser characters (the digits are 0..16 intensities)
_SHADES = " .:-=+*#%@"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a bundled digit classifier on a few handwritten digits",
                       description="Load the bundled model (a small perceptron trained on 8x8 "
                                   "handwritten digits), run it with InferenceSession, and show "
                                   "each digit with the model's answer and confidence.")
    p.set_defaults(func=run)


def _ascii(img: np.ndarray) -> list[str]:
    idx = np.clip(img.astype(np.int64) * (len(_SHADES) - 1) // 16, 0, len(_SHADES) - 1)
    return ["".join(_SHADES[i] * 2 for i in row) for row in idx]


def run(args: argparse.Namespace) -> int:
    model_path = os.path.join(DATA, "digits.onnx")
    sess = InferenceSession(model_path)
    samples = np.load(os.path.join(DATA, "digits_samples.npz"))
    pixels, labels = samples["pixels"], samples["labels"]
    inp = sess.get_inputs()[0]
    out = sess.get_outputs()[0]
    print(f"model: {model_path}")
    print(f"input {inp.name} {inp.type} {inp.shape} -> output {out.name} {out.type} {out.shape}")
    (probs,) = sess.run(None, {inp.name: pixels.astype(np.float32)})
    correct = 0
    per_row = 4
    for start in range(0, len(pixels), per_row):
        block = range(start, min(start + per_row, len(pixels)))
        arts = [_ascii(pixels[i]) for i in block]
        print()
        for r in range(8):
            print("   ".join(a[r] for a in arts))
        captions = []
        for i in block:
            pred = int(probs[i].argmax())
            ok = pred == int(labels[i])
            correct += ok
            captions.append(f"{'ok ' if ok else 'NO '}{pred} ({probs[i, pred]:.0%})".ljust(16))
        print("   ".join(captions))
        print("   ".join(f"true {int(labels[i])}".ljust(16) for i in block))
    print(f"\n{correct} of {len(pixels)} digits classified correctly by pyonnx.")
    return 0
