"""How neural generators read spins in and out: the spin encoding and the decoder's likelihood.

Spins enter the networks as float channels ``(channels, *lattice)``: a two-valued spin as one
channel of -1/+1, an XY angle as the two channels (cos θ, sin θ). The decoder's raw output is
read back into the model's spin representation by a likelihood p(x | z), chosen by name:

* ``"gaussian"`` (the paper's eq. 3, the default): the loss is |x - y|² with the decoder mean
  ``y = tanh(out)``. An Ising spin is read out as the sign of ``y`` (``readout="mean"``: the
  most likely spin given z, and what "the decoder's output" means in the paper) or drawn as +1
  with probability ``(1 + y) / 2`` (``readout="sample"``: y is the conditional mean of a ±1
  spin). An angle is ``atan2(y_sin, y_cos)``.
* ``"bernoulli"`` (Ising, beyond the paper): the decoder gives logits and the loss is the
  exact negative log-likelihood; spins are drawn from it by default.
* ``"von-mises"`` (XY, beyond the paper): the decoder gives ``κ (cos μ, sin μ)`` per site and
  the loss is the von Mises negative log-likelihood; angles are drawn from it by default.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..models._base import AbstractModel, wrap_angle

__all__ = [
    "AUTO_LIKELIHOOD",
    "LIKELIHOODS",
    "READOUTS",
    "AbstractLikelihood",
    "BernoulliLikelihood",
    "GaussianLikelihood",
    "VonMisesLikelihood",
    "encode_spins",
    "likelihood_for",
    "likelihood_problem",
    "spin_channels",
    "von_mises_sample",
]

READOUTS = ("auto", "mean", "sample")


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


class AbstractLikelihood(eqx.Module):
    """The decoder's output distribution p(x | z) for one model's spins.

    ``out`` is the decoder's raw output for one configuration, ``(channels, *lattice)``;
    ``readout`` is ``"mean"`` (the most likely spins) or ``"sample"`` (drawn from p(x | z)).
    """

    name: ClassVar[str]
    spin_values: tuple[int, ...] | None = eqx.field(static=True)
    readout: str = eqx.field(static=True)

    @abc.abstractmethod
    def nll(self, out: Float[Array, " c *lattice"], x: Float[Array, " c *lattice"]) -> Array:
        """The reconstruction term of the loss for one configuration (a scalar)."""

    @abc.abstractmethod
    def to_spins(
        self, out: Float[Array, "n c *lattice"], *, key: PRNGKeyArray, dtype: Any
    ) -> Array:
        """A batch of decoder outputs as configurations ``(n, *lattice)`` in the model's dtype."""

    def _two_valued(self, is_up: Array, dtype: Any) -> Array:
        assert self.spin_values is not None
        return jnp.where(is_up, self.spin_values[-1], self.spin_values[0]).astype(dtype)


class GaussianLikelihood(AbstractLikelihood):
    """The paper's squared error about the decoder mean ``tanh(out)``."""

    name: ClassVar[str] = "gaussian"

    def nll(self, out: Float[Array, " c *lattice"], x: Float[Array, " c *lattice"]) -> Array:
        return jnp.sum((x - jnp.tanh(out)) ** 2)

    def to_spins(
        self, out: Float[Array, "n c *lattice"], *, key: PRNGKeyArray, dtype: Any
    ) -> Array:
        if self.spin_values is not None:
            value = out[:, 0]
            if self.readout == "mean":
                return self._two_valued(value >= 0, dtype)  # the sign of the mean
            p_up = jnp.clip((1.0 + jnp.tanh(value)) / 2, 0.0, 1.0)
            return self._two_valued(jax.random.uniform(key, value.shape) < p_up, dtype)
        direction = jnp.tanh(out)
        return wrap_angle(jnp.arctan2(direction[:, 1], direction[:, 0])).astype(dtype)


class BernoulliLikelihood(AbstractLikelihood):
    """Two-valued spins with probabilities ``sigmoid(out)``: the exact negative log-likelihood."""

    name: ClassVar[str] = "bernoulli"

    def nll(self, out: Float[Array, " c *lattice"], x: Float[Array, " c *lattice"]) -> Array:
        return jnp.sum(jax.nn.softplus(-x * out))

    def to_spins(
        self, out: Float[Array, "n c *lattice"], *, key: PRNGKeyArray, dtype: Any
    ) -> Array:
        value = out[:, 0]
        if self.readout == "mean":
            return self._two_valued(value >= 0, dtype)  # the sign of the logit
        return self._two_valued(jax.random.uniform(key, value.shape) < jax.nn.sigmoid(value), dtype)


class VonMisesLikelihood(AbstractLikelihood):
    """Angles from a von Mises distribution with natural parameters ``κ (cos μ, sin μ) = out``."""

    name: ClassVar[str] = "von-mises"

    def nll(self, out: Float[Array, " c *lattice"], x: Float[Array, " c *lattice"]) -> Array:
        kappa = jnp.sqrt(jnp.sum(out**2, axis=0) + 1e-12)
        log_norm = jnp.log(2 * jnp.pi) + jnp.log(jax.scipy.special.i0e(kappa)) + kappa
        return jnp.sum(log_norm - jnp.sum(out * x, axis=0))

    def to_spins(
        self, out: Float[Array, "n c *lattice"], *, key: PRNGKeyArray, dtype: Any
    ) -> Array:
        mean = jnp.arctan2(out[:, 1], out[:, 0])
        if self.readout == "mean":
            return wrap_angle(mean).astype(dtype)
        kappa = jnp.sqrt(jnp.sum(out**2, axis=1))
        return von_mises_sample(key, mean, kappa).astype(dtype)


#: The likelihoods by the names generators' ``likelihood`` option takes.
LIKELIHOODS: dict[str, type[AbstractLikelihood]] = {
    cls.name: cls for cls in (GaussianLikelihood, BernoulliLikelihood, VonMisesLikelihood)
}


#: The ``likelihood`` option's spelling for "the spins' own density": Bernoulli for two-valued
#: spins, von Mises for angles (one grid entry for models of both kinds).
AUTO_LIKELIHOOD = "auto"


def resolve_likelihood(name: str, model: AbstractModel) -> str:
    """``name`` with :data:`AUTO_LIKELIHOOD` resolved for ``model``'s spins."""
    if name != AUTO_LIKELIHOOD:
        return name
    return "von-mises" if model.spin_values is None else "bernoulli"


def likelihood_for(name: str, model: AbstractModel, readout: str) -> AbstractLikelihood:
    """The likelihood called ``name`` (or ``"auto"``) for ``model``'s spins with a resolved
    ``readout``."""
    return LIKELIHOODS[resolve_likelihood(name, model)](model.spin_values, readout)


def likelihood_problem(model: AbstractModel, likelihood: str, readout: str) -> str | None:
    """Why ``likelihood``/``readout`` cannot describe ``model``'s spins, or None."""
    likelihood = resolve_likelihood(likelihood, model)
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
