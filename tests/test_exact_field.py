"""The Ising chain in a uniform field h against brute force written here with numpy alone.

Every state of chains of 2..10 sites is enumerated (independently of spinbench's enumerator), so
lnZ, E/N, C/N, <|m|>, <m>, every correlation and the energy distribution are compared at float64
precision: relative 1e-10, or absolute 1e-12 where a value is tiny.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.special import logsumexp

from spinbench.exact import ExactResult, ising1d_energy_distribution, ising1d_exact
from spinbench.exact._ising1d import MAX_FIELD_LEVEL_SITES, MAX_MAGNETIZATION_SITES

TEMPS = (0.05, 0.1, 0.3, 0.7, 1.0, 2.0, 5.0, 50.0)
FLOAT64 = {"rtol": 1e-10, "atol": 1e-12}
CHAINS = [
    (n, boundary, J, h)
    for n in range(2, 11)
    for boundary in ("free", "periodic")
    for J in (1.0, -1.0, 0.6, -0.6)
    for h in (0.3, -1.1, 2.5)
]


@cache
def _enumerated(
    n: int, boundary: str, J: float, h: float, temps: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """Exact averages over all 2^n states, H = -J sum_bonds s_i s_j - h sum_i s_i."""
    t = np.asarray(temps)[:, None]
    codes = np.arange(2**n)
    spins = 1 - 2 * ((codes[:, None] >> np.arange(n)) & 1)  # (states, n) of +-1
    if boundary == "free":
        bonds = spins[:, :-1] * spins[:, 1:]
        distances = np.arange(1, n)
        pairs = [np.mean(spins[:, :-r] * spins[:, r:], axis=1) for r in distances]
    else:
        bonds = spins * np.roll(spins, -1, axis=1)
        distances = np.arange(1, n // 2 + 1)
        pairs = [np.mean(spins * np.roll(spins, -r, axis=1), axis=1) for r in distances]
    total_m = spins.sum(axis=1)
    energy = -J * bonds.sum(axis=1) - h * total_m
    ground = energy.min()
    # Measured from the ground state; rounding must not split degenerate states.
    excess = energy - ground
    excess = np.where(excess < 1e-12 * n * (abs(J) + abs(h)), 0.0, excess)
    log_w = -excess[None, :] / t
    log_sum = logsumexp(log_w, axis=1, keepdims=True)
    p = np.exp(log_w - log_sum)
    mean = p @ excess
    variance = np.sum(p * (excess[None, :] - mean[:, None]) ** 2, axis=1)
    order = np.argsort(energy, kind="stable")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(energy[order]) > 1e-9) + 1])
    return {
        "ln_z": log_sum[:, 0] - ground / t[:, 0],
        "energy": (ground + mean) / n,
        "heat_capacity": variance / t[:, 0] ** 2 / n,
        "abs_magnetization": p @ np.abs(total_m) / n,
        "magnetization": p @ total_m / n,
        "correlation": p @ np.stack(pairs, axis=1),
        "distances": distances,
        "levels": energy[order][starts],
        "level_probabilities": np.add.reduceat(p[:, order], starts, axis=1),
    }


@pytest.mark.parametrize(("n", "boundary", "J", "h"), CHAINS)
def test_field_chain_matches_enumeration(n: int, boundary: str, J: float, h: float) -> None:
    counted = _enumerated(n, boundary, J, h, TEMPS)
    exact = ising1d_exact(n, TEMPS, boundary=boundary, J=J, h=h)
    np.testing.assert_array_equal(exact.distances, counted["distances"])
    for name in ("ln_z", "energy", "heat_capacity", "abs_magnetization", "correlation"):
        np.testing.assert_allclose(exact.observable(name), counted[name], **FLOAT64, err_msg=name)
    np.testing.assert_allclose(exact.extra["magnetization"], counted["magnetization"], **FLOAT64)
    assert exact.observable("magnetization") is exact.extra["magnetization"]

    levels = ising1d_energy_distribution(n, TEMPS, boundary=boundary, J=J, h=h)
    assert np.all(np.diff(levels.levels) > 0)
    np.testing.assert_allclose(levels.levels, counted["levels"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        levels.probabilities, counted["level_probabilities"], rtol=1e-10, atol=1e-13
    )


@pytest.mark.parametrize("boundary", ["free", "periodic"])
@pytest.mark.parametrize("J", [1.0, -1.0, 0.6, -0.6])
@pytest.mark.parametrize("n", [2, 5, 6, 1000])
def test_zero_field_is_the_zero_field_solution(n: int, boundary: str, J: float) -> None:
    """h = 0 (of either sign) takes the zero-field path unchanged: the same bits, no extras."""
    temps = [1e-99, 0.05, 1.0, 50.0]
    plain = ising1d_exact(n, temps, boundary=boundary, J=J)
    assert plain.abs_magnetization is None and plain.extra == {}
    for h in (0.0, -0.0):
        field = ising1d_exact(n, temps, boundary=boundary, J=J, h=h)
        for name in ("ln_z", "energy", "heat_capacity", "correlation", "distances"):
            assert getattr(field, name).tobytes() == getattr(plain, name).tobytes(), name
        assert (field.source, field.notes, field.extra) == (plain.source, plain.notes, {})
        a = ising1d_energy_distribution(n, temps, boundary=boundary, J=J, h=h)
        b = ising1d_energy_distribution(n, temps, boundary=boundary, J=J)
        assert a.levels.tobytes() == b.levels.tobytes()
        assert a.probabilities.tobytes() == b.probabilities.tobytes()


@pytest.mark.parametrize("boundary", ["free", "periodic"])
@pytest.mark.parametrize(("n", "J"), [(5, 1.0), (6, -1.0), (7, -1.0), (8, 0.6)])
def test_vanishing_field_is_continuous(n: int, boundary: str, J: float) -> None:
    temps = [0.5, 1.0, 5.0]
    zero = ising1d_exact(n, temps, boundary=boundary, J=J)
    counted = _enumerated(n, boundary, J, 0.0, tuple(temps))
    for h in (1e-12, -1e-12):
        small = ising1d_exact(n, temps, boundary=boundary, J=J, h=h)
        for name in ("ln_z", "energy", "heat_capacity", "correlation"):
            np.testing.assert_allclose(
                small.observable(name), zero.observable(name), rtol=1e-9, err_msg=name
            )
        np.testing.assert_allclose(small.extra["magnetization"], 0.0, atol=1e-9)
        np.testing.assert_allclose(small.abs_magnetization, counted["abs_magnetization"], 1e-9)


def _infinite_chain(temps: np.ndarray, J: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """E/N = -d ln(lambda_+)/d beta and <s> of the infinite chain, from the largest eigenvalue
    lambda_+ = e^(beta J) cosh(beta h) + sqrt(e^(2 beta J) sinh^2(beta h) + e^(-2 beta J))."""
    beta = 1.0 / temps
    c, s = np.cosh(beta * h), np.sinh(beta * h)
    up, down = np.exp(2 * beta * J), np.exp(-2 * beta * J)
    root = np.sqrt(up * s**2 + down)
    largest = np.exp(beta * J) * c + root
    slope = np.exp(beta * J) * (J * c + h * s) + (J * up * s**2 + h * up * s * c - J * down) / root
    return -slope / largest, s / np.sqrt(s**2 + down**2)


@pytest.mark.parametrize(("J", "h"), [(1.0, 0.3), (-0.6, -1.1)])
def test_long_chain_approaches_the_infinite_chain(J: float, h: float) -> None:
    temps = np.array([0.5, 1.0, 5.0])
    energy, magnetization = _infinite_chain(temps, J, h)
    ring = ising1d_exact(5000, temps, boundary="periodic", J=J, h=h)
    np.testing.assert_allclose(ring.energy, energy, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ring.extra["magnetization"], magnetization, rtol=1e-12, atol=1e-13)
    assert ring.abs_magnetization is not None
    assert np.all(ring.abs_magnetization >= np.abs(magnetization) - 1e-12)
    free = ising1d_exact(5000, temps, boundary="free", J=J, h=h)
    # The two ends add O(1) to the total energy and magnetisation.
    assert np.all(np.abs(free.energy - energy) < 5 * (abs(J) + abs(h)) / 5000)
    assert np.all(np.abs(free.extra["magnetization"] - magnetization) < 5 / 5000)
    assert np.all(free.heat_capacity > 0) and np.all(np.abs(free.correlation) <= 1)


def test_longer_chain_has_no_abs_magnetization() -> None:
    n = MAX_MAGNETIZATION_SITES + 1
    temps = np.array([1.0, 2.0])
    result = ising1d_exact(n, temps, boundary="periodic", J=-1.0, h=0.3)
    assert result.abs_magnetization is None
    assert str(MAX_MAGNETIZATION_SITES) in result.notes["abs_magnetization"]
    energy, magnetization = _infinite_chain(temps, -1.0, 0.3)
    np.testing.assert_allclose(result.energy, energy, rtol=1e-12)
    np.testing.assert_allclose(result.extra["magnetization"], magnetization, rtol=1e-10)
    assert result.correlation.shape == (2, n // 2)


@pytest.mark.parametrize(
    ("n", "boundary", "J", "h"),
    [
        (n, boundary, J, h)
        for n in (6, 7)
        for boundary in ("free", "periodic")
        for J, h in ((-1.0, 0.3), (-1.0, 1.5), (-1.0, 2.0), (-1.0, -2.5), (-0.6, 1.2), (1.0, -0.3))
    ],
)
def test_ground_states_at_extreme_temperatures(n: int, boundary: str, J: float, h: float) -> None:
    """Down to |J|/T = 1e99: frustrated rings (odd n, |h| < 2|J|), free antiferromagnets whose
    ends cannot both follow the field, and the degenerate |h| = 2|J|, against brute force."""
    temps = (1e-99, 1e-3, 1e6)
    counted = _enumerated(n, boundary, J, h, temps)
    exact = ising1d_exact(n, temps, boundary=boundary, J=J, h=h)
    for name in ("ln_z", "energy", "heat_capacity", "abs_magnetization", "correlation"):
        np.testing.assert_allclose(exact.observable(name), counted[name], **FLOAT64, err_msg=name)
    np.testing.assert_allclose(exact.extra["magnetization"], counted["magnetization"], **FLOAT64)
    levels = ising1d_energy_distribution(n, temps, boundary=boundary, J=J, h=h)
    np.testing.assert_allclose(levels.probabilities, counted["level_probabilities"], atol=1e-13)


@pytest.mark.parametrize(("n", "boundary"), [(201, "periodic"), (200, "free")])
def test_heat_capacity_agrees_with_the_energy_distribution(n: int, boundary: str) -> None:
    """Far beyond enumeration: C from the transfer matrix against the variance of the counted
    energy distribution, both relative-accurate where C is exponentially small."""
    temps = np.array([0.02, 0.1, 0.5, 2.0])
    exact = ising1d_exact(n, temps, boundary=boundary, J=-1.0, h=0.3)
    distribution = ising1d_energy_distribution(n, temps, boundary=boundary, J=-1.0, h=0.3)
    excess = distribution.levels - distribution.levels[0]
    p = distribution.probabilities
    mean = p @ excess
    variance = np.sum(p * (excess[None, :] - mean[:, None]) ** 2, axis=1)
    np.testing.assert_allclose(exact.energy, (distribution.levels[0] + mean) / n, rtol=1e-10)
    np.testing.assert_allclose(exact.heat_capacity, variance / temps**2 / n, rtol=1e-9)
    assert exact.heat_capacity[0] < 1e-9


def test_cold_limits_are_refused() -> None:
    with pytest.raises(ValueError, match=r"needs \|J\|/T <= 1e\+100, i\.e\. T >= 1e-100"):
        ising1d_exact(6, [1.0, 1e-101], boundary="free", h=0.3)
    with pytest.raises(ValueError, match=r"in a field needs \|h\|/T <= 1e\+100.*\|h\| = 1000"):
        ising1d_exact(6, [1e-98], boundary="periodic", h=1e3)
    with pytest.raises(ValueError, match=r"energy distribution .* needs \|h\|/T <= 1e\+100"):
        ising1d_energy_distribution(6, [1e-98], boundary="free", h=-1e3)
    with pytest.raises(ValueError, match="field h must be finite"):
        ising1d_exact(6, [1.0], boundary="free", h=float("nan"))


def test_energy_distribution_size_limit() -> None:
    with pytest.raises(ValueError, match=f"N <= {MAX_FIELD_LEVEL_SITES}"):
        ising1d_energy_distribution(MAX_FIELD_LEVEL_SITES + 1, [1.0], boundary="free", h=0.3)


def test_exact_result_extra_observables() -> None:
    temps = np.array([1.0, 2.0])
    values = np.array([0.1, 0.2])
    result = ExactResult(temps=temps, energy=-temps, extra={"magnetization": values})
    assert result.observable("magnetization") is values
    assert result.observable("energy") is result.energy
    assert result.observable("heat_capacity") is None
    assert result.observable("staggered_magnetization") is None
    assert ExactResult(temps=temps).extra == {}
    assert ExactResult(temps=temps).extra is not ExactResult(temps=temps).extra
