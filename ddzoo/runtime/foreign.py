"""ForeignOnnxRunner: an ONNX image classifier that ddzoo did not make, behind the zoo's Runner contract.

The zoo's runners take (N, C, H, W) float32 pixels in [0, 1] and give class scores. A foreign model may want
NHWC or flat vectors, pixels in [0, 255] or normalised, and may answer probabilities (softmax inside) or a
label tensor beside a probability tensor (scikit-learn's converters: a plain tensor, or by default ZipMap's
sequence of {class: probability} maps, read as a tensor with the classes as columns). :func:`read_convention`
works these out from the graph and, for the pixel scale, from a labelled probe batch; whatever cannot be told
is an error naming the option that settles it, and a model whose input cannot take the images (3x32x32 against
MNIST's 1x28x28) is an error saying so. Probabilities become log-probabilities, which order classes the same
way and give attacks a margin to work on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ddzoo.errors import InvalidArgumentError, echo
from ddzoo.runtime.base import InputSpec, Runner
from ddzoo.runtime.ort import ort_session, warn_if_int8_saturates

LAYOUTS = ("nchw", "nhwc", "flat")
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
ZIPMAP_TYPES = {f"seq(map({key},{value}))" for key in ("int64", "string") for value in FLOAT_TYPES}


@dataclass(frozen=True)
class InputConvention:
    """How [0, 1] NCHW pixels become the model's input, and which output holds its scores."""

    layout: str  # nchw | nhwc | flat
    scale: float = 1.0  # pixels are multiplied by this first (255 for [0, 255] models)
    mean: tuple[float, ...] | None = None  # then (x - mean) / std per channel, if given
    std: tuple[float, ...] | None = None
    output: str = ""
    probabilities: bool = False  # the output sums to 1: scores are its logarithm
    bgr: bool = False  # the model takes its channels in BGR order (OpenCV-style); mean/std are in its order
    source: str = "given"  # how the pixel scale was settled

    def describe(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


class ForeignOnnxRunner(Runner):
    """An onnxruntime session over a foreign classifier, adapted by an :class:`InputConvention`."""

    backend = "onnxruntime"

    def __init__(self, path: Path | str, image_shape: tuple[int, int, int], convention: InputConvention,
                 providers: list[str] | tuple[str, ...] | None = None):
        self.path = Path(path)
        self.session, self.provider, self._version = ort_session(self.path, providers)
        self.precision = "int8" if _quantized(self.path) else "fp32"
        if self.precision == "int8":
            warn_if_int8_saturates(self.path, self.provider, "quantise it with 7-bit weights (onnxruntime's "
                                   "quantize_static(..., reduce_range=True)) or verify it on the CPU it will serve on")
        self.convention = convention
        (inp,) = _single_input(self.session)
        self._input_name, self._input_dtype = inp.name, FLOAT_TYPES[inp.type]
        self._zipmap = {o.name: o.type for o in self.session.get_outputs()}.get(convention.output) in ZIPMAP_TYPES
        self._model_shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in inp.shape[1:])
        self.input_spec = InputSpec(inp.name, tuple(image_shape), output_name=convention.output,
                                    max_batch=1 if _fixed_batch_of_one(inp.shape) else None)
        channels = image_shape[0]
        self._mean = _per_channel(convention.mean, channels)
        self._std = _per_channel(convention.std, channels)
        if (self._mean is None) != (self._std is None) or self._std is not None and bool((self._std == 0).any()):
            raise InvalidArgumentError("give --mean and --std together, with no std of 0")

    @property
    def runtime_version(self) -> str:
        return self._version

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convention
        if c.bgr:
            x = x.flip(1)
        x = x * c.scale
        if self._mean is not None:
            x = (x - self._mean) / self._std
        if c.layout == "nhwc":
            x = x.permute(0, 2, 3, 1)
        elif c.layout == "flat":
            x = x.reshape(len(x), *[d if d > 0 else -1 for d in self._model_shape] or [-1])
        (scores,) = self.session.run([c.output], {self._input_name: x.contiguous().numpy().astype(self._input_dtype)})
        scores = torch.from_numpy(_zipmap_scores(scores, self.path) if self._zipmap
                                  else np.asarray(scores, dtype=np.float32))
        return scores.clamp_min(1e-12).log() if c.probabilities else scores


def read_convention(path: Path | str, image_shape: tuple[int, int, int], classes: int | None, *,
                    probe: tuple[torch.Tensor, torch.Tensor], dataset_mean: tuple[float, ...],
                    dataset_std: tuple[float, ...], layout: str | None = None, scale: float | None = None,
                    mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                    output: str | None = None, channels: str | None = None,
                    images_label: str = "the images") -> tuple[InputConvention, dict]:
    """The convention of the ONNX classifier at ``path`` and what the probe measured.

    Layout and score output come from the graph (or ``layout`` / ``output``): the layout is the one of NCHW,
    NHWC and flat whose shape the model's input admits (its dynamic dimensions admit any size; a layout the
    model cannot take, given or not, is an error naming both shapes, ``images_label`` naming the images);
    the pixel scale, when neither
    ``scale`` nor ``mean``/``std`` is given, is the one of [0, 1], [0, 255] and the dataset's normalisation
    under which the probe images are classified best — it must beat chance clearly, else an error names the
    options. Whether the scores are probabilities is read from the probe's outputs. Colour models are probed
    in RGB and BGR order too unless ``channels`` says which.
    """
    if channels not in (None, "rgb", "bgr"):
        raise InvalidArgumentError(f"unknown channel order {echo(channels)}; choose rgb or bgr")
    session, _, _ = ort_session(Path(path), None)
    (inp,) = _single_input(session)
    if inp.type not in FLOAT_TYPES:
        raise InvalidArgumentError(f"{path}: input {echo(inp.name)} is {inp.type}; only float image inputs are "
                                   "supported")
    if layout is not None and layout not in LAYOUTS:
        raise InvalidArgumentError(f"unknown layout {echo(layout)}; choose from {', '.join(LAYOUTS)}")
    layout = _layout_of(inp.shape, image_shape, path, layout, images_label)
    output = output or _score_output(session, classes, path)
    if output not in {o.name for o in session.get_outputs()}:
        raise InvalidArgumentError(f"{path}: no output {echo(output)}; it has "
                                   f"{[o.name for o in session.get_outputs()]}")
    x, y = probe
    given = scale is not None or mean is not None or std is not None
    if given:
        candidates = {"given": InputConvention(layout, scale or 1.0, mean, std, output)}
    else:
        candidates = {"[0,1]": InputConvention(layout, 1.0, None, None, output),
                      "[0,255]": InputConvention(layout, 255.0, None, None, output),
                      "normalised": InputConvention(layout, 1.0, dataset_mean, dataset_std, output)}
    orders = [channels == "bgr"] if channels or image_shape[0] == 1 else [False, True]
    candidates = {f"{name} {'bgr' if bgr else 'rgb'}" if len(orders) > 1 else name:
                  replace(c, bgr=bgr, mean=_reversed(c.mean) if bgr and not given else c.mean,
                          std=_reversed(c.std) if bgr and not given else c.std)
                  for name, c in candidates.items() for bgr in orders}
    measured, losses, outputs = {}, {}, {}
    for name, convention in candidates.items():
        runner = ForeignOnnxRunner(path, image_shape, convention)
        outputs[name] = runner.predict(x)
        measured[name] = (outputs[name].argmax(1) == y).float().mean().item()
        scores = outputs[name]
        if _are_probabilities(scores):
            scores = scores.clamp_min(1e-12).log()
        losses[name] = torch.nn.functional.cross_entropy(scores, y).item()
    best = min(losses, key=lambda name: (losses[name], -measured[name]))  # the right scale is the most confident
    if measured[best] < min(1.0, 2.0 / (classes or outputs[best].shape[1])):
        raise InvalidArgumentError(
            f"{path}: no pixel scale classifies the probe images above chance ({_percentages(measured)}); "
            f"pass --scale 1|255 or --mean/--std, and check --layout ({layout}), --channels and --output ({output})")
    probabilities = _are_probabilities(outputs[best])
    convention = replace(candidates[best], probabilities=probabilities,
                         source=best if len(candidates) > 1 else "given")
    return convention, {"probe_images": len(x), "probe_accuracy": measured, "probe_cross_entropy": losses}


def _reversed(values: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(reversed(values))


def _are_probabilities(scores: torch.Tensor) -> bool:
    return bool((scores >= -1e-6).all() and torch.allclose(scores.sum(1), torch.ones(len(scores)), atol=1e-3))


def _single_input(session) -> list:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise InvalidArgumentError(f"the model takes {len(inputs)} inputs ({[i.name for i in inputs]}); "
                                   "only single-input image classifiers can be verified")
    return inputs


def _shapes(layout: str, image_shape: tuple[int, int, int]) -> list[tuple[int, ...]]:
    """The input shapes (without the batch) under which a model takes ``image_shape`` images in ``layout``."""
    c, h, w = image_shape
    return {"nchw": [(c, h, w)], "nhwc": [(h, w, c)], "flat": [(c * h * w,)] + ([(h, w)] if c == 1 else [])}[layout]


def _layout_of(shape: list, image_shape: tuple[int, int, int], path: Path | str, layout: str | None,
               images_label: str) -> str:
    """``layout``, or the one layout the model's input shape admits for the images; an error naming both shapes
    when the model cannot take them, or naming ``--layout`` when several layouts fit."""
    dims = tuple(d if isinstance(d, int) and d > 0 else None for d in shape[1:])

    def admits(wanted: tuple[int, ...]) -> bool:
        return len(wanted) == len(dims) and all(d is None or d == v for d, v in zip(dims, wanted, strict=True))

    fitting = [name for name in LAYOUTS if any(admits(s) for s in _shapes(name, image_shape))]
    if layout in fitting or (layout is None and len(fitting) == 1):
        return layout or fitting[0]
    c, h, w = image_shape
    if layout is None and fitting:
        raise InvalidArgumentError(f"{path}: its input shape {_described(dims)} could take {c}x{h}x{w} images as "
                                   f"{' or '.join(fitting)}; pass --layout {'|'.join(fitting)}")
    if fitting:  # a --layout the model cannot take, though another fits
        needed = " or ".join("x".join(map(str, s)) for s in _shapes(layout, image_shape))
        raise InvalidArgumentError(f"{path}: its input shape {_described(dims)} cannot take {c}x{h}x{w} images as "
                                   f"--layout {layout} (that needs {needed}); it takes them as "
                                   f"{' or '.join(fitting)}: pass --layout {fitting[0]} or leave it out")
    raise InvalidArgumentError(f"{path}: the model takes {_described(dims)} inputs and {images_label} are "
                               f"{c}x{h}x{w}, so no layout feeds it them; verify it on images of its size "
                               "(another --dataset, or --images)")


def _described(dims: tuple[int | None, ...]) -> str:
    """A model input shape without the batch, e.g. ``3x32x32`` (``?`` for a dynamic size)."""
    return "x".join("?" if d is None else str(d) for d in dims) or "scalar"


def _score_output(session, classes: int | None, path: Path | str) -> str:
    outputs = session.get_outputs()
    scores = [o.name for o in outputs if (o.type in FLOAT_TYPES and len(o.shape) == 2
              and (classes is None or not isinstance(o.shape[1], int) or o.shape[1] in (classes, -1)))
              or o.type in ZIPMAP_TYPES]
    if len(scores) == 1:
        return scores[0]
    if not scores:
        kinds = ", ".join(f"{o.name}: {o.type}" for o in outputs)
        raise InvalidArgumentError(f"{path}: no output is a (N, {classes or 'classes'}) float tensor or a "
                                   f"scikit-learn ZipMap of probabilities ({kinds}); pass --output NAME")
    raise InvalidArgumentError(f"{path}: several outputs could hold the scores ({', '.join(scores)}); "
                               "pass --output NAME")


def _zipmap_scores(maps, path: Path) -> np.ndarray:
    """scikit-learn's ZipMap output (one {class label: probability} map per image) as an (N, K) array whose
    column k holds class k: the labels must be the class indices 0..K-1 (as integers or decimal strings)."""
    if not maps:
        return np.zeros((0, 0), dtype=np.float32)
    labels = list(maps[0])
    try:
        columns = [int(label) for label in labels]
    except (TypeError, ValueError):
        columns = []
    if not columns or min(columns) < 0 or any(str(c) != str(label) for c, label in zip(columns, labels, strict=True)):
        raise InvalidArgumentError(f"{path}: its ZipMap output labels the classes {echo(labels)}, not 0..K-1; "
                                   "train it on class indices, or convert it with options={'zipmap': False}")
    scores = np.zeros((len(maps), max(columns) + 1), dtype=np.float32)
    for row, probabilities in enumerate(maps):
        scores[row, columns] = [probabilities[label] for label in labels]
    return scores


def _quantized(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger")
               for n in model.graph.node)


def _fixed_batch_of_one(shape: list) -> bool:
    return isinstance(shape[0], int) and shape[0] == 1


def _per_channel(values: tuple[float, ...] | None, channels: int) -> torch.Tensor | None:
    if values is None:
        return None
    if len(values) not in (1, channels) or any(not math.isfinite(v) for v in values):
        raise InvalidArgumentError(f"give 1 or {channels} finite values for --mean/--std, got {list(values)}")
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


def _percentages(measured: dict[str, float]) -> str:
    return ", ".join(f"{name} {100 * value:.1f} %" for name, value in measured.items())
