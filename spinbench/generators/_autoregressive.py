"""Generators with an exact density, trained on data or without any (variational training).

:class:`AbstractAutoregressiveGenerator` is the base of a generator that can both *sample* a
configuration and give its exact, normalised ``ln q(x)`` (an autoregressive network, say). A
subclass provides one temperature's network as three functions — :meth:`init` (stacked over
temperatures, as every generator), :meth:`~AbstractAutoregressiveGenerator.log_prob_network`
and :meth:`~AbstractAutoregressiveGenerator.sample_network` — and inherits the options, both
ways of training, generation with densities and the Z2 symmetrisation.

Two ways of training (option ``training``):

* ``"data"`` (the default, the paper's way): maximum likelihood on the reference sampler's
  configurations, minibatch Adam steps on ``-<ln q(x)>_data`` for ``epochs`` epochs;
* ``"variational"``: no data at all. Each of ``steps`` Adam steps draws ``batch_size`` fresh
  configurations from the network and descends the reverse KL divergence, i.e. the variational
  free energy ``beta F_q = <beta E(x) + ln q(x)>_q``, by the score-function (REINFORCE)
  gradient with the batch mean as baseline (Wu, Wang & Zhang, PRL 122, 080602 (2019)):
  ``grad = <(f(x) - <f>) grad ln q(x)>`` with ``f = beta E + ln q``. As in their variational
  autoregressive networks, ``beta`` is annealed from 0: ``beta_t = beta (1 - a^(t+1))``, with
  ``a`` chosen so that ``beta_t`` is within 0.1% of ``beta`` after the first ``anneal`` fraction
  of the steps (``anneal = 0``: no annealing). Annealing keeps the network from collapsing
  onto one ordered state before it has learnt the disordered one.

Latent-variable generators (VAE, dense VAE, AVB) are not offered variational training: the
reverse KL needs the exact ``ln q(x)`` of each drawn ``x`` and its gradient, and they give
only a bound on it (the augmented density of :mod:`spinbench.corrections` is exact for
weights but its gradient is not that of ``ln q(x)``).

Every temperature trains its own network, all in one jitted program
(:func:`~spinbench.generators.train`), with its divergence rule: a step whose loss or
parameters are not finite freezes that temperature and is reported, never written as a number.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._errors import UnsupportedModelError
from .._plain import plain
from .._samples import Samples
from ..models._base import AbstractModel
from ._base import AbstractGenerator, TrainedGenerator
from ._neural import NO_VARIATIONAL, check_float, check_positive_int
from ._training import AbstractObjective, TrainConfig, TrainResult, train

__all__ = [
    "NO_VARIATIONAL",
    "TRAININGS",
    "AbstractAutoregressiveGenerator",
    "LikelihoodObjective",
    "VariationalObjective",
    "anneal_rate",
    "train_variational",
]

#: The values of the ``training`` option.
TRAININGS = ("data", "variational")
#: Configurations drawn per batch when generating (per temperature).
GENERATE_CHUNK = 2000


def anneal_rate(anneal: float, steps: int) -> float:
    """The per-step factor ``a`` of ``beta_t = beta (1 - a^(t+1))`` that brings ``beta_t``
    within 0.1% of ``beta`` after ``anneal * steps`` steps (0 when not annealing)."""
    if anneal <= 0:
        return 0.0
    return math.exp(math.log(1e-3) / max(1.0, anneal * steps))


def _flip(x: Array) -> Array:
    return -x


class AbstractAutoregressiveGenerator(AbstractGenerator):
    """A generator with an exact, normalised density, trainable on data or variationally.

    Spins are handled as float ``±1`` (``-1`` for ``spin_values[0]``), flat over the lattice,
    in the two methods a subclass provides; the base converts to and from the model's values.
    """

    #: Variational training is what this base adds; the options are shared by subclasses.
    training: eqx.AbstractVar[str]
    epochs: eqx.AbstractVar[int]
    steps: eqx.AbstractVar[int]
    batch_size: eqx.AbstractVar[int]
    learning_rate: eqx.AbstractVar[float]
    anneal: eqx.AbstractVar[float]
    symmetrize: eqx.AbstractVar[bool]

    # ------------------------------------------------------------------ subclass contract
    @abc.abstractmethod
    def log_prob_network(
        self, model: AbstractModel, net: PyTree, x: Float[Array, "batch sites"]
    ) -> Float[Array, " batch"]:
        """Exact ``ln q_net(x)`` of flat ``±1`` configurations under one temperature's network."""

    @abc.abstractmethod
    def sample_network(
        self, model: AbstractModel, net: PyTree, n: int, *, key: PRNGKeyArray
    ) -> Float[Array, "n sites"]:
        """``n`` exact draws of one temperature's network, flat ``±1`` (no Markov chain)."""

    # ------------------------------------------------------------------ options
    def _check_options(self) -> None:
        """Validate the shared options (call it from the subclass's ``__check_init__``)."""
        if self.training not in TRAININGS:
            raise ValueError(
                f"training must be one of {', '.join(TRAININGS)} (data: maximum likelihood on "
                f"the reference configurations; variational: no data, minimise the variational "
                f"free energy), got {plain(self.training)!r}"
            )
        for option in ("epochs", "steps", "batch_size"):
            check_positive_int(option, getattr(self, option))
        check_float("learning_rate", self.learning_rate, positive=True)
        check_float("anneal", self.anneal, positive=False)
        if not 0 <= self.anneal < 1:
            raise ValueError(
                f"anneal must be in [0, 1) (the fraction of the steps over which beta rises "
                f"from 0; 0: no annealing), got {plain(self.anneal)!r}"
            )
        if type(self.symmetrize) is not bool:
            raise ValueError(f"symmetrize must be true or false, got {plain(self.symmetrize)!r}")

    def supports(self, model: AbstractModel) -> str | None:
        if model.spin_values is None or len(model.spin_values) != 2:
            values = "angles" if model.spin_values is None else f"values {model.spin_values}"
            return (
                f"{self.name} models two-valued spins (a Bernoulli per site); "
                f"{model.name} has {values}"
            )
        return None

    def density_problem(self, model: AbstractModel) -> str | None:
        return self.supports(model)  # exact ln q(x) wherever it can model at all

    def flips(self, model: AbstractModel) -> bool:
        """Whether draws are symmetrised: ``symmetrize`` on a model with the flip symmetry."""
        return self.symmetrize and model.symmetry == "flip"

    # ------------------------------------------------------------------ densities
    def symmetric_log_prob(
        self, model: AbstractModel, net: PyTree, x: Float[Array, "batch sites"]
    ) -> Float[Array, " batch"]:
        """``ln q(x)`` of the generator as drawn: ``ln ½(q(x) + q(-x))`` when symmetrised."""
        log_q = self.log_prob_network(model, net, x)
        if self.flips(model):
            log_q = jnp.logaddexp(log_q, self.log_prob_network(model, net, _flip(x))) - math.log(2)
        return log_q

    def draw(
        self, model: AbstractModel, net: PyTree, n: int, *, key: PRNGKeyArray
    ) -> Float[Array, "n sites"]:
        """``n`` draws of one temperature's generator (each flipped with probability ½ when
        symmetrised), flat ``±1``."""
        if not self.flips(model):
            return self.sample_network(model, net, n, key=key)
        draw_key, sign_key = jax.random.split(key)
        x = self.sample_network(model, net, n, key=draw_key)
        sign = jnp.where(jax.random.bernoulli(sign_key, 0.5, (n, 1)), -1.0, 1.0)
        return x * sign

    def log_prob_stacked(self, model: AbstractModel, params: PyTree, states: Array) -> Array:
        """``ln q`` ``(temps, n)`` of configurations ``(temps, n, *lattice)`` in the model's
        values, each under its own temperature's generator."""
        x = to_pm1(model, states).reshape(states.shape[0], -1, model.n_sites)
        return eqx.filter_vmap(lambda net, xs: self.symmetric_log_prob(model, net, xs))(params, x)

    # ------------------------------------------------------------------ training
    def fit(
        self,
        model: AbstractModel,
        data: Samples,
        *,
        key: PRNGKeyArray,
        progress: bool | None = None,
    ) -> TrainedGenerator:
        """Train one network per temperature of ``data``: on its configurations
        (``training = "data"``) or on nothing but its temperatures (``"variational"``)."""
        problem = self.supports(model)
        if problem is not None:
            raise UnsupportedModelError(problem)
        temps = np.asarray(data.temps, np.float64)
        init_key, train_key = jax.random.split(key)
        params = self.init(model, len(temps), key=init_key)
        info: dict[str, Any] = {"training": self.training}
        if self.training == "variational":
            result = train_variational(
                VariationalObjective(
                    generator=self,
                    model=model,
                    learning_rate=float(self.learning_rate),
                    batch_size=int(self.batch_size),
                    anneal=anneal_rate(float(self.anneal), int(self.steps)),
                ),
                params,
                temps,
                steps=int(self.steps),
                key=train_key,
                progress=progress,
                description=f"training {self.name} (variational)",
            )
        else:
            x = to_pm1(model, np.asarray(data.states)).reshape(len(temps), -1, model.n_sites)
            result = train(
                LikelihoodObjective(
                    generator=self, model=model, learning_rate=float(self.learning_rate)
                ),
                params,
                jnp.asarray(x, jnp.float32),
                TrainConfig(
                    epochs=int(self.epochs),
                    batch_size=int(self.batch_size),
                    progress=progress,
                    description=f"training {self.name}",
                ),
                key=train_key,
            )
        info.update(steps_per_epoch=result.steps_per_epoch, batch_size=result.batch_size)
        return TrainedGenerator(
            generator=self,
            model=model,
            temps=temps,
            params=result.params,
            history=result.history,
            diverged_step=result.diverged_step,
            info=info,
        )

    # ------------------------------------------------------------------ generation
    def generate_states(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> Array:
        return self.generate_with_log_density(model, params, n, key=key)[0]

    def generate_with_log_density(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> tuple[Array, Array]:
        states, log_q = [], []
        for start in range(0, int(n), GENERATE_CHUNK):
            size = min(GENERATE_CHUNK, int(n) - start)
            x, lq = _generate_chunk(self, model, params, jax.random.fold_in(key, start), size)
            states.append(x)
            log_q.append(lq)
        x = jnp.concatenate(states, axis=1)
        return from_pm1(model, x).reshape(x.shape[0], int(n), *model.shape), jnp.concatenate(
            log_q, axis=1
        )


@eqx.filter_jit
def _generate_chunk(
    generator: AbstractAutoregressiveGenerator,
    model: AbstractModel,
    params: PyTree,
    key: PRNGKeyArray,
    n: int,
) -> tuple[Array, Array]:
    """``n`` draws and their ``ln q`` for every temperature (one program)."""
    n_temps = jax.tree_util.tree_leaves(eqx.filter(params, eqx.is_array))[0].shape[0]

    def one(net: PyTree, key_t: PRNGKeyArray) -> tuple[Array, Array]:
        x = generator.draw(model, net, n, key=key_t)
        return x, generator.symmetric_log_prob(model, net, x)

    return eqx.filter_vmap(one)(params, jax.random.split(key, n_temps))


def to_pm1(model: AbstractModel, states: Any) -> Array:
    """Configurations in the model's two values as float ``±1`` (``+1`` for ``spin_values[1]``)."""
    assert model.spin_values is not None
    return jnp.where(jnp.asarray(states) == model.spin_values[1], 1.0, -1.0).astype(jnp.float32)


def from_pm1(model: AbstractModel, x: Array) -> Array:
    """Float ``±1`` back to the model's two values, in its dtype."""
    assert model.spin_values is not None
    values = jnp.asarray(model.spin_values, model.dtype)
    return jnp.where(x > 0, values[1], values[0])


# ---------------------------------------------------------------------------- objectives
class LikelihoodObjective(AbstractObjective):
    """One temperature's update on data: an Adam step on ``-<ln q(x)>`` over the minibatch."""

    generator: AbstractAutoregressiveGenerator
    model: AbstractModel
    learning_rate: float = eqx.field(static=True)

    def init_state(self, params: PyTree) -> Any:
        return optax.adam(self.learning_rate).init(eqx.filter(params, eqx.is_array))

    def step(
        self, params: PyTree, opt_state: Any, batch: Array, *, key: PRNGKeyArray, epoch: Array
    ) -> tuple[PyTree, Any, dict[str, Array]]:
        def loss(net: PyTree) -> Array:
            return -jnp.mean(self.generator.symmetric_log_prob(self.model, net, batch))

        value, grads = eqx.filter_value_and_grad(loss)(params)
        updates, opt_state = optax.adam(self.learning_rate).update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, {"loss": value}


class VariationalObjective(AbstractObjective):
    """One temperature's data-free update: draw a batch, step down ``beta_t F_q`` by the
    score-function gradient with the batch mean as baseline (module docstring).

    Its "minibatch" is ``[[beta]]`` (see :func:`train_variational`); ``epoch`` counts steps.
    Metrics: ``loss`` = ``free_energy`` = ``<E + T_t ln q>/N`` at the annealed temperature,
    ``energy`` = ``<E>/N`` and ``entropy`` = ``-<ln q>/N``.
    """

    generator: AbstractAutoregressiveGenerator
    model: AbstractModel
    learning_rate: float = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    anneal: float = eqx.field(static=True)

    def init_state(self, params: PyTree) -> Any:
        return optax.adam(self.learning_rate).init(eqx.filter(params, eqx.is_array))

    def step(
        self, params: PyTree, opt_state: Any, batch: Array, *, key: PRNGKeyArray, epoch: Array
    ) -> tuple[PyTree, Any, dict[str, Array]]:
        beta = batch[0, 0]
        beta_t = beta * (1.0 - self.anneal ** (epoch + 1.0))
        x = lax.stop_gradient(self.generator.draw(self.model, params, self.batch_size, key=key))
        energy = self.model.energy(from_pm1(self.model, x).reshape(-1, *self.model.shape))
        energy = energy.astype(jnp.float32)

        def surrogate(net: PyTree) -> tuple[Array, Array]:
            log_q = self.generator.symmetric_log_prob(self.model, net, x)
            reward = lax.stop_gradient(beta_t * energy + log_q)
            advantage = reward - jnp.mean(reward)
            return jnp.mean(advantage * log_q), log_q

        (_, log_q), grads = eqx.filter_value_and_grad(surrogate, has_aux=True)(params)
        updates, opt_state = optax.adam(self.learning_rate).update(grads, opt_state, params)
        n = self.model.n_sites
        free = jnp.mean(energy + log_q / beta_t) / n
        metrics = {
            "loss": free,
            "free_energy": free,
            "energy": jnp.mean(energy) / n,
            "entropy": -jnp.mean(log_q) / n,
        }
        return eqx.apply_updates(params, updates), opt_state, metrics


def train_variational(
    objective: AbstractObjective,
    params: PyTree,
    temps: np.ndarray,
    *,
    steps: int,
    key: PRNGKeyArray,
    progress: bool | None = None,
    description: str = "variational training",
) -> TrainResult:
    """Train one network per temperature without data, all temperatures in one program.

    Runs :func:`~spinbench.generators.train` with each temperature's "data set" the single
    value ``beta = 1/T``: one step per epoch, ``steps`` epochs, so the divergence rule,
    progress and chunked compilation are those of data training; ``history`` is per step.
    """
    betas = 1.0 / np.asarray(temps, np.float64)
    data = jnp.asarray(betas, jnp.float32).reshape(-1, 1, 1)
    config = TrainConfig(epochs=steps, batch_size=1, progress=progress, description=description)
    return train(objective, params, data, config, key=key)
