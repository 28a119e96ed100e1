"""Calibration: the value ranges of a model's intermediate tensors over sample inputs.

The model is copied with every tensor to calibrate exposed as a graph output and run with
pyonnx's own :class:`~pyonnx.InferenceSession`, one sample batch at a time. Each batch updates
running statistics (min/max, or a fixed-size histogram per tensor) and is then dropped, so
memory does not grow with the number of samples. A progress bar is shown when ``tqdm`` is
installed (the ``progress`` extra) and the reader knows its length.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument, PyOnnxError
from pyonnx.ir import DataType, Model, TensorType, Value
from pyonnx.quantization._types import CalibrationMethod

__all__ = ["CalibrationDataReader", "TensorData", "TensorsData", "CalibraterBase",
           "MinMaxCalibrater", "HistogramCalibrater", "EntropyCalibrater",
           "PercentileCalibrater", "DistributionCalibrater", "create_calibrator",
           "collect_ranges"]


class CalibrationDataReader(abc.ABC):
    """Supplies calibration samples: ``get_next()`` returns one feed dict ({input name: array})
    per call and None when done. Iterating over a reader yields the same feeds."""

    @abc.abstractmethod
    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next feed, or None at the end."""

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        result = self.get_next()
        if result is None:
            raise StopIteration
        return result

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__} does not know its length")

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict the reader to a slice of its samples (readers that can, override this)."""
        raise NotImplementedError


@dataclasses.dataclass
class TensorData:
    """What calibration learned about one tensor: its range (``lowest``, ``highest``) and, for
    histogram methods, the histogram and its mean and standard deviation."""

    lowest: np.ndarray
    highest: np.ndarray
    hist: np.ndarray | None = None
    hist_edges: np.ndarray | None = None
    avg: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def range_value(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.lowest, self.highest)


class TensorsData:
    """Calibration results by tensor name, with the method that produced them."""

    def __init__(self, calibration_method: CalibrationMethod, data: dict[str, TensorData]) -> None:
        self.calibration_method = calibration_method
        self.data = dict(data)

    def __getitem__(self, name: str) -> TensorData:
        return self.data[name]

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def items(self):
        return self.data.items()

    def values(self):
        return self.data.values()

    def keys(self):
        return self.data.keys()


def _float_tensor_names(model: Model, names: Sequence[str] | None) -> list[str]:
    """The float tensors of the main graph worth calibrating: node outputs and graph inputs of
    float type (initializers excluded), restricted to ``names`` when given."""
    float_types = (DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16)
    out: list[str] = []
    g = model.graph
    candidates: list[Value] = [v for v in g.inputs if v.name not in g.initializers]
    for n in g.nodes:
        candidates.extend(v for v in n.outputs if v.name)
    seen: set[str] = set()
    wanted = set(names) if names is not None else None
    for v in candidates:
        if v.name in seen or (wanted is not None and v.name not in wanted):
            continue
        t = v.type
        if isinstance(t, TensorType) and t.elem_type in float_types:
            out.append(v.name)
            seen.add(v.name)
    return out


def _augmented(model: Model, names: Sequence[str]) -> Model:
    """A copy of ``model`` whose outputs are ``names`` (after the original outputs)."""
    from pyonnx.optimizer._copy import copy_model

    m = copy_model(model)
    values = {v.name: v for v in m.graph.inputs}
    for n in m.graph.nodes:
        for v in n.outputs:
            values[v.name] = v
    present = {v.name for v in m.graph.outputs}
    for name in names:
        if name not in present:
            m.graph.outputs.append(values[name])
            present.add(name)
    return m


def _check_feed(model: Model, feed: Any, index: int) -> dict[str, np.ndarray]:
    """A calibration sample checked against the model's inputs (names, dtypes, ranks, fixed
    dims); a bad one raises InvalidArgument naming the input and the sample."""
    if not isinstance(feed, dict):
        raise InvalidArgument(f"calibration sample {index} is a {type(feed).__name__}; the "
                              f"reader's get_next() must return a dict of input name -> array")
    inputs = {v.name: v for v in model.graph.inputs if v.name not in model.graph.initializers}
    out: dict[str, np.ndarray] = {}
    for name, arr in feed.items():
        v = inputs.get(name)
        if v is None:
            raise InvalidArgument(f"calibration sample {index} feeds {name!r}, which is not an "
                                  f"input of the model (inputs: {', '.join(inputs)})")
        a = np.asarray(arr)
        t = v.type
        if isinstance(t, TensorType):
            want = t.elem_type.numpy
            if a.dtype != want:
                raise InvalidArgument(f"calibration sample {index}: input {name!r} is "
                                      f"{a.dtype}, the model expects {want}")
            if t.shape is not None:
                if a.ndim != len(t.shape):
                    raise InvalidArgument(f"calibration sample {index}: input {name!r} has "
                                          f"shape {list(a.shape)}, the model expects rank "
                                          f"{len(t.shape)} ({list(t.shape)})")
                for d, (got, exp) in enumerate(zip(a.shape, t.shape)):
                    if isinstance(exp, int) and got != exp:
                        raise InvalidArgument(f"calibration sample {index}: input {name!r} has "
                                              f"shape {list(a.shape)}, dimension {d} must be "
                                              f"{exp} ({list(t.shape)})")
        out[name] = a
    missing = [n for n in inputs if n not in out]
    if missing:
        raise InvalidArgument(f"calibration sample {index} lacks input(s) {', '.join(missing)}")
    return out


def _progress(samples: Any, desc: str, reader: Any) -> Any:
    """``samples`` wrapped in a tqdm progress bar when tqdm is installed (its total from
    ``len(reader)`` when the reader knows it)."""
    try:
        from tqdm import tqdm  # optional: the ``progress`` extra
    except ImportError:
        return samples
    try:
        total = len(reader)
    except TypeError:
        total = None
    return tqdm(samples, desc=desc, total=total, leave=False, unit="sample")


class CalibraterBase:
    """Runs a model over calibration samples and keeps statistics of chosen tensors.

    ``model``: a Model (or path) whose shapes are known; ``op_types_to_calibrate``: calibrate
    the outputs of these operators (and the graph inputs), or every float tensor when None;
    ``tensors``: calibrate exactly these names instead.
    """

    method: CalibrationMethod = CalibrationMethod.MinMax

    def __init__(self, model: Model, op_types_to_calibrate: Sequence[str] | None = None,
                 tensors: Sequence[str] | None = None, symmetric: bool = False,
                 providers: Sequence[str] | None = None, show_progress: bool = True) -> None:
        from pyonnx.io import load
        from pyonnx.shape_inference import infer_shapes

        if not isinstance(model, Model):
            model = load(model)
        self.model = infer_shapes(model)
        if tensors is None and op_types_to_calibrate is not None:
            ops = set(op_types_to_calibrate)
            tensors = [v.name for n in self.model.graph.nodes if n.op_type in ops
                       for v in list(n.inputs) + list(n.outputs) if v is not None]
        self.tensors = _float_tensor_names(self.model, tensors)
        self.symmetric = symmetric
        self.providers = list(providers) if providers else None
        self.show_progress = show_progress
        self.samples = 0
        self._session: Any = None

    def _get_session(self) -> Any:
        if self._session is None:
            from pyonnx.runtime import InferenceSession

            self._session = InferenceSession(_augmented(self.model, self.tensors))
        return self._session

    def collect_data(self, data_reader: CalibrationDataReader) -> None:
        """Run every sample of the reader and update the statistics (callable repeatedly)."""
        sess = self._get_session()
        names = [o.name for o in sess.get_outputs()]
        index = {n: i for i, n in enumerate(names)}
        wanted = [(t, index[t]) for t in self.tensors]
        # a reader is anything with get_next() (onnxruntime's protocol, subclass or not);
        # a plain iterable of feeds works too
        samples = iter(data_reader.get_next, None) if hasattr(data_reader, "get_next") \
            else iter(data_reader)
        source = _progress(samples, "calibrating", data_reader) if self.show_progress \
            else samples
        for feed in source:
            feed = _check_feed(self.model, feed, self.samples)
            try:
                outs = sess.run(names, feed)
            except PyOnnxError as e:
                raise type(e)(f"calibration sample {self.samples}: {e}") from e
            self.samples += 1
            for t, i in wanted:
                self._update(t, np.asarray(outs[i]))
            del outs

    def _update(self, name: str, x: np.ndarray) -> None:
        raise NotImplementedError

    def compute_data(self) -> TensorsData:
        """The ranges found (raises when no sample was run)."""
        if self.samples == 0:
            raise InvalidArgument("calibration: the data reader gave no samples")
        return TensorsData(self.method, self._compute())

    def _compute(self) -> dict[str, TensorData]:
        raise NotImplementedError


class MinMaxCalibrater(CalibraterBase):
    """The range of each tensor is the min and max it took, over all samples, or with
    ``moving_average`` an exponential moving average of each sample's min and max
    (``averaging_constant`` the weight of the newest)."""

    method = CalibrationMethod.MinMax

    def __init__(self, model: Model, op_types_to_calibrate: Sequence[str] | None = None,
                 tensors: Sequence[str] | None = None, symmetric: bool = False,
                 moving_average: bool = False, averaging_constant: float = 0.01,
                 **kwargs: Any) -> None:
        super().__init__(model, op_types_to_calibrate, tensors, symmetric, **kwargs)
        if not 0 <= averaging_constant <= 1:
            raise InvalidArgument(f"CalibMovingAverageConstant must be in [0, 1], got "
                                  f"{averaging_constant}")
        self.moving_average = moving_average
        self.averaging_constant = averaging_constant
        self._ranges: dict[str, tuple[float, float]] = {}

    def _update(self, name: str, x: np.ndarray) -> None:
        if x.size == 0:
            return
        lo, hi = float(np.min(x)), float(np.max(x))
        old = self._ranges.get(name)
        if old is None:
            self._ranges[name] = (lo, hi)
        elif self.moving_average:
            c = self.averaging_constant
            self._ranges[name] = (old[0] + c * (lo - old[0]), old[1] + c * (hi - old[1]))
        else:
            self._ranges[name] = (min(old[0], lo), max(old[1], hi))

    def _compute(self) -> dict[str, TensorData]:
        out = {}
        for name, (lo, hi) in self._ranges.items():
            if self.symmetric:
                m = max(abs(lo), abs(hi))
                lo, hi = -m, m
            out[name] = TensorData(np.float32(lo), np.float32(hi))
        return out


class _Histogram:
    """A histogram of fixed size over a symmetric range [-limit, limit] that widens as larger
    values arrive (old counts move to the wider bins their centres fall in)."""

    __slots__ = ("counts", "limit", "lo", "hi", "num_bins")

    def __init__(self, num_bins: int) -> None:
        self.num_bins = num_bins
        self.counts = np.zeros(num_bins, np.int64)
        self.limit = 0.0
        self.lo, self.hi = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        x = x.astype(np.float32, copy=False).ravel()
        x = x[np.isfinite(x)]
        if x.size == 0:
            return
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        m = float(max(abs(self.lo), abs(self.hi)))
        if m > self.limit:
            if self.counts.any():
                old_edges = self.edges
                centres = (old_edges[:-1] + old_edges[1:]) / 2
                self.counts = np.histogram(centres, bins=self.num_bins, range=(-m, m),
                                           weights=self.counts)[0].astype(np.int64)
            self.limit = m
        if self.limit == 0:
            self.counts[self.num_bins // 2] += x.size
            return
        self.counts += np.histogram(x, bins=self.num_bins, range=(-self.limit, self.limit))[0]

    @property
    def edges(self) -> np.ndarray:
        lim = self.limit if self.limit > 0 else 1.0
        return np.linspace(-lim, lim, self.num_bins + 1, dtype=np.float64)


class HistogramCalibrater(CalibraterBase):
    """Keeps a fixed-size histogram per tensor (``num_bins`` bins); subclasses pick the range."""

    def __init__(self, model: Model, op_types_to_calibrate: Sequence[str] | None = None,
                 tensors: Sequence[str] | None = None, symmetric: bool = False,
                 num_bins: int = 128, **kwargs: Any) -> None:
        super().__init__(model, op_types_to_calibrate, tensors, symmetric, **kwargs)
        if num_bins < 2:
            raise InvalidArgument(f"calibration num_bins must be at least 2, got {num_bins}")
        self.num_bins = int(num_bins)
        self._hists: dict[str, _Histogram] = {}

    def _update(self, name: str, x: np.ndarray) -> None:
        h = self._hists.get(name)
        if h is None:
            h = self._hists[name] = _Histogram(self.num_bins)
        h.add(x)

    def _compute(self) -> dict[str, TensorData]:
        out = {}
        for name, h in self._hists.items():
            if h.counts.sum() == 0:
                out[name] = TensorData(np.float32(0), np.float32(0))
                continue
            lo, hi = self._threshold(h)
            if self.symmetric:
                m = max(abs(lo), abs(hi))
                lo, hi = -m, m
            edges = h.edges
            centres = (edges[:-1] + edges[1:]) / 2
            total = h.counts.sum()
            avg = float((h.counts * centres).sum() / total)
            std = float(np.sqrt(max((h.counts * centres ** 2).sum() / total - avg ** 2, 0.0)))
            out[name] = TensorData(np.float32(lo), np.float32(hi), h.counts.copy(),
                                   edges.astype(np.float32), np.float32(avg), np.float32(std))
        return out

    def _threshold(self, h: _Histogram) -> tuple[float, float]:
        raise NotImplementedError


class PercentileCalibrater(HistogramCalibrater):
    """The range keeps ``percentile`` percent of the values: of the absolute values when
    symmetric, else cutting half the rest from each tail."""

    method = CalibrationMethod.Percentile

    def __init__(self, model: Model, op_types_to_calibrate: Sequence[str] | None = None,
                 tensors: Sequence[str] | None = None, symmetric: bool = False,
                 num_bins: int = 2048, percentile: float = 99.999, **kwargs: Any) -> None:
        super().__init__(model, op_types_to_calibrate, tensors, symmetric, num_bins, **kwargs)
        if not 0 <= percentile <= 100:
            raise InvalidArgument(f"CalibPercentile must be in [0, 100], got {percentile}")
        self.percentile = float(percentile)

    def _threshold(self, h: _Histogram) -> tuple[float, float]:
        edges = h.edges
        p = self.percentile / 100.0
        if self.symmetric:
            # fold the histogram onto |x|: bin i and its mirror image count together
            half = h.num_bins // 2
            folded = h.counts[half:] + h.counts[:h.num_bins - half][::-1]
            cdf = np.cumsum(folded) / folded.sum()
            i = min(int(np.searchsorted(cdf, p)), len(folded) - 1)
            t = float(edges[half + i + 1])
            return max(-t, h.lo), min(t, h.hi)
        cdf = np.cumsum(h.counts) / h.counts.sum()
        cut = (1.0 - p) / 2
        i_lo = min(int(np.searchsorted(cdf, cut)), h.num_bins - 1)
        i_hi = min(int(np.searchsorted(cdf, 1.0 - cut)), h.num_bins - 1)
        return max(float(edges[i_lo]), h.lo), min(float(edges[i_hi + 1]), h.hi)


class EntropyCalibrater(HistogramCalibrater):
    """The symmetric range whose quantization to ``num_quantized_bins`` levels loses the least
    information: the threshold minimizing the KL divergence between the clipped histogram and
    its quantized version."""

    method = CalibrationMethod.Entropy

    def __init__(self, model: Model, op_types_to_calibrate: Sequence[str] | None = None,
                 tensors: Sequence[str] | None = None, symmetric: bool = False,
                 num_bins: int = 128, num_quantized_bins: int = 128, **kwargs: Any) -> None:
        super().__init__(model, op_types_to_calibrate, tensors, symmetric, num_bins, **kwargs)
        self.num_quantized_bins = int(num_quantized_bins)

    def _threshold(self, h: _Histogram) -> tuple[float, float]:
        counts = h.counts.astype(np.float64)
        edges = h.edges
        nb = h.num_bins
        centre = nb // 2
        half_q = max(self.num_quantized_bins // 2, 1)
        best, best_i = np.inf, nb - centre
        for i in range(min(half_q, nb - centre), nb - centre + 1):
            start, stop = centre - i, centre + i
            p = counts[max(start, 0):stop].copy()
            if p.size == 0 or p.sum() == 0:
                continue
            p[0] += counts[:max(start, 0)].sum()  # outliers join the edge bins
            p[-1] += counts[stop:].sum()
            nonzero = p > 0
            # merge p into num_quantized_bins levels, spread each level over its non-zero bins
            nq = min(self.num_quantized_bins, p.size)
            groups = np.array_split(np.arange(p.size), nq)
            q = np.zeros_like(p)
            for g in groups:
                nz = nonzero[g]
                if nz.any():
                    q[g[nz]] = p[g].sum() / nz.sum()
            ps, qs = p / p.sum(), q / q.sum()
            m = nonzero & (qs > 0)
            kl = float(np.sum(ps[m] * np.log(ps[m] / qs[m])))
            if np.any(nonzero & (qs == 0)):
                kl = np.inf
            if kl < best:
                best, best_i = kl, i
        t = float(edges[centre + best_i])
        return max(-t, h.lo), min(t, h.hi)


class DistributionCalibrater(HistogramCalibrater):
    """The histogram's mean and standard deviation are kept (what float8 scales use); the
    integer range is the observed one."""

    method = CalibrationMethod.Distribution

    def __init__(self, model: Model, op_types_to_calibrate: Sequence[str] | None = None,
                 tensors: Sequence[str] | None = None, symmetric: bool = False,
                 num_bins: int = 128, scenario: str = "same", **kwargs: Any) -> None:
        super().__init__(model, op_types_to_calibrate, tensors, symmetric, num_bins, **kwargs)
        if scenario not in ("same", "p3"):
            raise InvalidArgument(f"CalibScenario must be 'same' or 'p3', got {scenario!r}")
        self.scenario = scenario

    def _threshold(self, h: _Histogram) -> tuple[float, float]:
        return h.lo, h.hi


_CALIBRATERS = {
    CalibrationMethod.MinMax: MinMaxCalibrater,
    CalibrationMethod.Entropy: EntropyCalibrater,
    CalibrationMethod.Percentile: PercentileCalibrater,
    CalibrationMethod.Distribution: DistributionCalibrater,
}

# extra_options keys of quantize_static -> calibrater keyword arguments
CALIB_OPTION_KEYS = {
    "CalibTensorRangeSymmetric": "symmetric",
    "CalibMovingAverage": "moving_average",
    "CalibMovingAverageConstant": "averaging_constant",
    "CalibNumBins": "num_bins",
    "CalibNumQuantizedBins": "num_quantized_bins",
    "CalibPercentile": "percentile",
    "CalibScenario": "scenario",
}


def create_calibrator(model: Any, op_types_to_calibrate: Sequence[str] | None = None,
                      augmented_model_path: str = "augmented_model.onnx",
                      calibrate_method: CalibrationMethod = CalibrationMethod.MinMax,
                      use_external_data_format: bool = False,
                      providers: Sequence[str] | None = None,
                      extra_options: dict[str, Any] | None = None) -> CalibraterBase:
    """A calibrater for ``calibrate_method`` (onnxruntime's signature; the augmented model is
    kept in memory, so ``augmented_model_path`` is not written). ``extra_options`` takes the
    calibrater's keyword arguments (``symmetric``, ``moving_average``, ``num_bins``, …)."""
    cls = _CALIBRATERS.get(calibrate_method)
    if cls is None:
        raise InvalidArgument(f"unknown calibration method {calibrate_method!r}")
    opts = dict(extra_options or {})
    allowed = {"symmetric", "tensors", "show_progress"} | {
        MinMaxCalibrater: {"moving_average", "averaging_constant"},
        EntropyCalibrater: {"num_bins", "num_quantized_bins"},
        PercentileCalibrater: {"num_bins", "percentile"},
        DistributionCalibrater: {"num_bins", "scenario"},
    }[cls]
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise InvalidArgument(f"{calibrate_method.name} calibration does not take "
                              f"{', '.join(unknown)}; it takes {', '.join(sorted(allowed))}")
    return cls(model, op_types_to_calibrate, providers=providers, **opts)


def collect_ranges(model: Model, tensors: Sequence[str], reader: CalibrationDataReader,
                   method: CalibrationMethod, options: dict[str, Any]) -> TensorsData:
    """Calibrate ``tensors`` of ``model`` over ``reader`` (options: calibrater arguments)."""
    opts = dict(options)
    opts["tensors"] = list(tensors)
    cls = _CALIBRATERS[method]
    keep = {"symmetric", "tensors", "show_progress"} | set(cls.__init__.__code__.co_varnames)
    opts = {k: v for k, v in opts.items() if k in keep}  # e.g. moving average is MinMax only
    cal = create_calibrator(model, calibrate_method=method, extra_options=opts)
    cal.collect_data(reader)
    return cal.compute_data()
