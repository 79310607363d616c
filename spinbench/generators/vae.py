"""Variational autoencoders of spins: convolutional (``vae``) and dense (``dense-vae``).

Spins enter the networks as float channels ``(channels, *lattice)``: a two-valued spin as one
channel of -1/+1, an XY angle as the two channels (cos θ, sin θ). The decoder's output is read
back into the model's spin representation by the likelihood (see :class:`Likelihood`):

* ``"gaussian"`` (the paper's eq. 3, the default): the loss is KL + |x - y|² with the decoder
  mean ``y = tanh(out)``. An Ising spin is read out as the sign of ``y`` (``readout="mean"``,
  the default: the most likely spin given z under either a Gaussian or a Bernoulli reading of
  y, and what "the decoder's output" means in the paper) or drawn as +1 with probability
  ``(1 + y) / 2`` (``readout="sample"``: y is the conditional mean of a ±1 spin). An angle is
  ``atan2(y_sin, y_cos)``.
* ``"bernoulli"`` (Ising, beyond the paper): the decoder gives logits and the loss is the
  exact negative log-likelihood; spins are drawn from it by default.
* ``"von-mises"`` (XY, beyond the paper): the decoder gives ``κ (cos μ, sin μ)`` per site and
  the loss is the von Mises negative log-likelihood; angles are drawn from it by default.

Generation draws ``z ~ N(0, I)`` and decodes, so samples are independent.

This module also holds the pieces the AVB generator shares: :class:`AbstractNeuralGenerator`
(fit, generate, option checks), the spin encoding and the convolutional blocks.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import itertools
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._plain import plain
from ..models.base import AbstractModel, wrap_angle
from ..samples import Samples
from .base import AbstractGenerator, TrainedGenerator
from .training import AbstractObjective, TrainConfig, train

LIKELIHOODS = ("gaussian", "bernoulli", "von-mises")
READOUTS = ("auto", "mean", "sample")
#: Kernel size of every convolution (odd, so "same" padding is symmetric).
KERNEL = 3
#: Decoded configurations are generated in batches of this many per temperature.
GENERATE_CHUNK = 1000
#: Largest latent dimension chosen by default (``latent_dim=None`` means ``min(n_sites, this)``).
MAX_DEFAULT_LATENT = 32

activation = jax.nn.relu


# ---------------------------------------------------------------------------- spins <-> features
def spin_channels(model: AbstractModel) -> int:
    """Channels per site: 1 for a two-valued spin, 2 (cos, sin) for an angle."""
    return 1 if model.spin_values is not None else 2


def encode_spins(
    model: AbstractModel, states: Array | np.ndarray
) -> Float[Array, "*batch c *lattice"]:
    """Configurations ``(*batch, *lattice)`` as float channels ``(*batch, channels, *lattice)``."""
    states = jnp.asarray(states)
    axis = states.ndim - len(model.shape)
    if model.spin_values is not None:
        up = jnp.asarray(model.spin_values[-1], states.dtype)
        return jnp.expand_dims(jnp.where(states == up, 1.0, -1.0), axis).astype(jnp.float32)
    theta = states.astype(jnp.float32)
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=axis)


def von_mises_sample(
    key: PRNGKeyArray, loc: Float[Array, "*s"], concentration: Float[Array, "*s"], rounds: int = 24
) -> Float[Array, "*s"]:
    """Von Mises angles in [-π, π) by Best & Fisher's (1979) wrapped-Cauchy rejection.

    Vectorised with a fixed number of rounds (acceptance is at least 65% per round, so all 24
    fail with probability below 1e-10; such a site falls back to ``loc``).
    """
    kappa = jnp.clip(concentration, 1e-4, 1e4)
    s = 0.5 / kappa
    r = s + jnp.sqrt(1.0 + s * s)
    shape = jnp.shape(loc)

    def body(i: Int[Array, ""], carry: tuple[Array, Array]) -> tuple[Array, Array]:
        done, w = carry
        k1, k2 = jax.random.split(jax.random.fold_in(key, i))
        u = jax.random.uniform(k1, shape)
        v = jax.random.uniform(k2, shape, minval=jnp.finfo(jnp.float32).tiny)
        z = jnp.cos(jnp.pi * u)
        w_new = (1.0 + r * z) / (r + z)
        y = kappa * (r - w_new)
        accept = (y * (2.0 - y) - v >= 0) | (jnp.log(y / v) + 1.0 - y >= 0)
        take = ~done & accept
        return done | accept, jnp.where(take, w_new, w)

    _, w = lax.fori_loop(0, rounds, body, (jnp.zeros(shape, bool), jnp.ones(shape)))
    sign = jnp.where(jax.random.bernoulli(jax.random.fold_in(key, rounds), 0.5, shape), 1.0, -1.0)
    return wrap_angle(loc + sign * jnp.arccos(jnp.clip(w, -1.0, 1.0)))


class Likelihood(eqx.Module):
    """The decoder's output distribution p(x | z) for one model's spins.

    ``out`` is the decoder's raw output for one configuration, ``(channels, *lattice)``.
    """

    kind: str = eqx.field(static=True)
    spin_values: tuple[int, ...] | None = eqx.field(static=True)
    readout: str = eqx.field(static=True)

    def nll(self, out: Float[Array, " c *lattice"], x: Float[Array, " c *lattice"]) -> Array:
        """The reconstruction term of the loss for one configuration (a scalar)."""
        if self.kind == "gaussian":
            return jnp.sum((x - jnp.tanh(out)) ** 2)
        if self.kind == "bernoulli":
            return jnp.sum(jax.nn.softplus(-x * out))
        # von Mises with natural parameters (a, b) = kappa (cos mu, sin mu).
        kappa = jnp.sqrt(jnp.sum(out**2, axis=0) + 1e-12)
        log_norm = jnp.log(2 * jnp.pi) + jnp.log(jax.scipy.special.i0e(kappa)) + kappa
        return jnp.sum(log_norm - jnp.sum(out * x, axis=0))

    def to_spins(
        self, out: Float[Array, "n c *lattice"], *, key: PRNGKeyArray, dtype: Any
    ) -> Array:
        """A batch of decoder outputs as configurations ``(n, *lattice)`` in the model's dtype."""
        if self.spin_values is not None:
            down, up = self.spin_values[0], self.spin_values[-1]
            value = out[:, 0]
            if self.readout == "mean":
                is_up = value >= 0  # sign of the mean (gaussian) or of the logit (bernoulli)
            else:
                p_up = (
                    jnp.clip((1.0 + jnp.tanh(value)) / 2, 0.0, 1.0)
                    if self.kind == "gaussian"
                    else jax.nn.sigmoid(value)
                )
                is_up = jax.random.uniform(key, value.shape) < p_up
            return jnp.where(is_up, up, down).astype(dtype)
        direction = jnp.tanh(out) if self.kind == "gaussian" else out
        mean = jnp.arctan2(direction[:, 1], direction[:, 0])
        if self.readout == "mean":
            return wrap_angle(mean).astype(dtype)
        kappa = jnp.sqrt(jnp.sum(out**2, axis=1))
        return von_mises_sample(key, mean, kappa).astype(dtype)


def likelihood_problem(model: AbstractModel, likelihood: str, readout: str) -> str | None:
    """Why ``likelihood``/``readout`` cannot describe ``model``'s spins, or None."""
    if model.spin_values is not None and len(model.spin_values) != 2:
        return (
            f"{model.name} has {len(model.spin_values)} spin values; the neural generators encode "
            "a discrete spin as one ±1 channel and support only two-valued (Ising-like) spins"
        )
    if likelihood == "bernoulli" and model.spin_values is None:
        return f"likelihood 'bernoulli' is for two-valued spins; {model.name} has angles"
    if likelihood == "von-mises" and model.spin_values is not None:
        return f"likelihood 'von-mises' is for angles; {model.name} has discrete spins"
    if likelihood == "gaussian" and readout == "sample" and model.spin_values is None:
        return "readout 'sample' is not defined for angles with the gaussian likelihood"
    return None


# ---------------------------------------------------------------------------- building blocks
class BoundaryConv(eqx.Module):
    """A k=3 convolution that pads by the boundary condition: circular on periodic lattices,
    zeros on free ones, then a VALID convolution of stride ``stride``. With ``upsample=s`` it
    is the transposed convolution of stride ``s`` instead (the same as inserting ``s - 1``
    zeros between inputs and convolving), so a shift by one input site shifts the output by
    ``s`` sites on a periodic lattice.

    Computed channels-last from matrix products, in whichever of two exact forms moves less
    data (XLA's CPU convolution, grouped once vmapped over temperatures, was 5 to 30 times
    slower at these channel counts, docs/performance.md):

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
            static = eqx.tree_at(lambda m: (m.weight, m.bias), self, (None, None), is_leaf=_is_none)
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
        padding and the strided windows, which XLA:CPU runs slowly: a training step of the
        paper's 2D VAE is 8% faster this way (docs/performance.md).
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


# ---------------------------------------------------------------------------- networks
class AbstractVAENet(eqx.Module):
    """An encoder q(z|x) = N(mu, diag exp(logvar)) and a decoder of raw outputs."""

    latent_dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def encode(self, x: Float[Array, " c *lattice"]) -> tuple[Array, Array]:
        """``(mu, logvar)``, each ``(latent,)``."""

    @abc.abstractmethod
    def decode(self, z: Float[Array, " latent"]) -> Float[Array, " c *lattice"]:
        """Raw decoder output for one latent vector (read by the :class:`Likelihood`)."""


class ConvVAENet(AbstractVAENet):
    """Convolutional VAE: ConvStack -> dense (mu, logvar); dense -> TransposedConvStack."""

    encoder: ConvStack
    to_latent: eqx.nn.Linear
    from_latent: eqx.nn.Linear
    decoder: TransposedConvStack
    hidden_shape: tuple[int, ...] = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(
        self, model: AbstractModel, channels: int, latent: int, *, key: PRNGKeyArray
    ) -> None:
        k1, k2, k3, k4 = jax.random.split(key, 4)
        cin = spin_channels(model)
        self.latent_dim = latent
        self.hidden_shape = (2 * channels, *reduced_shape(model.shape))
        flat = math.prod(self.hidden_shape)
        self.encoder = ConvStack(model, cin, channels, key=k1)
        self.to_latent = eqx.nn.Linear(flat, 2 * latent, key=k2)
        self.from_latent = eqx.nn.Linear(latent, flat, key=k3)
        self.decoder = TransposedConvStack(model, channels, cin, key=k4)

    def encode(self, x: Float[Array, " c *lattice"]) -> tuple[Array, Array]:
        mu, logvar = jnp.split(self.to_latent(jnp.ravel(self.encoder(x))), 2)
        return mu, logvar

    def decode(self, z: Float[Array, " latent"]) -> Float[Array, " c *lattice"]:
        h = activation(self.from_latent(z)).reshape(self.hidden_shape)
        return self.decoder(h)


class DenseVAENet(AbstractVAENet):
    """Dense VAE: MLP encoder (2 hidden layers) and MLP decoder (2 hidden layers), ReLU."""

    encoder: eqx.nn.MLP
    decoder: eqx.nn.MLP
    shape: tuple[int, ...] = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(self, model: AbstractModel, hidden: int, latent: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.latent_dim = latent
        self.shape = (spin_channels(model), *model.shape)
        size = math.prod(self.shape)
        self.encoder = eqx.nn.MLP(size, 2 * latent, hidden, 2, activation=activation, key=k1)
        self.decoder = eqx.nn.MLP(latent, size, hidden, 2, activation=activation, key=k2)

    def encode(self, x: Float[Array, " c *lattice"]) -> tuple[Array, Array]:
        mu, logvar = jnp.split(self.encoder(jnp.ravel(x)), 2)
        return mu, logvar

    def decode(self, z: Float[Array, " latent"]) -> Float[Array, " c *lattice"]:
        return self.decoder(z).reshape(self.shape)


class VAEObjective(AbstractObjective):
    """Eq. (3): mean over the batch of KL(q(z|x) || N(0, I)) + reconstruction term, with Adam.

    During a KL warm-up the KL term is weighted by ``min(1, epoch / kl_warmup_epochs)``; the
    reported ``loss`` is always the full (unweighted) objective.
    """

    likelihood: Likelihood
    learning_rate: float = eqx.field(static=True)
    kl_warmup_epochs: int = eqx.field(static=True)

    def _optimiser(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate)

    def init_state(self, params: PyTree) -> PyTree:
        return self._optimiser().init(eqx.filter(params, eqx.is_array))

    def step(
        self,
        params: PyTree,
        opt_state: PyTree,
        batch: Float[Array, "batch ..."],
        *,
        key: PRNGKeyArray,
        epoch: Float[Array, ""],
    ) -> tuple[PyTree, PyTree, dict[str, Float[Array, ""]]]:
        weight = (
            jnp.minimum(1.0, epoch / self.kl_warmup_epochs) if self.kl_warmup_epochs > 0 else 1.0
        )

        def loss_fn(net: AbstractVAENet) -> tuple[Array, tuple[Array, Array]]:
            mu, logvar = jax.vmap(net.encode)(batch)
            z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
            out = jax.vmap(net.decode)(z)
            recon = jnp.mean(jax.vmap(self.likelihood.nll)(out, batch))
            kl = jnp.mean(0.5 * jnp.sum(jnp.exp(logvar) + mu**2 - 1.0 - logvar, axis=-1))
            return weight * kl + recon, (kl, recon)

        (_, (kl, recon)), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = self._optimiser().update(
            grads, opt_state, eqx.filter(params, eqx.is_array)
        )
        params = eqx.apply_updates(params, updates)
        return params, opt_state, {"loss": kl + recon, "kl": kl, "reconstruction": recon}


# ---------------------------------------------------------------------------- generator base
class AbstractNeuralGenerator(AbstractGenerator):
    """Shared behaviour of the built-in neural generators (VAE, dense VAE, AVB).

    A concrete subclass declares every option as a static field and provides
    :meth:`_network` (one temperature's untrained network, which has ``decode`` and a
    ``latent_dim`` property) and :meth:`_objective` (its per-temperature update rule).
    """

    epochs: eqx.AbstractVar[int]
    steps: eqx.AbstractVar[int | None]
    batch_size: eqx.AbstractVar[int]
    learning_rate: eqx.AbstractVar[float]
    latent_dim: eqx.AbstractVar[int | None]
    likelihood: eqx.AbstractVar[str]
    readout: eqx.AbstractVar[str]
    kl_warmup_epochs: eqx.AbstractVar[int]
    patience: eqx.AbstractVar[int | None]
    min_delta: eqx.AbstractVar[float]
    _inject_nan: eqx.AbstractVar[tuple[int, int] | None]

    # -- options
    def _check_options(self) -> None:
        """Validate the shared options (called from each subclass's ``__check_init__``)."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size}
        optional = {
            "steps": self.steps,
            "latent_dim": self.latent_dim,
            "patience": self.patience,
        }
        given = {k: v for k, v in optional.items() if v is not None}
        for name, value in {**positive, **given}.items():
            _check_positive_int(name, value)
        if (
            isinstance(self.kl_warmup_epochs, bool)
            or not isinstance(self.kl_warmup_epochs, int | np.integer)
            or self.kl_warmup_epochs < 0
        ):
            raise ValueError(
                "kl_warmup_epochs must be a non-negative integer, "
                f"got {plain(self.kl_warmup_epochs)!r}"
            )
        _check_float("learning_rate", self.learning_rate, positive=True)
        _check_float("min_delta", self.min_delta, positive=False)
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}"
            )
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")

    def resolved_readout(self) -> str:
        """``readout`` with ``"auto"`` resolved: the mean for gaussian, a sample otherwise."""
        if self.readout != "auto":
            return self.readout
        return "mean" if self.likelihood == "gaussian" else "sample"

    def latent_size(self, model: AbstractModel) -> int:
        """The latent dimension for ``model``: ``latent_dim`` or ``min(n_sites, 32)``."""
        if self.latent_dim is not None:
            return int(self.latent_dim)
        return min(model.n_sites, MAX_DEFAULT_LATENT)

    def output_likelihood(self, model: AbstractModel) -> Likelihood:
        """The decoder's likelihood for ``model``'s spins."""
        return Likelihood(self.likelihood, model.spin_values, self.resolved_readout())

    def supports(self, model: AbstractModel) -> str | None:
        return likelihood_problem(model, self.likelihood, self.resolved_readout())

    def train_config(self) -> TrainConfig:
        """The training schedule these options ask for."""
        return TrainConfig(
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            steps=None if self.steps is None else int(self.steps),
            patience=None if self.patience is None else int(self.patience),
            min_delta=float(self.min_delta),
            poison=self._inject_nan,
            description=f"training {self.name}",
        )

    # -- the contract
    @abc.abstractmethod
    def _network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        """One temperature's untrained network."""

    @abc.abstractmethod
    def _objective(self, model: AbstractModel) -> AbstractObjective:
        """One temperature's update rule."""

    def init(self, model: AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> PyTree:
        return _init(self, model, int(n_temps), key)

    def fit(
        self,
        model: AbstractModel,
        data: Samples,
        *,
        key: PRNGKeyArray,
        progress: bool | None = None,
    ) -> TrainedGenerator:
        reason = self.supports(model)
        if reason is not None:
            raise ValueError(f"{self.name} cannot learn {model.name}: {reason}")
        states = np.asarray(data.states)
        if tuple(states.shape[3:]) != tuple(model.shape):
            raise ValueError(
                f"training data have lattice shape {tuple(states.shape[3:])}, "
                f"but the model is {model.describe()}"
            )
        temps = np.asarray(data.temps, np.float64)
        flat = states.reshape(states.shape[0], -1, *model.shape)
        features = encode_spins(model, flat)
        init_key, train_key = jax.random.split(key)
        params = self.init(model, len(temps), key=init_key)
        config = dataclasses.replace(self.train_config(), progress=progress)
        result = train(self._objective(model), params, features, config, key=train_key)
        return TrainedGenerator(
            generator=self,
            model=model,
            temps=temps,
            params=result.params,
            history=result.history,
            diverged_step=result.diverged_step,
            stopped_epoch=result.stopped_epoch,
            info={
                "steps_per_epoch": result.steps_per_epoch,
                "batch_size": result.batch_size,
                "epochs_run": result.epochs_run,
                "steps_run": [int(s) for s in result.steps_run],
                "training_samples": int(flat.shape[1]),
            },
        )

    def generate_states(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> Array:
        if n < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}")
        return _generate(self.output_likelihood(model), model.dtype, params, int(n), key)


def _is_layer(node: Any) -> bool:
    return isinstance(node, eqx.nn.Linear | BoundaryConv)


def initialise(skeleton: PyTree, *, key: PRNGKeyArray) -> PyTree:
    """Equinox's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weights and
    biases of every dense and convolutional layer, drawn from a single uniform sample.

    One draw instead of one per layer: each ``jax.random`` call site costs about half a second
    of XLA compilation on a CPU. ``skeleton`` may hold shapes only (``eqx.filter_eval_shape``).
    """
    layers = [n for n in jax.tree_util.tree_leaves(skeleton, is_leaf=_is_layer) if _is_layer(n)]
    sizes = [layer.weight.size + (0 if layer.bias is None else layer.bias.size) for layer in layers]
    draws = jax.random.uniform(key, (sum(sizes),), minval=-1.0, maxval=1.0)
    filled, start = [], 0
    for layer, size in zip(layers, sizes, strict=True):
        limit = 1.0 / math.sqrt(math.prod(layer.weight.shape[1:]))
        chunk = draws[start : start + size] * limit
        start += size
        n_weight = layer.weight.size
        weight = chunk[:n_weight].reshape(layer.weight.shape)
        bias = None if layer.bias is None else chunk[n_weight:].reshape(layer.bias.shape)
        filled.append(
            eqx.tree_at(lambda m: (m.weight, m.bias), layer, (weight, bias), is_leaf=_is_none)
        )
    return eqx.tree_at(
        lambda net: [n for n in jax.tree_util.tree_leaves(net, is_leaf=_is_layer) if _is_layer(n)],
        skeleton,
        filled,
    )


def _is_none(node: Any) -> bool:
    return node is None


@eqx.filter_jit
def _init(
    generator: AbstractNeuralGenerator, model: AbstractModel, n_temps: int, key: PRNGKeyArray
) -> PyTree:
    """One network per temperature, stacked (see :func:`initialise`)."""
    skeleton = eqx.filter_eval_shape(lambda: generator._network(model, key=jax.random.key(0)))
    return eqx.filter_vmap(lambda k: initialise(skeleton, key=k))(jax.random.split(key, n_temps))


@eqx.filter_jit
def _generate(
    likelihood: Likelihood, dtype: Any, params: PyTree, n: int, key: PRNGKeyArray
) -> Array:
    """Decode ``n`` prior draws per temperature, in chunks of at most GENERATE_CHUNK."""
    chunk = min(n, GENERATE_CHUNK)
    n_chunks = -(-n // chunk)
    n_temps = jax.tree_util.tree_leaves(eqx.filter(params, eqx.is_array))[0].shape[0]
    keys = jax.random.split(key, n_temps)

    def one_temperature(net: Any, key_t: PRNGKeyArray) -> Array:
        def one_chunk(k: PRNGKeyArray) -> Array:
            kz, kr = jax.random.split(k)
            z = jax.random.normal(kz, (chunk, net.latent_dim))
            return likelihood.to_spins(jax.vmap(net.decode)(z), key=kr, dtype=dtype)

        out = lax.map(one_chunk, jax.random.split(key_t, n_chunks))
        return out.reshape(n_chunks * chunk, *out.shape[2:])[:n]

    return eqx.filter_vmap(one_temperature)(params, keys)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {plain(value)!r}")


def _check_float(name: str, value: Any, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number, got {plain(value)!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a finite {kind} number, got {plain(value)!r}")


# ---------------------------------------------------------------------------- generators
class VAE(AbstractNeuralGenerator):
    """Convolutional VAE (paper §2.2): conv encoder, transposed-convolution decoder.

    Layers for a lattice of ``d`` dimensions (1D chains, 2D lattices), ``C`` spin channels
    (1 Ising, 2 XY), ``c = channels`` (16), ``L = latent_dim`` (default ``min(n_sites, 32)``);
    every kernel is 3 wide, padding circular on periodic lattices and zero on free ones:

    ============================  ==================================================
    encoder                       Conv(C->c, s=1), ReLU; Conv(c->2c, s), ReLU;
                                  flatten; Dense(-> 2L) = (mu, log sigma^2)
    decoder                       Dense(L -> 2c * reduced), ReLU; ConvT(2c->c, s), ReLU;
                                  ConvT(c->C, s=1); likelihood head
    ============================  ==================================================

    ``s = 2`` when every lattice length is even and at least 4 (N=6: 6 -> 3; 10x10 -> 5x5),
    else 1. Loss (eq. 3): KL + squared reconstruction error; Adam, lr 1e-3, batch 500.
    """

    name: ClassVar[str] = "vae"

    epochs: int = eqx.field(static=True, default=100)
    steps: int | None = eqx.field(static=True, default=None)
    batch_size: int = eqx.field(static=True, default=500)
    learning_rate: float = eqx.field(static=True, default=1e-3)
    latent_dim: int | None = eqx.field(static=True, default=None)
    channels: int = eqx.field(static=True, default=16)
    likelihood: str = eqx.field(static=True, default="gaussian")
    readout: str = eqx.field(static=True, default="auto")
    kl_warmup_epochs: int = eqx.field(static=True, default=0)
    patience: int | None = eqx.field(static=True, default=None)
    min_delta: float = eqx.field(static=True, default=1e-3)
    _inject_nan: tuple[int, int] | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        self._check_options()
        _check_positive_int("channels", self.channels)

    def supports(self, model: AbstractModel) -> str | None:
        if len(model.shape) > 3:
            return f"the convolutional VAE supports 1 to 3 lattice dimensions, not {model.shape}"
        return super().supports(model)

    def _network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        return ConvVAENet(model, self.channels, self.latent_size(model), key=key)

    def _objective(self, model: AbstractModel) -> AbstractObjective:
        likelihood = self.output_likelihood(model)
        return VAEObjective(likelihood, self.learning_rate, self.kl_warmup_epochs)


class DenseVAE(AbstractNeuralGenerator):
    """Dense VAE (the paper's grey markers in Fig. 2a): the VAE with fully connected layers.

    ``H = hidden`` (64), ``L = latent_dim`` (default ``min(n_sites, 32)``), ``C`` spin channels:

    ========  ==================================================================
    encoder   flatten (C * n_sites) -> Dense(H), ReLU -> Dense(H), ReLU -> Dense(2L)
    decoder   Dense(L -> H), ReLU -> Dense(H), ReLU -> Dense(C * n_sites); likelihood head
    ========  ==================================================================

    Loss and optimiser as :class:`VAE`.
    """

    name: ClassVar[str] = "dense-vae"

    epochs: int = eqx.field(static=True, default=100)
    steps: int | None = eqx.field(static=True, default=None)
    batch_size: int = eqx.field(static=True, default=500)
    learning_rate: float = eqx.field(static=True, default=1e-3)
    latent_dim: int | None = eqx.field(static=True, default=None)
    hidden: int = eqx.field(static=True, default=64)
    likelihood: str = eqx.field(static=True, default="gaussian")
    readout: str = eqx.field(static=True, default="auto")
    kl_warmup_epochs: int = eqx.field(static=True, default=0)
    patience: int | None = eqx.field(static=True, default=None)
    min_delta: float = eqx.field(static=True, default=1e-3)
    _inject_nan: tuple[int, int] | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        self._check_options()
        _check_positive_int("hidden", self.hidden)

    def _network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        return DenseVAENet(model, self.hidden, self.latent_size(model), key=key)

    def _objective(self, model: AbstractModel) -> AbstractObjective:
        likelihood = self.output_likelihood(model)
        return VAEObjective(likelihood, self.learning_rate, self.kl_warmup_epochs)
