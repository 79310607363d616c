"""Exact density of states g(E) of the Ising torus in zero field (Beale 1996), and from it the
exact energy distribution at any temperature.

Beale (P. D. Beale, Phys. Rev. Lett. 76, 78 (1996)) writes Kaufman's finite-torus partition
function as a polynomial in x = e^{-2K} with integer coefficients, the numbers of states. On an
m x n torus every configuration has an even number 2k of unsatisfied bonds (k = 0..N, N = mn),
energy E = -|J|(2N - 4k), so

    Z e^{-2NK} = sum_k g_k x^{2k} = G(x),    2 G(x) = Q1 + Q2 + Q3 + Q4,

where Q_i = x^N (2 sinh 2K)^{N/2} Z_i (``_ising2d``'s Z1..Z4) is a polynomial in x. The factors
of Z_i with momenta l and 2n - l are equal (gamma_l = gamma_{2n-l}); each such pair gives

    x^{2m} (2 sinh 2K)^m [2 cosh(m gamma_l / 2)]^2 = V_m(P_l, D) + 2 b^m      (Z1, Z3),
    x^{2m} (2 sinh 2K)^m [2 sinh(m gamma_l / 2)]^2 = V_m(P_l, D) - 2 b^m      (Z2, Z4),

with b = x(1 - x^2), D = b^2, P_l = (1 + x^2)^2 - b t_l, t_l = 2 cos(pi l / n), and V_m the
Lucas sequence V_0 = 2, V_1 = P, V_{k+1} = P V_k - D V_{k-1} (a Chebyshev polynomial). The
unpaired momenta l = 0 (gamma_0 with its sign) and l = n are exact binomials:
x^m (2 sinh 2K)^{m/2} 2 cosh|sinh(m gamma_0 / 2) = (1 - x)^m +|- x^m (1 + x)^m and
x^m (2 sinh 2K)^{m/2} 2 cosh|sinh(m gamma_n / 2) = (1 + x)^m +|- x^m (1 - x)^m.

The t_l are algebraic integers, so the coefficients of each Q_i live in Z[2 cos(pi / n)] and
only their sum is in Z[x]. Beale expanded the products exactly with computer algebra; here the
same identity is evaluated in the prime fields F_p with p = 1 (mod lcm(2n, 2M)), where
2 cos(pi l / n) is w^l + w^-l for a 2n-th root of unity w: G(x) = H(x^2) is evaluated at
square roots of the M-th roots of unity (M the least power of two >= N), the coefficients of
H come back by an inverse number-theoretic transform (mod y^M - 1: when M = N, g_N folds onto
g_0, which is 2, the two ground states), and the Chinese remainder theorem over primes whose
product exceeds 2^N returns the exact integers g_k (all in [0, 2^N]). Every step is exact
integer arithmetic: numpy int64 vectorised over primes and points (residues below 2^31, so
products fit), then Python ints. The result is checked (sum g = 2^N, g_0 = 2, nothing beyond
k = N) before it is returned.

Cost: one Lucas ladder per momentum (about log2 m modular products) on (primes x M) arrays,
~N/31 primes: O(N^2 log m / 31). Measured cold on a shared 2-core VM: 0.05 s at 16x16, 0.3 s at
32x32, 2.5 s at 48x48, 5-6 s at 64x64 (docs/exact.md). The counts of a size are kept in memory
for the rest of the process (:func:`functools.lru_cache`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .._errors import ExactSolutionError, FrustratedTorusError
from ..temperatures import check_temperatures
from ._common import (
    MAX_COUPLING,
    MAX_COUPLING_WHY,
    check_coupling,
    check_length,
    level_log_probabilities,
    reduced_couplings,
)
from ._result import EnergyDistribution

__all__ = [
    "ISING2D_DOS_MAX_SITES",
    "DensityOfStates",
    "ising2d_density_of_states",
    "ising2d_energy_distribution",
]

#: Most sites of a torus whose density of states is computed (64 x 64): the cost grows as
#: N^2 log N, 0.3 s at 32x32 and 5 s at 64x64 on a shared 2-core VM.
ISING2D_DOS_MAX_SITES = 64 * 64

#: Residues stay below 2^31, so a product of two fits in int64.
_PRIME_LIMIT = 2**31
#: Primes up to sqrt(2^31) decide whether a number below 2^31 is prime by trial division.
_SMALL_PRIME_LIMIT = math.isqrt(_PRIME_LIMIT) + 1
#: Primes evaluated together (work arrays of _PRIME_BLOCK x M int64).
_PRIME_BLOCK = 8


@dataclass(frozen=True)
class DensityOfStates:
    """Exact numbers of states of an Ising torus by energy (h = 0).

    ``counts[i]`` configurations (an exact Python int) have total energy ``energies[i]`` in
    units of |J| (ascending; only levels with at least one state). They sum to 2^N.
    """

    shape: tuple[int, int]
    energies: tuple[int, ...]
    counts: tuple[int, ...]

    def log_counts(self) -> np.ndarray:
        """ln g for each level, float64 (from the exact ints: no overflow at any size)."""
        return np.array([math.log(c) for c in self.counts], dtype=np.float64)


def _check_shape(lx: int, ly: int) -> tuple[int, int]:
    lx, ly = check_length(lx, "lx"), check_length(ly, "ly")
    if lx * ly > ISING2D_DOS_MAX_SITES:
        raise ExactSolutionError(
            f"the exact density of states of the {lx}x{ly} torus ({lx * ly} sites) is not "
            f"computed beyond {ISING2D_DOS_MAX_SITES} sites (64x64): its cost grows as "
            "N^2 log N; use the Kaufman values (ising2d_torus) for E, C and lnZ"
        )
    return lx, ly


def ising2d_density_of_states(lx: int, ly: int) -> DensityOfStates:
    """The exact density of states g(E) of the ferromagnetic ``lx`` x ``ly`` Ising torus in
    zero field, by Beale's method (see the module's docstring).

    Any lengths >= 2, even or odd, square or not, up to :data:`ISING2D_DOS_MAX_SITES` sites
    (64x64); other sizes are an :class:`~spinbench.ExactSolutionError` (a ValueError). The
    antiferromagnet (J < 0) has the same g(E) when both lengths are even (flip one sublattice);
    with an odd length it is frustrated (see :func:`ising2d_energy_distribution`).
    """
    lx, ly = _check_shape(lx, ly)
    dos = _density_of_states(*sorted((lx, ly)))  # g is symmetric in lx <-> ly (transpose)
    return dos if dos.shape == (lx, ly) else dataclasses.replace(dos, shape=(lx, ly))


@lru_cache(maxsize=16)
def _density_of_states(lx: int, ly: int) -> DensityOfStates:
    counts = _counts(lx, ly)
    sites = lx * ly
    present = [k for k, c in enumerate(counts) if c]
    return DensityOfStates(
        shape=(lx, ly),
        energies=tuple(-2 * sites + 4 * k for k in present),
        counts=tuple(counts[k] for k in present),
    )


def ising2d_energy_distribution(
    lx: int, ly: int, temps: np.ndarray | list[float] | float, J: float = 1.0
) -> EnergyDistribution:
    """Exact distribution of the total energy of the ``lx`` x ``ly`` Ising torus (h = 0) at each
    temperature: levels (ascending) and probabilities (temps, levels), from the exact density of
    states in the log domain (float64, no overflow at any T).

    J < 0 with an odd length is frustrated and has no Kaufman/Beale solution:
    :class:`~spinbench.FrustratedTorusError` (use enumeration for small lattices).
    """
    J = check_coupling(J)
    lx, ly = _check_shape(lx, ly)
    if J < 0 and (lx % 2 or ly % 2):
        raise FrustratedTorusError(
            f"the {lx}x{ly} antiferromagnetic torus (J < 0 with an odd length) is frustrated "
            "and has no Beale density of states; use spinbench.exact.enumerate_energy_distribution "
            "for small lattices"
        )
    temps = check_temperatures(temps)
    solver = f"the exact energy distribution of the {lx}x{ly} Ising torus"
    reduced_couplings(temps, J, MAX_COUPLING, solver, MAX_COUPLING_WHY)
    dos = ising2d_density_of_states(lx, ly)
    levels = abs(J) * np.asarray(dos.energies, dtype=np.float64)
    log_p, _ = level_log_probabilities(levels, dos.log_counts(), 1.0 / temps)
    return EnergyDistribution(levels=levels, probabilities=np.exp(log_p))


# --------------------------------------------------------------------------- the computation
def _counts(m: int, n: int) -> list[int]:
    """g_k (k = 0..N unsatisfied-bond pairs) of the m x n torus as exact ints."""
    sites = m * n
    size = 1 << max(0, (sites - 1).bit_length())  # M: least power of two >= N
    # Products over the n momenta, a Lucas ladder in m for each: take the cheaper orientation.
    if _ladder_cost(m) * n > _ladder_cost(n) * m:
        m, n = n, m
    primes, generators = _primes(math.lcm(2 * n, 2 * size), sites + 2)
    p = primes[:, None]
    order = primes - 1
    omega = _pow_scalar(generators, order // (2 * n), primes)  # 2n-th roots: cos(pi l / n)
    phi = _pow_scalar(generators, order // (2 * size), primes)  # 2M-th roots: the points x_j
    x = _powers(phi, size, primes)  # x_j = phi^j, (primes, M); x_j^2 are the M-th roots of 1
    # A few primes at a time: the work arrays stay in the processor's cache.
    values = np.concatenate(
        [
            _evaluate(
                m, n, x[i : i + _PRIME_BLOCK], omega[i : i + _PRIME_BLOCK], p[i : i + _PRIME_BLOCK]
            )
            for i in range(0, primes.size, _PRIME_BLOCK)
        ]
    )
    psi_inverse = _pow_scalar(phi, 2 * size - 2, primes)  # (phi^2)^-1
    residues = _ntt(values, psi_inverse, primes)
    residues = residues * _pow_scalar(np.full_like(primes, size), order - 1, primes)[:, None] % p
    counts = _chinese_remainder(residues, primes)
    if size == sites:  # H mod (y^M - 1) folds g_N onto g_0, which is 2 (the ground states)
        counts.append(counts[0] - 2)
        counts[0] = 2
    if counts[0] != 2 or any(counts[sites + 1 :]) or sum(counts) != 2**sites or min(counts) < 0:
        raise RuntimeError(f"the density of states of the {m}x{n} torus failed its checks")
    return counts[: sites + 1]


def _ladder_cost(m: int) -> int:
    """Modular products per momentum of the Lucas ladder for V_m (see :func:`_lucas`)."""
    odd = m >> ((m & -m).bit_length() - 1)
    return 3 * odd.bit_length() + ((m & -m).bit_length() - 1)


def _evaluate(m: int, n: int, x: np.ndarray, omega: np.ndarray, p: np.ndarray) -> np.ndarray:
    """H(x^2) = (Q1 + Q2 + Q3 + Q4) / 2 mod p at the points ``x`` (primes, M)."""
    one = np.ones_like(x)
    x2 = x * x % p
    a = (one + x2) % p
    a = a * a % p
    b = x * ((one - x2) % p) % p
    d = b * b % p
    two_bm = 2 * _pow(b, m, p) % p
    xm = _pow(x, m, p)
    up, down = _pow((one + x) % p, m, p), _pow((one - x) % p, m, p)
    # Unpaired momenta: l = 0 (even set, gamma_0 signed) and l = n (odd set if n is odd, else even).
    xm_up, xm_down = xm * up % p, xm * down % p
    zero_plus, zero_minus = (down + xm_up) % p, (down - xm_up) % p
    half_plus, half_minus = (up + xm_down) % p, (up - xm_down) % p
    if n % 2:
        q1, q2, q3, q4 = half_plus, half_minus, zero_plus, zero_minus
    else:
        q1, q2 = one, one
        q3, q4 = zero_plus * half_plus % p, zero_minus * half_minus % p
    steps = _ladder_powers(m, d, p)
    w = omega[:, None]
    w_inverse = _pow(w, 2 * n - 1, p)
    for l in range(1, n):  # pairs (l, 2n - l); odd l for Z1, Z2, even l for Z3, Z4
        t = (_pow(w, l, p) + _pow(w_inverse, l, p)) % p  # 2 cos(pi l / n) in F_p, (primes, 1)
        lucas = _lucas(m, (a - b * t % p) % p, steps, p)
        plus, minus = lucas + two_bm, lucas - two_bm + p  # in [0, 2^32): products fit
        if l % 2:
            q1, q2 = q1 * plus % p, q2 * minus % p
        else:
            q3, q4 = q3 * plus % p, q4 * minus % p
    half = (p + 1) // 2
    return (q1 + q2 + q3 + q4) % p * half % p


def _ladder_powers(m: int, d: np.ndarray, p: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """(D^k, 2 D^k, 2 D^(k+1)) at each step k of :func:`_lucas`'s ladder for V_m: shared by
    every momentum, so a step costs each momentum three modular products."""
    twos = (m & -m).bit_length() - 1
    steps: list[tuple[np.ndarray, ...]] = []
    power = np.ones_like(d)
    for bit in bin(m >> twos)[2:]:
        steps.append((power, 2 * power % p, 2 * (power * d % p) % p))
        power = power * power % p
        if bit == "1":
            power = power * d % p
    for _ in range(twos):
        steps.append((power, 2 * power % p, 2 * (power * d % p) % p))
        power = power * power % p
    return steps


def _lucas(
    m: int, pp: np.ndarray, steps: list[tuple[np.ndarray, ...]], p: np.ndarray
) -> np.ndarray:
    """V_m(P, D) mod p: the ladder (V_k, V_k+1) -> (V_2k, V_2k+1) or (V_2k+1, V_2k+2), with
    V_2k = V_k^2 - 2 D^k, V_2k+1 = V_k V_k+1 - P D^k, over the bits of m's odd part after
    its leading one (from k = 1), then V_2k = V_k^2 - 2 D^k for each factor of two. Every
    product is below 2^62 and every difference above -2^32: one reduction each."""
    twos = (m & -m).bit_length() - 1
    bits = bin(m >> twos)[3:]
    low = pp  # V_1
    if bits:
        high = (pp * pp - steps[0][2]) % p  # V_2 = P^2 - 2 D
    for (dk, two_dk, two_dk1), bit in zip(steps[1:], bits, strict=False):
        cross = (low * high - pp * dk % p) % p
        if bit == "1":
            low, high = cross, (high * high - two_dk1) % p
        else:
            low, high = (low * low - two_dk) % p, cross
    for _, two_dk, _ in steps[1 + len(bits) :]:
        low = (low * low - two_dk) % p
    return low


# --------------------------------------------------------------------------- modular arithmetic
@lru_cache(maxsize=1)
def _small_primes() -> np.ndarray:
    """The primes below sqrt(2^31) (sieve of Eratosthenes)."""
    sieve = np.ones(_SMALL_PRIME_LIMIT, dtype=bool)
    sieve[:2] = False
    for k in range(2, math.isqrt(_SMALL_PRIME_LIMIT) + 1):
        if sieve[k]:
            sieve[k * k :: k] = False
    return np.flatnonzero(sieve).astype(np.int64)


def _primes(order: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Primes p = 1 (mod ``order``) below 2^31, the largest first, whose product exceeds
    2^``bits``, and a generator of each one's multiplicative group."""
    small = _small_primes()
    found: list[int] = []
    total = 0.0
    top = (_PRIME_LIMIT - 2) // order
    while total <= bits:
        if top < 1:
            raise ExactSolutionError(
                f"too few primes = 1 mod {order} below 2^31 for a {bits}-bit result"
            )
        multiples = np.arange(top, max(0, top - 512), -1, dtype=np.int64)
        top -= multiples.size
        candidates = multiples * order + 1
        composite = (candidates[:, None] % small[None, :] == 0) & (
            small[None, :] < candidates[:, None]
        )
        for prime in candidates[~composite.any(axis=1)].tolist():
            if prime > 2 and total <= bits:
                found.append(prime)
                total += math.log2(prime)
    return np.array(found, dtype=np.int64), np.array([_generator(q) for q in found], np.int64)


def _generator(prime: int) -> int:
    """The least generator of the multiplicative group of F_prime."""
    factors, rest = [], prime - 1
    for q in _small_primes().tolist():
        if q * q > rest:
            break
        if rest % q == 0:
            factors.append(q)
            while rest % q == 0:
                rest //= q
    if rest > 1:
        factors.append(rest)
    for g in range(2, prime):
        if all(pow(g, (prime - 1) // q, prime) != 1 for q in factors):
            return g
    raise AssertionError(f"{prime} has no generator: not a prime")


def _pow_scalar(base: np.ndarray, exponent: np.ndarray | int, primes: np.ndarray) -> np.ndarray:
    """base^exponent mod p for each prime (Python ints: exact, one per prime)."""
    exponents = np.broadcast_to(exponent, primes.shape)
    return np.array(
        [pow(int(b), int(e), int(q)) for b, e, q in zip(base, exponents, primes, strict=True)],
        dtype=np.int64,
    )


def _pow(base: np.ndarray, exponent: int, p: np.ndarray) -> np.ndarray:
    """base^exponent mod p elementwise (square and multiply)."""
    result, square = np.ones_like(base), base % p
    while exponent:
        if exponent & 1:
            result = result * square % p
        exponent >>= 1
        if exponent:
            square = square * square % p
    return result


def _powers(root: np.ndarray, count: int, primes: np.ndarray) -> np.ndarray:
    """root^j mod p for j < ``count`` (a power of two), (primes, count), by doubling."""
    p = primes[:, None]
    powers = np.ones((primes.size, 1), dtype=np.int64)
    step = root[:, None] % p
    while powers.shape[1] < count:
        powers = np.concatenate([powers, powers * step % p], axis=1)
        step = step * step % p
    return powers


def _ntt(values: np.ndarray, root: np.ndarray, primes: np.ndarray) -> np.ndarray:
    """sum_j values_j root^(jk) mod p for k < M (radix-2 transform of length M, a power of two,
    with ``root`` a primitive M-th root of unity per prime), (primes, M)."""
    count = values.shape[1]
    p = primes[:, None, None]
    bits = count.bit_length() - 1
    index = np.arange(count)
    reverse = np.zeros(count, dtype=np.int64)
    for bit in range(bits):
        reverse |= ((index >> bit) & 1) << (bits - 1 - bit)
    out = values[:, reverse]
    length = 2
    while length <= count:
        half = length // 2
        step = _pow_scalar(root, count // length, primes)
        twiddles = _powers(step, half, primes)[:, None, :]
        blocks = out.reshape(primes.size, count // length, length)
        even, odd = blocks[..., :half], blocks[..., half:] * twiddles % p
        out = np.concatenate([(even + odd) % p, (even - odd) % p], axis=2).reshape(-1, count)
        length *= 2
    return out


def _chinese_remainder(residues: np.ndarray, primes: np.ndarray) -> list[int]:
    """The integers in [0, prod p) with the given residues (primes, M), as Python ints."""
    modulus = math.prod(int(q) for q in primes)
    total = np.zeros(residues.shape[1], dtype=object)
    for residue, prime in zip(residues, primes.tolist(), strict=True):
        cofactor = modulus // prime
        weight = cofactor * pow(cofactor % prime, -1, prime)
        total = total + residue.astype(object) * weight
    return [int(v) % modulus for v in total]
