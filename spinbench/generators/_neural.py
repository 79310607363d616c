"""The shared neural generator: options, ``fit`` and ``generate`` for networks trained per
temperature.

:class:`AbstractNeuralGenerator` is what the built-in VAE, dense VAE and AVB share, and what a
plugin's network can build on: a concrete subclass declares its options as static fields and
provides :meth:`~AbstractNeuralGenerator.network` (one temperature's untrained network, with
``decode`` and ``latent_dim``) and :meth:`~AbstractNeuralGenerator.objective` (its
per-temperature update rule); training runs every temperature in one program
(:func:`~spinbench.generators.train`) and generation decodes prior draws.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._errors import UnsupportedModelError
from .._plain import plain
from .._samples import Samples
from ..models._base import AbstractModel
from ._base import AbstractGenerator, TrainedGenerator
from ._conv import BoundaryConv, is_none
from ._likelihoods import (
    AUTO_LIKELIHOOD,
    LIKELIHOODS,
    READOUTS,
    AbstractLikelihood,
    encode_spins,
    likelihood_for,
    likelihood_problem,
)
from ._training import AbstractObjective, TrainConfig, train

__all__ = [
    "GENERATE_CHUNK",
    "MAX_DEFAULT_LATENT",
    "NO_VARIATIONAL",
    "AbstractNeuralGenerator",
    "check_float",
    "check_positive_int",
    "initialise",
]

#: Why latent-variable generators do not offer ``training = "variational"``.
NO_VARIATIONAL = (
    "variational (data-free) training needs the exact ln q(x) of each drawn configuration and "
    "its gradient, and a latent-variable generator gives only a bound on it; it is offered by "
    "generators with an exact density (autoregressive ones such as made or van)"
)
#: Decoded configurations are generated in batches of this many per temperature.
GENERATE_CHUNK = 1000
#: Largest latent dimension chosen by default (``latent_dim=None`` means ``min(n_sites, this)``).
MAX_DEFAULT_LATENT = 32


class AbstractNeuralGenerator(AbstractGenerator):
    """Shared behaviour of the built-in neural generators (VAE, dense VAE, AVB).

    A concrete subclass declares every option as a static field and provides
    :meth:`network` (one temperature's untrained network, which has ``decode`` and a
    ``latent_dim`` property) and :meth:`objective` (its per-temperature update rule).
    """

    #: Latent-variable networks train on data only (said when a grid asks otherwise).
    unavailable_options: ClassVar[dict[str, str]] = {"training": NO_VARIATIONAL}

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
            check_positive_int(name, value)
        if (
            isinstance(self.kl_warmup_epochs, bool)
            or not isinstance(self.kl_warmup_epochs, int | np.integer)
            or self.kl_warmup_epochs < 0
        ):
            raise ValueError(
                "kl_warmup_epochs must be a non-negative integer, "
                f"got {plain(self.kl_warmup_epochs)!r}"
            )
        check_float("learning_rate", self.learning_rate, positive=True)
        check_float("min_delta", self.min_delta, positive=False)
        if self.likelihood not in (*LIKELIHOODS, AUTO_LIKELIHOOD):
            raise ValueError(
                f"likelihood must be one of {', '.join([*LIKELIHOODS, AUTO_LIKELIHOOD])} "
                f"(auto: bernoulli for two-valued spins, von-mises for angles), "
                f"got {self.likelihood!r}"
            )
        symmetrize = getattr(self, "symmetrize", False)
        if type(symmetrize) is not bool:  # from_options turns ValueError into OptionError
            raise ValueError(f"symmetrize must be true or false, got {symmetrize!r}")
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

    def output_likelihood(self, model: AbstractModel) -> AbstractLikelihood:
        """The decoder's likelihood for ``model``'s spins."""
        return likelihood_for(self.likelihood, model, self.resolved_readout())

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
            description=f"training {self.name}",
        )

    # -- the contract
    @abc.abstractmethod
    def network(self, model: AbstractModel, *, key: PRNGKeyArray) -> eqx.Module:
        """One temperature's untrained network (it has ``decode(z)`` and ``latent_dim``)."""

    @abc.abstractmethod
    def objective(self, model: AbstractModel) -> AbstractObjective:
        """One temperature's update rule (:func:`~spinbench.generators.train` runs it)."""

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
            raise UnsupportedModelError(f"{self.name} cannot learn {model.name}: {reason}")
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
        result = train(self.objective(model), params, features, config, key=train_key)
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
        return _generate(
            self.output_likelihood(model), model.dtype, params, int(n), key, self.symmetrized(model)
        )

    # -- densities
    def symmetrized(self, model: AbstractModel) -> bool:
        """Whether draws on ``model`` are flipped by a random sign: the ``symmetrize`` option
        of the built-in generators (False for a subclass without it), on models whose energy
        the flip s -> -s leaves unchanged (``symmetry == "flip"``; elsewhere no flip)."""
        return bool(getattr(self, "symmetrize", False)) and model.symmetry == "flip"

    def encoder_density(self) -> bool:
        """Whether the auxiliary density r(z|x) of :meth:`generate_with_log_density` is the
        encoder's (a VAE's Gaussian q(z|x)); otherwise it is the prior p(z)."""
        return False

    def density_problem(self, model: AbstractModel) -> str | None:
        problem = self.supports(model)
        if problem is not None:
            return problem
        if self.likelihood == "gaussian":
            return (
                "the paper's squared-error loss (likelihood 'gaussian') with its deterministic "
                "read-out gives no density of a configuration; train with likelihood="
                "'bernoulli' (two-valued spins) or 'von-mises' (angles)"
            )
        if self.resolved_readout() != "sample":
            return (
                "readout 'mean' is deterministic, so a configuration has no density; "
                "use readout='sample'"
            )
        return None

    def generate_with_log_density(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> tuple[Array, Array]:
        problem = self.density_problem(model)
        if problem is not None:
            raise UnsupportedModelError(f"{self.name}: {problem}")
        if n < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}")
        return _generate_with_density(
            self.output_likelihood(model),
            model,
            params,
            int(n),
            key,
            self.encoder_density(),
            self.symmetrized(model),
        )

    # -- reconstructions
    def reconstruction_problem(self, model: AbstractModel) -> str | None:
        """None when the network has an encoder (a ``posterior_draw(x, *, key)`` method, as
        the built-in VAEs and AVB have), else why not."""
        problem = self.supports(model)
        if problem is not None:
            return problem
        skeleton = eqx.filter_eval_shape(lambda: self.network(model, key=jax.random.key(0)))
        if not callable(getattr(skeleton, "posterior_draw", None)):
            return (
                f"{self.name}'s network has no encoder (no posterior_draw method), so it cannot "
                "reconstruct configurations"
            )
        return None

    def reconstruct(
        self, model: AbstractModel, params: PyTree, states: Array | np.ndarray, *, key: PRNGKeyArray
    ) -> Array:
        problem = self.reconstruction_problem(model)
        if problem is not None:
            raise UnsupportedModelError(f"{self.name}: {problem}")
        states = jnp.asarray(states)
        if states.ndim != 2 + len(model.shape) or tuple(states.shape[2:]) != tuple(model.shape):
            raise ValueError(
                f"states must be (temps, n, *{tuple(model.shape)}), got {tuple(states.shape)}"
            )
        return _reconstruct(self.output_likelihood(model), model, params, states, key)


@eqx.filter_jit
def _reconstruct(
    likelihood: AbstractLikelihood,
    model: AbstractModel,
    params: PyTree,
    states: Array,
    key: PRNGKeyArray,
) -> Array:
    """Each configuration of ``states`` ``(temps, n, *lattice)`` encoded (``z`` drawn from
    q(z|x)), decoded and read out by its temperature's network, in chunks of at most
    GENERATE_CHUNK configurations (the last one padded)."""
    n = states.shape[1]
    chunk = min(n, GENERATE_CHUNK)
    n_chunks = -(-n // chunk)
    lattice = states.shape[2:]
    pad = [(0, 0), (0, n_chunks * chunk - n)] + [(0, 0)] * len(lattice)
    blocks = jnp.pad(states, pad, mode="edge").reshape(-1, n_chunks, chunk, *lattice)

    def one_temperature(net: Any, x_t: Array, key_t: PRNGKeyArray) -> Array:
        def block(args: tuple[Array, PRNGKeyArray]) -> Array:
            x, k = args
            kz, kr = jax.random.split(k)
            z = jax.vmap(lambda xi, ki: net.posterior_draw(xi, key=ki))(
                encode_spins(model, x), jax.random.split(kz, chunk)
            )
            return likelihood.to_spins(jax.vmap(net.decode)(z), key=kr, dtype=model.dtype)

        out = lax.map(block, (x_t, jax.random.split(key_t, n_chunks)))
        return out.reshape(n_chunks * chunk, *lattice)[:n]

    return eqx.filter_vmap(one_temperature)(params, blocks, jax.random.split(key, len(blocks)))


def _is_layer(node: Any) -> bool:
    return isinstance(node, eqx.nn.Linear | BoundaryConv)


def initialise(skeleton: PyTree, *, key: PRNGKeyArray) -> PyTree:
    """Equinox's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weights and
    biases of every dense and convolutional layer, drawn from a single uniform sample.

    One draw instead of one per layer: each ``jax.random`` call site adds to the XLA compile
    time on a CPU. ``skeleton`` may hold shapes only (``eqx.filter_eval_shape``).
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
            eqx.tree_at(lambda m: (m.weight, m.bias), layer, (weight, bias), is_leaf=is_none)
        )
    return eqx.tree_at(
        lambda net: [n for n in jax.tree_util.tree_leaves(net, is_leaf=_is_layer) if _is_layer(n)],
        skeleton,
        filled,
    )


@eqx.filter_jit
def _init(
    generator: AbstractNeuralGenerator, model: AbstractModel, n_temps: int, key: PRNGKeyArray
) -> PyTree:
    """One network per temperature, stacked (see :func:`initialise`)."""
    skeleton = eqx.filter_eval_shape(lambda: generator.network(model, key=jax.random.key(0)))
    return eqx.filter_vmap(lambda k: initialise(skeleton, key=k))(jax.random.split(key, n_temps))


def _in_chunks(
    params: PyTree, n: int, key: PRNGKeyArray, draw: Callable[[Any, PRNGKeyArray, int], Any]
) -> Any:
    """``draw(net, key, chunk)`` (arrays with a leading axis of ``chunk`` draws) run in
    chunks of at most GENERATE_CHUNK for each temperature's network, stacked to
    ``(temps, n, ...)``."""
    chunk = min(n, GENERATE_CHUNK)
    n_chunks = -(-n // chunk)
    n_temps = jax.tree_util.tree_leaves(eqx.filter(params, eqx.is_array))[0].shape[0]

    def one_temperature(net: Any, key_t: PRNGKeyArray) -> Any:
        drawn = lax.map(lambda k: draw(net, k, chunk), jax.random.split(key_t, n_chunks))
        return jax.tree_util.tree_map(
            lambda a: a.reshape(n_chunks * chunk, *a.shape[2:])[:n], drawn
        )

    return eqx.filter_vmap(one_temperature)(params, jax.random.split(key, n_temps))


@eqx.filter_jit
def _generate(
    likelihood: AbstractLikelihood,
    dtype: Any,
    params: PyTree,
    n: int,
    key: PRNGKeyArray,
    symmetrize: bool = False,
) -> Array:
    """Decode ``n`` prior draws per temperature (each flipped with probability 1/2 when
    ``symmetrize``)."""

    def draw(net: Any, k: PRNGKeyArray, chunk: int) -> Array:
        kz, kr = jax.random.split(k)
        z = jax.random.normal(kz, (chunk, net.latent_dim))
        x = likelihood.to_spins(jax.vmap(net.decode)(z), key=kr, dtype=dtype)
        return _flip(x, jax.random.fold_in(k, 2)) if symmetrize else x

    return _in_chunks(params, n, key, draw)


def _flip(x: Array, key: PRNGKeyArray) -> Array:
    """Each configuration of ``x`` ``(batch, *lattice)`` times a random sign (s -> -s)."""
    signs = jax.random.rademacher(key, (x.shape[0],), dtype=x.dtype)
    return x * signs.reshape(-1, *([1] * (x.ndim - 1)))


def _standard_normal_log_density(z: Array) -> Array:
    return -0.5 * jnp.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


@eqx.filter_jit
def _generate_with_density(
    likelihood: AbstractLikelihood,
    model: AbstractModel,
    params: PyTree,
    n: int,
    key: PRNGKeyArray,
    use_encoder: bool,
    symmetrize: bool = False,
) -> tuple[Array, Array]:
    """``n`` draws per temperature of ``z ~ N(0, I)``, ``x ~ p(x|z)``, with the augmented log
    density ``ln p(z) + ln p(x|z) - ln r(z|x)`` (r: the encoder's Gaussian, or the prior).

    With ``symmetrize`` each draw is flipped by a random sign ``s`` and the augmentation
    grows by ``s``: ``ln(1/2) + ln p(z) + ln p(sx|z) - ln r(z|sx) - ln r(s|x)``, where
    ``r(s|x)`` is the softmax over both signs of ``g(sx)``, the decoder's log likelihood of
    ``sx`` at the encoder's mean (at ``z = 0`` without an encoder): a proper distribution of
    ``s`` given ``x`` that favours the orientation the network generates, so that a network
    that learnt one of the two ordered states still weights both exactly.
    """

    def log_likelihood(out: Array, x: Array) -> Array:
        return -jax.vmap(likelihood.nll)(out, encode_spins(model, x))

    def orientation_score(net: Any, x: Array) -> Array:
        """g(x): the decoder's log likelihood of x at a point z chosen from x alone."""
        if use_encoder:
            mu, _ = jax.vmap(net.encode)(encode_spins(model, x))
        else:
            mu = jnp.zeros((x.shape[0], net.latent_dim))
        return log_likelihood(jax.vmap(net.decode)(mu), x)

    def draw(net: Any, k: PRNGKeyArray, chunk: int) -> tuple[Array, Array]:
        kz, kr, ks = jax.random.split(k, 3)
        z = jax.random.normal(kz, (chunk, net.latent_dim))
        out = jax.vmap(net.decode)(z)
        x = likelihood.to_spins(out, key=kr, dtype=model.dtype)
        log_pz = _standard_normal_log_density(z)
        if use_encoder:
            mu, logvar = jax.vmap(net.encode)(encode_spins(model, x))
            log_r = -0.5 * jnp.sum(
                (z - mu) ** 2 * jnp.exp(-logvar) + logvar + math.log(2 * math.pi), axis=-1
            )
        else:
            log_r = log_pz
        log_q = log_pz + log_likelihood(out, x) - log_r
        if not symmetrize:
            return x, log_q
        kept, flipped = orientation_score(net, x), orientation_score(net, -x)
        log_r_sign = kept - jnp.logaddexp(kept, flipped)
        return _flip(x, ks), log_q - math.log(2.0) - log_r_sign

    return _in_chunks(params, n, key, draw)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {plain(value)!r}")


def check_float(name: str, value: Any, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number, got {plain(value)!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a finite {kind} number, got {plain(value)!r}")
