"""Single-spin Monte Carlo of any model that gives its local energy change.

:class:`Metropolis` composes a *proposal scheme* (``update``) with an *acceptance rule*
(``rule``, :mod:`._rules`) and runs in the chain sampler loop (:mod:`._chain`). Two schemes:

* ``"random-site"`` (the paper's procedure, the default): each step picks a uniformly random
  site, proposes a new spin with ``model.propose`` and accepts by the rule from
  ``model.site_delta_energy``; a sweep is ``n_sites`` steps.
* ``"checkerboard"``: for each colour of ``model.colouring()`` in turn, every site of that colour
  is updated at once (its neighbours have other colours, so the updates are independent); a
  sweep is one pass over all colours, ``n_sites`` attempted updates.

The generic kernels accept when ``log u < rule.log_acceptance(ΔE, T)`` with ``u`` uniform in
(0, 1]. Each chain has its own key; every sweep draws its random numbers and the chain's next
key from it in one call, so the samples do not depend on how the sweeps are divided into
jitted chunks, and one seed on one device gives identical samples.

**The packed kernel.** The checkerboard with Metropolis's rule on the built-in
:class:`~spinbench.models.Ising2D` (that class exactly: no subclass, no field) on an even torus
runs a multi-spin-coded kernel instead (:mod:`._packed`: sublattices, 32 spins per word,
bit-sliced acceptance from counter-mode Threefry words): the same update from the same keys,
each acceptance probability within 2^-24.4 of the exact one. Its chains stay packed
between calls; they are unpacked only when measured. ``kernel="generic"`` runs the generic
kernel everywhere (for comparisons).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray, Shaped, UInt32

from .._plain import plain
from ..models._base import AbstractModel
from ..models._ising import Ising2D
from . import _packed
from ._chain import AbstractChainSampler, as_count
from ._checkerboard import checkerboard_trap, thaw, two_valued
from ._rules import RULES, AbstractAcceptanceRule, MetropolisRule, as_rule

__all__ = ["KERNELS", "UPDATES", "Metropolis", "MetropolisState", "PackedMetropolisState"]

UPDATES = ("random-site", "checkerboard")
KERNELS = ("auto", "generic")


def _as_width(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class MetropolisState(eqx.Module):
    """The chains of the generic kernels: configurations, one key per chain, and the accepted
    single-site updates since the counters were last reset.

    The counts are exact integers per sweep, totalled in float32: exact up to 2^24 per chain
    between resets, beyond that within a relative 2^-24 per addition, instead of wrapping
    round as an int32 would (a few sweeps of 16384^2 pass 2^31).
    """

    spins: Shaped[Array, "temps chains *lattice"]
    key: PRNGKeyArray  # shape (temps, chains)
    accepted: Float[Array, "temps chains"]


class PackedMetropolisState(eqx.Module):
    """The chains of the packed Ising kernel: the two sublattices as words, the chains' keys
    as Threefry words, flips per word since the last reset, and the acceptance thresholds of
    each chain's temperature (computed once, in float64, from the temperatures)."""

    black: UInt32[Array, "r h batch"]
    white: UInt32[Array, "r h batch"]
    k0: UInt32[Array, " batch"]
    k1: UInt32[Array, " batch"]
    flips: Int[Array, "r h batch"]
    limits: UInt32[Array, "4 batch"]
    layout: _packed.PackedLayout = eqx.field(static=True)
    batch: tuple[int, int] = eqx.field(static=True)  # (temps, chains)


class Metropolis(AbstractChainSampler):
    """Single-spin Monte Carlo over a temperature grid, vectorised over temperatures and chains.

    The defaults are the paper's protocol: 20 chains per temperature from random starts,
    2000 warm-up sweeps, then 10,000 sweeps with a measurement every 20, i.e. 10,000
    configurations per temperature, accepted by Metropolis's rule. ``rule="glauber"`` is the
    heat-bath rule. ``width`` bounds the move of a continuous spin,
    ``theta + U(-width, width)``; None draws a new uniform angle. A model with discrete spins
    has no angle to step: :meth:`supports` refuses a width for it rather than ignore it.

    ``update="checkerboard"`` updates one colour of ``model.colouring()`` at a time, all its
    sites at once: the same stationary distribution, much faster, but :meth:`supports`
    refuses the lattices where that chain never mixes (see :func:`checkerboard_trap`).
    """

    name: ClassVar[str] = "metropolis"

    chains: int = eqx.field(static=True, default=20, converter=as_count)
    warmup: int = eqx.field(static=True, default=2000, converter=as_count)
    sweeps: int = eqx.field(static=True, default=10000, converter=as_count)
    every: int = eqx.field(static=True, default=20, converter=as_count)
    update: str = eqx.field(static=True, default="random-site")
    width: float | None = eqx.field(static=True, default=None, converter=_as_width)
    rule: AbstractAcceptanceRule = eqx.field(
        static=True, default=MetropolisRule(), converter=as_rule
    )
    kernel: str = eqx.field(static=True, default="auto")

    def __check_init__(self) -> None:
        if self.update not in UPDATES:
            raise ValueError(
                f"update {self.update!r} is not known; choose one of: {', '.join(UPDATES)}"
            )
        if self.width is not None and (
            not isinstance(self.width, float) or not math.isfinite(self.width) or self.width <= 0
        ):
            raise ValueError(f"width must be a positive number or None, got {plain(self.width)!r}")
        if not isinstance(self.rule, AbstractAcceptanceRule):
            raise ValueError(
                f"rule {plain(self.rule)!r} is not an acceptance rule; choose one of: "
                f"{', '.join(sorted(RULES))}"
            )
        if self.kernel not in KERNELS:
            raise ValueError(
                f"kernel {self.kernel!r} is not known; choose one of: {', '.join(KERNELS)}"
            )

    def supports(self, model: AbstractModel) -> str | None:
        if self.width is not None and model.spin_values is not None:
            return (
                f"width is the angle step for continuous spins; {model.name} has discrete "
                "spins: leave width unset"
            )
        if self.update == "checkerboard":
            colours = np.asarray(model.colouring()).reshape(-1)
            table = model.neighbours()
            clash = (table >= 0) & (colours[np.where(table >= 0, table, 0)] == colours[:, None])
            clash &= table != np.arange(model.n_sites)[:, None]
            if clash.any():
                return f"{model.name}'s colouring() puts neighbouring sites in one colour"
            trap = checkerboard_trap(model)
            if trap is not None:
                return f"checkerboard updates cannot be trusted: {trap}; use update='random-site'"
        return None

    # ------------------------------------------------------------------ the chain contract
    def packed_layout(self, model: AbstractModel, batch: int = 1) -> _packed.PackedLayout | None:
        """The packed kernel's layout when it runs this sampler on ``model`` (``batch``
        chains in all), else None: the checkerboard with Metropolis's rule on the built-in
        Ising2D exactly (no subclass, which may change its energy), even torus, no field."""
        if self.kernel != "auto" or self.update != "checkerboard":
            return None
        if type(self.rule) is not MetropolisRule or type(model) is not Ising2D or model.h != 0:
            return None
        return _packed.layout_for(model, batch)

    def wide_vectors(self, model: AbstractModel) -> bool:
        """The packed kernel is integer arithmetic that XLA vectorises: on a CPU with 512-bit
        vectors it runs about 2x faster with them (``docs/performance.md``)."""
        return self.packed_layout(model) is not None

    def init_state(
        self, model: AbstractModel, temps: np.ndarray, *, key: PRNGKeyArray
    ) -> MetropolisState | PackedMetropolisState:
        """Uniformly random configurations and independent keys for ``chains`` chains per T
        (packed where the packed kernel runs)."""
        n_temps = int(np.shape(temps)[0])
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):  # a raw uint32 key
            key = jax.random.wrap_key_data(key)
        init_key, chain_key = jax.random.split(key)
        keys = jax.random.split(chain_key, n_temps * self.chains)
        keys = keys.reshape((n_temps, self.chains, *keys.shape[1:]))
        spins = model.random_states((n_temps, self.chains), key=init_key)
        if self.update == "checkerboard" and two_valued(model):
            spins = thaw(model, spins)
        layout = self.packed_layout(model, n_temps * self.chains)
        if layout is None or not _packed.supports_key(keys):
            return MetropolisState(spins, keys, jnp.zeros((n_temps, self.chains), jnp.float32))
        black, white = _packed.pack(layout, spins.reshape(-1, *model.shape))
        k0, k1 = _packed.key_words(keys)
        limits = np.repeat(_packed.thresholds(temps, model.J), self.chains, axis=1)
        return PackedMetropolisState(
            black,
            white,
            k0,
            k1,
            jnp.zeros(black.shape, jnp.int32),
            jnp.asarray(limits),
            layout,
            (n_temps, self.chains),
        )

    def advance(
        self,
        model: AbstractModel,
        temps: Float[Array, " temps"],
        state: MetropolisState | PackedMetropolisState,
        n_sweeps: Int[Array, ""],
    ) -> MetropolisState | PackedMetropolisState:
        if isinstance(state, PackedMetropolisState):
            carry = (state.black, state.white, state.k0, state.k1, state.flips)
            black, white, k0, k1, flips = _packed.run_sweeps(
                state.layout, state.limits, carry, n_sweeps
            )
            return eqx.tree_at(
                lambda s: (s.black, s.white, s.k0, s.k1, s.flips),
                state,
                (black, white, k0, k1, flips),
            )

        def chain(spins: Array, key: Array, accepted: Array, temp: Array) -> tuple[Array, ...]:
            return self._advance_chain(model, spins, key, accepted, temp, n_sweeps)

        over_chains = jax.vmap(chain, in_axes=(0, 0, 0, None))
        spins, keys, accepted = jax.vmap(over_chains)(state.spins, state.key, state.accepted, temps)
        return MetropolisState(spins, keys, accepted)

    def measure(
        self, model: AbstractModel, state: MetropolisState | PackedMetropolisState
    ) -> Shaped[Array, "temps chains *lattice"]:
        if isinstance(state, PackedMetropolisState):
            lattice = _packed.unpack(state.layout, state.black, state.white)
            return lattice.reshape(*state.batch, *model.shape).astype(model.dtype)
        return state.spins

    def diagnostics(
        self, model: AbstractModel, state: MetropolisState | PackedMetropolisState
    ) -> dict[str, Array]:
        """Accepted single-site updates per chain (reported as the acceptance rate)."""
        if isinstance(state, PackedMetropolisState):
            # Per word at most 32 per sweep: the int32 counts are exact; their sum over a large
            # lattice is not (2^31 is a few sweeps of 16384^2), so it is taken in float32.
            counted = jnp.sum(state.flips.astype(jnp.float32), axis=(0, 1))
            return {"acceptance": counted.reshape(state.batch)}
        return {"acceptance": state.accepted}

    def reset_diagnostics(
        self, state: MetropolisState | PackedMetropolisState
    ) -> MetropolisState | PackedMetropolisState:
        if isinstance(state, PackedMetropolisState):
            return eqx.tree_at(lambda s: s.flips, state, jnp.zeros_like(state.flips))
        return eqx.tree_at(lambda s: s.accepted, state, jnp.zeros_like(state.accepted))

    # ------------------------------------------------------------------ one chain
    def _advance_chain(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        key: PRNGKeyArray,
        accepted: Float[Array, ""],
        temp: Float[Array, ""],
        n_sweeps: Int[Array, ""] | int,
    ) -> tuple[Array, Array, Array]:
        """``n_sweeps`` sweeps of one chain, each consuming the key of the one before."""
        sweep = self._checkerboard if self.update == "checkerboard" else self._random_site

        def body(_: Any, carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            spins, key, accepted = carry
            spins, count, key = sweep(model, spins, temp, key)
            return spins, key, accepted + count.astype(jnp.float32)

        return lax.fori_loop(0, n_sweeps, body, (spins, key, accepted))

    def _random_site(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        temp: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Shaped[Array, "*lattice"], Int[Array, ""], PRNGKeyArray]:
        """``n_sites`` single-site steps at uniformly random sites (the paper's procedure).

        The random numbers of the whole sweep come from one draw; the steps run in a scan.
        (Sites are 32 random bits modulo ``n_sites``: a site is visited with a bias below
        ``n_sites / 2**32``, which cannot bias the stationary distribution, since every
        single-site update keeps it whatever the site.)
        """
        n = model.n_sites
        key, words, proposal_key = _draw(key, 2 * n)
        sites = (words[:n] % jnp.uint32(n)).astype(jnp.int32)
        log_u = _log_uniform(words[n:])
        proposal_keys = jax.random.split(proposal_key, n)  # dropped if propose ignores keys

        def step(carry: tuple[Array, Array], x: tuple[Array, Array, Array]) -> tuple[Any, None]:
            flat, accepted = carry
            site, lu, proposal_key = x
            old = flat[site]
            new = model.propose(old, key=proposal_key, width=self.width)
            delta = model.site_delta_energy(flat.reshape(model.shape), site, new)
            accept = lu < self.rule.log_acceptance(delta, temp)
            flat = flat.at[site].set(jnp.where(accept, new, old))
            return (flat, accepted + accept.astype(jnp.int32)), None

        init = (spins.reshape(n), jnp.zeros((), jnp.int32))
        (flat, accepted), _ = lax.scan(step, init, (sites, log_u, proposal_keys))
        return flat.reshape(spins.shape), accepted, key

    def _checkerboard(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        temp: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Shaped[Array, "*lattice"], Int[Array, ""], PRNGKeyArray]:
        """One pass over the colours of ``model.colouring()``, each colour updated at once.

        Sites of one colour are changed only by their own colour's update, so one proposal and
        one uniform per site, drawn at the start of the sweep, serve every colour.
        """
        n = model.n_sites
        colours = np.asarray(model.colouring()).reshape(spins.shape)
        key, words, proposal_key = _draw(key, n)
        log_u = _log_uniform(words).reshape(spins.shape)
        # Proposed flat: lattice-shaped threefry draws are several times slower on CPU.
        proposed = model.propose(spins.reshape(n), key=proposal_key, width=self.width)
        proposed = proposed.reshape(spins.shape)
        accepted = jnp.zeros((), jnp.int32)
        for colour in range(int(colours.max()) + 1):  # a few colours, unrolled when traced
            delta = model.delta_energy(spins, proposed)
            accept = (colours == colour) & (log_u < self.rule.log_acceptance(delta, temp))
            spins = jnp.where(accept, proposed, spins)
            accepted = accepted + jnp.sum(accept, dtype=jnp.int32)
        return spins, accepted, key


def _draw(key: PRNGKeyArray, n_words: int) -> tuple[PRNGKeyArray, Array, PRNGKeyArray]:
    """The successor of ``key``, ``n_words`` random uint32 words and one spare key, all from
    one call of the generator (the keys are random words, as ``jax.random.split`` makes them).

    One call per sweep keeps the compiled program small: every call site of the generator
    adds seconds of XLA compile time on CPU.
    """
    impl = jax.random.key_impl(key)
    width = int(jax.random.key_data(key).shape[-1])  # 2 for threefry
    words = jax.random.bits(key, (2 * width + n_words,), jnp.uint32)
    successor = jax.random.wrap_key_data(words[:width], impl=impl)
    spare = jax.random.wrap_key_data(words[width : 2 * width], impl=impl)
    return successor, words[2 * width :], spare


def _log_uniform(bits: Array) -> Float[Array, "..."]:
    """``log(1 - u)`` for ``u`` uniform on a 2**-24 grid in [0, 1): log of U(0, 1], finite."""
    return jnp.log1p(-(bits >> 8).astype(jnp.float32) * jnp.float32(2.0**-24))
