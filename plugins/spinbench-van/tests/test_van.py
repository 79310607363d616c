"""The VAN generator: spinbench's conformance kit (both ways of training), the exact and
normalised density, exact sampling, the causal window, and variational training against
enumeration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import spinbench
from scipy import stats
from spinbench.models import XY1D, Ising1D, Ising2D
from spinbench.testing import enumerate_boltzmann, generator_conformance

from spinbench_van import VAN, causal_window

# One pytest item per contract check (shapes, valid spins, determinism, save/load, ...).
test_van_conformance = generator_conformance(VAN(epochs=2, batch_size=100, width=8, radius=1))
test_van_variational_conformance = generator_conformance(
    VAN(training="variational", steps=5, batch_size=32, width=8, radius=1, symmetrize=True)
)


def all_states(model: spinbench.AbstractModel) -> np.ndarray:
    """Every configuration, in the order of spinbench.testing.enumerate_boltzmann."""
    n = model.n_sites
    digits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return np.asarray(model.spin_values, np.int8)[digits].reshape(2**n, *model.shape)


@pytest.mark.parametrize("periodic", [True, False])
def test_the_window_holds_only_earlier_sites_and_wraps_on_a_torus(periodic: bool) -> None:
    shape = (4, 5)
    index, mask = causal_window(shape, 1, periodic)
    site = np.arange(20)[:, None]
    assert np.all(index[mask > 0] < np.broadcast_to(site, index.shape)[mask > 0])
    # the last site (3,4): 2 above and its left neighbour; on a torus also the sites the
    # window wraps to: (2,0) and (3,0) on the right, (0,3) (0,4) (0,0) below.
    seen = set(index[19][mask[19] > 0].tolist())
    torus = {13, 14, 10, 18, 15, 3, 4, 0}
    assert seen == (torus if periodic else {13, 14, 18})
    assert mask[0].sum() == 0  # the first site is drawn from its bias alone


@pytest.mark.parametrize("symmetrize", [False, True])
@pytest.mark.parametrize(("size", "boundary"), [("2x3", "periodic"), ("6", "free")])
def test_the_density_sums_to_one(size: str, boundary: str, symmetrize: bool) -> None:
    model = Ising2D.from_size(size) if "x" in size else Ising1D.from_size(size, boundary=boundary)
    generator = VAN(width=8, radius=2, symmetrize=symmetrize)
    params = generator.init(model, 2, key=jax.random.key(0))
    params = jax.tree_util.tree_map(  # away from the symmetric initial point
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(1), a.shape), params
    )
    states = jnp.broadcast_to(jnp.asarray(all_states(model)), (2, 2**model.n_sites, *model.shape))
    total = np.exp(np.asarray(generator.log_prob_stacked(model, params, states), np.float64))
    np.testing.assert_allclose(total.sum(axis=1), 1.0, rtol=1e-5)


def test_draws_follow_the_density() -> None:
    """Chi-squared of 40,000 draws of an untrained (randomised) network against its own q."""
    model = Ising2D.from_size("2x3")
    generator = VAN(width=8, radius=1, symmetrize=True)
    params = jax.tree_util.tree_map(
        lambda a: a + 0.5 * jax.random.normal(jax.random.key(2), a.shape),
        generator.init(model, 1, key=jax.random.key(0)),
    )
    draws, log_q = generator.generate_with_log_density(model, params, 40000, key=jax.random.key(3))
    states = all_states(model)
    codes = (np.asarray(draws[0]).reshape(-1, 6) > 0) @ (1 << np.arange(6))
    observed = np.bincount(codes, minlength=64)
    q = np.exp(
        np.asarray(generator.log_prob_stacked(model, params, jnp.asarray(states)[None]), np.float64)
    )[0]
    # (q sums to 1 to float32 rounding, tested above; chisquare wants exact totals)
    _, p_value = stats.chisquare(observed, q / q.sum() * observed.sum())
    assert p_value > 1e-4, p_value
    # the log densities returned with the draws are those of the drawn states
    np.testing.assert_allclose(np.asarray(log_q[0]), np.log(q[codes]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("symmetrize", [False, True])
def test_variational_training_approaches_the_boltzmann_distribution(symmetrize: bool) -> None:
    """Data-free training on a 2x4 torus: F_q - F = T KL(q || p) / N (KL by enumeration),
    and KL is small after training."""
    model = Ising2D.from_size("2x4")
    temps = np.asarray([2.0, 4.0])
    generator = VAN(
        training="variational",
        steps=300,
        batch_size=256,
        width=16,
        radius=2,
        learning_rate=3e-3,
        symmetrize=symmetrize,
    )
    trained = generator.fit(
        model,
        spinbench.testing.boltzmann_samples(model, temps, 4, key=jax.random.key(0)),
        key=jax.random.key(4),
    )
    assert np.all(trained.diverged_step == -1)
    assert trained.info["training"] == "variational"
    exact = enumerate_boltzmann(model, temps)
    states = jnp.asarray(all_states(model))
    log_q = np.asarray(
        generator.log_prob_stacked(
            model, trained.params, jnp.broadcast_to(states, (2, *states.shape))
        ),
        np.float64,
    )
    q = np.exp(log_q)
    kl = np.sum(q * (log_q - np.log(exact)), axis=1)  # exact KL(q || Boltzmann)
    assert np.all(kl < 0.05), kl
    draws = trained.generate(20000, key=jax.random.key(5), density=True)
    energy = np.asarray(model.energy(jnp.asarray(draws.states[:, 0])), np.float64)
    per_site = (energy + temps[:, None] * draws.info["log_q"]) / model.n_sites
    F_q, err = per_site.mean(axis=1), per_site.std(axis=1, ddof=1) / np.sqrt(20000)
    energies = np.asarray(model.energy(states), np.float64)
    F = -temps * np.log(np.exp(-energies[None] / temps[:, None]).sum(axis=1)) / model.n_sites
    z = (F_q - (F + temps * kl / model.n_sites)) / err
    assert np.all(np.abs(z) < 4), z


def test_refuses_models_without_two_valued_spins() -> None:
    reason = VAN().supports(XY1D.from_size(4))
    assert reason is not None and "two-valued spins" in reason


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"training": "reverse-kl"}, "training must be one of data, variational"),
        ({"radius": 0}, "radius must be a positive integer"),
        ({"depth": -1}, "depth must be a non-negative integer"),
        ({"anneal": 1.0}, r"anneal must be in \[0, 1\)"),
        ({"steps": 0}, "steps must be a positive integer"),
    ],
)
def test_invalid_options_are_clear_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(spinbench.OptionError, match=message):
        VAN.from_options(**options)


def test_registered_with_its_distribution() -> None:
    entry = spinbench.get_registry().entry("generators", "van")
    assert entry.cls is VAN and entry.distribution == "spinbench-van"


def test_every_window_offset_is_distinct_on_large_lattices() -> None:
    index, mask = causal_window((8, 8), 2, True)
    for row, valid in zip(index, mask, strict=True):
        chosen = row[valid > 0]
        assert len(set(chosen.tolist())) == len(chosen)
    # site 0 sees nothing, site 1 its left neighbour, site 6 also (0,0) across the seam
    assert mask.sum(axis=1)[[0, 1, 6]].tolist() == [0, 1, 3]
