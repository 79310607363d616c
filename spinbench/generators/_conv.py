"""Boundary-aware convolutions of lattices: the building blocks of the convolutional networks.

A :class:`BoundaryConv` pads circularly on periodic lattices and with zeros on free ones, in
1 to 3 dimensions, and computes channels-last in whichever of two exact forms is cheaper: a
*gather* (im2col windows times the weight), used for the input and strided layers, or a
*scatter* (per-site products shifted into place), used for transposed and output layers. The
strided layer's input gradient has a custom VJP in scatter form. :class:`ConvStack` and
:class:`TransposedConvStack` are the encoder and decoder pairs of the convolutional VAE.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ..models._base import AbstractModel

__all__ = [
    "KERNEL",
    "BoundaryConv",
    "ConvStack",
    "TransposedConvStack",
    "activation",
    "conv_strides",
    "reduced_shape",
]

#: Kernel size of every convolution (odd, so "same" padding is symmetric).
KERNEL = 3

activation = jax.nn.relu


class BoundaryConv(eqx.Module):
    """A k=3 convolution that pads by the boundary condition: circular on periodic lattices,
    zeros on free ones, then a VALID convolution of stride ``stride``. With ``upsample=s`` it
    is the transposed convolution of stride ``s`` instead (the same as inserting ``s - 1``
    zeros between inputs and convolving), so a shift by one input site shifts the output by
    ``s`` sites on a periodic lattice.

    Computed channels-last from matrix products, in whichever of two exact forms moves less
    data (XLA's CPU convolution, grouped once vmapped over temperatures, is slower at these
    channel counts: docs/performance.md has the measurements):

    * ``"gather"``: stack the input windows of every tap, ``(*out, taps * cin)``, and multiply
      once by the ``(taps * cin, cout)`` weight (im2col);
    * ``"scatter"``: multiply every input site once by the ``(cin, taps * cout)`` weight and
      add up the taps' outputs, each shifted to where it lands.

    The first is cheaper when ``cin`` is small (the input layer), the second when ``cout`` is
    (the output layer, where the first would be a matrix-vector product).
    """

    weight: Float[Array, "cout cin taps"]
    bias: Float[Array, " cout"]
    ndim: int = eqx.field(static=True)
    stride: int = eqx.field(static=True)
    upsample: int = eqx.field(static=True)
    mode: str = eqx.field(static=True)

    def __init__(
        self,
        ndim: int,
        cin: int,
        cout: int,
        boundary: str,
        *,
        stride: int = 1,
        upsample: int = 1,
        key: PRNGKeyArray,
    ) -> None:
        taps = KERNEL**ndim
        limit = 1.0 / math.sqrt(cin * taps)  # equinox's default initialisation
        kw, kb = jax.random.split(key)
        self.weight = jax.random.uniform(kw, (cout, cin, taps), minval=-limit, maxval=limit)
        self.bias = jax.random.uniform(kb, (cout,), minval=-limit, maxval=limit)
        self.ndim, self.stride, self.upsample = ndim, stride, upsample
        self.mode = "wrap" if boundary == "periodic" else "constant"

    def __call__(self, x: Float[Array, " cin *lattice"]) -> Float[Array, " cout *out"]:
        return jnp.moveaxis(self.channels_last(jnp.moveaxis(x, 0, -1)), -1, 0)

    def out_shape(self, lattice: tuple[int, ...]) -> tuple[int, ...]:
        """Lattice shape of the output for an input of lattice shape ``lattice``."""
        if self.upsample > 1:
            return tuple(n * self.upsample for n in lattice)
        return tuple((n - 1) // self.stride + 1 for n in lattice)

    def channels_last(
        self, x: Float[Array, "*lattice cin"], *, method: str | None = None
    ) -> Float[Array, "*out cout"]:
        """The convolution of one configuration laid out ``(*lattice, cin)``.

        ``method`` is ``"gather"`` or ``"scatter"`` (see the class); ``None`` picks the one
        that materialises fewer numbers.
        """
        cout, cin, _ = self.weight.shape
        lattice = tuple(x.shape[:-1])
        if method is None:
            n_in, n_out = math.prod(lattice), math.prod(self.out_shape(lattice))
            gathered = cin * (n_in if self.upsample > 1 else n_out)
            method = "gather" if gathered <= cout * n_in else "scatter"
        if method == "gather":
            out = self._gather(x) if self.upsample == 1 else self._gather_transposed(x)
        elif method == "scatter":
            out = self._scatter(x) if self.upsample == 1 else self._scatter_transposed(x)
        else:
            raise ValueError(f"method must be 'gather' or 'scatter', got {method!r}")
        return out + self.bias

    # -- the two forms
    def _offsets(self) -> list[tuple[int, ...]]:
        return list(itertools.product(range(KERNEL), repeat=self.ndim))

    def _weight_by_tap(self, taps: list[int], weight: Array) -> Float[Array, "taps_cin cout"]:
        """``(len(taps) * cin, cout)``: ``weight`` of the listed taps, tap-major."""
        if len(taps) < weight.shape[2]:  # static slices, not a gather
            weight = jnp.stack([weight[:, :, t] for t in taps], axis=2)
        return weight.transpose(2, 1, 0).reshape(-1, weight.shape[0])

    def _padded(self, x: Array) -> Array:
        pad = KERNEL // 2
        return jnp.pad(x, [(pad, pad)] * self.ndim + [(0, 0)], mode=self.mode)

    def _gather(self, x: Array) -> Array:
        # The scatter-form input gradient needs phases of equal size: lengths divisible by
        # the stride (conv_strides only strides such lattices).
        if all(n % self.stride == 0 for n in x.shape[:-1]):
            static = eqx.tree_at(lambda m: (m.weight, m.bias), self, (None, None), is_leaf=is_none)
            return _gather_conv(static, self.weight, x)
        return self._gather_windows(self.weight, x)

    def _gather_windows(self, weight: Array, x: Array) -> Array:
        """The gather form with ``weight``, differentiated by JAX (any lattice lengths)."""
        return self._patches(x) @ self._weight_by_tap(list(range(weight.shape[2])), weight)

    def _patches(self, x: Array) -> Array:
        """``(*out, taps * cin)``: the input window of every tap at every output site."""
        padded, sizes, step = self._padded(x), self.out_shape(x.shape[:-1]), self.stride

        def window(start: tuple[int, ...]) -> Array:
            ends = [o + (n - 1) * step + 1 for o, n in zip(start, sizes, strict=True)]
            return padded[tuple(slice(o, e, step) for o, e in zip(start, ends, strict=True))]

        return jnp.concatenate([window(start) for start in self._offsets()], axis=-1)

    def _gather_input_gradient(self, weight: Array, grad: Array) -> Array:
        """The gradient of the gather form with respect to its input, in scatter form.

        Input site ``s*o + t - pad`` received ``W_t x`` for output ``o``, so it gets back
        ``W_t^T g[o]``: one product per output site, then each tap's result shifted into its
        phase of the input lattice. Differentiating the gather form instead transposes the
        padding and the strided windows, which XLA:CPU runs slowly (docs/performance.md has
        the measurement).
        """
        cout, cin, taps = weight.shape
        per_tap = (grad @ weight.transpose(0, 2, 1).reshape(cout, taps * cin)).reshape(
            *grad.shape[:-1], taps, cin
        )
        return self._place(per_tap, self.stride, reflect=True)

    def _gather_transposed(self, x: Array) -> Array:
        pad, s, sizes = KERNEL // 2, self.upsample, x.shape[:-1]
        padded = self._padded(x)
        phases = []
        for selected in self._phase_taps(s, reflect=False):
            windows = [
                padded[tuple(slice(pad + d, pad + d + n) for d, n in zip(by, sizes, strict=True))]
                for _, by in selected
            ]
            weight = self._weight_by_tap([tap for tap, _ in selected], self.weight)
            phases.append(jnp.concatenate(windows, axis=-1) @ weight)
        return self._interleave(phases, s)

    def _phase_taps(self, s: int, *, reflect: bool) -> list[list[tuple[int, list[int]]]]:
        """For each phase ``r`` of the finer lattice (``itertools.product`` order), the taps
        ``t`` that reach it and the coarse-lattice shift of each, ``(r + t - pad) / s`` (with
        ``reflect``, ``(r + pad - t) / s``), where that is a whole number.

        Without ``reflect``: the transposed convolution, whose output site ``s*i + r`` reads
        tap ``t`` at input site ``i + shift``. With it: the input gradient of the strided
        convolution, whose input site ``s*i + r`` gets tap ``t``'s product at output site
        ``i + shift``."""
        pad, sign, out = KERNEL // 2, -1 if reflect else 1, []
        for phase in itertools.product(range(s), repeat=self.ndim):
            selected = []
            for tap, offset in enumerate(self._offsets()):
                shift = [r + sign * (t - pad) for r, t in zip(phase, offset, strict=True)]
                if all(d % s == 0 for d in shift):
                    selected.append((tap, [d // s for d in shift]))
            out.append(selected)
        return out

    def _place(self, per_tap: Array, s: int, *, reflect: bool) -> Array:
        """Every tap's products ``(*coarse, taps, c)`` shifted into the phases of the finer
        lattice (see :meth:`_phase_taps`) and added: ``(*fine, c)``."""
        phases = [
            _add([self._shifted(per_tap[..., tap, :], by) for tap, by in selected])
            for selected in self._phase_taps(s, reflect=reflect)
        ]
        return phases[0] if s == 1 else self._interleave(phases, s)

    def _per_tap(self, x: Array) -> Array:
        """``(*lattice, taps, cout)``: every tap's weight applied to every input site."""
        cout, cin, taps = self.weight.shape
        product = x @ self.weight.transpose(1, 2, 0).reshape(cin, taps * cout)
        return product.reshape(*x.shape[:-1], taps, cout)

    def _shifted(self, y: Array, by: list[int]) -> Array:
        """``out[i] = y[i + by]`` on the lattice axes (wrapped, or zero outside)."""
        for axis, d in enumerate(by):
            if d == 0:
                continue
            if self.mode == "wrap":
                y = jnp.roll(y, -d, axis=axis)
                continue
            n = y.shape[axis]
            zeros = jnp.zeros_like(lax.slice_in_dim(y, 0, abs(d), axis=axis))
            kept = lax.slice_in_dim(y, max(d, 0), n + min(d, 0), axis=axis)
            y = jnp.concatenate([kept, zeros] if d > 0 else [zeros, kept], axis=axis)
        return y

    def _scatter(self, x: Array) -> Array:
        # out[o] = sum_t W_t x[s*o + t - pad]: shift each tap's products, add, subsample.
        pad, per_tap = KERNEL // 2, self._per_tap(x)
        out = _add(
            [
                self._shifted(per_tap[..., tap, :], [t - pad for t in offset])
                for tap, offset in enumerate(self._offsets())
            ]
        )
        if self.stride > 1:
            out = out[(slice(None, None, self.stride),) * self.ndim]
        return out

    def _scatter_transposed(self, x: Array) -> Array:
        return self._place(self._per_tap(x), self.upsample, reflect=False)

    def _interleave(self, phases: list[Array], s: int) -> Array:
        """Phase ``r`` of output site ``s*i + r`` from the phases' ``(*sizes, c)`` arrays."""
        d = self.ndim
        sizes = phases[0].shape[:-1]
        out = jnp.stack(phases).reshape(*(s,) * d, *sizes, -1)
        order = [axis for k in range(d) for axis in (d + k, k)] + [2 * d]
        return out.transpose(order).reshape(*(n * s for n in sizes), -1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _gather_conv(layer: BoundaryConv, weight: Array, x: Array) -> Array:
    """``layer``'s gather form (``layer`` without arrays: its shape and options) with
    ``weight``, whose input gradient is computed in scatter form."""
    return layer._gather_windows(weight, x)


def _gather_conv_forward(
    layer: BoundaryConv, weight: Array, x: Array
) -> tuple[Array, tuple[Array, Array]]:
    patches = layer._patches(x)
    taps = list(range(weight.shape[2]))
    return patches @ layer._weight_by_tap(taps, weight), (weight, patches)


def _gather_conv_backward(
    layer: BoundaryConv, residuals: tuple[Array, Array], grad: Array
) -> tuple[Array, Array]:
    """The weight gradient from the saved windows; the input gradient in scatter form."""
    weight, patches = residuals
    cout, cin, taps = weight.shape
    flat = patches.reshape(-1, patches.shape[-1])
    by_tap = (flat.T @ grad.reshape(-1, cout)).reshape(taps, cin, cout)
    return by_tap.transpose(2, 1, 0), layer._gather_input_gradient(weight, grad)


_gather_conv.defvjp(_gather_conv_forward, _gather_conv_backward)


def _add(terms: list[Array]) -> Array:
    """The sum of a non-empty list of arrays."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def is_none(node: Any) -> bool:
    """For ``eqx.tree_at``: a None leaf (an absent bias) is a leaf to replace."""
    return node is None


def conv_strides(shape: tuple[int, ...]) -> int:
    """Stride of the second convolution: 2 when every lattice length is even and >= 4, else 1."""
    return 2 if all(n % 2 == 0 and n >= 4 for n in shape) else 1


class ConvStack(eqx.Module):
    """Two boundary-aware convolutions (k=3, ``channels`` then ``2 * channels``, ReLU);
    the second has stride 2 on lattices whose lengths are all even (see :func:`conv_strides`)."""

    first: BoundaryConv
    second: BoundaryConv

    def __init__(self, model: AbstractModel, cin: int, channels: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        ndim, stride = len(model.shape), conv_strides(model.shape)
        self.first = BoundaryConv(ndim, cin, channels, model.boundary, key=k1)
        self.second = BoundaryConv(
            ndim, channels, 2 * channels, model.boundary, stride=stride, key=k2
        )

    def __call__(self, x: Float[Array, " c *lattice"]) -> Float[Array, " c2 *reduced"]:
        h = activation(self.first.channels_last(jnp.moveaxis(x, 0, -1)))
        return jnp.moveaxis(activation(self.second.channels_last(h)), -1, 0)


class TransposedConvStack(eqx.Module):
    """The mirror of :class:`ConvStack`: transposed convolutions ``2 * channels -> channels ->
    cout`` (k=3, circular on periodic lattices), the first with the stack's stride; ReLU
    between them, none after the last (the likelihood's head)."""

    first: BoundaryConv
    second: BoundaryConv

    def __init__(self, model: AbstractModel, channels: int, cout: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        ndim, stride = len(model.shape), conv_strides(model.shape)
        self.first = BoundaryConv(
            ndim, 2 * channels, channels, model.boundary, upsample=stride, key=k1
        )
        self.second = BoundaryConv(ndim, channels, cout, model.boundary, key=k2)

    def __call__(self, h: Float[Array, " c2 *reduced"]) -> Float[Array, " cout *lattice"]:
        h = activation(self.first.channels_last(jnp.moveaxis(h, 0, -1)))
        return jnp.moveaxis(self.second.channels_last(h), -1, 0)


def reduced_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Lattice shape after :class:`ConvStack`."""
    stride = conv_strides(shape)
    return tuple(n // stride for n in shape)
