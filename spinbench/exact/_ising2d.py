"""Exact 2D Ising model, H = -J sum_<ij> s_i s_j: infinite lattice (Onsager) and finite torus.

Finite torus, Kaufman (1949) in the Ferdinand–Fisher (1969) form, for m rows and n columns:

    Z = 1/2 (2 sinh 2K)^(mn/2) (Z1 + Z2 + Z3 + Z4),
    Z1 = prod_{r<n} 2 cosh(m g_{2r+1}/2),  Z2 = prod_{r<n} 2 sinh(m g_{2r+1}/2),
    Z3 = prod_{r<n} 2 cosh(m g_{2r}/2),    Z4 = prod_{r<n} 2 sinh(m g_{2r}/2),
    cosh g_l = cosh 2K coth 2K - cos(pi l / n),   g_0 = 2K + ln tanh K (signed),

K = |J|/T. g_0 changes sign at T_c (positive below, negative above), so Z4 does too; the
formula is symmetric in m <-> n (checked against enumeration for non-square lattices).
Everything is in the log domain. E and C come from exact analytic derivatives of each factor:
lnZ' and lnZ'' are combined over the four terms as a signed mixture,
lnZ'' = sum_i p_i B_i + sum_i p_i (A_i - <A>)^2, so no large numbers are subtracted; the factor
2 sinh(m g_0 / 2) of Z4, which vanishes at T_c, is differentiated directly rather than through
its logarithm. Against enumeration lnZ and E agree to ~1e-14 and C to ~1e-12 (relative) for
|J|/T <= 2; at high T the prefactor and the sums over l cancel polynomially, leaving a relative
error ~1e-16 (T/|J|)^2 (1e-12 at T = 100 |J|). Below T = |J|/2, C/N is exponentially small
(< 3e-5) and the closed form cancels (e^{-4K} terms of the prefactor and of the sums over l
cancel to leave e^{-8K}): C/N is then accurate to ~1e-13 absolute, not relative, and is clipped
at 0; ``notes`` says so.

Infinite lattice: Onsager's energy and heat capacity in closed form with complete elliptic
integrals of modulus k = 2 sinh 2K / cosh^2 2K, switching to exact power series in k^2 where the
closed forms cancel (k^2 < 0.1: low and high T); lnZ per site from the paper's eq. (8) by
quadrature; Yang's spontaneous magnetisation.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import numpy as np
from scipy.integrate import quad
from scipy.special import ellipe, ellipkm1

from .._errors import FrustratedTorusError
from ..temperatures import check_temperatures
from ._common import check_coupling, check_length, reduced_couplings
from ._result import ExactResult

__all__ = ["ISING2D_TC", "FrustratedTorusError", "ising2d_infinite", "ising2d_torus"]

#: Critical temperature of the infinite square lattice for J = 1: 2 / ln(1 + sqrt 2).
ISING2D_TC = 2.0 / math.log(1.0 + math.sqrt(2.0))

#: Largest |J|/T accepted: beyond it sinh(2K) overflows float64 (and the lattice is frozen).
_MAX_COUPLING = 300.0
#: Largest |J|/T at which the torus heat capacity keeps ~1e-11 relative accuracy.
_RELATIVE_C_UP_TO = 2.0
#: Temperatures of the torus are processed in blocks of at most this many (temps, 2 ly) entries,
#: so the work arrays stay at tens of MB whatever the grid, even at 10^5 sites per side.
_TORUS_BLOCK_ENTRIES = 2**19
#: Below this k^2 the infinite-lattice E and C use their power series (both ends of T).
_SERIES_BELOW = 0.1
_SERIES_TERMS = 40


def _reduced_coupling(temps: np.ndarray, J: float, solver: str) -> np.ndarray:
    return reduced_couplings(
        temps,
        J,
        _MAX_COUPLING,
        solver,
        "below it the lattice is in its ground state to float64 precision, and the closed form "
        "overflows float64",
    )


# --------------------------------------------------------------------------- finite torus
def _ln_2cosh(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return a + np.log1p(np.exp(-2.0 * a))


def _ln_2sinh_abs(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    with np.errstate(divide="ignore"):
        return a + np.log(-np.expm1(-2.0 * a))


def _ln_tanh_abs(x: np.ndarray) -> np.ndarray:
    """ln|tanh x| = ln|2 sinh x| - ln(2 cosh x), accurate for all x (-inf at 0)."""
    a = np.abs(x)
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(-2.0 * a)) - np.log1p(np.exp(-2.0 * a))


def _signed_logsumexp(logs: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """ln(sum_i signs_i exp(logs_i)) along the last axis, for a sum known to be positive."""
    top = np.max(np.where(signs != 0, logs, -np.inf), axis=-1, keepdims=True)
    total = np.sum(signs * np.exp(np.where(signs != 0, logs - top, -np.inf)), axis=-1)
    return top[..., 0] + np.log(total)


def _factor_derivatives(
    x: np.ndarray, dx: np.ndarray, ddx: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """First and second K-derivatives of sum_r ln g(x_r), g = 2 cosh or 2 sinh (x > 0).

    ``x``, ``dx`` = dx/dK, ``ddx`` = d^2x/dK^2 are (temps, r); returns two (temps,) arrays.
    """
    e = np.exp(-2.0 * np.abs(x))
    if kind == "cosh":
        d1 = np.sign(x) * (1.0 - e) / (1.0 + e)  # tanh x
        d2 = 4.0 * e / (1.0 + e) ** 2  # sech^2 x
    else:
        em1 = -np.expm1(-2.0 * x)
        d1 = (1.0 + e) / em1  # coth x
        d2 = -4.0 * e / em1**2  # -csch^2 x
    return (d1 * dx).sum(axis=1), (d2 * dx**2 + d1 * ddx).sum(axis=1)


def _torus_derivatives(m: int, n: int, k: np.ndarray) -> tuple[np.ndarray, ...]:
    """lnZ, d lnZ/dK and d^2 lnZ/dK^2 (each (temps,)) of the m x n torus at coupling K = k."""
    s = np.sinh(2.0 * k)
    ch = np.cosh(2.0 * k)
    # gamma_l for l = 0..2n-1 (l >= 1): arccosh(1 + y) with y = (s-1)^2/s + 2 sin^2(pi l / 2n).
    l = np.arange(2 * n)[None, :]
    y = (s - 1.0)[:, None] * (1.0 - 1.0 / s)[:, None] + 2.0 * np.sin(np.pi * l / (2 * n)) ** 2
    sinh_g = np.sqrt(y) * np.sqrt(2.0 + y)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.log1p(y + sinh_g)
        du = (2.0 * ch * (1.0 - (1.0 / s) ** 2))[:, None]  # d/dK (s + 1/s)
        ddu = (4.0 * (s - 1.0 / s) + 8.0 * (ch / s) ** 2 / s)[:, None]
        dgamma = du / sinh_g
        ddgamma = ddu / sinh_g - dgamma**2 * (1.0 + y) / sinh_g
    # gamma_0 with its sign: 2K + ln tanh K, zero at T_c.
    gamma[:, 0] = 2.0 * k + np.log(-np.expm1(-2.0 * k)) - np.log1p(np.exp(-2.0 * k))
    dgamma[:, 0] = 2.0 + 2.0 / s
    ddgamma[:, 0] = -4.0 * (ch / s) / s

    half = 0.5 * m
    x, dx, ddx = half * gamma, half * dgamma, half * ddgamma
    odd, even = slice(1, None, 2), slice(0, None, 2)
    x_odd, x_even, x0 = x[:, odd], x[:, even], x[:, 0]
    # Logs of Z2, Z3, Z4 relative to Z1, summed factor by factor so they stay accurate when the
    # products themselves are astronomically large; Z4 = R4 * 2 sinh(x0).
    ln_z1 = _ln_2cosh(x_odd).sum(axis=1)
    rel2 = _ln_tanh_abs(x_odd).sum(axis=1)
    rel3 = (_ln_2cosh(x_even) - _ln_2cosh(x_odd)).sum(axis=1)
    rel_r4 = rel3 + _ln_tanh_abs(x_even[:, 1:]).sum(axis=1) - _ln_2cosh(x0)
    rel4 = rel_r4 + _ln_2sinh_abs(x0)
    sign4 = np.sign(x0)
    zeros, ones = np.zeros_like(k), np.ones_like(k)
    rel = np.stack([zeros, rel2, rel3, np.where(sign4 == 0, 0.0, rel4)], axis=1)
    signs = np.stack([ones, ones, ones, sign4], axis=1)
    ln_sum = _signed_logsumexp(rel, signs)
    p = signs * np.exp(rel - ln_sum[:, None])  # signed shares of Z1..Z4 (sum to 1)
    rho_c = np.exp(rel_r4 + _ln_2cosh(x0) - ln_sum)  # (R4 / sum) * 2 cosh(x0)

    derivs = [
        _factor_derivatives(x_odd, dx[:, odd], ddx[:, odd], "cosh"),  # Z1
        _factor_derivatives(x_odd, dx[:, odd], ddx[:, odd], "sinh"),  # Z2
        _factor_derivatives(x_even, dx[:, even], ddx[:, even], "cosh"),  # Z3 (with l = 0)
        _factor_derivatives(x_even[:, 1:], dx[:, 2::2], ddx[:, 2::2], "sinh"),  # R4
    ]
    a = np.stack([d[0] for d in derivs], axis=1)
    b = np.stack([d[1] for d in derivs], axis=1)
    # Mix the four terms about Z1's values: the shares p carry rounding errors, so they must
    # multiply only differences, never the large common part of the derivatives.
    a_rel, b_rel = a - a[:, :1], b - b[:, :1]
    rho_ds0 = rho_c * dx[:, 0]  # (R4 / sum) * d/dK 2 sinh(x0)
    rho_dds0 = p[:, 3] * dx[:, 0] ** 2 + rho_c * ddx[:, 0]
    mean_rel = np.sum(p * a_rel, axis=1) + rho_ds0
    spread = a_rel - mean_rel[:, None]
    second = np.sum(p * (b_rel + spread**2), axis=1) + rho_dds0 + 2.0 * spread[:, 3] * rho_ds0

    sites = m * n
    ln_2sinh_2k = 2.0 * k + np.log(-np.expm1(-4.0 * k))
    ln_z = -math.log(2.0) + 0.5 * sites * ln_2sinh_2k + ln_z1 + ln_sum
    d1 = sites * ch / s + a[:, 0] + mean_rel  # (N/2) d ln(2 sinh 2K)/dK = N coth 2K
    d2 = -2.0 * sites * (1.0 / s) ** 2 + b[:, 0] + second
    return ln_z, d1, d2


def ising2d_torus(
    lx: int, ly: int, temps: np.ndarray | list[float] | float, J: float = 1.0
) -> ExactResult:
    """Exact lnZ (total), E/N and C/N of the Ising model on an ``lx`` x ``ly`` torus.

    Any lengths >= 2, square or not. J < 0 maps onto the ferromagnet by flipping one sublattice
    when both lengths are even; with an odd length the antiferromagnet is frustrated, which
    Kaufman's solution does not cover: :class:`FrustratedTorusError` (use enumeration,
    ``spinbench.exact.enumerate_exact``). Valid for |J|/T <= 300 (a ValueError names that limit
    below it); lattices of thousands of sites per side are cheap.
    """
    lx, ly, J = check_length(lx, "lx"), check_length(ly, "ly"), check_coupling(J)
    if J < 0 and (lx % 2 or ly % 2):
        raise FrustratedTorusError(
            f"the {lx}x{ly} antiferromagnetic torus (J < 0 with an odd length) is frustrated "
            "and has no Kaufman solution; use spinbench.exact.enumerate_exact for small lattices"
        )
    temps = check_temperatures(temps)
    k = _reduced_coupling(temps, J, f"the exact solution of the {lx}x{ly} Ising torus")
    block = max(1, _TORUS_BLOCK_ENTRIES // (2 * ly))
    parts = [_torus_derivatives(lx, ly, k[i : i + block]) for i in range(0, k.size, block)]
    ln_z, d1, d2 = (np.concatenate(column) for column in zip(*parts, strict=True))
    sites = lx * ly
    notes = {"ln_z": "total lnZ of the finite torus"}
    if np.any(k > _RELATIVE_C_UP_TO):
        notes["heat_capacity"] = (
            f"below T = {abs(J) / _RELATIVE_C_UP_TO:g} the heat capacity is accurate to ~1e-13 "
            "absolute (it is exponentially small there), not to float64 relative precision"
        )
    return ExactResult(
        temps=temps,
        ln_z=ln_z,
        energy=-abs(J) * d1 / sites,
        heat_capacity=np.maximum(k**2 * d2 / sites, 0.0),
        source="Kaufman (1949), Ferdinand & Fisher (1969): finite torus",
        notes=notes,
    )


# --------------------------------------------------------------------------- infinite lattice
@cache
def _series() -> tuple[np.ndarray, ...]:
    """Exact power-series coefficients in m = k^2 (lowest order first) of, with c = sqrt(1-m),
    Kh = 2K(m)/pi and Eh = 2E(m)/pi: the energy bracket 1 - c Kh (high T), and the heat-capacity
    bracket Kh - Eh - (1 + s c)(1 - s c Kh)/2 for s = +1 (high T) and s = -1 (low T)."""
    count = _SERIES_TERMS
    a = [Fraction(math.comb(2 * i, i), 4**i) ** 2 for i in range(count)]
    kh = a
    eh = [a[i] / (1 - 2 * i) for i in range(count)]
    c = [Fraction(1)]
    for i in range(1, count):  # binomial series of sqrt(1 - m)
        c.append(c[-1] * (Fraction(2 * i - 3, 2)) / i)

    def mul(p: list[Fraction], q: list[Fraction]) -> list[Fraction]:
        out = [Fraction(0)] * count
        for i, pi in enumerate(p):
            for j in range(count - i):
                out[i + j] += pi * q[j]
        return out

    one = [Fraction(1)] + [Fraction(0)] * (count - 1)
    c_kh = mul(c, kh)
    one_minus_m_kh = [kh[i] - (kh[i - 1] if i else 0) for i in range(count)]
    energy_high = [one[i] - c_kh[i] for i in range(count)]
    heat = []
    for s in (1, -1):
        # (1 + s c)(1 - s c Kh) / 2 = (1 + s c - s c Kh - (1 - m) Kh) / 2
        bracket = [
            kh[i] - eh[i] - (one[i] + s * c[i] - s * c_kh[i] - one_minus_m_kh[i]) / 2
            for i in range(count)
        ]
        heat.append(bracket)
    return tuple(np.array([float(v) for v in seq]) for seq in (energy_high, *heat))


def _poly(coefficients: np.ndarray, m: np.ndarray) -> np.ndarray:
    return np.polynomial.polynomial.polyval(m, coefficients)


def ising2d_infinite(temps: np.ndarray | list[float] | float, J: float = 1.0) -> ExactResult:
    """Onsager's infinite square lattice: E/N, C/N, lnZ per site and |m| (Yang), per T.

    ``ln_z`` is lnZ per site here (the total is infinite); ``notes`` records it. For J < 0 the
    energy and heat capacity equal the ferromagnet's; the uniform |m| is 0 (Yang's value is then
    the staggered magnetisation).
    """
    J = check_coupling(J)
    temps = check_temperatures(temps)
    k = _reduced_coupling(temps, J, "Onsager's solution of the infinite Ising lattice")
    s = np.sinh(2.0 * k)
    coth = np.cosh(2.0 * k) / s
    kappa = (1.0 / s - s) / (1.0 / s + s)  # signed complementary modulus = 1 - 2 tanh^2 2K
    p = kappa**2  # 1 - m, accurate near T_c
    m = (2.0 / (s + 1.0 / s)) ** 2  # k^2, accurate at low and high T
    with np.errstate(divide="ignore", invalid="ignore"):
        ellip_k = ellipkm1(p)
        ellip_e = ellipe(m)
        kappa_k = np.where(kappa == 0.0, 0.0, kappa * ellip_k)
        bracket_e = 1.0 - (2.0 / np.pi) * kappa_k
        bracket_c = ellip_k - ellip_e - 0.5 * (1.0 + kappa) * (0.5 * np.pi - kappa_k)
    energy_high, heat_high, heat_low = _series()
    small = m < _SERIES_BELOW
    bracket_e = np.where(small & (kappa > 0), _poly(energy_high, m), bracket_e)
    series_c = 0.5 * np.pi * np.where(kappa > 0, _poly(heat_high, m), _poly(heat_low, m))
    bracket_c = np.where(small, series_c, bracket_c)
    bracket_c = np.where(kappa == 0.0, np.inf, bracket_c)

    energy = -abs(J) * coth * bracket_e
    heat_capacity = (4.0 / np.pi) * (k * coth) ** 2 * bracket_c
    ln_z = np.array([_onsager_ln_lambda(kk, pp) for kk, pp in zip(k, p, strict=True)])
    with np.errstate(divide="ignore"):
        yang = np.where(s > 1.0, np.clip(1.0 - s**-4.0, 0.0, None) ** 0.125, 0.0)
    magnetization = yang if J > 0 else np.zeros_like(yang)
    notes = {
        "ln_z": "lnZ per site of the infinite lattice (paper eq. 8), not a total",
        "abs_magnetization": "spontaneous magnetisation (Yang 1952), 0 above T_c",
    }
    if J < 0:
        notes["abs_magnetization"] = (
            "uniform |m| of the antiferromagnet is 0; Yang's value is its staggered magnetisation"
        )
    return ExactResult(
        temps=temps,
        ln_z=ln_z,
        energy=energy,
        heat_capacity=heat_capacity,
        abs_magnetization=magnetization,
        source="Onsager (1944), Yang (1952): infinite square lattice",
        notes=notes,
    )


def _onsager_ln_lambda(k: float, p: float) -> float:
    """ln lambda = ln(2 cosh 2K) + (1/pi) int_0^{pi/2} ln[(1 + sqrt(1 - m sin^2 w))/2] dw.

    ``p`` = 1 - m; the root is written cos^2 w + p sin^2 w to stay accurate near T_c.
    """

    def integrand(w: float) -> float:
        root = math.sqrt(math.cos(w) ** 2 + p * math.sin(w) ** 2)
        return math.log1p(0.5 * (root - 1.0))

    integral, _ = quad(integrand, 0.0, 0.5 * math.pi, epsabs=1e-15, epsrel=1e-13, limit=200)
    return 2.0 * k + math.log1p(math.exp(-4.0 * k)) + integral / math.pi
