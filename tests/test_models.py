"""Built-in models: energies, local energy changes, colourings and observables."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spinbench.models import XY1D, AbstractModel, Ising1D, Ising2D, ModelError, parse_size

MODELS = [
    Ising1D.from_size(6),
    Ising1D.from_size(5, boundary="periodic"),
    Ising1D.from_size(2, boundary="periodic", J=-0.7),
    Ising2D.from_size(4),
    Ising2D.from_size("3x5", J=-1.0),
    Ising2D.from_size("2x2"),
    XY1D.from_size(6),
    XY1D.from_size(3, boundary="periodic", J=1.3),
]
IDS = [f"{m.name}-{m.size}-{m.boundary}-J{m.J}" for m in MODELS]


def reference_energy(model: AbstractModel, state: np.ndarray) -> float:
    """Energy from an explicit list of bonds, written independently of the model code."""
    s = np.asarray(state, dtype=np.float64)
    if model.name == "ising2d":
        lx, ly = model.shape
        total = 0.0
        for x, y in itertools.product(range(lx), range(ly)):
            total += s[x, y] * (s[(x + 1) % lx, y] + s[x, (y + 1) % ly])
        return -model.J * total
    n = model.n_sites
    pairs = [(i, i + 1) for i in range(n - 1)]
    if model.boundary == "periodic":
        pairs.append((n - 1, 0))
    if model.name == "xy1d":
        return -model.J * sum(np.cos(s[i] - s[j]) for i, j in pairs)
    return -model.J * sum(s[i] * s[j] for i, j in pairs)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_energy_matches_explicit_bond_sum(model: AbstractModel) -> None:
    states = np.asarray(model.random_states((7,), key=jax.random.key(1)))
    energies = np.asarray(model.energy(states))
    expected = [reference_energy(model, s) for s in states]
    np.testing.assert_allclose(energies, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_delta_energy_equals_difference_of_total_energies(model: AbstractModel) -> None:
    key_states, key_propose = jax.random.split(jax.random.key(2))
    states = model.random_states((3, 4), key=key_states)
    proposed = model.propose(states, key=key_propose, width=0.7)
    delta = np.asarray(model.delta_energy(states, proposed)).reshape(3, 4, -1)
    flat, new = states.reshape(3, 4, -1), proposed.reshape(3, 4, -1)
    for site in range(model.n_sites):
        changed = flat.at[..., site].set(new[..., site]).reshape(states.shape)
        expected = np.asarray(model.energy(changed) - model.energy(states))
        np.testing.assert_allclose(delta[..., site], expected, atol=2e-5)
        single = model.site_delta_energy(states[1, 2], jnp.int32(site), new[1, 2, site])
        np.testing.assert_allclose(float(single), expected[1, 2], atol=2e-5)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_colouring_never_gives_neighbours_the_same_colour(model: AbstractModel) -> None:
    colours = model.colouring().ravel()
    table = model.neighbours()
    for site, row in enumerate(table):
        for other in row:
            if other >= 0 and other != site:
                assert colours[site] != colours[other]
    assert colours.min() == 0


def test_checkerboard_is_used_on_even_tori() -> None:
    colours = Ising2D.from_size(4).colouring()
    assert set(np.unique(colours)) == {0, 1}
    assert colours[0, 0] != colours[0, 1]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_random_states_and_proposals_are_valid_spins(model: AbstractModel) -> None:
    states = model.random_states((50,), key=jax.random.key(3))
    assert states.shape == (50, *model.shape)
    assert states.dtype == model.dtype
    for width in (None, 0.3):
        proposed = model.propose(states, key=jax.random.key(4), width=width)
        assert proposed.dtype == model.dtype
        if model.spin_values is not None:
            assert set(np.unique(np.asarray(proposed))) <= set(model.spin_values)
            assert bool(jnp.all(proposed != states))
        else:
            assert bool(jnp.all((proposed >= -jnp.pi) & (proposed < jnp.pi)))


def test_ordered_state_observables() -> None:
    for model in (Ising1D.from_size(6), XY1D.from_size(6)):
        ordered = jnp.zeros((2, 6), model.dtype) + (1 if model.is_discrete else 0.4)
        values = model.observables(ordered)
        np.testing.assert_allclose(values["energy"], -5 / 6, rtol=1e-6)
        np.testing.assert_allclose(values["abs_magnetization"], 1.0, rtol=1e-6)
        np.testing.assert_allclose(values["correlation"], 1.0, rtol=1e-6)
        assert values["correlation"].shape == (2, 5)
    lattice = Ising2D.from_size("4x6")
    values = lattice.observables(jnp.ones((1, 4, 6), jnp.int8))
    np.testing.assert_allclose(values["energy"], -2.0)
    assert values["correlation"].shape == (1, 2)


def test_alternating_chain_correlation_sign() -> None:
    model = Ising1D.from_size(6)
    state = jnp.asarray([[1, -1, 1, -1, 1, -1]], jnp.int8)
    np.testing.assert_allclose(model.correlation(state)[0], [-1, 1, -1, 1, -1])
    np.testing.assert_allclose(model.observables(state)["abs_magnetization"], 0.0)


def test_xy_magnetization_is_the_length_of_the_mean_vector() -> None:
    model = XY1D.from_size(2)
    state = jnp.asarray([[0.0, jnp.pi / 2]], jnp.float32)
    np.testing.assert_allclose(
        model.observables(state)["abs_magnetization"], np.sqrt(0.5), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("size", "ndim", "message"),
    [
        ("1", 1, "at least 2"),
        ("0x4", 2, "at least 2"),
        ("ten", 1, "not understood"),
        ("-3", 1, "not understood"),
        ("4x4x4", 2, "3 axes"),
    ],
)
def test_bad_sizes_are_clear_errors(size: str, ndim: int, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_size(size, ndim)


def test_sizes_are_parsed() -> None:
    assert parse_size("10", 2) == (10, 10)
    assert parse_size("10x12", 2) == (10, 12)
    assert Ising2D.from_size("10x12").size == "10x12"


def test_bad_boundary_and_coupling() -> None:
    with pytest.raises(ModelError, match="choose one of: periodic"):
        Ising2D.from_size(4, boundary="free")
    with pytest.raises(ModelError, match="finite and non-zero"):
        Ising1D.from_size(4, J=float("nan"))
    with pytest.raises(ModelError, match="finite and non-zero"):
        XY1D.from_size(4, J=0.0)


def test_models_are_hashable_and_jit_friendly() -> None:
    model = Ising2D.from_size(4)

    @jax.jit
    def energy(states: jax.Array) -> jax.Array:
        return model.energy(states)

    states = model.random_states((2,), key=jax.random.key(0))
    np.testing.assert_allclose(energy(states), model.energy(states))
    assert hash(model) == hash(Ising2D.from_size(4))
