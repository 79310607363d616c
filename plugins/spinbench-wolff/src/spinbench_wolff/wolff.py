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
chains are masked). Updates run in ``lax.fori_loop``/``lax.scan`` inside one ``eqx.filter_jit``
program per chunk of measurements (the warm-up runs inside the first); the neighbour table is
passed as arrays, so every lattice of one shape shares the compiled program, whatever its J. The
key of each chain is split once per cluster update, so the chunking changes nothing.

**Sweeps.** A sweep here is ``clusters`` cluster updates (default 1), a fixed number: a
variable number chosen from the cluster sizes would be a stopping rule that biases the
distribution. Near T_c one cluster is a sizeable fraction of the lattice; far above T_c clusters
are small, so raise ``clusters`` there. ``Samples.info["cluster_fraction"]`` reports the mean
cluster size over ``n_sites``, per temperature and chain.
"""

from __future__ import annotations

import importlib.metadata
import operator
import sys
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, Shaped
from spinbench import AbstractModel, AbstractSampler, Samples

#: The measured sweeps run in about this many jitted chunks (one progress-bar step each).
TARGET_CHUNKS = 20


def _as_int(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def ising_coupling(model: AbstractModel) -> float | None:
    """J of ``bond_energy(a, b) = -J a b`` if ``model`` has Ising spins and bonds, else None."""
    if model.spin_values is None or sorted(model.spin_values) != [-1, 1]:
        return None
    a = jnp.asarray([1, 1, -1, -1], jnp.int8)
    b = jnp.asarray([1, -1, 1, -1], jnp.int8)
    e = np.asarray(model.bond_energy(a, b), np.float64)
    J = -float(e[0])
    if J == 0.0 or not np.allclose(e, [-J, J, J, -J], rtol=1e-6, atol=1e-9):
        return None
    return J


class WolffState(eqx.Module):
    """The chains: flat configurations, one key per chain, cluster sites flipped so far."""

    spins: Shaped[Array, "temps chains n_sites"]
    key: PRNGKeyArray  # shape (temps, chains)
    flipped: Int[Array, "temps chains"]


class Wolff(AbstractSampler):
    """Wolff cluster updates for Ising models, vectorised over temperatures and chains.

    Options as for Metropolis (so a grid's ``[reference]`` options apply to it too): ``chains``
    per temperature from random starts, ``warmup`` sweeps, then ``sweeps`` sweeps with a
    measurement every ``every``; plus ``clusters``, the cluster updates per sweep.
    """

    name: ClassVar[str] = "wolff"

    chains: int = eqx.field(static=True, default=20, converter=_as_int)
    warmup: int = eqx.field(static=True, default=2000, converter=_as_int)
    sweeps: int = eqx.field(static=True, default=10000, converter=_as_int)
    every: int = eqx.field(static=True, default=20, converter=_as_int)
    clusters: int = eqx.field(static=True, default=1, converter=_as_int)

    def __check_init__(self) -> None:
        for option in ("chains", "sweeps", "every", "clusters"):
            value = getattr(self, option)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            raise ValueError(f"warmup must be a non-negative integer, got {self.warmup!r}")
        if self.every > self.sweeps:
            raise ValueError(
                f"every={self.every} is larger than sweeps={self.sweeps}: no configuration "
                f"would be measured; give sweeps >= every"
            )

    @property
    def n_samples(self) -> int:
        """Configurations per chain: ``sweeps // every``."""
        return self.sweeps // self.every

    def supports(self, model: AbstractModel) -> str | None:
        if model.spin_values is None or sorted(model.spin_values) != [-1, 1]:
            values = "angles" if model.spin_values is None else f"values {model.spin_values}"
            return f"wolff flips clusters of Ising spins (-1, 1); {model.name} has {values}"
        if ising_coupling(model) is None:
            return (
                f"wolff needs Ising bonds, bond_energy(a, b) = -J a b; {model.name}'s bond "
                f"energy is not of that form"
            )
        return None

    # ------------------------------------------------------------------ public entry point
    def sample(
        self,
        model: AbstractModel,
        temps: np.ndarray,
        *,
        key: PRNGKeyArray,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> Samples:
        """Sample ``model`` at every temperature; states ``(temps, chains, sweeps//every,
        *lattice)``. ``progress``: True shows a bar on stderr, None only on a terminal.
        ``seed`` is only recorded (the randomness comes from ``key``)."""
        from tqdm.auto import tqdm

        temps = _check_temps(temps)
        problem = self.supports(model)
        if problem is not None:
            raise ValueError(f"wolff cannot sample {model.name}: {problem}")
        J = ising_coupling(model)
        assert J is not None
        table = np.asarray(model.neighbours())
        lattice = _Lattice(
            index=jnp.asarray(np.where(table >= 0, table, 0), jnp.int32),
            valid=jnp.asarray(table >= 0),
            sign=jnp.float32(1.0 if J > 0 else -1.0),
        )
        p_add = jnp.asarray(-np.expm1(-2.0 * abs(J) / temps), jnp.float32)
        n_samples = self.n_samples
        chunk = _chunk_size(n_samples)
        states = np.empty(
            (len(temps), self.chains, n_samples, model.n_sites), dtype=np.dtype(model.dtype)
        )
        state = self.init_state(model, len(temps), key=key)
        disable = (not sys.stderr.isatty()) if progress is None else not progress
        with tqdm(
            total=self.warmup + n_samples * self.every,
            unit="sweep",
            desc=f"{self.name} {model.name} {model.size}",
            disable=disable,
            file=sys.stderr,
            leave=False,
        ) as bar:
            for start in range(0, n_samples, chunk):
                # The warm-up runs inside the first chunk's program (one compiled program).
                warmup = self.warmup * self.clusters if start == 0 else 0
                state, measured = _run(self, lattice, p_add, state, chunk, jnp.int32(warmup))
                states[:, :, start : start + chunk] = np.asarray(measured)
                bar.update(chunk * self.every + (self.warmup if start == 0 else 0))
        updates = n_samples * self.every * self.clusters
        fraction = np.asarray(state.flipped, np.float64) / (updates * model.n_sites)
        settings = self.settings()
        return Samples(
            states=states.reshape(len(temps), self.chains, n_samples, *model.shape),
            temps=temps,
            model=model.describe(),
            method=self.name,
            settings=settings,
            seed=seed,
            info={"cluster_fraction": fraction},
            provenance=_provenance(seed, settings),
        )

    def init_state(self, model: AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> WolffState:
        """Uniformly random configurations and independent keys, ``chains`` per temperature."""
        init_key, chain_key = jax.random.split(key)
        keys = jax.random.split(chain_key, n_temps * self.chains)
        keys = keys.reshape((n_temps, self.chains, *keys.shape[1:]))
        spins = model.random_states((n_temps, self.chains), key=init_key)
        spins = spins.reshape(n_temps, self.chains, model.n_sites)
        return WolffState(spins, keys, jnp.zeros((n_temps, self.chains), jnp.int32))

    # ------------------------------------------------------------------ one chain
    def _cluster_update(
        self,
        lattice: _Lattice,
        p_add: Float[Array, ""],
        spins: Shaped[Array, " n_sites"],
        key: PRNGKeyArray,
    ) -> tuple[Shaped[Array, " n_sites"], Int[Array, ""]]:
        """Grow one cluster from a random seed and flip it; returns the spins and its size."""
        index, valid = lattice.index, lattice.valid
        n, z = index.shape
        key_seed, key_grow = jax.random.split(key)
        s = spins.astype(jnp.float32)
        # A bond can join its far end only if satisfied; spins do not change while growing.
        satisfied = valid & (lattice.sign * s[:, None] * s[index] > 0)
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

    def _advance_chain(
        self,
        lattice: _Lattice,
        p_add: Float[Array, ""],
        spins: Array,
        key: PRNGKeyArray,
        flipped: Array,
        n_updates: Int[Array, ""] | int,
    ) -> tuple[Array, Array, Array]:
        """``n_updates`` cluster updates of one chain; the key is split once per update."""

        def body(_: Any, carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            spins, key, flipped = carry
            key, update_key = jax.random.split(key)
            spins, size = self._cluster_update(lattice, p_add, spins, update_key)
            return spins, key, flipped + size

        return lax.fori_loop(0, n_updates, body, (spins, key, flipped))


class _Lattice(eqx.Module):
    """The neighbour table as arrays (traced, so lattices of one shape share a program) and the
    sign of J (+1: clusters of aligned spins, -1: of anti-aligned spins)."""

    index: Int[Array, "n_sites z"]
    valid: Bool[Array, "n_sites z"]
    sign: Float[Array, ""]


@eqx.filter_jit
def _run(
    sampler: Wolff,
    lattice: _Lattice,
    p_add: Float[Array, " temps"],
    state: WolffState,
    n_samples: int,
    n_warmup: Int[Array, ""],
) -> tuple[WolffState, Shaped[Array, "temps chains samples n_sites"]]:
    """``n_warmup`` cluster updates, then ``n_samples`` x (``every`` sweeps, then record), for
    every chain (vmap) at every temperature (vmap), in one program."""
    per_sample = sampler.every * sampler.clusters

    def chain(spins: Array, key: Array, flipped: Array, p: Array) -> tuple[Array, ...]:
        # Warm-up updates are not counted in ``flipped`` (the measured cluster sizes).
        spins, key, _ = sampler._advance_chain(lattice, p, spins, key, flipped * 0, n_warmup)
        carry = (spins, key, flipped)

        def record(carry: tuple[Array, Array, Array], _: None) -> tuple[Any, Array]:
            carry = sampler._advance_chain(lattice, p, *carry, per_sample)
            return carry, carry[0]

        (spins, key, flipped), measured = lax.scan(record, carry, None, length=n_samples)
        return spins, key, flipped, measured

    over_chains = jax.vmap(chain, in_axes=(0, 0, 0, None))
    spins, keys, flipped, measured = jax.vmap(over_chains)(
        state.spins, state.key, state.flipped, p_add
    )
    return WolffState(spins, keys, flipped), measured


def _check_temps(temps: Any) -> np.ndarray:
    values = np.atleast_1d(np.asarray(temps, np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"temperatures must be a non-empty 1D list, got {temps!r}")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise ValueError(f"temperature must be finite and > 0, got {values[bad][0]!r}")
    return values


def _chunk_size(n_samples: int, target: int = TARGET_CHUNKS) -> int:
    """The largest divisor of ``n_samples`` giving at least ``target`` equal chunks."""
    limit = max(1, n_samples // target)
    return max(d for d in range(1, limit + 1) if n_samples % d == 0)


def _provenance(seed: int | None, settings: dict[str, Any]) -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    device = jax.devices()[0]
    return {
        "spinbench": version("spinbench"),
        "spinbench-wolff": version("spinbench-wolff"),
        "jax": version("jax"),
        "platform": device.platform,
        "device": getattr(device, "device_kind", str(device)),
        "seed": seed,
        "settings": settings,
    }


__all__ = ["Wolff", "WolffState", "ising_coupling"]
