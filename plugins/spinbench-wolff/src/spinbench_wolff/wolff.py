"""Wolff single-cluster updates for Ising models (U. Wolff, Phys. Rev. Lett. 62, 361 (1989)).

One cluster update picks a uniformly random seed site, grows a cluster from it and flips every
spin in it. A bond from a cluster site to a neighbour outside joins that neighbour with
probability ``p = 1 - exp(-2|J|/T)`` when the bond is satisfied (``J s_i s_j > 0``), and each
such bond is tested exactly once. This satisfies detailed balance for either sign of J (an
antiferromagnet grows clusters of anti-aligned spins) and on any neighbour table, free ends
included; near T_c it decorrelates far faster than single-spin updates.

**Vectorised growth.** Each chain keeps its cluster and its *frontier* (the sites that joined in
the last step) as boolean masks over the sites. A growth step is dense: every site outside the
cluster looks at its neighbours (a gather through ``model.neighbours()``, no scatter) and joins
if a satisfied bond to a frontier site passes its own uniform draw; the joiners are the next
frontier. Growth is a ``lax.while_loop`` that ends when the frontier is empty, so a step costs
O(n_sites * z) whatever the cluster size. ``jax.vmap`` over chains and temperatures turns the
loop into one loop that runs until the deepest cluster of the batch is complete (finished
chains are masked). spinbench's chain loop (:class:`spinbench.AbstractChainSampler`) runs the
warm-up and the measurements; the key of each chain is split once per cluster update, so the
chunking changes nothing.

**Sweeps.** A sweep here is ``clusters`` cluster updates (default 1), a fixed number: a
variable number chosen from the cluster sizes would be a stopping rule that biases the
distribution. Near T_c one cluster is a sizeable fraction of the lattice; far above T_c clusters
are small, so raise ``clusters`` there. ``Samples.info["cluster_fraction"]`` reports the mean
cluster size over ``n_sites``, per temperature and chain.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, Shaped
from spinbench import AbstractChainSampler, AbstractModel
from spinbench.samplers import as_count


def ising_coupling(model: AbstractModel) -> float | None:
    """J of ``bond_energy(a, b) = -J a b`` if ``model`` has Ising spins and bonds and no site
    terms, else None."""
    if model.spin_values is None or sorted(model.spin_values) != [-1, 1]:
        return None
    a = jnp.asarray([1, 1, -1, -1], jnp.int8)
    b = jnp.asarray([1, -1, 1, -1], jnp.int8)
    e = np.asarray(model.bond_energy(a, b), np.float64)
    J = -float(e[0])
    if J == 0.0 or not np.allclose(e, [-J, J, J, -J], rtol=1e-6, atol=1e-9):
        return None
    if model.site_energy(a) is not None:
        return None
    return J


class WolffState(eqx.Module):
    """The chains: flat configurations, one key per chain, cluster sites flipped since the
    counters were last reset, each chain's bond probability and the neighbour table."""

    spins: Shaped[Array, "temps chains n_sites"]
    key: PRNGKeyArray  # shape (temps, chains)
    flipped: Int[Array, "temps chains"]
    p_add: Float[Array, " temps"]
    index: Int[Array, "n_sites z"]
    satisfiable: Bool[Array, "n_sites z"]
    sign: Float[Array, ""]


class Wolff(AbstractChainSampler):
    """Wolff cluster updates for Ising models, vectorised over temperatures and chains.

    Options as for Metropolis (so a grid's ``[reference]`` options apply to it too): ``chains``
    per temperature from random starts, ``warmup`` sweeps, then ``sweeps`` sweeps with a
    measurement every ``every``; plus ``clusters``, the cluster updates per sweep.
    """

    name: ClassVar[str] = "wolff"

    chains: int = eqx.field(static=True, default=20, converter=as_count)
    warmup: int = eqx.field(static=True, default=2000, converter=as_count)
    sweeps: int = eqx.field(static=True, default=10000, converter=as_count)
    every: int = eqx.field(static=True, default=20, converter=as_count)
    clusters: int = eqx.field(static=True, default=1, converter=as_count)

    def __check_init__(self) -> None:
        clusters = self.clusters
        if not isinstance(clusters, int) or isinstance(clusters, bool) or clusters < 1:
            raise ValueError(f"clusters must be a positive integer, got {clusters!r}")

    def supports(self, model: AbstractModel) -> str | None:
        if model.spin_values is None or sorted(model.spin_values) != [-1, 1]:
            values = "angles" if model.spin_values is None else f"values {model.spin_values}"
            return f"wolff flips clusters of Ising spins (-1, 1); {model.name} has {values}"
        if ising_coupling(model) is None:
            return (
                f"wolff needs Ising bonds, bond_energy(a, b) = -J a b, and no field; "
                f"{model.name}'s energy is not of that form"
            )
        return None

    def init_state(self, model: AbstractModel, temps: np.ndarray, *, key: PRNGKeyArray) -> Any:
        """Uniformly random configurations and independent keys, ``chains`` per temperature."""
        J = ising_coupling(model)
        assert J is not None
        n_temps = len(temps)
        init_key, chain_key = jax.random.split(key)
        keys = jax.random.split(chain_key, n_temps * self.chains)
        keys = keys.reshape((n_temps, self.chains, *keys.shape[1:]))
        spins = model.random_states((n_temps, self.chains), key=init_key)
        table = np.asarray(model.neighbours())
        return WolffState(
            spins=spins.reshape(n_temps, self.chains, model.n_sites),
            key=keys,
            flipped=jnp.zeros((n_temps, self.chains), jnp.int32),
            p_add=jnp.asarray(-np.expm1(-2.0 * abs(J) / np.asarray(temps)), jnp.float32),
            index=jnp.asarray(np.where(table >= 0, table, 0), jnp.int32),
            satisfiable=jnp.asarray(table >= 0),
            sign=jnp.float32(1.0 if J > 0 else -1.0),
        )

    def advance(
        self, model: AbstractModel, temps: Array, state: WolffState, n_sweeps: Int[Array, ""]
    ) -> WolffState:
        def chain(spins: Array, key: Array, flipped: Array, p: Array) -> tuple[Array, ...]:
            def update(_: Any, carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
                spins, key, flipped = carry
                key, update_key = jax.random.split(key)
                spins, size = self._cluster_update(state, p, spins, update_key)
                return spins, key, flipped + size

            return lax.fori_loop(0, n_sweeps * self.clusters, update, (spins, key, flipped))

        over_chains = jax.vmap(chain, in_axes=(0, 0, 0, None))
        spins, keys, flipped = jax.vmap(over_chains)(
            state.spins, state.key, state.flipped, state.p_add
        )
        return eqx.tree_at(lambda s: (s.spins, s.key, s.flipped), state, (spins, keys, flipped))

    def measure(self, model: AbstractModel, state: WolffState) -> Array:
        return state.spins.reshape(*state.spins.shape[:2], *model.shape)

    def diagnostics(self, model: AbstractModel, state: WolffState) -> dict[str, Array]:
        """Flipped spins per cluster update (reported per site: the cluster fraction)."""
        return {"cluster_fraction": state.flipped.astype(jnp.float32) / self.clusters}

    def reset_diagnostics(self, state: WolffState) -> WolffState:
        return eqx.tree_at(lambda s: s.flipped, state, jnp.zeros_like(state.flipped))

    def _cluster_update(
        self, state: WolffState, p_add: Float[Array, ""], spins: Array, key: PRNGKeyArray
    ) -> tuple[Shaped[Array, " n_sites"], Int[Array, ""]]:
        """Grow one cluster from a random seed and flip it; returns the spins and its size."""
        index = state.index
        n, z = index.shape
        key_seed, key_grow = jax.random.split(key)
        s = spins.astype(jnp.float32)
        # A bond can join its far end only if satisfied; spins do not change while growing.
        satisfied = state.satisfiable & (state.sign * s[:, None] * s[index] > 0)
        cluster = jnp.zeros(n, bool).at[jax.random.randint(key_seed, (), 0, n)].set(True)

        def grow(carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            cluster, frontier, key = carry
            key, draw = jax.random.split(key)
            passed = jax.random.uniform(draw, (n, z)) < p_add
            join = ~cluster & jnp.any(satisfied & frontier[index] & passed, axis=1)
            return cluster | join, join, key

        def growing(carry: tuple[Array, Array, Array]) -> Bool[Array, ""]:
            return jnp.any(carry[1])

        cluster, _, _ = lax.while_loop(growing, grow, (cluster, cluster, key_grow))
        return jnp.where(cluster, -spins, spins), jnp.sum(cluster, dtype=jnp.int32)


__all__ = ["Wolff", "WolffState", "ising_coupling"]
