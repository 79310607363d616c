"""MADE: a masked autoregressive generator with an exact likelihood (Germain et al., 2015).

The configuration's flat sites are modelled in order, ``p(s) = prod_i p(s_i | s_<i)``, by one
dense network with one hidden layer whose weights are masked so that output i sees only the
inputs before i. It is trained by maximum likelihood (a Bernoulli per site), samples exactly
(site by site, no Markov chain), and gives the exact log-probability of any configuration:
on enumerable systems the KL divergence to the Boltzmann distribution is exact
(:meth:`MADE.log_prob`).

One network per temperature: the parameters carry a leading temperature axis, and training
runs on spinbench's shared loop (:func:`spinbench.generators.train`): one Adam step of the
negative log-likelihood (:class:`MADEObjective`) per minibatch, every temperature in one jitted
program, with a progress bar, and a temperature whose step is not finite frozen at its last
finite parameters and recorded in ``diverged_step``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import spinbench
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray
from spinbench import AbstractGenerator, AbstractModel, Samples, TrainedGenerator
from spinbench.generators import AbstractObjective, TrainConfig, train


class MADENet(eqx.Module):
    """Weights of the masked network (no masks stored: they follow from the shapes).

    As returned by :meth:`MADE.init` and ``fit``, every array has a leading temperature axis.
    """

    w1: Float[Array, "*temps hidden n"]
    b1: Float[Array, "*temps hidden"]
    w2: Float[Array, "*temps n hidden"]
    b2: Float[Array, "*temps n"]


def _masks(n: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """Connectivity: hidden unit k (degree 1 + k mod (n-1)) sees inputs 1..degree; output i
    (1-based) sees hidden units of degree < i, so output i depends on inputs < i only."""
    degrees = 1 + np.arange(hidden) % max(1, n - 1)
    sites = np.arange(1, n + 1)
    return (
        (degrees[:, None] >= sites[None, :]).astype(np.float32),
        (sites[:, None] > degrees[None, :]).astype(np.float32),
    )


def _logits(net: MADENet, x: Float[Array, "batch n"]) -> Float[Array, "batch n"]:
    """Logit of ``s_i = spin_values[1]`` given the earlier sites, for every site (one network)."""
    m1, m2 = _masks(x.shape[-1], net.b1.shape[-1])
    hidden = jax.nn.relu(x @ (net.w1 * m1).T + net.b1)
    return hidden @ (net.w2 * m2).T + net.b2


def _log_prob(net: MADENet, x: Float[Array, "batch n"]) -> Float[Array, " batch"]:
    logits = _logits(net, x)
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


class MADEObjective(AbstractObjective):
    """One temperature's update: an Adam step on the mean negative log-likelihood."""

    learning_rate: float = eqx.field(static=True)

    def init_state(self, params: MADENet) -> Any:
        return optax.adam(self.learning_rate).init(eqx.filter(params, eqx.is_array))

    def step(
        self, params: MADENet, opt_state: Any, batch: Array, *, key: PRNGKeyArray, epoch: Array
    ) -> tuple[MADENet, Any, dict[str, Array]]:
        def loss(net: MADENet) -> Array:
            return -jnp.mean(_log_prob(net, batch))

        value, grads = eqx.filter_value_and_grad(loss)(params)
        updates, opt_state = optax.adam(self.learning_rate).update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, {"loss": value}


class MADE(AbstractGenerator):
    """Masked autoregressive network (one hidden layer), exact likelihood, two-valued spins."""

    name: ClassVar[str] = "made"
    #: Said when a grid asks for data-free training (spinbench's OptionError).
    unavailable_options: ClassVar[dict[str, str]] = {
        "training": "made trains on data only (maximum likelihood, its own loop); for "
        "data-free variational training use van, built on spinbench's "
        "AbstractAutoregressiveGenerator"
    }

    epochs: int = eqx.field(static=True, default=100)
    batch_size: int = eqx.field(static=True, default=500)
    learning_rate: float = eqx.field(static=True, default=1e-3)
    hidden: int = eqx.field(static=True, default=64)
    #: Draw x or -x with probability 1/2 each: q(x) = (q_net(x) + q_net(-x)) / 2, exact
    #: (the Z2 symmetrisation of variational autoregressive networks), on models whose energy
    #: the flip leaves unchanged (``symmetry == "flip"``; elsewhere no flip).
    symmetrize: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        if type(self.symmetrize) is not bool:  # from_options turns ValueError into OptionError
            raise ValueError(f"symmetrize must be true or false, got {self.symmetrize!r}")
        for option in ("epochs", "batch_size", "hidden"):
            value = getattr(self, option)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got {value!r}")
        if not isinstance(self.learning_rate, int | float) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")

    def supports(self, model: AbstractModel) -> str | None:
        if model.spin_values is None or len(model.spin_values) != 2:
            values = "angles" if model.spin_values is None else f"values {model.spin_values}"
            return f"made models two-valued spins (a Bernoulli per site); {model.name} has {values}"
        return None

    # ------------------------------------------------------------------ contract
    def init(self, model: AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> MADENet:
        n, h = model.n_sites, self.hidden
        k1, k2 = jax.random.split(key)
        return MADENet(
            w1=jax.random.normal(k1, (n_temps, h, n)) / np.sqrt(n),
            b1=jnp.zeros((n_temps, h)),
            w2=jax.random.normal(k2, (n_temps, n, h)) / np.sqrt(h),
            b2=jnp.zeros((n_temps, n)),
        )

    def fit(
        self,
        model: AbstractModel,
        data: Samples,
        *,
        key: PRNGKeyArray,
        progress: bool | None = None,
    ) -> TrainedGenerator:
        problem = self.supports(model)
        if problem is not None:
            raise spinbench.UnsupportedModelError(problem)
        assert model.spin_values is not None
        n_temps = len(data.temps)
        x = np.asarray(data.states).reshape(n_temps, -1, model.n_sites) == model.spin_values[1]
        init_key, train_key = jax.random.split(key)
        config = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            progress=progress,
            description="training made",
        )
        result = train(
            MADEObjective(self.learning_rate),
            self.init(model, n_temps, key=init_key),
            jnp.asarray(x, jnp.float32),
            config,
            key=train_key,
        )
        return TrainedGenerator(
            generator=self,
            model=model,
            temps=np.asarray(data.temps, np.float64),
            params=result.params,
            history=result.history,
            diverged_step=result.diverged_step,
            info={"steps_per_epoch": result.steps_per_epoch, "batch_size": result.batch_size},
        )

    def generate_states(
        self, model: AbstractModel, params: MADENet, n: int, *, key: PRNGKeyArray
    ) -> Array:
        assert model.spin_values is not None
        draw_key, sign_key = jax.random.split(key) if self._flips(model) else (key, key)
        x = _sample(params, draw_key, int(n))
        if self._flips(model):  # flip each draw with probability 1/2
            flips = jax.random.bernoulli(sign_key, 0.5, x.shape[:2])[..., None]
            x = jnp.where(flips, 1.0 - x, x)
        values = jnp.asarray(model.spin_values, jnp.int8)
        return jnp.where(x > 0.5, values[1], values[0]).reshape(-1, n, *model.shape)

    def _flips(self, model: AbstractModel) -> bool:
        return self.symmetrize and model.symmetry == "flip"

    def density_problem(self, model: AbstractModel) -> str | None:
        return self.supports(model)  # an autoregressive network: the exact ln q(x)

    def generate_with_log_density(
        self, model: AbstractModel, params: MADENet, n: int, *, key: PRNGKeyArray
    ) -> tuple[Array, Array]:
        states = self.generate_states(model, params, n, key=key)
        log_q = self.log_prob_stacked(model, params, states)
        if self._flips(model):
            flipped = self.log_prob_stacked(model, params, -states)
            log_q = jnp.logaddexp(log_q, flipped) - jnp.log(2.0)
        return states, log_q

    # ------------------------------------------------------------------ exact likelihood
    def log_prob(self, model: AbstractModel, params: MADENet, states: Array) -> Array:
        """Exact log-probability ``(temps, batch)`` of configurations ``(batch, *lattice)``
        under each temperature's network."""
        assert model.spin_values is not None
        x = (jnp.asarray(states).reshape(-1, model.n_sites) == model.spin_values[1]).astype(
            jnp.float32
        )
        return jax.vmap(_log_prob, in_axes=(0, None))(params, x)

    def log_prob_stacked(self, model: AbstractModel, params: MADENet, states: Array) -> Array:
        """``ln q`` ``(temps, n)`` of configurations ``(temps, n, *lattice)``, each under its own
        temperature's network."""
        assert model.spin_values is not None
        n_temps = states.shape[0]
        x = jnp.asarray(states).reshape(n_temps, -1, model.n_sites) == model.spin_values[1]
        return jax.vmap(_log_prob)(params, x.astype(jnp.float32))


@eqx.filter_jit
def _sample(params: MADENet, key: PRNGKeyArray, n: int) -> Float[Array, "temps n sites"]:
    """``n`` exact samples per temperature, site by site (one network pass per site)."""

    def one(net: MADENet, key: PRNGKeyArray) -> Array:
        sites = net.b2.shape[-1]
        keys = jax.random.split(key, sites)

        def body(i: Array, x: Array) -> Array:
            p = jax.nn.sigmoid(_logits(net, x)[:, i])
            return x.at[:, i].set(jax.random.bernoulli(keys[i], p).astype(jnp.float32))

        return lax.fori_loop(0, sites, body, jnp.zeros((n, sites), jnp.float32))

    return jax.vmap(one)(params, jax.random.split(key, params.b2.shape[0]))


__all__ = ["MADE", "MADENet", "MADEObjective"]
