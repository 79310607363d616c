"""Shared pieces of the exact solvers: argument checks and Boltzmann statistics of a spectrum.

For a spectrum of energy levels E_k with degeneracies g_k, each temperature's lnZ, mean energy,
energy variance and level probabilities follow without overflow or cancellation: weights are
normalised by log-sum-exp and the variance is a two-pass sum about the mean, so it stays
accurate (relative) even when it is exponentially small at low temperature.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from .._errors import ExactSolutionError
from .._plain import plain

BOUNDARIES = ("free", "periodic")


def check_coupling(J: float) -> float:
    """The coupling as a float; it must be finite and non-zero."""
    J = float(J)
    if not math.isfinite(J) or J == 0.0:
        raise ExactSolutionError(f"coupling J must be finite and non-zero, got {J}")
    return J


#: Largest |J|/T of the solvers that are exact at every temperature (Ising chain, enumeration):
#: far colder than where every lattice is in its ground state to float64 precision (|J|/T of
#: a few hundred), far below where lnZ ~ N |J|/T or (|J|/T)^2 would overflow float64.
MAX_COUPLING = 1e100
#: Why :data:`MAX_COUPLING` is there, for the message of a temperature below it.
MAX_COUPLING_WHY = (
    "below it the lattice is in its ground state to float64 precision, and float64 overflows "
    "further on"
)


def reduced_couplings(
    temps: np.ndarray, J: float, limit: float, solver: str, why: str
) -> np.ndarray:
    """|J|/T for each temperature, or an ExactSolutionError naming ``solver``'s limit on it,
    the lowest T it allows and the first T beyond it, with ``why`` the limit is there."""
    with np.errstate(over="ignore"):
        k = abs(J) / temps
    beyond = ~(k <= limit)
    if np.any(beyond):
        raise ExactSolutionError(
            f"{solver} needs |J|/T <= {limit:g}, i.e. T >= {abs(J) / limit:.6g} for |J| = "
            f"{abs(J):g}; got T = {float(temps[beyond][0]):g} ({why})"
        )
    return k


def check_length(n: int, what: str = "n") -> int:
    """A lattice length: an integer >= 2."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ExactSolutionError(f"{what} must be an integer >= 2, got {plain(n)!r}")
    return int(n)


def check_boundary(boundary: str) -> str:
    """A chain boundary condition: 'free' or 'periodic'."""
    if boundary not in BOUNDARIES:
        raise ExactSolutionError(f"boundary must be 'free' or 'periodic', got {boundary!r}")
    return boundary


def chain_distances(n: int, boundary: str) -> np.ndarray:
    """Correlation distances of a chain: 1..n-1 (free) or 1..n//2 (periodic), as models use."""
    return np.arange(1, (n - 1 if boundary == "free" else n // 2) + 1)


#: Temperatures are processed in blocks so that (block, levels) stays below this many entries.
_BLOCK_ENTRIES = 2**22


def level_log_probabilities(
    levels: np.ndarray, log_degeneracy: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log probabilities (temps, levels) of each level and lnZ (temps,).

    ``levels`` and ``log_degeneracy`` are (levels,); ``beta`` is (temps,).
    """
    log_weights = log_degeneracy[None, :] - beta[:, None] * levels[None, :]
    ln_z = logsumexp(log_weights, axis=1)
    return log_weights - ln_z[:, None], ln_z


def level_statistics(
    levels: np.ndarray, log_degeneracy: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lnZ, mean energy and energy variance (each (temps,)) of a spectrum at each beta."""
    levels = np.asarray(levels, dtype=np.float64)
    log_degeneracy = np.asarray(log_degeneracy, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    ln_z = np.empty_like(beta)
    mean = np.empty_like(beta)
    variance = np.empty_like(beta)
    block = max(1, _BLOCK_ENTRIES // max(1, levels.size))
    for start in range(0, beta.size, block):
        part = slice(start, start + block)
        log_p, ln_z[part] = level_log_probabilities(levels, log_degeneracy, beta[part])
        p = np.exp(log_p)
        # Moments about the most probable level keep small fluctuations exact.
        reference = levels[np.argmax(log_p, axis=1)]
        shifted = levels[None, :] - reference[:, None]
        offset = np.sum(p * shifted, axis=1)
        mean[part] = reference + offset
        variance[part] = np.sum(p * (shifted - offset[:, None]) ** 2, axis=1)
    return ln_z, mean, variance
