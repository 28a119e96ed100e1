"""The browser viewer: ``pyonnx view MODEL``.

:func:`describe_model` turns a model into the JSON the page draws (types and symbolic shapes
from shape inference, checker violations on their nodes, weight statistics but never weights);
:mod:`~pyonnx.viewer.overlays` adds a profile and a cross-engine comparison;
:func:`render_page` makes the one self-contained HTML page (the app, its layout library and the
description inlined); :class:`ViewerServer` serves it on the loopback interface behind a launch
token. ``import pyonnx`` does not import this package.
"""

from pyonnx.viewer.describe import FORMAT, describe_model, doc_url
from pyonnx.viewer.overlays import compare_overlay, profile_from_trace, profile_model
from pyonnx.viewer.page import render_page
from pyonnx.viewer.server import ViewerServer

__all__ = ["describe_model", "doc_url", "FORMAT", "profile_from_trace", "profile_model",
           "compare_overlay", "render_page", "ViewerServer"]
