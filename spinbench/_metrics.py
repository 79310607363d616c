"""Metrics of a method against a reference: energy-histogram distances and exact state KL.

Every distance comes with its noise floor: the distance that sampling noise alone gives at
the same sample size, so a reader can tell a real discrepancy from a finite sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._distances import (
    empirical_vs_exact_floor,
    histogram,
    kl_divergence,
    level_histogram,
    smooth,
    total_variation,
)
from ._samples import Samples
from .exact._enumerate import boltzmann_log_probabilities, can_enumerate, state_index
from .exact._result import EnergyDistribution
from .models._base import AbstractModel

#: Bins of energy histograms compared with an empirical (Monte Carlo) reference.
REFERENCE_BINS = 40
#: Exact levels less probable than this at every temperature, where no sample fell, are left
#: out of the distances: they change TV by at most (levels x 1e-15) / 2 and KL(empirical ||
#: exact) not at all, and a 64x64 torus has 4095 levels, mostly of negligible probability,
#: which the noise floor's simulated draws would otherwise carry (repeats x temps x levels).
NEGLIGIBLE_PROBABILITY = 1e-15


def compare_energy_histograms(
    energies: np.ndarray,
    *,
    exact: EnergyDistribution | None,
    reference: np.ndarray | None,
    n_sites: int,
) -> dict[str, Any]:
    """TV and KL between the energy histogram of ``energies`` (temps, n) and the exact
    distribution (``exact``), or else the empirical one of ``reference`` (temps, m).

    Against the exact distribution: KL(empirical || exact) over the energy levels (those of
    negligible probability where no sample fell left out: :data:`NEGLIGIBLE_PROBABILITY`),
    floor from ``n`` exact draws. Against a Monte Carlo reference: both histograms on common bins,
    smoothed with a pseudo-count before KL, floor from two halves of the reference (two
    independent reference sets of half its size).
    """
    n = energies.shape[-1]
    if exact is not None:
        tolerance = 1e-3 * max(1.0, float(np.max(np.abs(exact.levels)))) / n_sites
        p = level_histogram(energies, exact.levels, tol=max(tolerance, 1e-4))
        q = np.asarray(exact.probabilities, dtype=np.float64)
        keep = (q.max(axis=0) > NEGLIGIBLE_PROBABILITY) | np.any(p > 0, axis=0)
        p, q = p[:, keep], q[:, keep]
        floor = empirical_vs_exact_floor(q, n, key_or_seed=0)
        return {
            "reference": "exact",
            "energy_tv": total_variation(p, q),
            "energy_kl": kl_divergence(p, q),
            "energy_tv_floor": floor.tv,
            "energy_kl_floor": floor.kl,
        }
    if reference is None:
        raise ValueError("need an exact distribution or a reference sample")
    lo = np.minimum(energies.min(axis=-1), reference.min(axis=-1))
    hi = np.maximum(energies.max(axis=-1), reference.max(axis=-1))
    p = histogram(energies, REFERENCE_BINS, value_range=(lo, hi))
    q = histogram(reference, REFERENCE_BINS, value_range=(lo, hi))
    half = reference.shape[-1] // 2
    first = histogram(reference[..., :half], REFERENCE_BINS, value_range=(lo, hi))
    second = histogram(reference[..., half : 2 * half], REFERENCE_BINS, value_range=(lo, hi))
    m = reference.shape[-1]
    return {
        "reference": "mc",
        "energy_tv": total_variation(p, q),
        "energy_kl": kl_divergence(smooth(p, n), smooth(q, m)),
        "energy_tv_floor": total_variation(first, second),
        "energy_kl_floor": kl_divergence(smooth(first, half), smooth(second, half)),
    }


def state_kl(
    model: AbstractModel, samples: Samples, temps: np.ndarray
) -> dict[str, np.ndarray] | None:
    """KL(empirical || Boltzmann) over every configuration of an enumerable model, with the
    floor of as many exact draws; None when the model cannot be enumerated."""
    if not model.is_discrete or not can_enumerate(model) or model.n_sites > 16:
        return None
    exact = np.exp(boltzmann_log_probabilities(model, temps))
    index = state_index(model, samples.states).reshape(len(temps), -1)
    n = index.shape[-1]
    n_states = exact.shape[-1]
    offsets = np.arange(len(temps))[:, None] * n_states
    counts = np.bincount((index + offsets).ravel(), minlength=len(temps) * n_states)
    empirical = counts.reshape(len(temps), n_states) / n
    floor = noise_floor_exact(exact, n)
    return {"kl": kl_divergence(empirical, exact), "floor": floor}


def noise_floor_exact(exact: np.ndarray, n: int) -> np.ndarray:
    """Expected KL(empirical || exact) of ``n`` exact draws (temps, states) -> (temps,)."""
    return empirical_vs_exact_floor(exact, n, key_or_seed=0, repeats=50).kl


__all__ = ["compare_energy_histograms", "noise_floor_exact", "state_kl"]
