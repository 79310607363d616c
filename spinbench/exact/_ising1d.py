"""Exact Ising chain, H = -J sum_bonds s_i s_j - h sum_i s_i, with free ends or periodic (ring)
boundary; N sites, N-1 bonds (free) or N bonds (ring), spins +-1, k_B = 1.

Zero field (h = 0), closed forms. Free ends: Z = 2 (2 cosh K)^(N-1) with K = J/T, so
E/N = -(N-1) J tanh K / N, C/N = (N-1) K^2 sech^2 K / N and <s_i s_{i+r}> = tanh(K)^r for every
pair. Ring: Z = (2 cosh K)^N + (2 sinh K)^N and, from the transfer matrix,
<s_i s_{i+r}> = (t^r + t^(N-r)) / (1 + t^N) with t = tanh K. For J < 0 and odd N the ring is
frustrated: 1 + t^N and the numerator both vanish as T -> 0 and are evaluated as ratios of
``expm1`` so the limit (N - 2r)/N (times the sign) comes out exactly. Energy and heat capacity of
the ring come from its exact spectrum (E = -J(N - 2k) for an even number k of domain walls, with
2 C(N, k) states), which is free of the cancellations that the closed form has at low T.

In a field (h != 0), transfer matrices. With the bond energy e(s, s') = -J s s' - (h/2)(s + s')
and, on a free chain, the end energy f(s) = -(h/2) s at sites 1 and N,
T_{ss'} = exp(-e(s, s')/T) = exp(K s s' + (H/2)(s + s')) (H = h/T), u_s = exp(-f(s)/T), and

    Z = tr T^N (ring),    Z = u^T T^(N-1) u (free).

Correlations insert sigma_z = diag(1, -1): on the ring every pair gives
<s_i s_{i+r}> = sum_{s,s'} s s' [T^r]_{ss'} [T^(N-r)]_{s's} / Z; on the free chain the average
over the N - r pairs is sum_{s,s'} s s' [T^r]_{ss'} [Q_(N-1-r)]_{ss'} / ((N - r) Z), where
Q_m = sum_{a=0..m} T^a u u^T T^(m-a) is the top-right block of [[T, u u^T], [0, T]]^(m+1).
<m> = sum_s s [T^N]_{ss} / Z (ring) or sum_s s [Q_(N-1)]_{ss} / (N Z) (free). E and C are exact
beta-derivatives: each bond weight is expanded to second order, T(beta - d) = T (1 + d e +
d^2 e^2 / 2), and the product of these series gives Z, Z <E> and Z <E^2> / 2 at once (the block
upper-triangular matrix [[A, A', A''/2], [0, A, A'], [0, 0, A]], written as a product rule).

Every entry of every product is a sum of Boltzmann weights over spin paths, and is carried as the
least energy m of its paths (independent of T) with ln sum exp(-(E - m)/T) and the logs of the
first two moments of the excess E - m >= 0. All sums then have non-negative terms: nothing
overflows, underflows to a wrong answer or cancels, at any T down to the limit below, and the
variance <(E - m)^2> - <E - m>^2 is relative-accurate even where it is exponentially small. This
includes the chains whose ground states cannot give every bond its least energy: odd rings and
even free chains with J < 0 and |h| < 2|J| (a shift of each bond by a constant would leave an
excess there that cancels, and a ground-state weight that underflows). Powers come by repeated
squaring (Z, E, C) or by doubling prefixes (all powers up to N, for correlations), batched over
temperatures.

Magnetisation in a field: the number of states with w domain walls and u up spins is known in
closed form (counting runs; c(n, k) = C(n-1, k-1) compositions of n into k positive parts,
c(0, 0) = 1):

    free: g(w, u) = c(u, ceil((w+1)/2)) c(N-u, floor((w+1)/2))
                    + c(u, floor((w+1)/2)) c(N-u, ceil((w+1)/2)),
    ring: g(2k, u) = (N/k) C(u-1, k-1) C(N-u-1, k-1) for k >= 1; g(0, 0) = g(0, N) = 1,

with energy E(w, u) = -J(B - 2w) - h(2u - N), B the number of bonds. Summing g exp(-E/T) over w
gives the exact distribution of M = 2u - N in O(N^2) per temperature, hence <m> and <|m|>
(computed for N <= MAX_MAGNETIZATION_SITES; beyond, <|m|> is None and <m> comes from the transfer
matrix), and the exact energy distribution, whose levels are merged where they coincide.
Energies that agree to within 64 ulp of N (|J| + |h|) count as equal.

Everything is float64: stable from |J|/T and |h|/T = 1e100 (colder is refused with a ValueError
naming the limit) to T -> infinity.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy.special import gammaln, logsumexp

from .._errors import ExactSolutionError
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

__all__ = [
    "MAX_FIELD_LEVEL_ENTRIES",
    "MAX_FIELD_LEVEL_SITES",
    "MAX_MAGNETIZATION_SITES",
    "ising1d_energy_distribution",
    "ising1d_exact",
]

#: Longest chain whose distribution of M (hence <|m|>) is computed in a field: it costs
#: O(N^2) per temperature, about a second per temperature at N = 10000.
MAX_MAGNETIZATION_SITES = 10_000
#: Longest chain whose energy distribution in a field is built: up to N^2/2 levels, all in memory.
MAX_FIELD_LEVEL_SITES = 4096
#: Most (temperatures x levels) entries of an energy distribution in a field (256 MiB of float64).
MAX_FIELD_LEVEL_ENTRIES = 2**25

_LN2 = math.log(2.0)
#: Spin values in the order of the transfer-matrix indices.
_SPINS = np.array([1.0, -1.0])


def ising1d_exact(
    n: int,
    temps: np.ndarray | list[float] | float,
    *,
    boundary: str,
    J: float = 1.0,
    h: float = 0.0,
) -> ExactResult:
    """Exact lnZ (total), E/N, C/N and correlations (temps, r) of an Ising chain of ``n`` sites.

    Correlations are the plain <s_i s_{i+r}> (not connected), averaged over all pairs (i, i+r) at
    the distances ``Ising1D.correlation_distances()`` uses: 1..n-1 (free) or 1..n//2 (periodic;
    pairs wrap, n of them at every distance).

    In a field (``h`` != 0) the result also has <|m|> = <|sum_i s_i| / N> in
    ``abs_magnetization`` (None for n > :data:`MAX_MAGNETIZATION_SITES`, with the reason in
    ``notes``) and the signed <sum_i s_i / N> in ``extra["magnetization"]`` (from the distribution
    of M, relative-accurate, where <|m|> is computed; from the transfer matrix, to about 1e-15
    absolute, beyond). At h = 0 the result is the zero-field closed form, without magnetisations.
    """
    n, boundary, J = check_length(n), check_boundary(boundary), check_coupling(J)
    h = _check_field(h)
    temps = check_temperatures(temps)
    solver = f"the exact solution of the Ising chain of {n} sites"
    # |K|; the sign of J enters only through the spin-flip gauge below
    k = reduced_couplings(temps, J, MAX_COUPLING, solver, MAX_COUPLING_WHY)
    if h != 0.0:
        _check_field_temperatures(temps, h, f"{solver} in a field")
        return _field_exact(n, temps, boundary, J, h)
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


def _check_field(h: float) -> float:
    """The field as a float; it must be finite (zero is the zero-field chain)."""
    h = float(h)
    if not math.isfinite(h):
        raise ExactSolutionError(f"field h must be finite, got {h}")
    return h


def _check_field_temperatures(temps: np.ndarray, h: float, solver: str) -> None:
    """A ValueError, worded as :func:`reduced_couplings` words it for J, where |h|/T is beyond
    :data:`MAX_COUPLING`."""
    with np.errstate(over="ignore"):
        beyond = ~(abs(h) / temps <= MAX_COUPLING)
    if np.any(beyond):
        raise ExactSolutionError(
            f"{solver} needs |h|/T <= {MAX_COUPLING:g}, i.e. T >= {abs(h) / MAX_COUPLING:.6g} for "
            f"|h| = {abs(h):g}; got T = {float(temps[beyond][0]):g} ({MAX_COUPLING_WHY})"
        )


def _energy_resolution(n: int, J: float, h: float) -> float:
    """Energies of an n-site chain closer than this are taken as equal (64 ulp of its scale)."""
    return 64.0 * np.finfo(np.float64).eps * n * (abs(J) + abs(h))


def _field_exact(n: int, temps: np.ndarray, boundary: str, J: float, h: float) -> ExactResult:
    """:func:`ising1d_exact` for h != 0 (arguments checked)."""
    resolution = _energy_resolution(n, J, h)
    ln_z, energy, heat_capacity = _transfer_thermodynamics(n, temps, boundary, J, h, resolution)
    correlation, magnetization = _transfer_correlations(n, temps, boundary, J, h, resolution)
    notes = {
        "ln_z": "total lnZ (sum over spins in {-1, +1}^N)",
        "magnetization": "signed <sum_i s_i / N>",
    }
    abs_magnetization = None
    if n <= MAX_MAGNETIZATION_SITES:
        magnetization, abs_magnetization = _magnetization_distribution(
            n, temps, boundary, J, h, resolution
        )
    else:
        notes["abs_magnetization"] = (
            f"not computed: the exact distribution of M costs O(N^2) per temperature and is "
            f"computed for N <= {MAX_MAGNETIZATION_SITES}"
        )
    ends = "tr T^N" if boundary == "periodic" else "u^T T^(N-1) u"
    return ExactResult(
        temps=temps,
        ln_z=ln_z,
        energy=energy,
        heat_capacity=heat_capacity,
        abs_magnetization=abs_magnetization,
        correlation=correlation,
        distances=chain_distances(n, boundary),
        source=f"transfer matrix in a field h = {h:g}: Z = {ends}; distribution of M by counting",
        notes=notes,
        extra={"magnetization": magnetization},
    )


# ------------------------------------------------------------------ sums over spin paths
#: Entries per working array of the O(N^2) counting, and (temperatures x sites) per block of the
#: prefix powers: a few tens of MiB at a time.
_BLOCK = 2**21
_PREFIX_BLOCK = 2**16
_ALL = slice(None)


class _Paths(NamedTuple):
    """Entrywise sums of Boltzmann weights exp(-E/T) over sets of spin paths.

    ``least`` is the least energy E of each set, shaped (1, ...): it does not depend on T.
    ``log_w`` is ln sum exp(-(E - least)/T), (temps, ...); ``log_y1`` and ``log_y2`` are
    ln sum exp(-(E - least)/T) (E - least)^k for k = 1, 2, or None where moments are not carried.
    The excess E - least is >= 0 on every path, so every sum below has non-negative terms.
    """

    least: np.ndarray
    log_w: np.ndarray
    log_y1: np.ndarray | None = None
    log_y2: np.ndarray | None = None

    def take(self, key: Any) -> _Paths:
        """The same entries of every array (``key`` must leave the first axis alone)."""
        return _Paths._make(None if a is None else a[key] for a in self)

    def transpose(self) -> _Paths:
        """Swap the last two axes."""
        return _Paths._make(None if a is None else np.swapaxes(a, -1, -2) for a in self)


def _concatenate(parts: list[_Paths], axis: int) -> _Paths:
    """Paths joined along ``axis`` (counted from the end)."""
    return _Paths._make(
        None if arrays[0] is None else np.concatenate(arrays, axis=axis)
        for arrays in zip(*parts, strict=True)
    )


class _Arithmetic:
    """Products and sums of :class:`_Paths` at a grid of temperatures ``temps`` (tb,).

    Path energies closer than ``resolution`` count as equal, so that degenerate paths stay
    degenerate at any T however their energies round.
    """

    def __init__(self, temps: np.ndarray, resolution: float) -> None:
        self.temps = temps
        self.resolution = resolution

    def _temps(self, ndim: int) -> np.ndarray:
        return self.temps.reshape((-1,) + (1,) * (ndim - 1))

    def mul(self, a: _Paths, b: _Paths) -> _Paths:
        """Concatenated paths: energies add and so do excesses."""
        least = a.least + b.least
        log_w = a.log_w + b.log_w
        if a.log_y1 is None or b.log_y1 is None or a.log_y2 is None or b.log_y2 is None:
            return _Paths(least, log_w)
        log_y1 = np.logaddexp(a.log_y1 + b.log_w, a.log_w + b.log_y1)
        log_y2 = np.logaddexp(
            np.logaddexp(a.log_y2 + b.log_w, a.log_w + b.log_y2), _LN2 + a.log_y1 + b.log_y1
        )
        return _Paths(least, log_w, log_y1, log_y2)

    def lower(self, a: _Paths, least: np.ndarray) -> _Paths:
        """``a`` measured from a reference ``least`` <= a.least: each excess grows by
        d = a.least - least, so w -> w e^(-d/T), y1 -> (y1 + d w) e^(-d/T) and
        y2 -> (y2 + 2 d y1 + d^2 w) e^(-d/T)."""
        delta = a.least - least
        delta = np.where(delta <= self.resolution, 0.0, delta)
        if not np.any(delta):
            return a._replace(least=least + np.zeros_like(a.least))
        shift = delta / self._temps(a.log_w.ndim)
        log_w = a.log_w - shift
        if a.log_y1 is None or a.log_y2 is None:
            return _Paths(least + np.zeros_like(a.least), log_w)
        with np.errstate(divide="ignore"):
            log_d = np.log(delta)
        log_y1 = np.logaddexp(a.log_y1, log_d + a.log_w) - shift
        log_y2 = (
            np.logaddexp(np.logaddexp(a.log_y2, _LN2 + log_d + a.log_y1), 2.0 * log_d + a.log_w)
            - shift
        )
        return _Paths(least + np.zeros_like(a.least), log_w, log_y1, log_y2)

    def add(self, a: _Paths, b: _Paths) -> _Paths:
        """The union of two sets of paths."""
        least = np.minimum(a.least, b.least)
        a, b = self.lower(a, least), self.lower(b, least)
        log_w = np.logaddexp(a.log_w, b.log_w)
        if a.log_y1 is None or b.log_y1 is None or a.log_y2 is None or b.log_y2 is None:
            return _Paths(least, log_w)
        return _Paths(
            least, log_w, np.logaddexp(a.log_y1, b.log_y1), np.logaddexp(a.log_y2, b.log_y2)
        )

    def matmul(self, a: _Paths, b: _Paths) -> _Paths:
        """Matrix product over the last two axes: a sum over the shared spin."""
        total: _Paths | None = None
        for k in range(a.least.shape[-1]):
            term = self.mul(a.take((..., slice(k, k + 1))), b.take((..., slice(k, k + 1), _ALL)))
            total = term if total is None else self.add(total, term)
        assert total is not None
        return total

    def power(self, a: _Paths, exponent: int) -> _Paths:
        """a^exponent (exponent >= 1) by repeated squaring."""
        result: _Paths | None = None
        while True:
            if exponent & 1:
                result = a if result is None else self.matmul(result, a)
            exponent >>= 1
            if not exponent:
                assert result is not None
                return result
            a = self.matmul(a, a)

    def probabilities(self, a: _Paths, axes: tuple[int, ...]) -> np.ndarray:
        """Each entry's share of the sum over ``axes``, (temps, ...)."""
        least = np.min(a.least, axis=axes, keepdims=True)
        log_w = self.lower(_Paths(a.least, a.log_w), least).log_w
        return np.exp(log_w - logsumexp(log_w, axis=axes, keepdims=True))

    def moments(self, a: _Paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ln sum exp(-E/T), <E> and Var E of paths that carry moments, each (temps, ...).

        The excess Y is 0 on the least-energy paths, so at low T both <Y^2> and <Y>^2 are of the
        order of the weight of the excited paths and Var E = <Y^2> - <Y>^2 keeps its precision.
        """
        assert a.log_y1 is not None and a.log_y2 is not None
        ln_z = a.log_w - a.least / self._temps(a.log_w.ndim)
        mean_y = np.exp(a.log_y1 - a.log_w)
        variance = np.exp(a.log_y2 - a.log_w) - mean_y**2
        return ln_z, a.least + mean_y, variance


class _Steps(NamedTuple):
    """The chain's one-step paths: the bond matrix (2, 2) and the free ends as a row (1, 2) and a
    column (2, 1), each measured from its least energy (``bond_least``, ``end_least``)."""

    bond: _Paths
    row: _Paths
    column: _Paths
    bond_least: float
    end_least: float

    def offset(self, n: int, boundary: str) -> float:
        """The energy taken off every state of the chain by measuring steps from their least."""
        if boundary == "periodic":
            return n * self.bond_least
        return (n - 1) * self.bond_least + 2.0 * self.end_least


def _one_step(least: np.ndarray, tb: int, moments: bool) -> _Paths:
    """Single paths of energy ``least``, at tb temperatures."""
    zeros = np.zeros((tb, *least.shape))
    if not moments:
        return _Paths(least[None], zeros)
    return _Paths(least[None], zeros, np.full_like(zeros, -np.inf), np.full_like(zeros, -np.inf))


def _field_steps(J: float, h: float, resolution: float, tb: int, moments: bool) -> _Steps:
    """Bond energies e(s, s') = -J s s' - (h/2)(s + s') and end energies f(s) = -(h/2) s."""
    s = _SPINS
    bond = -J * s[:, None] * s[None, :] - 0.5 * h * (s[:, None] + s[None, :])
    end = -0.5 * h * s
    bond_least, end_least = float(bond.min()), float(end.min())
    bond = np.where(bond - bond_least <= resolution, 0.0, bond - bond_least)
    end = end - end_least
    return _Steps(
        _one_step(bond, tb, moments),
        _one_step(end[None, :], tb, moments),
        _one_step(end[:, None], tb, moments),
        bond_least,
        end_least,
    )


def _transfer_thermodynamics(
    n: int, temps: np.ndarray, boundary: str, J: float, h: float, resolution: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lnZ (total), E/N and C/N from the product of moment-carrying transfer matrices."""
    arithmetic = _Arithmetic(temps, resolution)
    steps = _field_steps(J, h, resolution, temps.size, moments=True)
    if boundary == "periodic":
        power = arithmetic.power(steps.bond, n)
        total = arithmetic.add(power.take((..., 0, 0)), power.take((..., 1, 1)))
    else:
        power = arithmetic.power(steps.bond, n - 1)
        chain = arithmetic.matmul(arithmetic.matmul(steps.row, power), steps.column)
        total = chain.take((..., 0, 0))
    ln_z, energy, variance = arithmetic.moments(total)
    offset = steps.offset(n, boundary)
    return ln_z - offset / temps, (offset + energy) / n, variance / temps / temps / n


def _prefix_powers(arithmetic: _Arithmetic, a: _Paths, b: _Paths | None, n: int) -> _Paths:
    """Powers k = 1..n of a (2, 2) matrix along a new axis -3, by doubling prefixes.

    With ``b``, the powers of the block matrix [[a, b], [0, a]] instead: their diagonal blocks
    a^k stacked on their top-right blocks sum_{j<k} a^j b a^(k-1-j) along axis -4.
    """

    def mul(x: _Paths, y: _Paths) -> _Paths:
        if b is None:
            return arithmetic.matmul(x, y)
        xa, xb = x.take((..., 0, _ALL, _ALL, _ALL)), x.take((..., 1, _ALL, _ALL, _ALL))
        ya, yb = y.take((..., 0, _ALL, _ALL, _ALL)), y.take((..., 1, _ALL, _ALL, _ALL))
        top = arithmetic.add(arithmetic.matmul(xa, yb), arithmetic.matmul(xb, ya))
        blocks = [arithmetic.matmul(xa, ya), top]
        return _concatenate([p.take((..., None, _ALL, _ALL, _ALL)) for p in blocks], axis=-4)

    first = a if b is None else _concatenate([a.take((_ALL, None)), b.take((_ALL, None))], -3)
    powers = first.take((..., None, _ALL, _ALL))
    count = 1
    while count < n:
        last = powers.take((..., slice(count - 1, count), _ALL, _ALL))
        more = mul(powers.take((..., slice(0, n - count), _ALL, _ALL)), last)
        powers = _concatenate([powers, more], axis=-3)
        count = powers.least.shape[-3]
    return powers


def _transfer_correlations(
    n: int, temps: np.ndarray, boundary: str, J: float, h: float, resolution: float
) -> tuple[np.ndarray, np.ndarray]:
    """Correlations (temps, r) at the chain's distances and <m> (temps,), by sigma_z insertions
    into products of transfer matrices, in blocks of temperatures."""
    r = chain_distances(n, boundary)
    pair_signs = _SPINS[:, None] * _SPINS[None, :]
    correlation = np.empty((temps.size, r.size))
    magnetization = np.empty(temps.size)
    tb = max(1, _PREFIX_BLOCK // n)
    for start in range(0, temps.size, tb):
        part = slice(start, start + tb)
        arithmetic = _Arithmetic(temps[part], resolution)
        steps = _field_steps(J, h, resolution, temps[part].size, moments=False)
        if boundary == "periodic":
            powers = _prefix_powers(arithmetic, steps.bond, None, n)
            left = powers.take((_ALL, r - 1))
            right = powers.take((_ALL, n - r - 1)).transpose()
            whole = powers.take((_ALL, n - 1))
        else:
            ends = arithmetic.mul(steps.column, steps.row)
            powers = _prefix_powers(arithmetic, steps.bond, ends, n)
            left = powers.take((_ALL, 0, r - 1))
            right = powers.take((_ALL, 1, n - 1 - r))
            whole = powers.take((_ALL, 1, n - 1))
        pairs = arithmetic.probabilities(arithmetic.mul(left, right), axes=(-2, -1))
        correlation[part] = np.einsum("trij,ij->tr", pairs, pair_signs)
        diagonal = whole.take((_ALL, [0, 1], [0, 1]))
        magnetization[part] = arithmetic.probabilities(diagonal, axes=(-1,)) @ _SPINS
    return correlation, magnetization


# ------------------------------------------------------------------ counting walls and ups
class _Counting(NamedTuple):
    """The states of a chain by domain walls w and up spins u: rows of w, each with its fewest
    up spins ``low`` (the most is n - low), and the least-energy cell (w0, u0)."""

    n: int
    boundary: str
    walls: np.ndarray
    low: np.ndarray
    ground: tuple[int, int]
    ground_energy: float
    log_factorial: np.ndarray

    def log_degeneracy(self, rows: slice, ups: np.ndarray) -> np.ndarray:
        """ln g(w, u) for the walls of ``rows`` and the up-spin counts ``ups``: (rows, ups);
        -inf where there is no such state."""
        n, w, u = self.n, self.walls[rows][:, None], ups[None, :]
        if self.boundary == "free":
            most, fewest = (w + 2) // 2, (w + 1) // 2  # domains of the majority kind and the other
            starts_up = self._log_compositions(u, most) + self._log_compositions(n - u, fewest)
            starts_down = self._log_compositions(u, fewest) + self._log_compositions(n - u, most)
            return np.logaddexp(starts_up, starts_down)
        k = w // 2
        runs = (
            np.log(n / np.maximum(k, 1))
            + self._log_compositions(u, k)
            + self._log_compositions(n - u, k)
        )
        return np.where(k == 0, np.where((u == 0) | (u == n), 0.0, -np.inf), runs)

    def _log_compositions(self, total: np.ndarray, parts: np.ndarray) -> np.ndarray:
        """ln C(total - 1, parts - 1): ways to write ``total`` as ``parts`` positive integers
        (1 way for 0 = a sum of no parts)."""
        lf = self.log_factorial
        ways = (
            lf[np.maximum(total - 1, 0)]
            - lf[np.maximum(parts - 1, 0)]
            - lf[np.maximum(total - parts, 0)]
        )
        ways = np.where((parts >= 1) & (total >= parts), ways, -np.inf)
        return np.where((total == 0) & (parts == 0), 0.0, ways)

    def excess(self, rows: slice, ups: np.ndarray, J: float, h: float) -> np.ndarray:
        """E(w, u) - E0 = 2J (w - w0) - 2h (u - u0), (rows, ups)."""
        w0, u0 = self.ground
        return 2.0 * J * (self.walls[rows][:, None] - w0) - 2.0 * h * (ups[None, :] - u0)


def _counting(n: int, boundary: str, J: float, h: float) -> _Counting:
    """Rows of walls (free: 0..n-1; ring: even, 0..n) and the ground cell, which lies at the
    fewest or the most up spins of its row since E is linear in u."""
    walls = np.arange(n) if boundary == "free" else np.arange(0, n + 1, 2)
    low = (walls + 1) // 2 if boundary == "free" else walls // 2
    bonds = n - 1 if boundary == "free" else n
    rows = np.concatenate([walls, walls])
    ups = np.concatenate([low, n - low])
    energies = -J * (bonds - 2.0 * rows) - h * (2.0 * ups - n)
    best = int(np.argmin(energies))
    return _Counting(
        n=n,
        boundary=boundary,
        walls=walls,
        low=low,
        ground=(int(rows[best]), int(ups[best])),
        ground_energy=float(energies[best]),
        log_factorial=gammaln(np.arange(n + 1) + 1.0),
    )


def _row_blocks(counting: _Counting, width: int) -> list[tuple[slice, np.ndarray]]:
    """Blocks of rows, each with the up-spin counts that its rows can have, about ``width``
    entries (rows x ups) a block."""
    n = counting.n
    blocks = []
    start = 0
    while start < counting.walls.size:
        ups = np.arange(counting.low[start], n - counting.low[start] + 1)
        stop = min(counting.walls.size, start + max(1, width // ups.size))
        blocks.append((slice(start, stop), ups))
        start = stop
    return blocks


def _magnetization_distribution(
    n: int, temps: np.ndarray, boundary: str, J: float, h: float, resolution: float
) -> tuple[np.ndarray, np.ndarray]:
    """<M/N> and <|M|/N> (each (temps,)) from P(M = 2u - N) = sum_w g(w, u) e^(-E/T) / Z.

    The weights e^(-(E - E0)/T) g are summed in blocks of cells, scaled by the largest log
    weight met so far at each temperature, so that none overflows.
    """
    counting = _counting(n, boundary, J, h)
    tb = max(1, min(temps.size, _BLOCK // (n + 1)))
    weights = np.zeros((temps.size, n + 1))
    for start in range(0, temps.size, tb):
        part = slice(start, start + tb)
        inverse = -1.0 / temps[part][:, None, None]
        top = np.full(inverse.shape, -np.inf)
        for rows, ups in _row_blocks(counting, _BLOCK // inverse.shape[0]):
            excess = counting.excess(rows, ups, J, h)
            excess = np.where(excess <= resolution, 0.0, excess)
            log_w = excess[None] * inverse
            log_w += counting.log_degeneracy(rows, ups)[None]
            new_top = np.maximum(top, np.max(log_w, axis=(1, 2), keepdims=True))
            weights[part] *= np.exp(top - new_top)[:, :, 0]
            log_w -= new_top
            np.exp(log_w, out=log_w)
            weights[part, ups[0] : ups[-1] + 1] += np.sum(log_w, axis=1)
            top = new_top
    total = 2.0 * np.arange(n + 1) - n
    norm = np.sum(weights, axis=1)
    return weights @ total / norm / n, weights @ np.abs(total) / norm / n


def _field_spectrum(
    n: int, boundary: str, J: float, h: float, resolution: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Distinct levels measured from the ground energy E0 (ascending), their log degeneracies,
    and E0. Cells whose energies agree to within ``resolution`` are one level."""
    counting = _counting(n, boundary, J, h)
    excesses, log_gs = [], []
    for rows, ups in _row_blocks(counting, _BLOCK):
        log_g = counting.log_degeneracy(rows, ups)
        there = log_g > -np.inf
        excesses.append(counting.excess(rows, ups, J, h)[there])
        log_gs.append(log_g[there])
    excess, log_g = np.concatenate(excesses), np.concatenate(log_gs)
    order = np.argsort(excess, kind="stable")
    excess, log_g = excess[order], log_g[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(excess) > resolution) + 1])
    levels = np.where(excess[starts] <= resolution, 0.0, excess[starts])
    return levels, np.logaddexp.reduceat(log_g, starts), counting.ground_energy


def ising1d_energy_distribution(
    n: int,
    temps: np.ndarray | list[float] | float,
    *,
    boundary: str,
    J: float = 1.0,
    h: float = 0.0,
) -> EnergyDistribution:
    """Exact distribution of the total energy of an Ising chain: levels ascending, (temps, levels).

    Free ends: E = -J(N-1) + 2Jk for k = 0..N-1 domain walls, 2 C(N-1, k) states each.
    Ring: only even k = 0..N, E = -JN + 2Jk, 2 C(N, k) states each.
    In a field: E = -J(B - 2w) - h(2u - N) for w walls among B bonds and u up spins, with the
    degeneracies of the module docstring; levels that coincide (h/J rational) are merged. It has
    up to about N^2/2 levels, so n is limited to :data:`MAX_FIELD_LEVEL_SITES` and
    temperatures x levels to :data:`MAX_FIELD_LEVEL_ENTRIES`.
    """
    n, boundary, J = check_length(n), check_boundary(boundary), check_coupling(J)
    h = _check_field(h)
    temps = check_temperatures(temps)
    solver = f"the exact energy distribution of the Ising chain of {n} sites"
    reduced_couplings(temps, J, MAX_COUPLING, solver, MAX_COUPLING_WHY)
    if h != 0.0:
        return _field_energy_distribution(n, temps, boundary, J, h, f"{solver} in a field")
    levels, log_g = _free_spectrum(n, J) if boundary == "free" else _ring_spectrum(n, J)
    order = np.argsort(levels)
    levels, log_g = levels[order], log_g[order]
    log_p, _ = level_log_probabilities(levels, log_g, 1.0 / temps)
    return EnergyDistribution(levels=levels, probabilities=np.exp(log_p))


def _field_energy_distribution(
    n: int, temps: np.ndarray, boundary: str, J: float, h: float, solver: str
) -> EnergyDistribution:
    """:func:`ising1d_energy_distribution` for h != 0 (arguments checked)."""
    _check_field_temperatures(temps, h, solver)
    if n > MAX_FIELD_LEVEL_SITES:
        raise ExactSolutionError(
            f"{solver} has up to N^2/2 = {n * n // 2} levels; it is built for "
            f"N <= {MAX_FIELD_LEVEL_SITES} sites"
        )
    excess, log_g, ground = _field_spectrum(n, boundary, J, h, _energy_resolution(n, J, h))
    if excess.size * temps.size > MAX_FIELD_LEVEL_ENTRIES:
        raise ExactSolutionError(
            f"{solver} has {excess.size} levels: {excess.size} x {temps.size} temperatures is "
            f"more than {MAX_FIELD_LEVEL_ENTRIES} probabilities; use fewer temperatures"
        )
    log_p, _ = level_log_probabilities(excess, log_g, 1.0 / temps)
    return EnergyDistribution(levels=ground + excess, probabilities=np.exp(log_p))


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
