"""Brute-force enumeration of small discrete models: the exact reference for everything else.

States are ordered as mixed-radix numbers over the flat sites, site 0 most significant, with digit
d standing for ``model.spin_values[d]`` (for Ising, -1 -> 0 and +1 -> 1). ``state_index`` maps any
batch of configurations to that order, so samples can be histogrammed against the exact
Boltzmann distribution (chi^2 tests, exact KL divergences).

Energies and observables come from the model's own jax methods, evaluated in chunks (memory stays
low up to ``ENUMERATION_MAX_STATES`` = 2^24 states) and converted to float64; Boltzmann weights are
float64 and in the log domain. Energies that lie on a grid of 1e-4 |J| within float32 noise are
snapped to it, so the spectrum has exact, merged levels; one pass then sums |m| and the
correlations per level, which is all any temperature needs (the sums are cached per immutable,
hashable model, so repeated calls at new temperatures cost nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .._errors import ExactSolutionError
from .._plain import plain
from ..temperatures import check_temperatures
from ._common import (
    MAX_COUPLING,
    MAX_COUPLING_WHY,
    level_log_probabilities,
    level_statistics,
    reduced_couplings,
)
from ._result import EnergyDistribution, ExactResult

if TYPE_CHECKING:
    from ..models._base import AbstractModel

__all__ = [
    "ENUMERATION_MAX_STATES",
    "boltzmann_log_probabilities",
    "can_enumerate",
    "enumerate_energy_distribution",
    "enumerate_exact",
    "enumerate_states",
    "has_at_most_states",
    "state_index",
]

#: Largest number of configurations enumerated exactly by default (about 24 Ising spins).
ENUMERATION_MAX_STATES = 2**24

#: States evaluated per call of the model (one compiled shape per model).
_CHUNK = 2**16
#: Energy grid, in units of |J|, onto which float32 energies are snapped when they lie on it.
_GRID_STEPS = 10_000
_GRID = 1.0 / _GRID_STEPS
_GRID_TOLERANCE = 1e-5


def has_at_most_states(model: AbstractModel, limit: int) -> bool:
    """Whether a discrete model has at most ``limit`` configurations (False for continuous spins).

    Compares the number of sites with the most that ``limit`` allows, never builds q^N: that
    integer has N log2 q bits, over a gigabyte for a 100000 x 100000 lattice.
    """
    if model.spin_values is None:
        return False
    q = len(model.spin_values)
    if q <= 1:  # q^N is q
        return q <= limit
    count, sites = 1, 0  # the most sites with q^sites <= limit
    while count * q <= limit:
        count, sites = count * q, sites + 1
    return model.n_sites <= sites


def can_enumerate(model: AbstractModel) -> bool:
    """True for a discrete model with at most ``ENUMERATION_MAX_STATES`` configurations."""
    return has_at_most_states(model, ENUMERATION_MAX_STATES)


def _require_enumerable(model: AbstractModel) -> tuple[int, int]:
    """(q, number of states), or a ValueError saying why the model cannot be enumerated."""
    if model.spin_values is None:
        raise ExactSolutionError(f"{model.name} has continuous spins and cannot be enumerated")
    if not can_enumerate(model):
        raise ExactSolutionError(
            f"{model.name} {model.size} has {len(model.spin_values)}^{model.n_sites} states, "
            f"more than ENUMERATION_MAX_STATES = {ENUMERATION_MAX_STATES}"
        )
    q = len(model.spin_values)
    return q, q**model.n_sites


def _states_between(model: AbstractModel, start: int, stop: int) -> np.ndarray:
    """Configurations with indices start..stop-1, shape (stop-start, *shape), int8."""
    assert model.spin_values is not None
    q, n = len(model.spin_values), model.n_sites
    index = np.arange(start, stop, dtype=np.int64)
    place = q ** np.arange(n - 1, -1, -1, dtype=np.int64)  # site 0 most significant
    digits = (index[:, None] // place[None, :]) % q
    values = np.asarray(model.spin_values, dtype=np.int8)
    return values[digits].reshape(stop - start, *model.shape)


def enumerate_states(model: AbstractModel) -> np.ndarray:
    """Every configuration, shape (q^n, *shape), int8, in the order of :func:`state_index`."""
    _, count = _require_enumerable(model)
    return _states_between(model, 0, count)


def state_index(model: AbstractModel, states: ArrayLike) -> np.ndarray:
    """Index (*batch,) int64 of each configuration of a batch (*batch, *shape) in the
    enumeration order. Raises ValueError for a wrong shape or a value not in ``spin_values``."""
    if model.spin_values is None:
        raise ValueError(f"{model.name} has continuous spins: its states have no index")
    states = np.asarray(states)
    ndim = len(model.shape)
    if states.shape[states.ndim - ndim :] != tuple(model.shape) or states.ndim < ndim:
        raise ValueError(
            f"states of shape {states.shape} do not end with the lattice shape {model.shape}"
        )
    batch = states.shape[: states.ndim - ndim]
    flat = states.reshape(*batch, model.n_sites)
    digits = np.full(flat.shape, -1, dtype=np.int64)
    for digit, value in enumerate(model.spin_values):
        digits[flat == value] = digit
    if np.any(digits < 0):
        bad = flat[digits < 0][0]
        raise ValueError(
            f"state value {plain(bad)!r} is not one of {model.name}'s {model.spin_values}"
        )
    q = len(model.spin_values)
    index = np.zeros(batch, dtype=np.int64)
    for site in range(model.n_sites):
        index = index * q + digits[..., site]
    return index


# ------------------------------------------------------------------ evaluation in chunks
@partial(jax.jit, static_argnums=(0, 2))
def _evaluate_jit(
    model: AbstractModel, states: jax.Array, observables: bool
) -> tuple[jax.Array, ...]:
    return _evaluate_eager(model, states, observables)


def _evaluate_eager(
    model: AbstractModel, states: jax.Array, observables: bool
) -> tuple[jax.Array, ...]:
    """Total energy of each state, and with ``observables`` also its scalar observables
    ``(states, k)`` (in the order of :func:`scalar_observables`) and its correlations."""
    energy = model.energy(states)
    if not observables:
        return (energy,)
    values = model.observables(states)
    names = scalar_observables(model)
    scalars = jnp.stack([values[name] for name in names], axis=-1)
    return energy, scalars, values["correlation"]


def scalar_observables(model: AbstractModel) -> tuple[str, ...]:
    """The names of the model's observables with one value per configuration, other than the
    energy (sorted): |m|, and whatever else the model measures."""
    shapes = jax.eval_shape(model.observables, jax.ShapeDtypeStruct((1, *model.shape), model.dtype))
    return tuple(sorted(n for n, v in shapes.items() if v.shape == (1,) and n not in ("energy",)))


def _hashable(model: AbstractModel) -> bool:
    """Models with only static fields are hashable: compiled once and cached; others run eagerly."""
    try:
        hash(model)
    except TypeError:
        return False
    return True


def _evaluate(
    model: AbstractModel, start: int, stop: int, observables: bool
) -> tuple[np.ndarray, ...]:
    """float64 results for states start..stop-1, padded to one chunk shape (one compilation)."""
    states = _states_between(model, start, stop)
    size = min(_CHUNK, _require_enumerable(model)[1])
    if stop - start < size:
        states = np.concatenate([states, np.repeat(states[:1], size - (stop - start), axis=0)])
    run = _evaluate_jit if _hashable(model) else _evaluate_eager
    values = run(model, jnp.asarray(states), observables)
    return tuple(np.asarray(v, dtype=np.float64)[: stop - start] for v in values)


def _clean(energy: np.ndarray, J: float) -> tuple[np.ndarray, bool]:
    """Energies snapped to the 1e-4 |J| grid if they lie on it within float32 noise, and
    whether they did (then equal levels are bitwise equal)."""
    keys = np.round(energy / (_GRID * abs(J)))
    snapped = keys / _GRID_STEPS * abs(J)
    if np.max(np.abs(snapped - energy)) <= _GRID_TOLERANCE * abs(J):
        return snapped, True
    return energy, False


@dataclass(frozen=True)
class _Levels:
    """The spectrum with per-level sums of the observables, enough for every Boltzmann average.

    ``levels`` (L,) ascending, ``counts`` (L,), ``scalars`` (L, k) (the observables of
    :func:`scalar_observables`) and ``correlation`` (L, r) are sums over the states of each
    level.
    """

    levels: np.ndarray
    counts: np.ndarray
    scalars: np.ndarray
    correlation: np.ndarray


def _level_sums(model: AbstractModel) -> _Levels | None:
    """One pass over all states, summing observables per energy level; None if the energies
    are not on the 1e-4 |J| grid (then levels cannot be merged safely)."""
    if _hashable(model):
        return _cached_level_sums(model)
    return _compute_level_sums(model)


def _compute_level_sums(model: AbstractModel) -> _Levels | None:
    _, count = _require_enumerable(model)
    parts = []
    for start in range(0, count, _CHUNK):
        stop = min(start + _CHUNK, count)
        energy, scalars, correlation = _evaluate(model, start, stop, observables=True)
        energy, on_grid = _clean(energy, float(model.J))
        if not on_grid:
            return None
        levels, inverse, counts = np.unique(energy, return_inverse=True, return_counts=True)
        sums = np.stack(
            [
                np.bincount(inverse, weights=w, minlength=levels.size)
                for w in (*scalars.T, *correlation.T)
            ],
            axis=1,
        )
        parts.append((levels, counts, sums))
    levels = np.concatenate([p[0] for p in parts])
    merged, inverse = np.unique(levels, return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]))
    sums = np.concatenate([p[2] for p in parts])
    total = np.stack(
        [np.bincount(inverse, weights=col, minlength=merged.size) for col in sums.T], axis=1
    )
    k = len(scalar_observables(model))
    return _Levels(merged, counts, total[:, :k], total[:, k:])


_cached_level_sums = lru_cache(maxsize=64)(_compute_level_sums)


def _energies(model: AbstractModel) -> np.ndarray:
    """Total energy of every state, float64 (count,), snapped to the 1e-4 |J| grid if on it."""
    _, count = _require_enumerable(model)
    energy = np.empty(count, dtype=np.float64)
    for start in range(0, count, _CHUNK):
        stop = min(start + _CHUNK, count)
        (energy[start:stop],) = _evaluate(model, start, stop, observables=False)
    return _clean(energy, float(model.J))[0]


def _spectrum(energy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levels (ascending), log degeneracies and the level of each state."""
    levels, inverse, counts = np.unique(energy, return_inverse=True, return_counts=True)
    return levels, np.log(counts.astype(np.float64)), inverse


def _check_temperatures(
    model: AbstractModel, temps: np.ndarray | list[float] | float
) -> np.ndarray:
    """Valid temperatures (float64), none colder than |J|/T = ``MAX_COUPLING``."""
    temps = check_temperatures(temps)
    solver = f"enumeration of {model.name} {model.size}"
    reduced_couplings(temps, float(model.J), MAX_COUPLING, solver, MAX_COUPLING_WHY)
    return temps


def boltzmann_log_probabilities(
    model: AbstractModel, temps: np.ndarray | list[float] | float
) -> np.ndarray:
    """log p(s) = -E(s)/T - lnZ for every state and temperature: (temps, states), float64.

    States are in the order of :func:`state_index` (index the result with it to score samples).
    The array has temps x q^n entries: mind the memory for the largest models.
    """
    temps = _check_temperatures(model, temps)
    levels, log_g, inverse = _spectrum(_energies(model))
    log_p_level, _ = level_log_probabilities(levels, log_g, 1.0 / temps)
    return log_p_level[:, inverse] - log_g[None, inverse]


def enumerate_exact(model: AbstractModel, temps: np.ndarray | list[float] | float) -> ExactResult:
    """Exact lnZ (total), E/N, C/N, <|m|>, correlations (temps, r) and every other scalar
    observable of the model (in ``extra``) by summing all states.

    Energy moments use the exact spectrum (two-pass variance); the observables are Boltzmann
    averages of the model's own per-configuration observables, summed per level.
    """
    temps = _check_temperatures(model, temps)
    beta = 1.0 / temps
    sums = _level_sums(model)
    if sums is None:  # energies off the grid: every state is its own level
        sums = _per_state_sums(model)
    log_g = np.log(sums.counts)
    ln_z, mean, variance = level_statistics(sums.levels, log_g, beta)
    log_p, _ = level_log_probabilities(sums.levels, log_g, beta)
    per_state = np.exp(log_p - log_g[None, :])  # probability of each state of a level
    n = model.n_sites
    averages = dict(zip(scalar_observables(model), (per_state @ sums.scalars).T, strict=True))
    abs_magnetization = averages.pop("abs_magnetization", None)
    return ExactResult(
        temps=temps,
        ln_z=ln_z,
        energy=mean / n,
        heat_capacity=beta**2 * variance / n,
        abs_magnetization=abs_magnetization,
        correlation=per_state @ sums.correlation,
        extra=averages,
        distances=np.asarray(model.correlation_distances()),
        source="enumeration",
        notes={"ln_z": "total lnZ (sum over all spin configurations)"},
    )


def _per_state_sums(model: AbstractModel) -> _Levels:
    """Fallback for energies off the grid: each state alone (count 1)."""
    _, count = _require_enumerable(model)
    parts = [
        _evaluate(model, start, min(start + _CHUNK, count), observables=True)
        for start in range(0, count, _CHUNK)
    ]
    energy = np.concatenate([p[0] for p in parts])
    order = np.argsort(energy)
    return _Levels(
        energy[order],
        np.ones(count),
        np.concatenate([p[1] for p in parts])[order],
        np.concatenate([p[2] for p in parts])[order],
    )


def enumerate_energy_distribution(
    model: AbstractModel, temps: np.ndarray | list[float] | float
) -> EnergyDistribution:
    """Exact distribution of the total energy: distinct levels (ascending), (temps, levels)."""
    temps = _check_temperatures(model, temps)
    sums = _level_sums(model)
    if sums is None:
        levels, log_g, _ = _spectrum(_energies(model))
    else:
        levels, log_g = sums.levels, np.log(sums.counts)
    log_p, _ = level_log_probabilities(levels, log_g, 1.0 / temps)
    return EnergyDistribution(levels=levels, probabilities=np.exp(log_p))
