"""VAN: a variational autoregressive network on the lattice, with an exact density.

The sites are drawn one by one in raster order, ``q(s) = prod_i q(s_i | s_<i)``, as in the
variational autoregressive networks of Wu, Wang & Zhang (PRL 122, 080602, 2019) and in
PixelCNN (van den Oord et al., 2016). The conditional of site ``i`` is a network of the spins in
a ``(2k+1)^d`` window around it (``k = radius``) that come *before* it in the order: a masked
("type A") convolution over the lattice, followed by ``depth`` pointwise layers of ``width``
channels (1x1 convolutions, with residual connections), a per-site bias and a logistic output.

Two choices differ from VAN's deep PixelCNN, both for what they buy on a CPU:

* **Only the first layer is spatial.** The conditional of a site then needs only its own
  window, so drawing a configuration evaluates the network at one site per step —
  ``O(N (2k+1)^d width)`` per configuration instead of ``O(N^2 ...)`` for re-running a deep
  masked network on the whole lattice at every site. This is what makes variational training
  of 16x16 and 32x32 lattices practical without a GPU.
* **The window wraps around the torus** (on periodic models): a site sees the already drawn
  spins across the periodic boundary — the first rows when drawing the last ones, the start of
  the row above across the seam — so the conditionals know the torus's topology. On open
  boundaries the window stops at the edge. Which window entries precede the site is known in
  advance (:func:`causal_window`), so the mask is a gather table, and the mask itself is an
  input (it tells the network where it is near the start of the lattice).

The density is exact and normalised (a product of Bernoulli conditionals), so the generator
trains by maximum likelihood on data (``training = "data"``) or without data by minimising the
variational free energy (``training = "variational"``), as spinbench's
:class:`~spinbench.generators.AbstractAutoregressiveGenerator` provides; ``symmetrize = true``
gives the exact Z2-symmetric ``q(x) = (q_net(x) + q_net(-x)) / 2`` on flip-symmetric models.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray
from spinbench import AbstractModel
from spinbench.generators import AbstractAutoregressiveGenerator


class VANNet(eqx.Module):
    """One network's weights; as returned by :meth:`VAN.init` and ``fit`` every array has a
    leading temperature axis (and ``hidden_w``/``hidden_b`` then a layer axis)."""

    spins_w: Float[Array, "*temps window width"]
    mask_w: Float[Array, "*temps window width"]
    in_b: Float[Array, "*temps width"]
    hidden_w: Float[Array, "*temps layers width width"]
    hidden_b: Float[Array, "*temps layers width"]
    out_w: Float[Array, "*temps width"]
    site_b: Float[Array, "*temps sites"]


def causal_window(
    shape: tuple[int, ...], radius: int, periodic: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Gather table ``(sites, window)`` of flat neighbour indices and mask ``(sites, window)``
    (1.0 where that neighbour is drawn before the site in raster order, else 0.0).

    The window is every offset in ``[-radius, radius]^d``; on a periodic lattice offsets wrap,
    on an open one those that leave the lattice are masked.
    """
    offsets = np.asarray(list(itertools.product(range(-radius, radius + 1), repeat=len(shape))))
    coords = np.stack(np.unravel_index(np.arange(math.prod(shape)), shape), axis=-1)
    target = coords[:, None, :] + offsets[None, :, :]
    extent = np.asarray(shape)
    inside = np.all((target >= 0) & (target < extent), axis=-1)
    wrapped = np.mod(target, extent)
    index = np.ravel_multi_index(tuple(np.moveaxis(wrapped, -1, 0)), shape)
    site = np.arange(math.prod(shape))[:, None]
    mask = (index < site) & (inside | periodic)
    return np.where(mask, index, 0).astype(np.int32), mask.astype(np.float32)


def _window(model: AbstractModel, radius: int) -> tuple[np.ndarray, np.ndarray]:
    return causal_window(tuple(model.shape), radius, model.boundary == "periodic")


def _trunk(net: VANNet, pre: Array) -> Array:
    """Pointwise layers (residual) and the logit, from the first layer's pre-activation."""
    hidden = jax.nn.silu(pre)

    def layer(h: Array, weights: tuple[Array, Array]) -> tuple[Array, None]:
        w, b = weights
        return h + jax.nn.silu(h @ w + b), None

    hidden, _ = lax.scan(layer, hidden, (net.hidden_w, net.hidden_b))
    return hidden @ net.out_w


class VAN(AbstractAutoregressiveGenerator):
    """Variational autoregressive network (masked convolution over the lattice, exact density),
    two-valued spins, any lattice dimension; trained on data or variationally."""

    name: ClassVar[str] = "van"

    #: ``"data"`` (maximum likelihood on the reference configurations) or ``"variational"``.
    training: str = eqx.field(static=True, default="data")
    #: Epochs of data training.
    epochs: int = eqx.field(static=True, default=100)
    #: Steps of variational training (each on ``batch_size`` fresh draws).
    steps: int = eqx.field(static=True, default=1000)
    batch_size: int = eqx.field(static=True, default=500)
    learning_rate: float = eqx.field(static=True, default=1e-3)
    #: Fraction of the variational steps over which beta is annealed up from 0.
    anneal: float = eqx.field(static=True, default=0.3)
    #: Exact Z2 symmetrisation ``(q(x) + q(-x)) / 2`` on flip-symmetric models.
    symmetrize: bool = eqx.field(static=True, default=False)
    #: Half-width of the masked window (the conditional sees ``(2 radius + 1)^d`` sites).
    radius: int = eqx.field(static=True, default=3)
    #: Channels of the pointwise layers.
    width: int = eqx.field(static=True, default=32)
    #: Pointwise layers after the masked one (0: the masked layer feeds the logit).
    depth: int = eqx.field(static=True, default=2)

    def __check_init__(self) -> None:
        self._check_options()
        for option in ("radius", "width"):
            value = getattr(self, option)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got {value!r}")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {self.depth!r}")

    # ------------------------------------------------------------------ network
    def init(self, model: AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> VANNet:
        window = (2 * self.radius + 1) ** len(model.shape)
        w, layers = self.width, self.depth
        k_spin, k_mask, k_hidden, k_out = jax.random.split(key, 4)
        return VANNet(
            spins_w=jax.random.normal(k_spin, (n_temps, window, w)) / math.sqrt(window),
            mask_w=jax.random.normal(k_mask, (n_temps, window, w)) / math.sqrt(window),
            in_b=jnp.zeros((n_temps, w)),
            hidden_w=jax.random.normal(k_hidden, (n_temps, layers, w, w)) * (0.5 / math.sqrt(w)),
            hidden_b=jnp.zeros((n_temps, layers, w)),
            out_w=jax.random.normal(k_out, (n_temps, w)) * (0.1 / math.sqrt(w)),
            site_b=jnp.zeros((n_temps, model.n_sites)),
        )

    def log_prob_network(
        self, model: AbstractModel, net: VANNet, x: Float[Array, "batch sites"]
    ) -> Float[Array, " batch"]:
        index, mask = _window(model, self.radius)
        neighbours = x[:, index] * mask  # (batch, sites, window): the masked convolution
        pre = neighbours @ net.spins_w + (mask @ net.mask_w + net.in_b)
        logits = _trunk(net, pre) + net.site_b
        return jnp.sum(jax.nn.log_sigmoid(x * logits), axis=-1)

    def sample_network(
        self, model: AbstractModel, net: VANNet, n: int, *, key: PRNGKeyArray
    ) -> Float[Array, "n sites"]:
        index, mask = _window(model, self.radius)
        sites = model.n_sites
        site_bias = mask @ net.mask_w + net.in_b  # (sites, width): what the mask contributes
        uniforms = jax.random.uniform(key, (sites, n))

        def draw(x: Array, per_site: tuple[Array, ...]) -> tuple[Array, None]:
            i, neighbours_i, mask_i, bias_i, site_b_i, u = per_site
            pre = (x[:, neighbours_i] * mask_i) @ net.spins_w + bias_i
            p_up = jax.nn.sigmoid(_trunk(net, pre) + site_b_i)
            return x.at[:, i].set(jnp.where(u < p_up, 1.0, -1.0)), None

        x, _ = lax.scan(
            draw,
            jnp.zeros((n, sites), jnp.float32),
            (jnp.arange(sites), index, mask, site_bias, net.site_b, uniforms),
        )
        return x


__all__ = ["VAN", "VANNet", "causal_window"]
