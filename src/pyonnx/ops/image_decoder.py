"""ImageDecoder: encoded image bytes to an (H, W, C) uint8 tensor, through Pillow.

Pillow is an optional dependency (``pip install pyonnx[image]``); without it the kernel raises
UnsupportedOperatorError naming the extra. A stream Pillow cannot decode yields an empty tensor,
as the spec says.
"""

from __future__ import annotations

import io

import numpy as np

from pyonnx.errors import UnsupportedOperatorError
from pyonnx.ops.registry import kernel


@kernel("ImageDecoder", versions=(20,))
def image_decoder(encoded_stream: np.ndarray, *, pixel_format: str = "RGB") -> tuple:
    """Decode a BMP/JPEG/JPEG2000/TIFF/PNG/WebP/PNM stream; RGB, BGR or Grayscale output."""
    if pixel_format not in ("RGB", "BGR", "Grayscale"):
        raise UnsupportedOperatorError(
            f"ImageDecoder pixel_format {pixel_format!r} is not RGB, BGR or Grayscale")
    try:
        from PIL import Image
    except ImportError:
        raise UnsupportedOperatorError(
            "ImageDecoder needs Pillow: install it with `pip install pyonnx[image]`") from None
    data = np.asarray(encoded_stream, dtype=np.uint8).tobytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("L" if pixel_format == "Grayscale" else "RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except Exception:  # noqa: BLE001 - the spec asks for an empty result on any decode failure
        channels = 1 if pixel_format == "Grayscale" else 3
        return (np.zeros((0, 0, channels), dtype=np.uint8),)
    if pixel_format == "Grayscale":
        arr = arr[:, :, None]
    elif pixel_format == "BGR":
        arr = arr[:, :, ::-1]
    return (np.ascontiguousarray(arr),)
