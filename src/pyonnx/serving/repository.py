"""Where served models come from: one ``.onnx`` file, or a folder in Triton's layout.

A folder may also hold plain ``NAME.onnx`` files: each is model NAME, version 1, with no
configuration (a folder ``NAME`` in Triton's layout takes precedence). Triton's layout is ``ROOT/NAME/config.pbtxt`` (optional) and ``ROOT/NAME/VERSION/model.onnx``
with numeric VERSION folders (the file name may be changed by the configuration's
``default_model_filename``). Every version folder present is served; a request without a
version goes to the highest.

Only files inside the repository are ever opened: names and versions from requests must be plain
(a name is letters, digits, ``_ . -``; a version is digits), and every path is resolved with its
symlinks and must still lie inside the repository's resolved folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pyonnx.serving.errors import BadRequest, ModelNotFound

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_VERSION = re.compile(r"[0-9]{1,18}")
CONFIG_FILE = "config.pbtxt"


def check_name(name: str) -> str:
    """``name`` if it is a plain model name; BadRequest otherwise (``..``, slashes, ...)."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise BadRequest(f"model name {name!r} is not a plain name (letters, digits, '_', '.', "
                         f"'-'); models are only served from inside the repository")
    return name


def check_version(version: str) -> str:
    """``version`` if it is empty (the default) or a number; BadRequest otherwise."""
    if version and not _VERSION.fullmatch(version):
        raise BadRequest(f"model version {version!r} is not a number; models are only served "
                         f"from inside the repository")
    return version


@dataclass(frozen=True)
class ModelSource:
    """One model version on disk: its file and its model's configuration file (may not exist)."""

    name: str
    version: str
    path: Path
    config_path: Path | None


class ModelRepository:
    """The models a server may load: a single ``.onnx`` file, or a Triton-layout folder."""

    def __init__(self, location: str | os.PathLike) -> None:
        given = Path(location)
        if not given.exists():
            raise FileNotFoundError(2, "no such model file or repository folder", str(given))
        self.root = given.resolve()
        self.single: Path | None = None
        if self.root.is_file():
            self.single = self.root
            self.root = self.root.parent
            stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", self.single.stem) or "model"
            self.single_name = check_name(stem.lstrip(".") or "model")

    def _inside(self, path: Path) -> Path:
        """``path`` with symlinks resolved, if that lies inside the repository; else not found."""
        real = path.resolve()
        if real != self.root and self.root not in real.parents:
            raise ModelNotFound(f"{path.relative_to(self.root) if path.is_relative_to(self.root) else path} "
                                f"resolves outside the model repository")
        return real

    def names(self) -> list[str]:
        """Every model name the repository holds (whether loadable or not)."""
        if self.single is not None:
            return [self.single_name]
        out = set()
        for entry in sorted(os.listdir(self.root)):
            path = self.root / entry
            name = entry[:-5] if entry.endswith(".onnx") and path.is_file() else entry
            if not _NAME.fullmatch(name) or ".." in name:
                continue
            if path.is_dir() or name != entry:
                try:
                    self._inside(path)
                except ModelNotFound:
                    continue
                out.add(name)
        return sorted(out)

    def sources(self, name: str) -> list[ModelSource]:
        """Every version of model ``name`` on disk, lowest version first; ModelNotFound if none."""
        check_name(name)
        if self.single is not None:
            if name != self.single_name:
                raise ModelNotFound(f"unknown model {name!r} (this server serves {self.single_name!r})")
            return [ModelSource(name, "1", self.single, None)]
        folder = self.root / name
        plain = self.root / f"{name}.onnx"
        if not folder.is_dir() and plain.is_file():
            return [ModelSource(name, "1", self._inside(plain), None)]
        if not folder.is_dir():
            raise ModelNotFound(f"unknown model {name!r}: no folder {name!r} in the model repository")
        folder = self._inside(folder)
        from pyonnx.serving.config import read_config  # the configuration names the model file

        config_path = folder / CONFIG_FILE
        cfg = read_config(self._inside(config_path)) if config_path.exists() else None
        filename = (cfg.default_model_filename if cfg is not None and cfg.default_model_filename
                    else "model.onnx")
        if "/" in filename or "\\" in filename or filename in (".", ".."):
            raise BadRequest(f"{config_path}: default_model_filename {filename!r} must be a plain "
                             f"file name")
        found = []
        for entry in os.listdir(folder):
            if _VERSION.fullmatch(entry) and (folder / entry / filename).is_file():
                found.append(ModelSource(name, str(int(entry)),
                                         self._inside(folder / entry / filename),
                                         config_path if cfg is not None else None))
        if not found:
            raise ModelNotFound(f"model {name!r} has no version folder holding {filename!r} "
                                f"(expected {name}/<version>/{filename})")
        return sorted(found, key=lambda s: int(s.version))
