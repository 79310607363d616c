"""The MADE generator: spinbench's conformance kit, the exact likelihood, and accuracy on a
chain small enough to enumerate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import spinbench
from spinbench.models import XY1D, Ising1D, Ising2D
from spinbench.testing import boltzmann_samples, enumerate_boltzmann, generator_conformance

from spinbench_made import MADE

# One pytest item per contract check (shapes, valid spins, determinism, save/load, ...).
test_made_conformance = generator_conformance(MADE(epochs=3, batch_size=100, hidden=16))


def all_states(model: spinbench.AbstractModel) -> np.ndarray:
    """Every configuration, in the order of spinbench.testing.enumerate_boltzmann."""
    n = model.n_sites
    digits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return np.asarray(model.spin_values, np.int8)[digits].reshape(2**n, *model.shape)


def test_probabilities_sum_to_one_before_and_after_training() -> None:
    model = Ising2D.from_size("2x3")
    generator = MADE(epochs=2, batch_size=50, hidden=8)
    params = generator.init(model, 2, key=jax.random.key(0))
    states = jnp.asarray(all_states(model))
    total = np.exp(np.asarray(generator.log_prob(model, params, states), np.float64)).sum(axis=1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)
    data = boltzmann_samples(model, [1.0, 3.0], 200, key=jax.random.key(1))
    trained = generator.fit(model, data, key=jax.random.key(2))
    total = np.exp(np.asarray(generator.log_prob(model, trained.params, states), np.float64))
    np.testing.assert_allclose(total.sum(axis=1), 1.0, rtol=1e-5)


def test_learns_the_boltzmann_distribution_of_a_small_chain() -> None:
    model = Ising1D.from_size(6)
    temps = [1.0, 3.0]
    data = boltzmann_samples(model, temps, 2000, key=jax.random.key(3))
    trained = MADE(epochs=60, batch_size=200, hidden=32, learning_rate=3e-3).fit(
        model, data, key=jax.random.key(4)
    )
    assert np.all(trained.diverged_step == -1)
    exact = enumerate_boltzmann(model, temps)
    log_q = np.asarray(
        trained.generator.log_prob(model, trained.params, jnp.asarray(all_states(model))),
        np.float64,
    )
    kl = np.sum(exact * (np.log(exact) - log_q), axis=1)  # exact KL(Boltzmann || MADE)
    assert np.all(kl < 0.05), kl
    samples = trained.generate(4000, key=jax.random.key(5))
    energy = np.asarray(model.energy(samples.states.reshape(-1, 6))).reshape(2, -1).mean(axis=1)
    exact_energy = exact @ np.asarray(model.energy(jnp.asarray(all_states(model))), np.float64)
    np.testing.assert_allclose(energy, exact_energy, atol=0.15)


def test_refuses_models_without_two_valued_spins() -> None:
    reason = MADE().supports(XY1D.from_size(4))
    assert reason is not None and "two-valued spins" in reason


@pytest.mark.parametrize("option", ["epochs", "batch_size", "hidden"])
def test_invalid_options_are_clear_errors(option: str) -> None:
    with pytest.raises(spinbench.OptionError, match=f"{option} must be a positive integer"):
        MADE.from_options(**{option: 0})


def test_registered_with_its_distribution() -> None:
    entry = spinbench.get_registry().entry("generators", "made")
    assert entry.cls is MADE and entry.distribution == "spinbench-made"


@pytest.mark.parametrize("symmetrize", [False, True])
def test_variational_free_energy_exceeds_the_exact_one_by_t_kl_per_site(symmetrize: bool) -> None:
    """F_q - F = T KL(q || p) / N, with KL by enumeration and F_q estimated from draws, and
    the reweighted rows (spinbench.corrections) consistent with the exact values."""
    from spinbench.corrections import reweighted, variational_free_energy

    model = Ising1D.from_size(8)
    temps = np.array([0.8, 2.0])
    data = boltzmann_samples(model, temps, 1000, key=jax.random.key(3))
    generator = MADE(epochs=10, batch_size=200, hidden=16, symmetrize=symmetrize)
    trained = generator.fit(model, data, key=jax.random.key(4))
    states = all_states(model)
    log_p = np.log(enumerate_boltzmann(model, temps))
    flat = jnp.asarray(np.broadcast_to(states, (2, *states.shape)))
    log_q = np.asarray(_exact_log_q(generator, model, trained.params, flat), np.float64)
    q = np.exp(log_q)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)  # symmetrised: still normalised
    kl = np.sum(q * (log_q - log_p), axis=1)
    assert np.all(kl > 0.01), kl  # briefly trained: a gap to measure
    exact = model.exact(temps)
    samples = trained.generate(20000, key=jax.random.key(5), density=True)
    bound = variational_free_energy(model, samples, exact)
    for row, T, gap in zip(bound, temps, kl, strict=True):
        expected = row["exact"] + T * gap / model.n_sites
        assert abs(row["estimate"] - expected) < 4 * row["stderr"], (row, expected)
        assert row["estimate"] > row["exact"]
    for row in reweighted(model, samples, exact):
        if row["observable"] in ("energy", "free_energy", "heat_capacity"):
            assert abs(row["z"]) < 4, row


def _exact_log_q(generator: MADE, model: Ising1D, params: object, states: jax.Array) -> jax.Array:
    """ln q of every configuration, symmetrised as generate_with_log_density does."""
    log_q = generator.log_prob_stacked(model, params, states)
    if generator.symmetrize:
        log_q = jnp.logaddexp(log_q, generator.log_prob_stacked(model, params, -states)) - np.log(2)
    return log_q


def test_data_free_training_is_refused_with_the_alternative() -> None:
    with pytest.raises(spinbench.OptionError, match="for data-free variational training use van"):
        MADE.from_options(training="variational")
