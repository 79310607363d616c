"""Every exact formula against brute force: enumeration of all states, or quadrature for XY.

Energies of discrete models are exact in float32, so enumerated lnZ, E and C are float64-exact
and compared tightly; |m| and correlations pass through float32 per configuration (~1e-7).
"""

from __future__ import annotations

import math
import re
from functools import cache

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import iv, logsumexp

from spinbench.exact import (
    ISING2D_TC,
    EnergyDistribution,
    ExactResult,
    FrustratedTorusError,
    boltzmann_log_probabilities,
    can_enumerate,
    enumerate_energy_distribution,
    enumerate_exact,
    enumerate_states,
    ising1d_energy_distribution,
    ising1d_exact,
    ising2d_infinite,
    ising2d_torus,
    state_index,
    xy1d_exact,
)
from spinbench.models import XY1D, Ising1D, Ising2D

TEMPS_1D = np.array([0.3, 0.7, 1.0, 2.0, 5.0])
TEMPS_2D = np.array([1.0, 1.5, 2.0, ISING2D_TC, 2.5, 3.5, 10.0])
FLOAT64 = {"rel": 1e-10, "abs": 1e-12}
FLOAT32 = {"rel": 1e-6, "abs": 1e-6}


@cache
def _enumerated(kind: str, size: str, boundary: str, J: float, temps: tuple[float, ...]):
    """Enumeration of one model, shared by the tests that need it (compiled once)."""
    cls = {"ising1d": Ising1D, "ising2d": Ising2D}[kind]
    model = cls.from_size(size, boundary=boundary, J=J)
    return enumerate_exact(model, temps), enumerate_energy_distribution(model, temps)


# --------------------------------------------------------------------------- 1D Ising
CHAINS = [
    (n, boundary, J) for n in range(2, 11) for boundary in ("free", "periodic") for J in (1.0, -1.0)
]


@pytest.mark.parametrize(("n", "boundary", "J"), CHAINS)
def test_ising1d_matches_enumeration(n: int, boundary: str, J: float) -> None:
    counted, distribution = _enumerated("ising1d", str(n), boundary, J, tuple(TEMPS_1D))
    exact = ising1d_exact(n, TEMPS_1D, boundary=boundary, J=J)
    assert exact.ln_z == pytest.approx(counted.ln_z, **FLOAT64)
    assert exact.energy == pytest.approx(counted.energy, **FLOAT64)
    assert exact.heat_capacity == pytest.approx(counted.heat_capacity, **FLOAT64)
    np.testing.assert_array_equal(exact.distances, counted.distances)
    assert exact.correlation.shape == (TEMPS_1D.size, exact.distances.size)
    np.testing.assert_allclose(exact.correlation, counted.correlation, rtol=1e-6, atol=1e-6)

    levels = ising1d_energy_distribution(n, TEMPS_1D, boundary=boundary, J=J)
    np.testing.assert_allclose(levels.levels, distribution.levels, rtol=0, atol=1e-12)
    np.testing.assert_allclose(levels.probabilities, distribution.probabilities, atol=1e-13)
    assert np.all(np.diff(levels.levels) > 0)


@pytest.mark.parametrize("J", [1.0, -1.0, 0.7])
@pytest.mark.parametrize("n", [3, 4, 7])
def test_ising1d_closed_forms(n: int, J: float) -> None:
    """DESIGN.md's formulas, written out directly (moderate T: no overflow)."""
    temps = np.array([0.5, 1.0, 3.0])
    K = J / temps
    free = ising1d_exact(n, temps, boundary="free", J=J)
    assert free.ln_z == pytest.approx(np.log(2 * (2 * np.cosh(K)) ** (n - 1)), rel=1e-13)
    assert free.energy == pytest.approx(-(n - 1) * J * np.tanh(K) / n, rel=1e-13)
    r = free.distances
    assert free.correlation == pytest.approx(np.tanh(K)[:, None] ** r, rel=1e-12)
    ring = ising1d_exact(n, temps, boundary="periodic", J=J)
    z = (2 * np.cosh(K)) ** n + (2 * np.sinh(K)) ** n
    assert ring.ln_z == pytest.approx(np.log(z), rel=1e-13)
    t = np.tanh(K)[:, None]
    r = ring.distances
    expected = (t**r + t ** (n - r)) / (1 + t**n)
    assert ring.correlation == pytest.approx(expected, rel=1e-12)


def test_ising1d_stable_at_extreme_temperatures() -> None:
    temps = np.array([0.01, 0.05, 100.0, 1e4])
    for boundary in ("free", "periodic"):
        for J in (1.0, -1.0):
            for n in (5, 6, 1000):
                result = ising1d_exact(n, temps, boundary=boundary, J=J)
                for values in (result.ln_z, result.energy, result.heat_capacity):
                    assert np.all(np.isfinite(values))
                assert np.all(np.isfinite(result.correlation))
                assert np.all(result.heat_capacity >= 0)
    cold = ising1d_exact(6, [0.05], boundary="free")
    assert cold.energy[0] == pytest.approx(-5 / 6, rel=1e-15)
    # C/N = (N-1) K^2 sech^2 K / N: tiny but relative-accurate at T = 0.05.
    assert cold.heat_capacity[0] == pytest.approx(5 * 400 / np.cosh(20.0) ** 2 / 6, rel=1e-12)


def test_ising1d_frustrated_ring_ground_state() -> None:
    """Odd antiferromagnetic ring: one domain wall at T -> 0, <s_0 s_r> -> (-1)^r (N - 2r)/N."""
    n = 7
    result = ising1d_exact(n, [1e-3, 0.01], boundary="periodic", J=-1.0)
    r = result.distances
    assert result.correlation == pytest.approx(np.tile((-1.0) ** r * (n - 2 * r) / n, (2, 1)))
    assert result.energy == pytest.approx(-(n - 2) / n)
    assert result.ln_z[0] == pytest.approx(np.log(2 * n) + (n - 2) / 1e-3, rel=1e-14)


def test_ising1d_energy_distribution_is_normalised() -> None:
    dist = ising1d_energy_distribution(50, [0.1, 1.0, 10.0], boundary="periodic", J=-1.0)
    assert isinstance(dist, EnergyDistribution)
    assert dist.probabilities.sum(axis=1) == pytest.approx(1.0, rel=1e-13)
    assert dist.levels[0] == pytest.approx(-50.0)
    assert dist.probabilities[0, 0] == pytest.approx(1.0)


# --------------------------------------------------------------------------- 2D Ising torus
TORI = [(4, 4, 1.0), (3, 5, 1.0), (5, 3, 1.0), (2, 2, 1.0), (2, 3, 1.0), (4, 2, -1.0)]


@pytest.mark.parametrize(("lx", "ly", "J"), TORI)
def test_torus_matches_enumeration(lx: int, ly: int, J: float) -> None:
    counted, _ = _enumerated("ising2d", f"{lx}x{ly}", "periodic", J, tuple(TEMPS_2D))
    exact = ising2d_torus(lx, ly, TEMPS_2D, J=J)
    assert exact.ln_z == pytest.approx(counted.ln_z, rel=1e-13, abs=1e-12)
    assert exact.energy == pytest.approx(counted.energy, rel=1e-12)
    assert exact.heat_capacity == pytest.approx(counted.heat_capacity, rel=1e-10)


def test_torus_is_symmetric_and_matches_the_model() -> None:
    a = ising2d_torus(6, 10, TEMPS_2D)
    b = ising2d_torus(10, 6, TEMPS_2D)
    for name in ("ln_z", "energy", "heat_capacity"):
        assert a.observable(name) == pytest.approx(b.observable(name), rel=1e-12)
    model = Ising2D.from_size("3x5")
    via_model = model.exact(TEMPS_2D)
    assert via_model.energy == pytest.approx(ising2d_torus(3, 5, TEMPS_2D).energy, rel=1e-15)
    assert via_model.abs_magnetization is not None


def test_torus_10x10_at_tc_differs_from_infinite_lattice() -> None:
    t = 2.269185314
    finite = ising2d_torus(10, 10, [t]).energy[0]
    infinite = ising2d_infinite([t]).energy[0]
    assert finite == pytest.approx(-1.476, abs=5e-4)
    assert infinite == pytest.approx(-math.sqrt(2), abs=1e-8)
    assert abs(finite - infinite) > 0.05


@pytest.mark.parametrize("t", [1.5, 3.0])
def test_large_torus_approaches_infinite_lattice(t: float) -> None:
    torus = ising2d_torus(128, 128, [t])
    infinite = ising2d_infinite([t])
    assert torus.energy == pytest.approx(infinite.energy, abs=1e-4)
    assert torus.heat_capacity == pytest.approx(infinite.heat_capacity, abs=1e-4)


def test_torus_stable_for_large_lattices_and_extreme_temperatures() -> None:
    temps = np.array([0.1, 0.3, 0.5, 1.0, 2.0, ISING2D_TC, 2.3, 5.0, 20.0, 100.0])
    result = ising2d_torus(256, 256, temps)
    for values in (result.ln_z, result.energy, result.heat_capacity):
        assert np.all(np.isfinite(values))
    assert np.all(result.heat_capacity >= 0)
    assert np.all(np.diff(result.energy) > 0)
    assert "heat_capacity" in result.notes  # the low-T accuracy caveat
    infinite = ising2d_infinite(temps[temps > 3.0])
    assert result.energy[temps > 3.0] == pytest.approx(infinite.energy, rel=1e-12)
    assert ising2d_torus(512, 64, [2.0]).energy[0] == pytest.approx(
        ising2d_infinite([2.0]).energy[0], rel=1e-9
    )


def test_torus_in_temperature_blocks_is_the_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from spinbench.exact import _ising2d as ising2d_module

    whole = ising2d_torus(6, 10, TEMPS_2D)
    monkeypatch.setattr(ising2d_module, "_TORUS_BLOCK_ENTRIES", 3 * 20)  # three T per block
    blocked = ising2d_torus(6, 10, TEMPS_2D)
    for observable in ("ln_z", "energy", "heat_capacity"):
        np.testing.assert_array_equal(blocked.observable(observable), whole.observable(observable))


def test_torus_energy_is_derivative_of_ln_z() -> None:
    """Central differences of lnZ(beta) (Richardson) for a non-square lattice."""
    temps = np.array([1.2, 2.0, 2.269185314, 3.0])
    beta, h = 1.0 / temps, 1e-4

    def ln_z(b: np.ndarray) -> np.ndarray:
        return ising2d_torus(12, 20, 1.0 / b).ln_z

    def derivative(f, x: np.ndarray) -> np.ndarray:
        d1 = (f(x + h) - f(x - h)) / (2 * h)
        d2 = (f(x + h / 2) - f(x - h / 2)) / h
        return (4 * d2 - d1) / 3

    result = ising2d_torus(12, 20, temps)
    assert -derivative(ln_z, beta) / 240 == pytest.approx(result.energy, rel=1e-9)


def test_torus_antiferromagnet() -> None:
    anti = ising2d_torus(4, 6, TEMPS_2D, J=-1.0)
    ferro = ising2d_torus(4, 6, TEMPS_2D, J=1.0)
    assert anti.energy == pytest.approx(ferro.energy, rel=1e-15)
    with pytest.raises(ValueError, match=r"frustrated.*enumerat"):
        ising2d_torus(3, 4, TEMPS_2D, J=-1.0)


# --------------------------------------------------------------------------- infinite lattice
def _paper_ln_lambda(beta: float) -> float:
    """Paper eq. (8), evaluated independently by quadrature."""
    k = 2 * math.sinh(2 * beta) / math.cosh(2 * beta) ** 2
    integral, _ = quad(
        lambda w: math.log(0.5 * (1 + math.sqrt(1 - k**2 * math.sin(w) ** 2))),
        0,
        math.pi / 2,
        epsabs=1e-14,
        epsrel=1e-12,
        limit=200,
    )
    return math.log(2 * math.cosh(2 * beta)) + integral / math.pi


@pytest.mark.parametrize("t", [0.8, 1.5, 2.0, 2.2, 2.35, 3.0, 5.0, 20.0])
def test_infinite_energy_is_derivative_of_paper_eq8(t: float) -> None:
    beta, h = 1.0 / t, 1e-4
    d1 = (_paper_ln_lambda(beta + h) - _paper_ln_lambda(beta - h)) / (2 * h)
    d2 = (_paper_ln_lambda(beta + h / 2) - _paper_ln_lambda(beta - h / 2)) / h
    result = ising2d_infinite([t])
    assert result.energy[0] == pytest.approx(-(4 * d2 - d1) / 3, rel=1e-8)
    assert result.ln_z[0] == pytest.approx(_paper_ln_lambda(beta), rel=1e-12)
    assert "per site" in result.notes["ln_z"]


@pytest.mark.parametrize("t", [1.0, 1.6, 2.0, 2.2, 2.4, 3.0, 6.0, 30.0])
def test_infinite_heat_capacity_is_derivative_of_energy(t: float) -> None:
    h = 1e-4 * t

    def energy(x: float) -> float:
        return float(ising2d_infinite([x]).energy[0])

    d1 = (energy(t + h) - energy(t - h)) / (2 * h)
    d2 = (energy(t + h / 2) - energy(t - h / 2)) / h
    expected = (4 * d2 - d1) / 3
    assert ising2d_infinite([t]).heat_capacity[0] == pytest.approx(expected, rel=1e-7, abs=1e-12)


def test_low_temperature_series() -> None:
    """Cluster expansion lnZ/N = 2K + x^4 + 2x^6 + 9/2 x^8 + O(x^10), x = e^{-2K}: at T = 0.3
    the omitted terms are ~1e-17 relative. Checks the regime where closed forms cancel."""
    t = 0.3
    K = 1 / t
    x = math.exp(-2 * K)
    energy = -2 + 8 * x**4 + 24 * x**6 + 72 * x**8
    heat = K**2 * (64 * x**4 + 288 * x**6 + 1152 * x**8)
    infinite = ising2d_infinite([t])
    assert infinite.energy[0] == pytest.approx(energy, rel=1e-15)
    assert infinite.heat_capacity[0] == pytest.approx(heat, rel=1e-12)
    torus = ising2d_torus(64, 64, [t])
    assert torus.energy[0] == pytest.approx(energy, rel=1e-15)
    assert torus.heat_capacity[0] == pytest.approx(heat, rel=1e-4, abs=1e-13)


def test_infinite_lattice_magnetisation_and_limits() -> None:
    temps = np.array([0.5, 2.0, 2.26, 2.28, 3.0])
    result = ising2d_infinite(temps)
    yang = (1 - np.sinh(2 / temps[:3]) ** -4) ** 0.125
    assert result.abs_magnetization[:3] == pytest.approx(yang, rel=1e-14)
    assert np.all(result.abs_magnetization[3:] == 0)
    # Logarithmic divergence: C/N ~ -(2/pi) (2 K_c)^2 ln|1 - T/T_c|.
    assert ising2d_infinite([ISING2D_TC * (1 - 1e-9)]).heat_capacity[0] > 9
    cold_hot = ising2d_infinite([0.05, 1e4])
    assert cold_hot.energy == pytest.approx([-2.0, -2e-4], rel=1e-7)
    assert cold_hot.ln_z == pytest.approx([40.0, math.log(2)], rel=1e-7)
    assert np.all(ising2d_infinite([1.0], J=-1.0).abs_magnetization == 0)
    assert pytest.approx(2.269185314213022, rel=1e-15) == ISING2D_TC


# --------------------------------------------------------------------------- 1D XY
def _xy_quadrature(n: int, temps: np.ndarray, J: float, boundary: str, points: int):
    """Brute-force XY chain on a periodic trapezoid grid (spectrally accurate), theta_0 = 0."""
    theta = 2 * np.pi * np.arange(points) / points
    grids = [np.zeros(1)] + [theta] * (n - 1)
    angles = np.meshgrid(*grids, indexing="ij")
    bonds = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if boundary == "periodic" else [])
    energy = sum(-J * np.cos(angles[a] - angles[b]) for a, b in bonds).ravel()
    r_max = n - 1 if boundary == "free" else n // 2
    pairs = {
        r: [(i, (i + r) % n) for i in range(n if boundary == "periodic" else n - r)]
        for r in range(1, r_max + 1)
    }
    corr_values = np.stack(
        [
            np.mean([np.cos(angles[a] - angles[b]).ravel() for a, b in pairs[r]], axis=0)
            for r in pairs
        ]
    )
    out = []
    for t in temps:
        log_w = -energy / t
        ln_z = logsumexp(log_w) + np.log(2 * np.pi) + (n - 1) * np.log(2 * np.pi / points)
        p = np.exp(log_w - logsumexp(log_w))
        mean = p @ energy
        out.append((ln_z, mean / n, p @ (energy - mean) ** 2 / t**2 / n, corr_values @ p))
    return out


@pytest.mark.parametrize("J", [1.0, -1.0])
@pytest.mark.parametrize(
    ("n", "boundary"), [(2, "free"), (3, "free"), (2, "periodic"), (3, "periodic"), (4, "periodic")]
)
def test_xy1d_matches_quadrature(n: int, boundary: str, J: float) -> None:
    temps = np.array([0.5, 1.0, 3.0])
    exact = xy1d_exact(n, temps, boundary=boundary, J=J)
    reference = _xy_quadrature(n, temps, J, boundary, points=64 if n < 4 else 48)
    for i, (ln_z, energy, heat, corr) in enumerate(reference):
        assert exact.ln_z[i] == pytest.approx(ln_z, rel=1e-12)
        assert exact.energy[i] == pytest.approx(energy, rel=1e-11, abs=1e-13)
        assert exact.heat_capacity[i] == pytest.approx(heat, rel=1e-10)
        assert exact.correlation[i] == pytest.approx(corr, rel=1e-10, abs=1e-13)


def test_xy1d_closed_form_free_chain() -> None:
    """DESIGN.md: Z = 2 pi (2 pi I0)^(N-1), E/N = -(N-1) J I1/(I0 N), <cos> = (I1/I0)^r."""
    n, temps, J = 6, np.array([0.4, 1.0, 4.0]), 1.3
    K = J / temps
    result = xy1d_exact(n, temps, boundary="free", J=J)
    assert result.ln_z == pytest.approx(n * np.log(2 * np.pi) + (n - 1) * np.log(iv(0, K)))
    assert result.energy == pytest.approx(-(n - 1) * J * iv(1, K) / (iv(0, K) * n), rel=1e-13)
    ratio = (iv(1, K) / iv(0, K))[:, None]
    assert result.correlation == pytest.approx(ratio**result.distances, rel=1e-13)
    ring = xy1d_exact(n, temps, boundary="periodic", J=J)
    j = np.arange(-60, 61)
    z = (2 * np.pi) ** n * np.sum(iv(j[None, :], K[:, None]) ** n, axis=1)
    assert ring.ln_z == pytest.approx(np.log(z), rel=1e-13)


@pytest.mark.parametrize(
    ("n", "boundary", "J"),
    [(6, "free", 1.0), (6, "periodic", 1.0), (5, "periodic", -1.0), (2, "periodic", 2.0)],
)
def test_xy1d_heat_capacity_is_derivative_of_energy(n: int, boundary: str, J: float) -> None:
    temps = np.array([0.1, 0.5, 1.0, 2.5, 10.0])
    h = 1e-4 * temps

    def energy(t: np.ndarray) -> np.ndarray:
        return xy1d_exact(n, t, boundary=boundary, J=J).energy

    d1 = (energy(temps + h) - energy(temps - h)) / (2 * h)
    d2 = (energy(temps + h / 2) - energy(temps - h / 2)) / h
    result = xy1d_exact(n, temps, boundary=boundary, J=J)
    assert result.heat_capacity == pytest.approx((4 * d2 - d1) / 3, rel=1e-7)


def test_xy1d_stability() -> None:
    temps = np.array([0.01, 0.05, 1.0, 100.0])
    for n, boundary, J in [(2, "periodic", 1.0), (6, "periodic", -1.0), (50, "free", -1.0)]:
        result = xy1d_exact(n, temps, boundary=boundary, J=J)
        assert np.all(np.isfinite(result.heat_capacity))
        assert np.all(np.isfinite(result.correlation))
        assert np.all(result.heat_capacity > 0)


def test_xy1d_frustrated_ring_at_low_temperature() -> None:
    """Odd antiferromagnetic ring, where the Bessel sum cancels: real-space fallback."""
    temps = np.array([0.05, 0.2])
    exact = xy1d_exact(3, temps, boundary="periodic", J=-1.0)
    reference = _xy_quadrature(3, temps, -1.0, "periodic", points=256)
    for i, (ln_z, energy, heat, corr) in enumerate(reference):
        assert exact.ln_z[i] == pytest.approx(ln_z, rel=1e-12)
        assert exact.energy[i] == pytest.approx(energy, rel=1e-11)
        assert exact.heat_capacity[i] == pytest.approx(heat, rel=1e-9)
        assert exact.correlation[i] == pytest.approx(corr, rel=1e-10)
    # Ground state: a twist of pi spread over the N bonds, plus (N-1)/2 T of equipartition.
    n, t = 7, 1e-3
    cold = xy1d_exact(n, [t], boundary="periodic", J=-1.0)
    assert cold.energy[0] == pytest.approx(-np.cos(np.pi / n) + (n - 1) * t / (2 * n), rel=1e-5)
    assert cold.heat_capacity[0] == pytest.approx((n - 1) / (2 * n), rel=1e-2)
    # At the temperature limit of the solver the real-space route still resolves N = 3.
    coldest = xy1d_exact(3, [1e-3, 1.0], boundary="periodic", J=-1.0)
    for values in (coldest.ln_z, coldest.energy, coldest.heat_capacity, coldest.correlation):
        assert np.all(np.isfinite(values))


def test_xy1d_frustrated_long_ring_heat_capacity_is_derivative_of_energy() -> None:
    """In real space the heat capacity of a long frustrated ring is a variance carried as
    such: as a second moment minus the squared mean it lost 1e-3 (N = 101, T = 0.0015)."""
    n, temps = 101, np.array([0.0015, 0.003])
    h = 1e-2 * temps

    def energy(t: np.ndarray) -> np.ndarray:
        return xy1d_exact(n, t, boundary="periodic", J=-1.0).energy

    d1 = (energy(temps + h) - energy(temps - h)) / (2 * h)
    d2 = (energy(temps + h / 2) - energy(temps - h / 2)) / h
    result = xy1d_exact(n, temps, boundary="periodic", J=-1.0)
    assert "real-space" in result.notes["method"]
    assert result.heat_capacity == pytest.approx((4 * d2 - d1) / 3, rel=1e-5)


def test_xy_model_uses_closed_form() -> None:
    model = XY1D.from_size(6)
    assert not can_enumerate(model)
    result = model.exact(np.array([1.0]))
    assert result.energy == pytest.approx(xy1d_exact(6, [1.0], boundary="free").energy)
    with pytest.raises(ValueError, match="continuous"):
        enumerate_states(model)


# --------------------------------------------------------------------------- enumeration
def test_enumeration_order_and_state_index() -> None:
    model = Ising2D.from_size("2x3")
    states = enumerate_states(model)
    assert states.shape == (64, 2, 3)
    assert states.dtype == np.int8
    np.testing.assert_array_equal(states[0], -np.ones((2, 3)))
    np.testing.assert_array_equal(states[1].ravel(), [-1, -1, -1, -1, -1, 1])  # last site fastest
    np.testing.assert_array_equal(states[32].ravel(), [1, -1, -1, -1, -1, -1])  # site 0 first
    np.testing.assert_array_equal(state_index(model, states), np.arange(64))
    batch = states[[5, 7, 63]].reshape(3, 1, 2, 3).astype(np.float32)
    np.testing.assert_array_equal(state_index(model, batch), [[5], [7], [63]])
    with pytest.raises(ValueError, match=r"state value 0\.0 is not one of"):
        state_index(model, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="lattice shape"):
        state_index(model, np.ones((3, 2)))


def test_enumeration_limits() -> None:
    assert can_enumerate(Ising2D.from_size("4x6"))
    assert not can_enumerate(Ising2D.from_size("5x5"))
    with pytest.raises(ValueError, match="ENUMERATION_MAX_STATES"):
        enumerate_exact(Ising2D.from_size("5x5"), [1.0])


class _SiteCount(int):
    """A number of sites that refuses to be an exponent: q**N is never to be built for it."""

    def __rpow__(self, base: object) -> int:
        raise AssertionError(f"{base}**{int(self)} was built to count the states")


class _CountedTorus(Ising2D):
    """The Ising torus, with a site count that fails the test if raised to a power."""

    @property
    def n_sites(self) -> int:
        return _SiteCount(math.prod(self.shape))


def test_enumerability_is_decided_without_building_the_state_count() -> None:
    """2^N for a 100000 x 100000 torus alone takes 1.25 GB and minutes to compute."""
    from spinbench.samplers import closed_classes, frozen_share

    huge = _CountedTorus.from_size("100000x100000")
    assert not can_enumerate(huge)
    assert frozen_share(huge) is None
    assert closed_classes(huge) is None
    assert can_enumerate(_CountedTorus.from_size("4x6"))  # 2^24 states: the limit itself
    assert not can_enumerate(_CountedTorus.from_size("5x5"))
    assert not can_enumerate(XY1D.from_size(4))


def test_enumeration_against_independent_brute_force() -> None:
    """enumerate_exact against a plain numpy sum over the 3x3 torus (no model code)."""
    model = Ising2D.from_size("3x3")
    temps = np.array([0.8, 2.0, 4.0])
    spins = enumerate_states(model).astype(np.float64)
    energy = -np.sum(spins * (np.roll(spins, 1, 1) + np.roll(spins, 1, 2)), axis=(1, 2))
    magnetization = np.abs(spins.mean(axis=(1, 2)))
    corr = 0.5 * np.mean(spins * np.roll(spins, 1, 1) + spins * np.roll(spins, 1, 2), axis=(1, 2))
    log_w = -energy[None, :] / temps[:, None]
    ln_z = logsumexp(log_w, axis=1)
    p = np.exp(log_w - ln_z[:, None])
    mean = p @ energy
    result = enumerate_exact(model, temps)
    assert isinstance(result, ExactResult)
    assert result.source == "enumeration"
    assert result.ln_z == pytest.approx(ln_z, rel=1e-14)
    assert result.energy == pytest.approx(mean / 9, rel=1e-13)
    heat = np.sum(p * (energy[None, :] - mean[:, None]) ** 2, axis=1) / temps**2 / 9
    assert result.heat_capacity == pytest.approx(heat, rel=1e-12)
    assert result.abs_magnetization == pytest.approx(p @ magnetization, **FLOAT32)
    assert result.correlation[:, 0] == pytest.approx(p @ corr, **FLOAT32)

    log_p = boltzmann_log_probabilities(model, temps)
    assert log_p.shape == (3, 512)
    assert log_p == pytest.approx(log_w - ln_z[:, None], rel=1e-13, abs=1e-12)
    dist = enumerate_energy_distribution(model, temps)
    levels, counts = np.unique(energy, return_counts=True)
    np.testing.assert_array_equal(dist.levels, levels)
    expected = counts * np.exp(-levels[None, :] / temps[:, None] - ln_z[:, None])
    assert dist.probabilities == pytest.approx(expected, rel=1e-12)


def test_enumeration_snaps_float32_energies() -> None:
    """A coupling that float32 cannot represent still gives merged, exact levels."""
    dist = enumerate_energy_distribution(Ising1D.from_size(8, J=0.3), [1.0])
    np.testing.assert_allclose(dist.levels, -0.3 * 7 + 0.6 * np.arange(8), rtol=0, atol=1e-12)
    exact = ising1d_exact(8, [1.0], boundary="free", J=0.3)
    assert enumerate_exact(Ising1D.from_size(8, J=0.3), [1.0]).energy == pytest.approx(
        exact.energy, rel=1e-12
    )


# --------------------------------------------------------------------------- temperature limits
@pytest.mark.parametrize(
    ("solve", "limit"),
    [
        (lambda t: ising1d_exact(6, t, boundary="free"), "1e+100"),
        (lambda t: ising1d_exact(7, t, boundary="periodic", J=-1.0), "1e+100"),
        (lambda t: ising1d_energy_distribution(6, t, boundary="periodic"), "1e+100"),
        (lambda t: enumerate_exact(Ising2D.from_size(3, J=-1.0), t), "1e+100"),
        (lambda t: enumerate_energy_distribution(Ising1D.from_size(4), t), "1e+100"),
        (lambda t: boltzmann_log_probabilities(Ising1D.from_size(4), t), "1e+100"),
        (lambda t: xy1d_exact(6, t, boundary="free"), "1000"),
        (lambda t: xy1d_exact(7, t, boundary="periodic", J=-1.0), "1000"),
        (lambda t: ising2d_torus(6, 6, t), "300"),
        (lambda t: ising2d_infinite(t), "300"),
    ],
    ids=[
        "ising1d",
        "ising1d-frustrated-ring",
        "ising1d-distribution",
        "enumeration",
        "enumerated-distribution",
        "boltzmann-probabilities",
        "xy1d",
        "xy1d-frustrated-ring",
        "ising2d-torus",
        "ising2d-infinite",
    ],
)
def test_colder_than_a_solver_resolves_is_refused_naming_the_limit(solve, limit: str) -> None:
    """Below its limit a solver gave NaN or wrong values (the XY heat capacity cancels: 1.85
    instead of 0.417 at T = 1e-8); at the limit its values are finite."""
    limit_t = 1.0 / float(limit)
    expected = re.escape(f"needs |J|/T <= {limit}, i.e. T >= {limit_t:.6g} for |J| = 1; got T")
    with pytest.raises(ValueError, match=expected):
        solve([limit_t * 0.99, 1.0])
    with pytest.raises(ValueError, match=r"got T = 1e-200"):
        solve([1.0, 1e-200])
    result = solve([limit_t, 1.0])
    for name in ("ln_z", "energy", "heat_capacity", "correlation", "probabilities"):
        values = getattr(result, name, None)
        assert values is None or np.all(np.isfinite(values)), name


def test_ising2d_model_below_the_closed_form_limit_says_so() -> None:
    """The torus's temperature limit reaches the caller; only the frustrated torus (no closed
    form) falls back to enumeration, or to None when it is too large."""
    with pytest.raises(ValueError, match=r"\|J\|/T <= 300.*got T = 0\.001"):
        Ising2D.from_size(10).exact(np.array([0.001, 1.0]))
    with pytest.raises(FrustratedTorusError, match="frustrated"):
        ising2d_torus(3, 4, [1.0], J=-1.0)
    assert Ising2D.from_size(3, J=-1.0).exact(np.array([1.0])).source == "enumeration"
    assert Ising2D.from_size(5, J=-1.0).exact(np.array([1.0])) is None


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_temperatures_are_validated(bad: float) -> None:
    calls = [
        lambda t: ising1d_exact(4, t, boundary="free"),
        lambda t: ising1d_energy_distribution(4, t, boundary="periodic"),
        lambda t: xy1d_exact(4, t, boundary="free"),
        lambda t: ising2d_torus(4, 4, t),
        lambda t: ising2d_infinite(t),
        lambda t: enumerate_exact(Ising1D.from_size(3), t),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="temperature must be finite and > 0"):
            call([1.0, bad])


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="boundary"):
        ising1d_exact(4, [1.0], boundary="open")
    with pytest.raises(ValueError, match="integer >= 2"):
        xy1d_exact(1, [1.0], boundary="free")
    with pytest.raises(ValueError, match="J must be finite and non-zero"):
        ising2d_torus(4, 4, [1.0], J=0.0)
    with pytest.raises(ValueError, match="ground state"):
        ising2d_torus(4, 4, [1e-3])


def test_chunked_enumeration_matches_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large models go through chunks (last one padded); the result must not depend on it."""
    import spinbench.exact._enumerate as enumeration

    model = Ising2D.from_size("3x4")
    temps = np.array([1.0, 2.5])
    whole = enumerate_exact(model, temps)
    monkeypatch.setattr(enumeration, "_CHUNK", 1000)  # 4096 states: 5 chunks, the last padded
    chunked = enumerate_exact(model, temps)
    for name in ("ln_z", "energy", "heat_capacity", "abs_magnetization", "correlation"):
        assert chunked.observable(name) == pytest.approx(whole.observable(name), rel=1e-12)
    assert enumerate_energy_distribution(model, temps).probabilities == pytest.approx(
        enumerate_energy_distribution(Ising2D.from_size("3x4"), temps).probabilities
    )
