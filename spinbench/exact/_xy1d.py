"""Exact XY chain of planar rotors, H = -J sum_i cos(theta_i - theta_{i+1}), angles in [-pi, pi).

The measure is d theta over [-pi, pi) per spin, so Z carries (2 pi)^N (DESIGN.md).

Free ends: Z = 2 pi (2 pi I0(K))^(N-1) with K = J/T. With A(K) = I1(K)/I0(K):
E/N = -(N-1) J A / N, C/N = (N-1) K^2 A'(K) / N with A' = 1 - A/K - A^2, and
<cos(theta_i - theta_{i+r})> = A^r.

Ring: expanding each bond as e^{K cos phi} = sum_j I_j(K) e^{i j phi} (the transfer operator is
diagonal in Fourier modes with eigenvalues 2 pi I_j), Z = (2 pi)^N sum_j I_j(K)^N and

    <cos(theta_i - theta_{i+r})> = sum_j I_j^(N-r) I_{j+1}^r / sum_j I_j^N,

(the two halves of the cosine give j -> j+1 and j -> j-1, equal by I_{-j} = I_j). With
I_j' = (I_{j-1} + I_{j+1})/2 and I_j'' = (I_{j-2} + 2 I_j + I_{j+2})/4 the second derivative of
lnZ is exact too. Sums run over all integers j, truncated adaptively once I_j/I_0 is negligible.
Bessel functions are exponentially scaled (``scipy.special.ive``) and everything is float64.

For J < 0 and odd N the ring is frustrated: the alternating sum over j cancels to a result
exponentially smaller than its terms at low T (by about exp(-pi^2 |K| / (2N))). Where more than
a few digits would be lost, that temperature is computed in real space instead, from powers of
the positive transfer kernel on a fine periodic grid (spectrally accurate, no cancellation).

At low T the heat capacity is K^2 times a difference that cancels (1 - A/K - A^2 ~ 1/(2K^2) for
the free chain, d2 - d1^2 of terms ~N^2 for the ring), so its relative error grows as about
1e-16 N K^2. Temperatures with |J|/T above 1000 are refused (a ValueError names the limit):
there C/N would lose more than ~1e-10 N relative, and the Bessel functions themselves fail
further on (NaN from |J|/T ~ 1e10).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ive, logsumexp

from ..temperatures import check_temperatures
from ._common import (
    chain_distances,
    check_boundary,
    check_coupling,
    check_length,
    reduced_couplings,
)
from ._result import ExactResult

__all__ = ["xy1d_exact"]

#: Terms of the ring sums smaller than this (relative to the leading j = 0 term) are dropped.
_TAIL = 1e-20
#: Largest |J|/T accepted: the heat capacity keeps ~1e-10 N relative accuracy up to it.
_MAX_COUPLING = 1e3
_ROW_BLOCK = 256
#: Largest cancellation of the frustrated ring's Bessel sum accepted before switching to real space.
_MAX_CANCELLATION = 1e3


def xy1d_exact(
    n: int, temps: np.ndarray | list[float] | float, *, boundary: str, J: float = 1.0
) -> ExactResult:
    """Exact lnZ (total), E/N, C/N and <cos(theta_i - theta_{i+r})> (temps, r) of an XY chain.

    Distances are those of ``XY1D.correlation_distances()``: 1..n-1 (free) or 1..n//2 (ring).
    """
    n, boundary, J = check_length(n), check_boundary(boundary), check_coupling(J)
    temps = check_temperatures(temps)
    k = reduced_couplings(
        temps,
        J,
        _MAX_COUPLING,
        f"the exact solution of the XY chain of {n} sites",
        "the heat capacity cancels, to a relative error of ~1e-16 N (|J|/T)^2",
    )
    sign = 1.0 if J > 0 else -1.0
    distances = chain_distances(n, boundary)
    ln_i0 = np.log(ive(0, k)) + k
    notes = {"ln_z": "total lnZ with measure d theta on [-pi, pi) per spin: (2 pi)^N included"}
    if boundary == "free":
        ratio = ive(1, k) / ive(0, k)  # A(|K|); A(K) = sign * A(|K|)
        ln_z = n * np.log(2 * np.pi) + (n - 1) * ln_i0
        energy = -abs(J) * (n - 1) * ratio / n
        heat_capacity = (n - 1) * k**2 * (1.0 - ratio / k - ratio**2) / n
        correlation = (sign * ratio[:, None]) ** distances[None, :]
        source = "closed form: Z = 2 pi (2 pi I0(K))^(N-1)"
    else:
        ln_z, energy, heat_capacity, correlation, real_space = _ring(n, k, sign, distances)
        energy = energy * J
        source = "closed form: Z = (2 pi)^N sum_j I_j(K)^N"
        if np.any(real_space):
            notes["method"] = (
                "frustrated ring: T = "
                f"{', '.join(f'{t:g}' for t in temps[real_space])} from the real-space kernel"
            )
    return ExactResult(
        temps=temps,
        ln_z=ln_z,
        energy=energy,
        heat_capacity=heat_capacity,
        correlation=correlation,
        distances=distances,
        source=source,
        notes=notes,
    )


def _bessel_ratios(n: int, k: np.ndarray) -> np.ndarray:
    """I_j(k)/I_0(k) for j = 0..M+2 (temps, M+3), M large enough for every ring sum."""
    terms = 16
    while True:
        orders = np.arange(terms + 3)
        ratios = ive(orders[None, :], k[:, None]) / ive(0, k)[:, None]
        # Every term with |j| > M is at most (I_{M-1}/I_0)^N, and falls off faster than
        # geometrically beyond it.
        if np.all(ratios[:, terms - 1] ** n < _TAIL) or terms >= 2**16:
            return ratios
        terms *= 2


def _ring(
    n: int, k: np.ndarray, sign: float, distances: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """lnZ, (E/N)/J, C/N, correlations (temps, r) of the XY ring from the Bessel sums, and a
    mask of the temperatures where the frustrated sum cancels too far and real space is used."""
    ratios = _bessel_ratios(n, k)
    m = ratios.shape[1] - 3
    # v[j] = I_j(K)/I_0(|K|) for j = -(M+2)..M+2, with I_j(-k) = (-1)^j I_j(k) and I_{-j} = I_j.
    j = np.arange(-(m + 2), m + 3)
    v = ratios[:, np.abs(j)] * sign ** np.abs(j)
    centre = slice(2, 2 * m + 3)  # j = -M..M
    vj, up, down = v[:, centre], v[:, 3 : 2 * m + 4], v[:, 1 : 2 * m + 2]
    up2, down2 = v[:, 4:], v[:, : 2 * m + 1]

    power_n = vj**n
    total = power_n.sum(axis=1)
    scale = np.abs(power_n).sum(axis=1)
    first = 0.5 * (down + up)  # I_j' / I_0
    second = 0.25 * (down2 + 2.0 * vj + up2)  # I_j'' / I_0
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = n * (vj ** (n - 1) * first).sum(axis=1) / total  # d lnZ / dK
        d2 = (n * (n - 1) * vj ** (n - 2) * first**2 + n * vj ** (n - 1) * second).sum(
            axis=1
        ) / total
        correlation = np.stack(
            [(vj ** (n - r) * up**r).sum(axis=1) / total for r in distances], axis=1
        )
        ln_z = n * np.log(2 * np.pi) + n * (np.log(ive(0, k)) + k) + np.log(np.abs(total))
    energy = -d1 / n  # per site, in units of J (d1 is d lnZ / dK with K = J/T)
    heat_capacity = k**2 * (d2 - d1**2) / n
    real_space = ~(scale < _MAX_CANCELLATION * np.abs(total))
    for i in np.flatnonzero(real_space):
        ln_z[i], energy[i], heat_capacity[i], correlation[i] = _ring_real_space(
            n, sign * k[i], distances
        )
    return ln_z, energy, heat_capacity, correlation, real_space


def _ring_real_space(
    n: int, coupling: float, distances: np.ndarray
) -> tuple[float, float, float, np.ndarray]:
    """lnZ, (E/N)/J, C/N and correlations of the ring at one K by powers of the transfer kernel.

    For the frustrated ring the Fourier (Bessel) sum cancels; in real space the kernel
    t(phi) = e^{K cos phi} is positive, so its powers t^{*j} (circular convolutions on an
    M-point grid, in the log domain, carried with the mean and the variance of sum cos along
    the chain, d ln t^{*j}/dK and d^2 ln t^{*j}/dK^2, as averages under positive weights) lose
    nothing. The variance is carried as such (law of total variance: a sum of positive terms),
    not as a second moment minus the squared mean, which would cancel to ~1e-16 n^2 K^3 relative
    (1e-3 for N = 101 at K = 700). The periodic trapezoid rule is spectrally
    accurate; M is chosen so the aliasing error, about e^{-M^2/2|K|} relative to the largest
    Fourier term, stays below float64 precision of the result (at most 1868 points for
    |K| <= 1000, reached at N = 3).
    """
    k = abs(coupling)
    size = max(64, 2 * math.ceil(0.5 * (math.sqrt(np.pi**2 * k**2 / n + 80.0 * k) + 32.0)))
    cos = np.cos(2.0 * np.pi * np.arange(size) / size)
    # t^{*j}: its log, and its first and second K-derivatives of the log (mean, variance).
    log_a, mean, variance = coupling * cos, cos.copy(), np.zeros(size)
    logs = [log_a]
    for _ in range(n - 1):
        log_new, new_mean, new_variance = np.empty(size), np.empty(size), np.empty(size)
        for start in range(0, size, _ROW_BLOCK):  # rows x of the M x M convolution
            x = np.arange(start, min(start + _ROW_BLOCK, size))
            cos_xy = cos[(x[:, None] - np.arange(size)[None, :]) % size]
            terms = log_a[None, :] + coupling * cos_xy
            log_new[x] = logsumexp(terms, axis=1)
            weight = np.exp(terms - log_new[x, None])
            new_mean[x] = np.sum(weight * (mean[None, :] + cos_xy), axis=1)
            spread = mean[None, :] + cos_xy - new_mean[x, None]
            new_variance[x] = np.sum(weight * (variance[None, :] + spread**2), axis=1)
        log_a, mean, variance = log_new, new_mean, new_variance
        logs.append(log_a)
    ln_z = n * math.log(2 * np.pi / size) + math.log(size) + log_a[0]
    heat = k**2 * variance[0] / n
    correlation = np.empty(distances.size)
    for i, r in enumerate(distances):
        pair = logs[r - 1] + logs[n - r - 1]
        correlation[i] = np.sum(cos * np.exp(pair - pair.max())) / np.sum(np.exp(pair - pair.max()))
    return ln_z, -mean[0] / n, heat, correlation
