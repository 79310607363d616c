"""Exact Ising chain, H = -J sum_i s_i s_{i+1}, with free ends or periodic (ring) boundary.

Free ends (N sites, N-1 bonds): Z = 2 (2 cosh K)^(N-1) with K = J/T, so E/N = -(N-1) J tanh K / N,
C/N = (N-1) K^2 sech^2 K / N and <s_i s_{i+r}> = tanh(K)^r for every pair.

Ring (N bonds): Z = (2 cosh K)^N + (2 sinh K)^N and, from the transfer matrix,
<s_i s_{i+r}> = (t^r + t^(N-r)) / (1 + t^N) with t = tanh K. For J < 0 and odd N the ring is
frustrated: 1 + t^N and the numerator both vanish as T -> 0 and are evaluated as ratios of
``expm1`` so the limit (N - 2r)/N (times the sign) comes out exactly. Energy and heat capacity of
the ring come from its exact spectrum (E = -J(N - 2k) for an even number k of domain walls, with
2 C(N, k) states), which is free of the cancellations that the closed form has at low T.

Everything is float64 and in the log domain: stable from |J|/T = 1e100 (colder is refused with
a ValueError naming the limit) to T -> infinity.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..temperatures import check_temperatures
from ._common import (
    MAX_COUPLING,
    MAX_COUPLING_WHY,
    chain_distances,
    check_boundary,
    check_coupling,
    check_length,
    level_log_probabilities,
    level_statistics,
    reduced_couplings,
)
from ._result import EnergyDistribution, ExactResult

__all__ = ["ising1d_energy_distribution", "ising1d_exact"]


def ising1d_exact(
    n: int, temps: np.ndarray | list[float] | float, *, boundary: str, J: float = 1.0
) -> ExactResult:
    """Exact lnZ (total), E/N, C/N and correlations (temps, r) of an Ising chain of ``n`` sites.

    Correlations are averaged over all pairs (i, i+r) at the distances
    ``Ising1D.correlation_distances()`` uses: 1..n-1 (free) or 1..n//2 (periodic).
    """
    n, boundary, J = check_length(n), check_boundary(boundary), check_coupling(J)
    temps = check_temperatures(temps)
    solver = f"the exact solution of the Ising chain of {n} sites"
    # |K|; the sign of J enters only through the spin-flip gauge below
    k = reduced_couplings(temps, J, MAX_COUPLING, solver, MAX_COUPLING_WHY)
    sign = 1.0 if J > 0 else -1.0
    x = np.exp(-2.0 * k)  # Boltzmann factor of one domain wall, in (0, 1)
    ln_2cosh = k + np.log1p(x)
    minus_ln_tanh = np.log1p(x) - np.log(-np.expm1(-2.0 * k))  # a = -ln tanh|K| > 0
    distances = chain_distances(n, boundary)
    r = distances[None, :].astype(np.float64)
    a = minus_ln_tanh[:, None]
    parity = sign ** distances[None, :]

    if boundary == "free":
        ln_z = np.log(2.0) + (n - 1) * ln_2cosh
        tanh_k = -np.expm1(-2.0 * k) / (1.0 + x)
        sech2_k = 4.0 * x / (1.0 + x) ** 2
        energy = -abs(J) * (n - 1) * tanh_k / n
        heat_capacity = (n - 1) * k**2 * sech2_k / n
        correlation = parity * np.exp(-r * a)
        source = "closed form: Z = 2 (2 cosh K)^(N-1)"
    else:
        levels, log_g = _ring_spectrum(n, J)
        ln_z, mean, variance = level_statistics(levels, log_g, 1.0 / temps)
        energy = mean / n
        heat_capacity = variance / temps**2 / n
        if sign**n > 0:  # unfrustrated: (t^r + t^(N-r)) / (1 + t^N)
            correlation = parity * (np.exp(-r * a) + np.exp(-(n - r) * a)) / (1 + np.exp(-n * a))
        else:  # frustrated odd antiferromagnetic ring: both sides vanish at T -> 0
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.exp(-r * a) * np.expm1(-(n - 2 * r) * a) / np.expm1(-n * a)
            ratio = np.where(a > 0, ratio, (n - 2 * r) / n)
            correlation = parity * ratio
        source = "closed form: Z = (2 cosh K)^N + (2 sinh K)^N (ring spectrum)"
    return ExactResult(
        temps=temps,
        ln_z=ln_z,
        energy=energy,
        heat_capacity=heat_capacity,
        correlation=correlation,
        distances=distances,
        source=source,
        notes={"ln_z": "total lnZ (sum over spins in {-1, +1}^N)"},
    )


def ising1d_energy_distribution(
    n: int, temps: np.ndarray | list[float] | float, *, boundary: str, J: float = 1.0
) -> EnergyDistribution:
    """Exact distribution of the total energy of an Ising chain: levels ascending, (temps, levels).

    Free ends: E = -J(N-1) + 2Jk for k = 0..N-1 domain walls, 2 C(N-1, k) states each.
    Ring: only even k = 0..N, E = -JN + 2Jk, 2 C(N, k) states each.
    """
    n, boundary, J = check_length(n), check_boundary(boundary), check_coupling(J)
    temps = check_temperatures(temps)
    solver = f"the exact energy distribution of the Ising chain of {n} sites"
    reduced_couplings(temps, J, MAX_COUPLING, solver, MAX_COUPLING_WHY)
    levels, log_g = _free_spectrum(n, J) if boundary == "free" else _ring_spectrum(n, J)
    order = np.argsort(levels)
    levels, log_g = levels[order], log_g[order]
    log_p, _ = level_log_probabilities(levels, log_g, 1.0 / temps)
    return EnergyDistribution(levels=levels, probabilities=np.exp(log_p))


def _log_binomial(n: int, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _free_spectrum(n: int, J: float) -> tuple[np.ndarray, np.ndarray]:
    """Levels and log degeneracies of the open chain (k domain walls among N-1 bonds)."""
    walls = np.arange(n, dtype=np.float64)
    return -J * (n - 1) + 2.0 * J * walls, np.log(2.0) + _log_binomial(n - 1, walls)


def _ring_spectrum(n: int, J: float) -> tuple[np.ndarray, np.ndarray]:
    """Levels and log degeneracies of the ring (an even number k of walls among N bonds)."""
    walls = np.arange(0, n + 1, 2, dtype=np.float64)
    return -J * n + 2.0 * J * walls, np.log(2.0) + _log_binomial(n, walls)
