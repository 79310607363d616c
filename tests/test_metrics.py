"""Metrics against references (``_metrics``): energy-histogram distances with their noise
floors, and the exact state KL of enumerable models."""

from __future__ import annotations

import numpy as np
import pytest

from spinbench import Samples
from spinbench._distances import (
    empirical_vs_exact_floor,
    kl_divergence,
    level_histogram,
    total_variation,
)
from spinbench._metrics import compare_energy_histograms, noise_floor_exact, state_kl
from spinbench.exact import boltzmann_log_probabilities, enumerate_states
from spinbench.models import XY1D, Ising1D, Ising2D


def exact_draws(model: Ising1D, temps: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` independent Boltzmann configurations per temperature ``(temps, 1, n, *shape)``."""
    rng = np.random.default_rng(seed)
    states = enumerate_states(model)
    probabilities = np.exp(boltzmann_log_probabilities(model, temps))
    picks = np.stack([rng.choice(len(states), size=n, p=p) for p in probabilities])
    return states[picks][:, None]


def samples_of(model: Ising1D, temps: np.ndarray, states: np.ndarray) -> Samples:
    return Samples(states=states, temps=temps, model=model.describe(), method="test")


def energies(model: Ising1D, states: np.ndarray) -> np.ndarray:
    flat = states.reshape(len(states), -1, *model.shape)
    return np.asarray(model.energy(flat), np.float64)


def test_exact_draws_sit_at_the_noise_floor_and_a_wrong_temperature_does_not() -> None:
    model, temps, n = Ising1D.from_size(8), np.array([0.8, 2.0]), 4000
    exact = model.exact_energy_distribution(temps)
    right = compare_energy_histograms(
        energies(model, exact_draws(model, temps, n, 1)), exact=exact, reference=None, n_sites=8
    )
    assert right["reference"] == "exact"
    assert np.all(right["energy_tv"] < 3 * right["energy_tv_floor"])
    hotter = exact_draws(model, temps * 2, n, 2)  # another temperature's distribution
    wrong = compare_energy_histograms(
        energies(model, hotter), exact=exact, reference=None, n_sites=8
    )
    assert np.all(wrong["energy_tv"] > 5 * wrong["energy_tv_floor"])


def test_against_a_monte_carlo_reference_the_floor_is_two_halves() -> None:
    model, temps = Ising1D.from_size(8), np.array([1.0])
    reference = energies(model, exact_draws(model, temps, 4000, 3))
    same = compare_energy_histograms(reference, exact=None, reference=reference, n_sites=8)
    assert same["reference"] == "mc"
    assert same["energy_tv"][0] == 0.0 and same["energy_kl"][0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < same["energy_tv_floor"][0] < 0.1
    with pytest.raises(ValueError, match="exact distribution or a reference"):
        compare_energy_histograms(reference, exact=None, reference=None, n_sites=8)


def test_state_kl_of_a_point_mass_is_minus_the_log_of_its_probability() -> None:
    model, temps = Ising1D.from_size(5), np.array([0.7, 3.0])
    ground = np.ones((2, 1, 50, 5), np.int8)  # every configuration all up
    kl = state_kl(model, samples_of(model, temps, ground), temps)
    assert kl is not None
    log_p = boltzmann_log_probabilities(model, temps)[:, -1]  # all up: the last index
    np.testing.assert_allclose(kl["kl"], -log_p, rtol=1e-12)
    np.testing.assert_allclose(
        kl["floor"], noise_floor_exact(np.exp(boltzmann_log_probabilities(model, temps)), 50)
    )


def test_state_kl_only_for_small_discrete_models() -> None:
    assert (
        state_kl(
            XY1D.from_size(4),
            samples_of(XY1D.from_size(4), np.ones(1), np.zeros((1, 1, 4, 4), np.float32)),
            np.ones(1),
        )
        is None
    )
    big = Ising2D.from_size(6)  # 2^36 states: not enumerated
    assert (
        state_kl(big, samples_of(big, np.ones(1), np.ones((1, 1, 4, 6, 6), np.int8)), np.ones(1))
        is None
    )


def test_many_exact_levels_exact_draws_sit_at_the_floor() -> None:
    """A 32x32 torus has 1023 levels (exact, Beale): energies drawn from the exact distribution
    are at the noise floor (|z| < 4 against the floor's spread), a slightly wrong temperature is
    far above it, and the levels of negligible probability change neither distance."""
    model, n = Ising2D.from_size(32), 10_000
    temps = np.array([2.0, 2.269, 3.0])
    exact = model.exact_energy_distribution(temps)
    assert exact is not None and exact.levels.size == 1023
    rng = np.random.default_rng(5)
    drawn = np.stack([rng.choice(exact.levels, size=n, p=p) for p in exact.probabilities])
    right = compare_energy_histograms(drawn, exact=exact, reference=None, n_sites=model.n_sites)
    floor = empirical_vs_exact_floor(exact.probabilities, n, key_or_seed=0)
    z = (right["energy_tv"] - floor.tv) / floor.tv_std
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(right["energy_tv_floor"], floor.tv, rtol=0.05)
    p = level_histogram(drawn, exact.levels)
    np.testing.assert_allclose(
        right["energy_tv"], total_variation(p, exact.probabilities), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        right["energy_kl"], kl_divergence(p, exact.probabilities), rtol=1e-12
    )
    hotter = model.exact_energy_distribution(temps * 1.03)
    assert hotter is not None
    off = np.stack([rng.choice(hotter.levels, size=n, p=p) for p in hotter.probabilities])
    wrong = compare_energy_histograms(off, exact=exact, reference=None, n_sites=model.n_sites)
    assert np.all(wrong["energy_tv"] > wrong["energy_tv_floor"] + 4 * floor.tv_std)
