"""The exact density of states of the Ising torus (Beale's method) against brute force and
against Kaufman's E and C, and the energy distributions the models give from it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinbench import ExactSolutionError
from spinbench.exact import (
    ISING2D_TC,
    EnergyDistribution,
    FrustratedTorusError,
    enumerate_energy_distribution,
    ising2d_density_of_states,
    ising2d_energy_distribution,
    ising2d_torus,
)
from spinbench.models import Ising2D

TEMPS = np.array([1.0, 1.5, 2.0, ISING2D_TC, 2.5, 3.5, 10.0])


def _brute_force_counts(lx: int, ly: int) -> dict[int, int]:
    """Numbers of states by total energy (J = 1), counting every configuration with numpy."""
    sites = lx * ly
    index = np.arange(2**sites, dtype=np.int64)
    spins = (((index[:, None] >> np.arange(sites)) & 1) * 2 - 1).astype(np.int8)
    spins = spins.reshape(-1, lx, ly)
    bonds = (spins * np.roll(spins, -1, axis=1)).sum(axis=(1, 2), dtype=np.int64)
    bonds += (spins * np.roll(spins, -1, axis=2)).sum(axis=(1, 2), dtype=np.int64)
    energies, counts = np.unique(-bonds, return_counts=True)
    return dict(zip(energies.tolist(), counts.tolist(), strict=True))


@pytest.mark.parametrize("shape", [(4, 4), (2, 4), (4, 2), (3, 3), (3, 4), (4, 5), (2, 7)])
def test_density_of_states_equals_enumeration(shape: tuple[int, int]) -> None:
    dos = ising2d_density_of_states(*shape)
    assert dict(zip(dos.energies, dos.counts, strict=True)) == _brute_force_counts(*shape)
    assert all(isinstance(count, int) for count in dos.counts)


@pytest.mark.parametrize("shape", [(4, 4), (5, 7), (6, 10), (16, 16), (32, 32), (24, 40)])
def test_counts_sum_to_two_to_the_n_with_the_known_low_levels(shape: tuple[int, int]) -> None:
    lx, ly = shape
    sites = lx * ly
    dos = ising2d_density_of_states(lx, ly)
    g = dict(zip(dos.energies, dos.counts, strict=True))
    assert sum(dos.counts) == 2**sites
    assert list(dos.energies) == sorted(dos.energies)
    assert g[-2 * sites] == 2  # the two ground states
    assert -2 * sites + 4 not in g  # no configuration breaks exactly two bonds
    assert g[-2 * sites + 8] == 2 * sites  # one flipped spin, either ground state
    if lx % 2 == 0 and ly % 2 == 0:  # flipping a sublattice maps E to -E
        assert g == {-e: c for e, c in g.items()}


def test_density_of_states_is_symmetric_in_the_lengths() -> None:
    wide, tall = ising2d_density_of_states(6, 10), ising2d_density_of_states(10, 6)
    assert wide.counts == tall.counts and wide.energies == tall.energies
    assert (wide.shape, tall.shape) == ((6, 10), (10, 6))


def _moments(distribution: EnergyDistribution, temps: np.ndarray, sites: int) -> tuple:
    """E/N and C/N of an energy distribution (two-pass variance)."""
    p = distribution.probabilities
    mean = p @ distribution.levels
    variance = np.sum(p * (distribution.levels[None, :] - mean[:, None]) ** 2, axis=1)
    return mean / sites, variance / (sites * temps**2)


@pytest.mark.parametrize(
    ("lx", "ly"),
    [
        (4, 4),
        (8, 8),
        (16, 16),
        (32, 32),
        (5, 7),
        (6, 10),
        pytest.param(64, 64, marks=pytest.mark.slow),
    ],
)
def test_energy_and_heat_capacity_equal_kaufman(lx: int, ly: int) -> None:
    distribution = ising2d_energy_distribution(lx, ly, TEMPS)
    energy, heat_capacity = _moments(distribution, TEMPS, lx * ly)
    kaufman = ising2d_torus(lx, ly, TEMPS)
    np.testing.assert_allclose(energy, kaufman.energy, rtol=1e-10)
    np.testing.assert_allclose(heat_capacity, kaufman.heat_capacity, rtol=1e-10)
    np.testing.assert_allclose(distribution.probabilities.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("J", [0.5, -0.5, -2.0])
def test_couplings_scale_the_levels(J: float) -> None:
    """|J| scales the energies; the even antiferromagnet has the ferromagnet's distribution."""
    temps = np.array([0.8, 2.0]) * abs(J)
    distribution = ising2d_energy_distribution(4, 6, temps, J=J)
    unit = ising2d_energy_distribution(4, 6, temps / abs(J))
    np.testing.assert_allclose(distribution.levels, abs(J) * unit.levels)
    np.testing.assert_allclose(distribution.probabilities, unit.probabilities, rtol=1e-12)
    energy, _ = _moments(distribution, temps, 24)
    np.testing.assert_allclose(energy, ising2d_torus(4, 6, temps, J=J).energy, rtol=1e-10)


def test_distribution_equals_the_models_enumeration() -> None:
    model = Ising2D.from_size("3x4")
    exact = model.exact_energy_distribution(TEMPS)
    counted = enumerate_energy_distribution(model, TEMPS)
    assert exact is not None
    np.testing.assert_allclose(exact.levels, counted.levels)
    np.testing.assert_allclose(exact.probabilities, counted.probabilities, rtol=1e-10, atol=1e-14)


def test_no_overflow_at_any_temperature() -> None:
    temps = np.array([1e-3, 0.05, 1e3, 1e8])
    distribution = ising2d_energy_distribution(32, 32, temps)
    p = distribution.probabilities
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0)  # frozen in the ground state
    # T = 1e8 (beta |E| <= 2e-5): each level has its share g / 2^N of the states, even those
    # whose share is below 1e-300.
    dos = ising2d_density_of_states(32, 32)
    shares = np.exp(dos.log_counts() - 1024 * math.log(2.0))
    assert shares[0] < 1e-300
    np.testing.assert_allclose(p[-1], shares, rtol=1e-4, atol=0)


def test_models_use_the_density_of_states_where_enumeration_cannot() -> None:
    temps = np.array([ISING2D_TC])
    model = Ising2D.from_size(16)
    distribution = model.exact_energy_distribution(temps)
    assert distribution is not None and distribution.levels.size == 255
    assert Ising2D.from_size(16, h=0.1).exact_energy_distribution(temps) is None
    assert Ising2D.from_size("5x5", J=-1.0).exact_energy_distribution(temps) is None  # frustrated
    frustrated = Ising2D.from_size("3x4", J=-1.0).exact_energy_distribution(temps)
    assert frustrated is not None  # enumerated
    assert Ising2D.from_size("64x65").exact_energy_distribution(temps) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ising2d_density_of_states(64, 65), "beyond 4096 sites"),
        (lambda: ising2d_density_of_states(1, 8), "integer >= 2"),
        (lambda: ising2d_density_of_states(4.0, 8), "integer >= 2"),
        (lambda: ising2d_energy_distribution(4, 4, [0.0]), "finite and > 0"),
        (lambda: ising2d_energy_distribution(4, 4, [1.0], J=0.0), "non-zero"),
        (lambda: ising2d_energy_distribution(4, 4, [1e-101]), "T >= "),
    ],
)
def test_bad_input_is_a_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_frustrated_torus_is_refused() -> None:
    with pytest.raises(FrustratedTorusError, match="frustrated"):
        ising2d_energy_distribution(3, 4, [1.0], J=-1.0)
    assert issubclass(FrustratedTorusError, ExactSolutionError)
