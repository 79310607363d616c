"""When a checkerboard chain of two-valued spins cannot be trusted, and how it is avoided.

A checkerboard sweep updates every site of one colour at once. With a two-valued spin, a flip
that costs ΔE = 0 is always accepted (by Metropolis's rule), so half-sweeps move domain walls
deterministically and the chain of sweeps can split into classes it never leaves while keeping
the Boltzmann distribution. :func:`checkerboard_trap` says when a lattice is affected, from the
exact sweep matrix of small lattices (:func:`closed_classes`) and the share of configurations
frozen in two-state cycles (:func:`frozen_share`); :func:`thaw` keeps chains from starting in
such a cycle.
"""

from __future__ import annotations

import contextlib
import itertools

import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from jaxtyping import Array

from ..exact._enumerate import enumerate_states, has_at_most_states
from ..models._base import AbstractModel

__all__ = [
    "CLASS_ENUMERATION_MAX_STATES",
    "FROZEN_ENUMERATION_MAX_STATES",
    "MISSED_MASS_LIMIT",
    "checkerboard_trap",
    "closed_classes",
    "frozen",
    "frozen_share",
    "thaw",
    "two_valued",
]


#: Largest number of states over which :func:`checkerboard_trap` counts frozen configurations.
FROZEN_ENUMERATION_MAX_STATES = 2**20
#: Largest share of the Boltzmann distribution a checkerboard chain may be unable to reach.
MISSED_MASS_LIMIT = 1e-3


def _zero_tolerance(model: AbstractModel) -> float:
    """ΔE below this is 0 (float32 sums of bond terms of size |J|)."""
    return 1e-4 * abs(float(model.J))


def two_valued(model: AbstractModel) -> bool:
    """Whether ``model``'s spins take exactly two values (what the checkerboard rules cover)."""
    return model.spin_values is not None and len(model.spin_values) == 2


def _flipped(model: AbstractModel, states: Array) -> Array:
    """``states`` with every two-valued spin turned to its other value."""
    assert model.spin_values is not None and two_valued(model)
    down, up = model.spin_values
    return jnp.where(states == down, up, down).astype(states.dtype)


def frozen(model: AbstractModel, states: Array) -> Array:
    """True for each configuration ``(*batch, *shape)`` of two-valued spins in which every
    site's flip costs ΔE = 0. With two colours a checkerboard sweep of Metropolis flips then
    flips every site of each colour in turn, deterministically, and the chain cycles through
    two such states for ever (a colour's fields come only from the other colour, which all
    flipped); with more colours that need not happen."""
    delta = model.delta_energy(states, _flipped(model, states))
    axes = tuple(range(delta.ndim - len(model.shape), delta.ndim))
    return jnp.all(jnp.abs(delta) <= _zero_tolerance(model), axis=axes)


_FROZEN_SHARE: dict[AbstractModel, float] = {}


def frozen_share(model: AbstractModel) -> float | None:
    """The share of all configurations that are :func:`frozen`, by enumeration (None when the
    model has more than :data:`FROZEN_ENUMERATION_MAX_STATES` states or is not two-valued).

    It bounds the Boltzmann mass of the frozen configurations at every temperature for a
    zero-field model of pair interactions (the built-in Ising models; a plugin's two-valued
    model with a field or other terms is outside this argument): their energy is minus a
    quarter of the sum of the sites' ΔE, i.e. 0, and ``Z >= 2^N e^{-<E>/T} = 2^N`` by
    Jensen's inequality, the uniform mean energy being 0."""
    if not two_valued(model):
        return None
    if not has_at_most_states(model, FROZEN_ENUMERATION_MAX_STATES):
        return None
    try:
        known = _FROZEN_SHARE.get(model)  # models compare by their fields
    except TypeError:  # a model with unhashable fields: count every time
        known = None
    if known is None:
        states = jnp.asarray(enumerate_states(model))
        known = float(jnp.mean(frozen(model, states)))
        with contextlib.suppress(TypeError):
            _FROZEN_SHARE[model] = known
    return known


#: Largest number of states over which :func:`closed_classes` follows every sweep.
CLASS_ENUMERATION_MAX_STATES = 2**12


def closed_classes(model: AbstractModel) -> int | None:
    """How many closed classes the checkerboard chain of Metropolis flips has on ``model``
    (two-valued spins; None beyond :data:`CLASS_ENUMERATION_MAX_STATES` states).

    Which transitions are possible does not depend on the temperature (0 < T < inf): a site
    of the colour being updated flips for sure when its ΔE <= 0 and may or may not flip
    otherwise. A chain started anywhere ends in one closed class; with one, it samples the
    Boltzmann distribution from every start. (In float32 the generic kernel never makes an
    uphill flip with ΔE / T > 16.6, its smallest log-uniform, and refuses a ΔE = 0 flip with
    probability 2^-24; neither is modelled here.)"""
    if not two_valued(model) or not has_at_most_states(model, CLASS_ENUMERATION_MAX_STATES):
        return None
    n, n_states = model.n_sites, 2**model.n_sites
    states = jnp.asarray(enumerate_states(model))
    delta = np.asarray(model.delta_energy(states, _flipped(model, states)))
    certain = delta.reshape(n_states, n) <= _zero_tolerance(model)
    colours = np.asarray(model.colouring()).reshape(-1)
    index = np.arange(n_states)
    sweep = scipy.sparse.identity(n_states, dtype=bool, format="csr")
    for colour in np.unique(colours):
        sites = np.flatnonzero(colours == colour)
        rows, cols = [], []
        for pattern in itertools.product((False, True), repeat=len(sites)):
            chosen = np.asarray(pattern)
            possible = np.all(chosen | ~certain[:, sites], axis=1)  # every sure flip is made
            bits = int(np.sum(1 << (n - 1 - sites[chosen])))  # site 0: most significant digit
            rows.append(index[possible])
            cols.append(index[possible] ^ bits)
        rows_, cols_ = np.concatenate(rows), np.concatenate(cols)
        half = scipy.sparse.csr_array(
            (np.ones(len(rows_), bool), (rows_, cols_)), shape=(n_states, n_states)
        )
        sweep = (sweep @ half).astype(bool)
    count, labels = scipy.sparse.csgraph.connected_components(
        sweep, directed=True, connection="strong"
    )
    edges = sweep.tocoo()
    leaving = np.zeros(count, bool)
    leaving[labels[edges.row][labels[edges.row] != labels[edges.col]]] = True
    return int(np.sum(~leaving))


def checkerboard_trap(model: AbstractModel) -> str | None:
    """Why a checkerboard chain of Metropolis flips cannot be trusted on ``model``, or None.

    A two-valued spin whose flip costs ΔE = 0 always flips, so half-sweeps move domain walls
    deterministically, and the chain of sweeps can split into classes it never leaves while
    keeping the Boltzmann distribution. What the exact sweep matrix shows
    (``tests/test_metropolis.py`` checks reachability up to the 4x4 torus):

    * periodic rings of N >= 3 split into large classes: for even N every wall hops to the
      other sublattice of bonds each half-sweep and walls are made or removed in (even, odd)
      pairs, so the difference of the numbers of walls on even and on odd bonds is conserved.
      Refused.
    * with more than two colours (odd rings, tori with an odd side) small lattices trap
      chains in other ways (two-state cycles on the 3x4 torus) while others mix (3x3, 2x3),
      and nothing bounds what is missed: lattices up to :data:`CLASS_ENUMERATION_MAX_STATES`
      states are accepted when :func:`closed_classes` finds one class, larger ones refused.
    * with two colours (2D tori with even sides, free chains) the only other classes found
      are two-state cycles of :func:`frozen` configurations, entered only from a start among
      them: the sampler never starts there (:func:`thaw` at ``init_state``), so it misses their
      Boltzmann mass, at most their share of all configurations (:func:`frozen_share`):
      36 / 2^16 = 5.5e-4 on the 4x4 torus but 4 / 2^8 = 1.6e-2 on 2x4. Refused where the
      share exceeds :data:`MISSED_MASS_LIMIT`; beyond :data:`FROZEN_ENUMERATION_MAX_STATES`
      states it is not counted (it falls about as 2^-N: 4 / 2^12 on 2x6, 4 / 2^16 on 2x8).
    """
    if not two_valued(model):
        return None
    described = f"{model.name} {model.size} ({model.boundary})"
    if len(model.shape) == 1 and model.boundary == "periodic" and model.shape[0] >= 3:
        return (
            f"on the ring {described} the chain of sweeps splits into classes it never leaves "
            "(for even N the difference between the numbers of domain walls on even and on odd "
            "bonds is conserved)"
        )
    colours = int(np.max(np.asarray(model.colouring()))) + 1
    if colours > 2:
        classes = closed_classes(model)
        if classes is None:
            return (
                f"{described} needs {colours} colours; with more than two, two-valued spins can "
                "be trapped (two-state cycles on the 3x4 torus) and the lattice is too large "
                f"to check (more than {CLASS_ENUMERATION_MAX_STATES} states)"
            )
        if classes > 1:
            return f"on {described} the chain of sweeps has {classes} classes it never leaves"
        return None  # one class: every start reaches it (frozen states included)
    share = frozen_share(model)
    if share is not None and share > MISSED_MASS_LIMIT:
        return (
            f"on {described} {share:.2g} of all configurations have ΔE = 0 at every site; a "
            "chain never reaches them from elsewhere, and they can carry that share of the "
            f"Boltzmann distribution (more than {MISSED_MASS_LIMIT:g})"
        )
    return None


def thaw(model: AbstractModel, spins: Array) -> Array:
    """``spins`` with the first site flipped in every :func:`frozen` configuration.

    A checkerboard chain started in one would cycle between two frozen states for ever; with
    one site flipped, that site's neighbours feel a field and the start is an ordinary one."""
    batch = spins.shape[: spins.ndim - len(model.shape)]
    flat = spins.reshape(*batch, model.n_sites)
    first = jnp.where(frozen(model, spins), _flipped(model, flat[..., 0]), flat[..., 0])
    return flat.at[..., 0].set(first).reshape(spins.shape)
