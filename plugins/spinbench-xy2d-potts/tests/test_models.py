"""The plugin's models: spinbench's conformance kit, registration, and physics facts."""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import spinbench
from spinbench.models import Ising2D
from spinbench.testing import check_model, model_conformance

from spinbench_xy2d_potts import XY2D, AbstractPotts, Potts3, Potts4

# One pytest item per contract check (attributes, from_size, energy, delta_energy, ...).
test_xy2d_conformance = model_conformance(XY2D)
test_potts3_conformance = model_conformance(Potts3)


class Potts2(AbstractPotts):
    """Two-state Potts model: the Ising model with half the coupling (test-only)."""

    name: ClassVar[str] = "potts2"
    q: ClassVar[int] = 2
    spin_values: ClassVar[tuple[int, ...] | None] = (0, 1)


def test_potts4_conformance_on_one_size() -> None:
    check_model(Potts4, sizes=("3",), couplings=(1.0,))  # the code is Potts3's


def test_models_are_registered_with_their_distribution() -> None:
    registry = spinbench.get_registry()
    for name in ("xy2d", "potts3", "potts4"):
        entry = registry.entry("models", name)
        assert entry.distribution == "spinbench-xy2d-potts"
        assert entry.plugin == "xy2d-potts"
    assert registry.problems == []


def test_critical_temperatures() -> None:
    assert Potts3.critical_temperature == pytest.approx(1 / math.log(1 + math.sqrt(3)))
    assert Potts4.critical_temperature == pytest.approx(1 / math.log(3))
    assert XY2D.critical_temperature == pytest.approx(0.893, abs=1e-3)


def test_xy2d_has_no_exact_solution() -> None:
    model = XY2D.from_size(4)
    assert model.exact(np.array([1.0])) is None
    assert model.exact_energy_distribution(np.array([1.0])) is None


def test_potts2_is_ising_with_half_the_coupling() -> None:
    """delta(s, s') = (1 + sigma sigma') / 2 with sigma = 2 s - 1: an exact identity."""
    potts = Potts2.from_size("4x6", J=1.3)
    ising = Ising2D.from_size("4x6", J=1.3 / 2)
    states = potts.random_states((16,), key=jax.random.key(0))
    n_bonds = 2 * potts.n_sites
    expected = -1.3 * n_bonds / 2 + ising.energy((2 * states - 1).astype(jnp.int8))
    np.testing.assert_allclose(potts.energy(states), expected, rtol=1e-6, atol=1e-5)


def test_potts_order_parameter() -> None:
    model = Potts3.from_size(4)
    ordered = jnp.full((1, 4, 4), 2, jnp.int8)
    mixed = jnp.asarray(np.arange(16).reshape(1, 4, 4) % 3, jnp.int8)
    assert float(model.observables(ordered)["abs_magnetization"][0]) == pytest.approx(1.0)
    fractions = np.bincount(np.arange(16) % 3) / 16
    expected = math.sqrt((3 * np.sum(fractions**2) - 1) / 2)
    assert float(model.observables(mixed)["abs_magnetization"][0]) == pytest.approx(expected)
    vectors = np.asarray(model.spin_vectors(mixed))[0, :3]  # the states 0, 1, 2
    gram = vectors @ vectors.T
    np.testing.assert_allclose(gram, np.where(np.eye(3), 1.0, -0.5), atol=1e-6)


def test_ground_state_energies() -> None:
    assert float(Potts4.from_size(3).energy(jnp.zeros((3, 3), jnp.int8))) == pytest.approx(-18)
    aligned = jnp.full((4, 4), 0.7, jnp.float32)
    assert float(XY2D.from_size(4, J=0.5).energy(aligned)) == pytest.approx(-16.0)
