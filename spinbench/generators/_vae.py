"""Variational autoencoders of spins: convolutional (``vae``) and dense (``dense-vae``).

Loss (the paper's eq. 3): KL(q(z|x) || N(0, I)) plus the reconstruction term of the decoder's
likelihood (:mod:`._likelihoods`); Adam. Generation draws ``z ~ N(0, I)`` and decodes, so
samples are independent.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ..models._base import AbstractModel
from ._conv import ConvStack, TransposedConvStack, activation, reduced_shape
from ._likelihoods import AbstractLikelihood, spin_channels
from ._neural import AbstractNeuralGenerator, check_positive_int
from ._training import AbstractObjective

__all__ = ["VAE", "AbstractVAENet", "ConvVAENet", "DenseVAE", "DenseVAENet", "VAEObjective"]


class AbstractVAENet(eqx.Module):
    """An encoder q(z|x) = N(mu, diag exp(logvar)) and a decoder of raw outputs."""

    latent_dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def encode(self, x: Float[Array, " c *lattice"]) -> tuple[Array, Array]:
        """``(mu, logvar)``, each ``(latent,)``."""

    @abc.abstractmethod
    def decode(self, z: Float[Array, " latent"]) -> Float[Array, " c *lattice"]:
        """Raw decoder output for one latent vector (read by the likelihood)."""

    def posterior_draw(
        self, x: Float[Array, " c *lattice"], *, key: PRNGKeyArray
    ) -> Float[Array, " latent"]:
        """``z ~ q(z|x)``, reparametrised as in a training step (for reconstructions)."""
        mu, logvar = self.encode(x)
        return mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)


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

    likelihood: AbstractLikelihood
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


#: Auxiliary densities r(z|x) of the augmented importance weights (see the generator base).
AUXILIARIES = ("encoder", "prior")


def check_auxiliary(value: str) -> None:
    if value not in AUXILIARIES:
        raise ValueError(f"auxiliary must be one of {', '.join(AUXILIARIES)}, got {value!r}")


class _EncoderDensity(AbstractNeuralGenerator):
    """A VAE's choice of auxiliary density: its encoder (lower variance) or the prior."""

    auxiliary: eqx.AbstractVar[str]

    def encoder_density(self) -> bool:
        return self.auxiliary == "encoder"


class VAE(_EncoderDensity):
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
    auxiliary: str = eqx.field(static=True, default="encoder")
    symmetrize: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        self._check_options()
        check_auxiliary(self.auxiliary)
        check_positive_int("channels", self.channels)

    def supports(self, model: AbstractModel) -> str | None:
        if len(model.shape) > 3:
            return f"the convolutional VAE supports 1 to 3 lattice dimensions, not {model.shape}"
        return super().supports(model)

    def network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        return ConvVAENet(model, self.channels, self.latent_size(model), key=key)

    def objective(self, model: AbstractModel) -> AbstractObjective:
        likelihood = self.output_likelihood(model)
        return VAEObjective(likelihood, self.learning_rate, self.kl_warmup_epochs)


class DenseVAE(_EncoderDensity):
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
    auxiliary: str = eqx.field(static=True, default="encoder")
    symmetrize: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        self._check_options()
        check_auxiliary(self.auxiliary)
        check_positive_int("hidden", self.hidden)

    def network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        return DenseVAENet(model, self.hidden, self.latent_size(model), key=key)

    def objective(self, model: AbstractModel) -> AbstractObjective:
        likelihood = self.output_likelihood(model)
        return VAEObjective(likelihood, self.learning_rate, self.kl_warmup_epochs)
