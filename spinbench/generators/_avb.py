"""Adversarial variational Bayes (Mescheder, Nowozin & Geiger 2017; the paper's §2.3).

The encoder is implicit: ``z = f_phi(x, eps)`` with noise ``eps ~ N(0, I)`` fed in beside the
configuration, so q(z|x) need not be Gaussian. Its KL term is estimated by a discriminator
``T(x, z)`` trained to tell pairs ``(x, z ~ q(z|x))`` from ``(x, z ~ p(z))``. Each step
alternates the two updates:

* eq. (4): maximise ``E log σ(T(x, z_q)) + E log(1 - σ(T(x, z_p)))`` over T;
* eq. (5): maximise ``E[-T(x, z_q) + log p_theta(x|z_q)]`` over the encoder and decoder, with T
  held fixed (``log p`` is the likelihood's negative reconstruction term, as in the VAE).

Generation is the VAE's: ``z ~ N(0, I)`` through the decoder and the likelihood's readout.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._plain import plain
from ..models._base import AbstractModel
from ._conv import ConvStack, TransposedConvStack, activation, reduced_shape
from ._likelihoods import AbstractLikelihood, spin_channels
from ._neural import AbstractNeuralGenerator, check_float, check_positive_int
from ._training import AbstractObjective

ARCHITECTURES = ("dense", "conv")


def _mlp(n_in: int, n_out: int | str, hidden: int, *, key: PRNGKeyArray) -> eqx.nn.MLP:
    return eqx.nn.MLP(n_in, n_out, hidden, 2, activation=activation, key=key)  # type: ignore[arg-type]


class AVBModel(eqx.Module):
    """The encoder f(x, eps) -> z and the decoder g(z) -> raw output."""

    features: ConvStack | None
    encoder: eqx.nn.MLP
    decoder_dense: eqx.nn.MLP | None
    decoder_conv: tuple[eqx.nn.Linear, TransposedConvStack] | None
    shape: tuple[int, ...] = eqx.field(static=True)
    hidden_shape: tuple[int, ...] = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)
    noise_dim: int = eqx.field(static=True)

    def __init__(
        self,
        model: AbstractModel,
        architecture: str,
        hidden: int,
        channels: int,
        latent: int,
        noise: int,
        *,
        key: PRNGKeyArray,
    ) -> None:
        k1, k2, k3, k4 = jax.random.split(key, 4)
        cin = spin_channels(model)
        self.shape = (cin, *model.shape)
        self.hidden_shape = (2 * channels, *reduced_shape(model.shape))
        self.latent_dim, self.noise_dim = latent, noise
        if architecture == "conv":
            flat = math.prod(self.hidden_shape)
            self.features = ConvStack(model, cin, channels, key=k1)
            self.decoder_dense = None
            self.decoder_conv = (
                eqx.nn.Linear(latent, flat, key=k2),
                TransposedConvStack(model, channels, cin, key=k3),
            )
        else:
            flat = math.prod(self.shape)
            self.features = None
            self.decoder_dense = _mlp(latent, flat, hidden, key=k2)
            self.decoder_conv = None
        self.encoder = _mlp(flat + noise, latent, hidden, key=k4)

    def encode(
        self, x: Float[Array, " c *lattice"], noise: Float[Array, " noise"]
    ) -> Float[Array, " latent"]:
        """A draw from the implicit posterior q(z|x), given the noise."""
        h = jnp.ravel(x if self.features is None else self.features(x))
        return self.encoder(jnp.concatenate([h, noise]))

    def decode(self, z: Float[Array, " latent"]) -> Float[Array, " c *lattice"]:
        """Raw decoder output (read by the likelihood)."""
        if self.decoder_conv is not None:
            dense, deconv = self.decoder_conv
            return deconv(activation(dense(z)).reshape(self.hidden_shape))
        assert self.decoder_dense is not None
        return self.decoder_dense(z).reshape(self.shape)


class AVBCritic(eqx.Module):
    """The discriminator T(x, z): a logit for "z was drawn from q(z|x), not from p(z)"."""

    features: ConvStack | None
    mlp: eqx.nn.MLP

    def __init__(
        self,
        model: AbstractModel,
        architecture: str,
        hidden: int,
        channels: int,
        latent: int,
        *,
        key: PRNGKeyArray,
    ) -> None:
        k1, k2 = jax.random.split(key)
        cin = spin_channels(model)
        if architecture == "conv":
            self.features = ConvStack(model, cin, channels, key=k1)
            flat = 2 * channels * math.prod(reduced_shape(model.shape))
        else:
            self.features = None
            flat = cin * model.n_sites
        self.mlp = _mlp(flat + latent, "scalar", hidden, key=k2)

    def __call__(self, x: Float[Array, " c *lattice"], z: Float[Array, " latent"]) -> Array:
        h = jnp.ravel(x if self.features is None else self.features(x))
        return self.mlp(jnp.concatenate([h, z]))


class AVBNet(eqx.Module):
    """One temperature's AVB: the encoder/decoder ``model`` and the discriminator ``critic``.

    ``architecture="dense"`` (the paper's Fig. 1b): every part is an MLP of two hidden
    layers; ``"conv"``: the encoder and discriminator read x through a :class:`ConvStack` and
    the decoder is the VAE's transposed-convolution decoder.
    """

    model: AVBModel
    critic: AVBCritic

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    def decode(self, z: Float[Array, " latent"]) -> Float[Array, " c *lattice"]:
        return self.model.decode(z)

    def posterior_draw(
        self, x: Float[Array, " c *lattice"], *, key: PRNGKeyArray
    ) -> Float[Array, " latent"]:
        """``z = f(x, eps)`` with fresh noise ``eps ~ N(0, I)``: a draw from the implicit
        q(z|x), as in a training step (for reconstructions)."""
        return self.model.encode(x, jax.random.normal(key, (self.model.noise_dim,)))


class AVBObjective(AbstractObjective):
    """Alternating updates of eq. (4) (discriminator) then eq. (5) (encoder and decoder), each
    with its own Adam state. ``loss`` is the estimated negative ELBO ``E[T + recon]``;
    ``discriminator`` the loss of eq. (4); ``kl`` the KL estimate ``E[T]``."""

    likelihood: AbstractLikelihood
    learning_rate: float = eqx.field(static=True)
    beta1: float = eqx.field(static=True)
    kl_warmup_epochs: int = eqx.field(static=True)

    def _optimiser(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate, b1=self.beta1)

    def init_state(self, params: PyTree) -> PyTree:
        net: AVBNet = params
        optimiser = self._optimiser()
        return (
            optimiser.init(eqx.filter(net.critic, eqx.is_array)),
            optimiser.init(eqx.filter(net.model, eqx.is_array)),
        )

    def step(
        self,
        params: PyTree,
        opt_state: PyTree,
        batch: Float[Array, "batch ..."],
        *,
        key: PRNGKeyArray,
        epoch: Float[Array, ""],
    ) -> tuple[PyTree, PyTree, dict[str, Float[Array, ""]]]:
        net: AVBNet = params
        critic_state, model_state = opt_state
        weight = (
            jnp.minimum(1.0, epoch / self.kl_warmup_epochs) if self.kl_warmup_epochs > 0 else 1.0
        )
        n = batch.shape[0]
        k_eps, k_prior = jax.random.split(key)
        eps = jax.random.normal(k_eps, (n, net.model.noise_dim))
        z_prior = jax.random.normal(k_prior, (n, net.model.latent_dim))
        optimiser = self._optimiser()

        # Eq. (4): the discriminator, with the posterior draws held fixed.
        z_post = jax.lax.stop_gradient(jax.vmap(net.model.encode)(batch, eps))

        def critic_loss(critic: AVBCritic) -> Array:
            t_post = jax.vmap(critic)(batch, z_post)
            t_prior = jax.vmap(critic)(batch, z_prior)
            return jnp.mean(jax.nn.softplus(-t_post) + jax.nn.softplus(t_prior))

        d_loss, grads = eqx.filter_value_and_grad(critic_loss)(net.critic)
        updates, critic_state = optimiser.update(
            grads, critic_state, eqx.filter(net.critic, eqx.is_array)
        )
        critic = eqx.apply_updates(net.critic, updates)

        # Eq. (5): the encoder and decoder, with the updated discriminator held fixed.
        def model_loss(model: AVBModel) -> tuple[Array, tuple[Array, Array]]:
            z = jax.vmap(model.encode)(batch, eps)
            kl = jnp.mean(jax.vmap(critic)(batch, z))
            out = jax.vmap(model.decode)(z)
            recon = jnp.mean(jax.vmap(self.likelihood.nll)(out, batch))
            return weight * kl + recon, (kl, recon)

        (_, (kl, recon)), grads = eqx.filter_value_and_grad(model_loss, has_aux=True)(net.model)
        updates, model_state = optimiser.update(
            grads, model_state, eqx.filter(net.model, eqx.is_array)
        )
        model = eqx.apply_updates(net.model, updates)
        metrics = {"loss": kl + recon, "kl": kl, "reconstruction": recon, "discriminator": d_loss}
        return AVBNet(model, critic), (critic_state, model_state), metrics


class AVB(AbstractNeuralGenerator):
    """Adversarial variational Bayes (paper §2.3): noise-fed encoder, discriminator T(x, z).

    ``H = hidden`` (64), ``L = latent_dim`` (default ``min(n_sites, 32)``), ``E = noise_dim``
    (default L), ``C`` spin channels, ``X = C * n_sites``; ``architecture="dense"`` (default,
    the paper's choice):

    ==============  ===================================================================
    encoder         concat(x (X), eps (E)) -> Dense(H), ReLU -> Dense(H), ReLU -> Dense(L)
    decoder         Dense(L -> H), ReLU -> Dense(H), ReLU -> Dense(X); likelihood head
    discriminator   concat(x (X), z (L)) -> Dense(H), ReLU -> Dense(H), ReLU -> Dense(1)
    ==============  ===================================================================

    ``architecture="conv"`` (beyond the paper) reads x in the encoder and the discriminator
    through the VAE's two boundary-aware convolutions (``channels``, ``2 * channels``) and
    uses the VAE's transposed-convolution decoder. Adam with lr 2e-3 and beta1 = 0.4 for both
    players, batch 500.
    """

    name: ClassVar[str] = "avb"

    epochs: int = eqx.field(static=True, default=100)
    steps: int | None = eqx.field(static=True, default=None)
    batch_size: int = eqx.field(static=True, default=500)
    learning_rate: float = eqx.field(static=True, default=2e-3)
    beta1: float = eqx.field(static=True, default=0.4)
    latent_dim: int | None = eqx.field(static=True, default=None)
    noise_dim: int | None = eqx.field(static=True, default=None)
    architecture: str = eqx.field(static=True, default="dense")
    hidden: int = eqx.field(static=True, default=64)
    channels: int = eqx.field(static=True, default=16)
    likelihood: str = eqx.field(static=True, default="gaussian")
    readout: str = eqx.field(static=True, default="auto")
    symmetrize: bool = eqx.field(static=True, default=False)
    kl_warmup_epochs: int = eqx.field(static=True, default=0)
    patience: int | None = eqx.field(static=True, default=None)
    min_delta: float = eqx.field(static=True, default=1e-3)

    def __check_init__(self) -> None:
        self._check_options()
        check_positive_int("hidden", self.hidden)
        check_positive_int("channels", self.channels)
        if self.noise_dim is not None:
            check_positive_int("noise_dim", self.noise_dim)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}"
            )
        check_float("beta1", self.beta1, positive=False)
        if not self.beta1 < 1:
            raise ValueError(f"beta1 must be in [0, 1), got {plain(self.beta1)!r}")

    def supports(self, model: AbstractModel) -> str | None:
        if self.architecture == "conv" and len(model.shape) > 3:
            return f"the convolutional AVB supports 1 to 3 lattice dimensions, not {model.shape}"
        return super().supports(model)

    def network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        latent = self.latent_size(model)
        noise = latent if self.noise_dim is None else int(self.noise_dim)
        k1, k2 = jax.random.split(key)
        args = (model, self.architecture, self.hidden, self.channels, latent)
        return AVBNet(AVBModel(*args, noise, key=k1), AVBCritic(*args, key=k2))

    def objective(self, model: AbstractModel) -> AbstractObjective:
        return AVBObjective(
            self.output_likelihood(model), self.learning_rate, self.beta1, self.kl_warmup_epochs
        )
