"""The names of onnxruntime's ``onnxruntime.capi.onnxruntime_inference_collection``: the
Python-level session, value and binding classes, and the provider-argument normalizer."""

from __future__ import annotations

import collections.abc
import warnings
from collections.abc import Sequence
from typing import Any

from pyonnx.errors import InvalidArgument
from pyonnx.runtime.adapters import AdapterFormat  # noqa: F401
from pyonnx.runtime.iobinding import IOBinding  # noqa: F401
from pyonnx.runtime.ortvalue import (  # noqa: F401
    OrtDevice,
    OrtDeviceVendorId,
    OrtValue,
    SparseTensor,
    copy_tensors,
)
from pyonnx.runtime.session import InferenceSession  # noqa: F401

Session = InferenceSession


def check_and_normalize_provider_args(
        providers: Sequence[str | tuple[str, dict[Any, Any]]] | None,
        provider_options: Sequence[dict[Any, Any]] | None,
        available_provider_names: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Check ``providers`` (names, or (name, options) tuples) and ``provider_options`` and
    return (names, options dicts with str keys and values), as onnxruntime does: a provider not
    in ``available_provider_names`` and a repeated provider warn (the repeat is dropped); a
    malformed argument raises InvalidArgument (a ValueError)."""
    if providers is None:
        return [], []
    chosen: dict[str, dict[str, str]] = {}

    def add(name: str, options: dict[Any, Any]) -> None:
        if name not in available_provider_names:
            warnings.warn(f"Specified provider '{name}' is not in available provider names. "
                          f"Available providers: '{', '.join(available_provider_names)}'",
                          stacklevel=3)
        if name in chosen:
            warnings.warn(f"Duplicate provider '{name}' encountered, ignoring.", stacklevel=3)
            return
        chosen[name] = {str(k): str(v) for k, v in options.items()}

    if not isinstance(providers, collections.abc.Sequence) or isinstance(providers, str):
        raise InvalidArgument("'providers' should be a sequence.")
    if provider_options is not None:
        if not isinstance(provider_options, collections.abc.Sequence):
            raise InvalidArgument("'provider_options' should be a sequence.")
        if len(providers) != len(provider_options):
            raise InvalidArgument("'providers' and 'provider_options' should be the same length "
                                  "if both are given.")
        if not all(isinstance(p, str) for p in providers):
            raise InvalidArgument("Only string values for 'providers' are supported if "
                                  "'provider_options' is given.")
        if not all(isinstance(o, dict) for o in provider_options):
            raise InvalidArgument("'provider_options' values must be dicts.")
        for name, options in zip(providers, provider_options):
            add(name, options)
    else:
        for p in providers:
            if isinstance(p, str):
                add(p, {})
            elif isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) \
                    and isinstance(p[1], dict):
                add(p[0], p[1])
            else:
                raise InvalidArgument("'providers' values must be either strings or "
                                      "(string, dict) tuples.")
    return list(chosen), list(chosen.values())
