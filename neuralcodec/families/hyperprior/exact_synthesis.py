"""A pixel-exact synthesis transform: ``g_s`` in integer arithmetic, so that decoded
pixels are the same bits on every machine, thread count, NumPy version and backend
(issue 41: a residual coded against the decoder's reconstruction needs that).

It is derived from the shipped float weights by exact (or correctly rounded IEEE)
operations only; the weights file is not changed. Like the parameter path
(:mod:`.integer_net`), every array is float64 holding integers, and every product and
partial sum stays below 2**53, so convolutions and matrix products are exact in any
summation order, with any BLAS and thread count, on any CPU or GPU:

* **Input.** ``ŷ`` lies on the latent grid ``2**-LATENT_FRAC_BITS``. The rate level's
  gains (``gain_y_inv``, interpolated geometrically between the trained levels like the
  float transforms) are integers on ``2**-GAIN_BITS``, computed by :func:`level_gains`
  in decimal arithmetic (correctly rounded ``exp``, the same everywhere; no libm). Their
  product is rounded to the activation grid and clamped to ``±INPUT_LIMIT``.
* **Activations** are integers on the grid ``2**-FRAC_BITS``, clamped to ``±ACT_LIMIT``
  after each layer (the shipped model's largest on the 24 Kodak images: 40.9 at the
  input, 6.2 inside; ``benchmarks/exact_synthesis.py``).
* **Transposed convolutions.** Weights ``round(w * 2**shift_c)`` with one power-of-two
  scale per output channel, ``|w_int| <= 2**WEIGHT_BITS``; biases on the accumulator's
  grid. The accumulator is rescaled to the activation grid by ``2**-shift_c`` and
  rounded (half up: ``2**(shift_c - 1)`` is folded into the bias, then floor).
* **IGDN**, ``y = x * sqrt(beta + gamma @ x**2)``, in fixed point: the squares rounded to
  ``2**-SQUARE_FRAC_BITS``; ``gamma`` as integers with a power-of-two scale per row (at
  most ``2**GAMMA_BITS``), ``beta`` on the row's grid; the norm rescaled to
  ``2**-(2 * ROOT_FRAC_BITS)``; its square root an *integer* square root (a float
  estimate checked, and if need be corrected, in integers, so no result depends on the
  sqrt routine), on ``2**-ROOT_FRAC_BITS``; the product with ``x`` rounded back to the
  activation grid. Every rounding is to nearest (ties to even, or up where the half is
  folded into a bias).
* **Pixels**: the last layer's output ``x̂`` (nominally 0..1) becomes
  ``clamp(floor(x̂ * 255 + 1/2), 0, 255)``, computed in integers: uint8.

The 2**53 bound is checked layer by layer when the transform is built, from the actual
integer weights and the clamp limits, and construction refuses weights that break it
(:meth:`ExactSynthesisParams.bounds` lists each worst case): a layer's worst partial
sum is at most its input limit times the largest L1 norm of an output channel's integer
weights, plus its bias. For ``aec-hp-ckbd``, as ``log2`` of each worst case (the square
root needs its input below 2**50):

    input   ŷ_int * gain (|ŷ_int| <= 2**30)                       48.4
    g_s.0   deconv 192 -> 128, accumulator                        48.8
    g_s.1   IGDN: x**2 44.0, gamma @ x**2 + beta 51.6, norm 39.9, x * root 42.0
    g_s.2   deconv 128 -> 128                                     47.3
    g_s.3   IGDN: x**2 44.0, gamma @ x**2 + beta 51.0, norm 45.9, x * root 45.0
    g_s.4   deconv 128 -> 128                                     46.9
    g_s.5   IGDN: x**2 44.0, gamma @ x**2 + beta 50.5, norm 45.5, x * root 44.8
    g_s.6   deconv 128 -> 3                                       47.3
    pixels  x̂_int * 255                                           30.0

Arrays are channels-last, (H, W, C), as :mod:`~neuralcodec.families.numpy_layers` takes
them. The torch twin is :mod:`.exact_synthesis_torch`; both give identical pixels.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..base import RatePoint
from ..numpy_layers import ConvTranspose2d, run_blocks
from ..specs import GDN, Conv
from ..zoo import ModelInfo
from . import architecture
from .integer_net import FRAC_BITS as LATENT_FRAC_BITS
from .numpy_backend import gdn_parameter
from .stored_arrays import read_arrays

FRAC_BITS = 16  # activations on 2**-16
INPUT_LIMIT = 2.0**8  # |ŷ * gain| (real units; largest on Kodak: 40.9)
ACT_LIMIT = 2.0**6  # |activation| after a layer (largest on Kodak: 6.2)
WEIGHT_BITS = 16  # |w_int| <= 2**16 per output channel
MAX_SHIFT = 40
GAIN_BITS = 16  # gains on 2**-16
LATENT_LIMIT = 2.0**30  # |ŷ * 2**LATENT_FRAC_BITS| before the gain
SQUARE_FRAC_BITS = 20  # x**2 on 2**-20
GAMMA_BITS = 16  # |gamma_int| <= 2**16 per row
ROOT_FRAC_BITS = 16  # sqrt(norm) on 2**-16, the norm on 2**-32
EXACT_LIMIT = 2.0**53
SQRT_LIMIT = 2.0**50  # integer_sqrt's domain
GAIN_PRECISION = 40  # decimal digits of the gain's exponent and exp()

# Positions per block of the element-wise steps (a block's arrays stay in cache).
BLOCK = 2048


def _exponent(x: float) -> int:
    """e with 2**(e-1) <= x < 2**e (x > 0), exactly."""
    return int(np.frexp(x)[1])


@lru_cache(maxsize=64)
def _level_gains(log_gain: bytes, levels: int, lo: int, t: int, denominator: int
                 ) -> np.ndarray:
    logs = np.frombuffer(log_gain, np.float32).reshape(levels, -1)
    context = decimal.Context(prec=GAIN_PRECISION, rounding=decimal.ROUND_HALF_EVEN)
    hi = min(lo + 1, levels - 1)
    frac = context.divide(decimal.Decimal(t), decimal.Decimal(denominator))
    one_minus = context.subtract(decimal.Decimal(1), frac)
    scale = decimal.Decimal(2**GAIN_BITS)
    out = np.empty(logs.shape[1], np.float64)
    for c in range(logs.shape[1]):
        a, b = decimal.Decimal(float(logs[lo, c])), decimal.Decimal(float(logs[hi, c]))
        exponent = context.add(context.multiply(one_minus, a), context.multiply(frac, b))
        gain = context.multiply(context.exp(exponent), scale)
        out[c] = int(gain.to_integral_value(decimal.ROUND_HALF_EVEN, context))
    out.flags.writeable = False
    return out


def level_gains(log_gain: np.ndarray, point: RatePoint) -> np.ndarray:
    """Integer gains (on ``2**-GAIN_BITS``, float64) of ``g_s``'s input at a rate point:
    ``exp`` of the log-gains interpolated linearly between the two trained levels around
    the point's exact level, as the float transforms do, but in decimal arithmetic whose
    operations and ``exp`` are correctly rounded: the same integers everywhere."""
    logs = np.ascontiguousarray(log_gain, dtype=np.float32)
    lo, t = point.level_parts(logs.shape[0])
    return _level_gains(logs.tobytes(), logs.shape[0], lo, t, point.denominator)


@dataclass(frozen=True)
class ExactDeconv:
    """A transposed convolution's integer form (torch's weight layout)."""

    weight: np.ndarray  # (cin, cout, k, k) integers, |w| <= 2**WEIGHT_BITS
    bias: np.ndarray  # (cout,) integers on 2**-(shift + FRAC_BITS), half of 2**shift added
    scale: np.ndarray  # (cout,) 2**-shift: the accumulator to the activation grid
    spec: Conv
    input_limit: float  # |input| on the grid

    def bound(self) -> float:
        """Largest |partial sum| for inputs within the limit."""
        l1 = np.abs(self.weight).sum(axis=(0, 2, 3))
        return float((l1 * self.input_limit + np.abs(self.bias)).max())


@dataclass(frozen=True)
class ExactIGDN:
    """IGDN's integer form: ``gamma`` (C, C) per row on ``2**-row_shift``, ``beta`` on
    the squares' times ``gamma``'s grid, half of the norm's rescaling added."""

    gamma: np.ndarray  # (C, C) integers, |row| <= 2**GAMMA_BITS
    beta: np.ndarray  # (C,) integers on 2**-(row_shift + SQUARE_FRAC_BITS)
    norm_scale: np.ndarray  # (C,) 2**-(row_shift + SQUARE_FRAC_BITS - 2 * ROOT_FRAC_BITS)
    input_limit: float

    def bounds(self) -> dict[str, float]:
        square = np.floor(self.input_limit**2 * 2.0 ** (SQUARE_FRAC_BITS - 2 * FRAC_BITS)
                          + 0.5)
        accumulator = np.abs(self.gamma).sum(1) * square + np.abs(self.beta)
        norm = np.floor(accumulator * self.norm_scale) + 1
        root = np.floor(np.sqrt(norm.max())) + 1
        return {"square": self.input_limit**2, "norm accumulator": float(accumulator.max()),
                "norm": float(norm.max()), "root squared": root**2,
                "x * root": self.input_limit * root}


def _deconv(spec: Conv, weight: np.ndarray, bias: np.ndarray, input_limit: float
            ) -> ExactDeconv:
    w = np.asarray(weight, dtype=np.float64)
    peak = np.abs(w).max(axis=(0, 2, 3))
    shift = np.array([min(MAX_SHIFT, WEIGHT_BITS - _exponent(p)) if p > 0 else MAX_SHIFT
                      for p in peak])
    if shift.min() < 1:
        raise ValueError("weights too large for the exact synthesis")
    w_int = np.round(w * np.exp2(shift)[None, :, None, None])
    b_int = (np.round(np.asarray(bias, dtype=np.float64) * np.exp2(shift + FRAC_BITS))
             + np.exp2(shift - 1))
    return ExactDeconv(w_int, b_int, np.exp2(-shift), spec, input_limit * 2**FRAC_BITS)


def _igdn(beta: np.ndarray, gamma: np.ndarray, input_limit: float) -> ExactIGDN:
    gamma = np.asarray(gamma, dtype=np.float64)
    peak = np.abs(gamma).max(axis=1)
    # Rows of tiny gammas: the shift is capped so that beta's integer stays small.
    cap = 46 - SQUARE_FRAC_BITS
    shift = np.array([min(cap, GAMMA_BITS - _exponent(p)) if p > 0 else cap for p in peak])
    rescale = shift + SQUARE_FRAC_BITS - 2 * ROOT_FRAC_BITS
    if rescale.min() < 1:
        raise ValueError("IGDN's gamma too large for the exact synthesis")
    g_int = np.round(gamma * np.exp2(shift)[:, None])
    b_int = (np.round(np.asarray(beta, dtype=np.float64) * np.exp2(shift + SQUARE_FRAC_BITS))
             + np.exp2(rescale - 1))
    return ExactIGDN(g_int, b_int, np.exp2(-rescale), input_limit * 2**FRAC_BITS)


def integer_sqrt(n: np.ndarray, out: np.ndarray | None = None,
                 scratch: np.ndarray | None = None) -> np.ndarray:
    """floor(sqrt(n)) of non-negative integers below 2**50 (float64), exactly: a float
    estimate checked, and if need be corrected, in integers, so the result does not
    depend on how sqrt rounds. ``out`` and ``scratch``: buffers of n's shape.

    s is right when 0 <= n - s*s <= 2s (all exact below 2**53), which IEEE's correctly
    rounded sqrt always gives here. Otherwise one correction each way suffices: the root
    is below 2**25, so a sqrt within 2**-28 of the truth is off by less than 1."""
    s = np.floor(np.sqrt(n, out=out), out=out)
    r = np.multiply(s, s, out=scratch)
    np.subtract(n, r, out=r)
    if r.size == 0 or r.min() >= 0:
        r -= s
        r -= s
        if r.size == 0 or r.max() <= 0:
            return s
    s -= s * s > n
    t = s + 1
    t *= t
    s += t <= n
    return s


@dataclass(frozen=True)
class ExactSynthesisParams:
    """Everything the exact ``g_s`` computes with, as integers (float64 arrays): what
    both backends run."""

    log_gain: np.ndarray  # (levels, M) float32: gain_y_inv's stored log-gains
    layers: tuple  # ExactDeconv, ExactIGDN, ... in g_s's order

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], N: int, M: int
                   ) -> ExactSynthesisParams:
        """The integer form of a model's float ``g_s`` (arrays by state-dict name)."""
        layers: list = []
        limit = INPUT_LIMIT
        for i, spec in enumerate(architecture.synthesis(N, M)):
            name = f"g_s.{i}"
            if isinstance(spec, Conv):
                if not spec.transposed:
                    raise TypeError("the exact synthesis has transposed convolutions only")
                layers.append(_deconv(spec, state[f"{name}.weight"], state[f"{name}.bias"],
                                      limit))
            elif isinstance(spec, GDN) and spec.inverse:
                layers.append(_igdn(gdn_parameter(state, f"{name}.beta"),
                                    gdn_parameter(state, f"{name}.gamma"), ACT_LIMIT))
            else:
                raise TypeError(f"no exact form for {spec}")
            limit = ACT_LIMIT
        params = cls(np.asarray(state["gain_y_inv.log_gain"], dtype=np.float32), tuple(layers))
        bounds = params.bounds()
        worst = max(max(b.values()) for b in bounds.values())
        norms = max(b.get("norm", 0.0) for b in bounds.values())
        if worst >= EXACT_LIMIT or norms >= SQRT_LIMIT:
            raise ValueError("weights too large for the exact synthesis's integer range")
        return params

    def bounds(self) -> dict[str, dict[str, float]]:
        """Each step's worst-case magnitudes (all must stay below 2**53)."""
        # A gain between two levels lies between theirs (exp is monotonic); rounding
        # adds at most 1.
        levels = self.log_gain.shape[0]
        gain = 1 + max(float(level_gains(self.log_gain, RatePoint(i, levels - 1, i / (levels - 1))
                                         ).max()) for i in range(levels))
        out = {"input": {"latent * gain": LATENT_LIMIT * gain}}
        for i, layer in enumerate(self.layers):
            out[f"g_s.{i}"] = ({"accumulator": layer.bound()} if isinstance(layer, ExactDeconv)
                               else layer.bounds())
        out["pixels"] = {"x * 255": (ACT_LIMIT * 2**FRAC_BITS) * 255 + 2**FRAC_BITS}
        return out

    def input_gains(self, point: RatePoint) -> np.ndarray:
        return level_gains(self.log_gain, point)


# -- NumPy ------------------------------------------------------------------------------

def _clamp(x: np.ndarray, limit: float) -> np.ndarray:
    """``x`` clamped to ±limit, in place. Values almost never reach the limit, and two
    reductions cost a fifth of NumPy's clip, so it looks first."""
    if x.size and (x.max() > limit or x.min() < -limit):
        np.clip(x, -limit, limit, out=x)
    return x


def _rescale(acc: np.ndarray, scale: np.ndarray | float, limit: float) -> np.ndarray:
    """floor(acc * scale) clamped to ±limit, in place (scale: powers of two)."""
    np.multiply(acc, scale, out=acc)
    np.floor(acc, out=acc)
    return _clamp(acc, limit)


class ExactSynthesis:
    """The exact ``g_s`` on NumPy: decoded latents (h, w, M) in, uint8 pixels out."""

    def __init__(self, params: ExactSynthesisParams):
        self.params = params
        self._convs = [ConvTranspose2d(layer.weight, layer.bias, layer.spec.stride,
                                       layer.spec.padding, layer.spec.output_padding)
                       if isinstance(layer, ExactDeconv) else None
                       for layer in params.layers]
        # the norm's gamma with beta as a last row: beta added in the product
        self._gamma = [None if isinstance(layer, ExactDeconv)
                       else np.ascontiguousarray(np.concatenate([layer.gamma.T,
                                                                 layer.beta[None]]))
                       for layer in params.layers]
        # Calibration: set to a dict to record the largest |value| (real units) of the
        # input and of each IGDN's and the last layer's output (a clamped one equals its
        # limit).
        self.peaks: dict[str, float] | None = None

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], N: int, M: int) -> ExactSynthesis:
        return cls(ExactSynthesisParams.from_state(state, N, M))

    @classmethod
    def of_model(cls, info: ModelInfo) -> ExactSynthesis:
        """The exact synthesis of a model of a family on the hyperprior's transforms
        (reads its weights file)."""
        config = info.card["config"]
        return cls.from_state(read_arrays(info)[0], int(config["N"]), int(config["M"]))

    def __call__(self, y_hat: np.ndarray, point: RatePoint) -> np.ndarray:
        """Pixels (H, W, 3) uint8 of decoded latents ``y_hat`` (h, w, M) at ``point``."""
        a = self._record("input", self.gained_input(y_hat, point))
        layers = self.params.layers
        for i in range(0, len(layers) - 1, 2):
            acc = self._convs[i](a)
            self._igdn_rows(acc, layers[i], layers[i + 1], self._gamma[i + 1])
            a = self._record(f"g_s.{i + 1}", acc)
        acc = self._convs[-1](a)
        if self.peaks is not None:  # the rescaled output, before it becomes pixels
            last = layers[-1]
            self._record(f"g_s.{len(layers) - 1}", np.floor(acc * last.scale))
        return self._pixels(acc, layers[-1])

    def _record(self, key: str, a: np.ndarray) -> np.ndarray:
        if self.peaks is not None and a.size:
            peak = float(np.abs(a).max()) * 2.0**-FRAC_BITS
            self.peaks[key] = max(self.peaks.get(key, 0.0), peak)
        return a

    def gained_input(self, y_hat: np.ndarray, point: RatePoint) -> np.ndarray:
        """``ŷ`` times the level's gains, as integers on the activation grid."""
        y = np.clip(np.round(np.asarray(y_hat, dtype=np.float64) * 2**LATENT_FRAC_BITS),
                    -LATENT_LIMIT, LATENT_LIMIT)
        y *= self.params.input_gains(point)
        shift = LATENT_FRAC_BITS + GAIN_BITS - FRAC_BITS
        y += 2.0 ** (shift - 1)  # round half up
        return _rescale(y, 2.0**-shift, INPUT_LIMIT * 2**FRAC_BITS)

    @staticmethod
    def _blocks(rows: np.ndarray, make: Callable[[], Callable[[np.ndarray, int], None]]
                ) -> None:
        """Run ``make()``'s function on blocks of BLOCK rows of ``rows`` (with the block's
        first row) on the layers' threads; the blocks depend only on the shape, so results
        do not depend on the thread count."""
        starts = range(0, rows.shape[0], BLOCK)

        def worker() -> Callable[[int], None]:
            step = make()
            return lambda i: step(rows[starts[i]:starts[i] + BLOCK], starts[i])

        run_blocks(len(starts), worker)

    def _igdn_rows(self, acc: np.ndarray, conv: ExactDeconv, igdn: ExactIGDN,
                   gamma: np.ndarray) -> None:
        """The convolution's rescaling and the IGDN after it, in place on ``acc``."""
        c = acc.shape[2]
        limit = ACT_LIMIT * 2**FRAC_BITS
        square_scale = 2.0 ** (SQUARE_FRAC_BITS - 2 * FRAC_BITS)
        root_scale = 2.0**-ROOT_FRAC_BITS

        def make() -> Callable[[np.ndarray, int], None]:
            square = np.ones((BLOCK, c + 1))  # the last column multiplies beta
            norm, root, scratch = (np.empty((BLOCK, c)) for _ in range(3))

            def step(x: np.ndarray, _: int) -> None:
                k = x.shape[0]
                sq, nm = square[:k, :c], norm[:k]
                _rescale(x, conv.scale, limit)
                np.multiply(x, x, out=sq)
                np.multiply(sq, square_scale, out=sq)
                np.rint(sq, out=sq)  # to nearest, ties to even
                np.matmul(square[:k], gamma, out=nm)
                np.multiply(nm, igdn.norm_scale, out=nm)
                np.floor(nm, out=nm)  # half added with beta: to nearest
                x *= integer_sqrt(nm, root[:k], scratch[:k])
                np.multiply(x, root_scale, out=x)
                np.rint(x, out=x)
                _clamp(x, limit)

            return step

        self._blocks(acc.reshape(-1, c), make)

    def _pixels(self, acc: np.ndarray, conv: ExactDeconv) -> np.ndarray:
        out = np.empty(acc.shape, np.uint8)
        c = acc.shape[2]
        dst = out.reshape(-1, c)

        def make() -> Callable[[np.ndarray, int], None]:
            def step(x: np.ndarray, start: int) -> None:
                _rescale(x, conv.scale, ACT_LIMIT * 2**FRAC_BITS)
                dst[start:start + x.shape[0]] = to_pixels(x)

            return step

        self._blocks(acc.reshape(-1, c), make)
        return out


def to_pixels(x: np.ndarray) -> np.ndarray:
    """uint8 levels of integer outputs on the activation grid: floor(x̂ * 255 + 1/2),
    clamped (in place on ``x``)."""
    x *= 255
    x += 2.0 ** (FRAC_BITS - 1)
    x *= 2.0**-FRAC_BITS
    np.floor(x, out=x)
    return np.clip(x, 0, 255, out=x).astype(np.uint8)
