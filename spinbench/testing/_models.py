"""The model checks of the conformance kit (:func:`check_model`)."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._plain import plain
from ..models import AbstractModel, ModelError, wrap_angle
from ._common import (
    MODEL_CHECKS,
    SYMMETRIES,
    Report,
    _describe_class,
    _energies,
    _energy_fn,
    _Fail,
    _first_index,
    _key,
    _no_problem,
    _proposals,
    _Recorder,
    _require,
    _spin_problem,
    _states,
    _where,
)
from ._exact import _model_exact


def _model_instances(
    rec: _Recorder,
    model_or_cls: AbstractModel | type[AbstractModel],
    sizes: Sequence[str | int],
    couplings: Sequence[float],
) -> list[AbstractModel]:
    """The instances to check: the one given, or built from the class at each size, boundary
    and coupling (``from_size`` check)."""
    if isinstance(model_or_cls, AbstractModel):
        return [model_or_cls]
    cls = model_or_cls
    models: list[AbstractModel] = []
    boundaries = tuple(getattr(cls, "boundaries", ("periodic",)))
    combos = [(s, b, couplings[0]) for s in sizes for b in boundaries]
    combos += [(sizes[0], boundaries[0], J) for J in couplings[1:]]
    for size, boundary, J in combos:
        label = getattr(cls, "name", cls.__name__)
        where = f"{label} from_size({size!r}, boundary={boundary!r}, J={plain(J)})"
        with rec.check("from_size", where):
            model = cls.from_size(size, boundary=boundary, J=J)
            _require(
                isinstance(model, cls),
                f"from_size returned {type(model).__name__}, not a {cls.__name__}",
            )
            _require(model.boundary == boundary, f"boundary is {model.boundary!r}")
            _require(model.J == J, f"J is {plain(model.J)!r}, expected {plain(J)!r}")
            _require(
                isinstance(model.shape, tuple) and all(isinstance(n, int) for n in model.shape),
                f"shape {model.shape!r} must be a tuple of ints",
            )
            again = cls.from_size(model.size, boundary=boundary, J=J)
            _require(
                again == model,
                f"from_size(model.size={model.size!r}) gives {again!r}, not the same model "
                f"{model!r}: size must spell the shape",
            )
            models.append(model)
    if rec.wants("from_size"):
        default = boundaries[0]
        with rec.check("from_size", f"{cls.__name__}.from_size(sizes[0]) with no boundary"):
            model = cls.from_size(sizes[0])
            _require(
                model.boundary == default,
                f"boundary=None gave {model.boundary!r}; the default is boundaries[0]={default!r}",
            )
        bad_inputs: list[tuple[str, dict[str, Any]]] = [
            ("size 'nonsense'", {"size": "nonsense"}),
            ("size '1'", {"size": "1"}),
            ("boundary 'moebius'", {"size": sizes[0], "boundary": "moebius"}),
            ("J=0", {"size": sizes[0], "J": 0.0}),
            ("J=nan", {"size": sizes[0], "J": float("nan")}),
        ]
        for label, kwargs in bad_inputs:
            with rec.check("from_size", f"{cls.__name__}.from_size with {label}"):
                size = kwargs.pop("size")
                try:
                    cls.from_size(size, **kwargs)
                except ModelError:
                    pass
                except Exception as error:
                    raise _Fail(
                        f"raised {type(error).__name__}: {error}; an impossible specification "
                        f"must raise spinbench.ModelError (a ValueError) with a clear message"
                    ) from error
                else:
                    raise _Fail("was accepted; it must raise spinbench.ModelError")
    return models


def _check_attributes(rec: _Recorder, cls: type) -> None:
    where = cls.__qualname__
    with rec.check("attributes", where):
        name = getattr(cls, "name", None)
        _require(
            isinstance(name, str) and name and name == name.lower() and name.split() == [name],
            f"name {name!r} must be a non-empty lowercase string without spaces",
        )
    if not isinstance(cls, type) or not issubclass(cls, AbstractModel):
        return
    with rec.check("attributes", where):
        values = cls.spin_values
        if values is not None:
            _require(
                isinstance(values, tuple) and len(values) >= 2,
                f"spin_values {values!r} must be a tuple of at least two ints, or None",
            )
            _require(
                all(isinstance(v, int) and -128 <= v <= 127 for v in values),
                f"spin_values {values!r} must be ints that fit int8",
            )
            _require(len(set(values)) == len(values), f"spin_values {values!r} repeat a value")
        declared = inspect.getattr_static(cls, "symmetry", None)
        if not isinstance(declared, property):  # else declared per instance: see "symmetry"
            _symmetry_problem(declared, values)
        boundaries = cls.boundaries
        _require(
            isinstance(boundaries, tuple)
            and boundaries
            and all(isinstance(b, str) for b in boundaries),
            f"boundaries {boundaries!r} must be a non-empty tuple of str",
        )
        tc = cls.critical_temperature
        _require(
            tc is None or (isinstance(tc, int | float) and math.isfinite(tc) and tc > 0),
            f"critical_temperature {plain(tc)!r} must be None or a positive number",
        )


def _symmetry_problem(symmetry: Any, values: tuple[int, ...] | None) -> None:
    """Fail unless ``symmetry`` is a known one that the spin values allow."""
    _require(
        symmetry is None or symmetry in SYMMETRIES,
        f"symmetry {symmetry!r} is not known; use None or one of: {', '.join(SYMMETRIES)}",
    )
    if symmetry == "flip":
        _require(
            values is None or set(values) == {-v for v in values},
            f"symmetry 'flip' needs spin_values symmetric about 0, got {values}",
        )
    if symmetry == "rotation":
        _require(values is None, "symmetry 'rotation' is for angles (spin_values None)")
    if symmetry == "permutation":
        _require(values is not None, "symmetry 'permutation' needs discrete spin_values")


def _model_static(model: AbstractModel) -> None:
    leaves = jax.tree_util.tree_leaves(model)
    _require(
        not leaves,
        f"the model has array leaves {[getattr(x, 'shape', x) for x in leaves][:3]}: declare "
        f"every field with eqx.field(static=True) so the model can be a static jit argument",
    )
    hash(model)
    description = model.describe()
    json.dumps(description)
    for key in ("model", "size", "boundary", "J"):
        _require(key in description, f"describe() lacks {key!r}: {description}")
    _require(description["model"] == model.name, f"describe()['model'] is {description['model']!r}")
    energies = eqx.filter_jit(lambda m, s: m.energy(s))(model, jnp.asarray(_states(model, 2, 0)))
    _require(np.shape(energies) == (2,), f"jitted energy has shape {np.shape(energies)}")


def _model_neighbours(model: AbstractModel) -> None:
    table = np.asarray(model.neighbours())
    n = model.n_sites
    _require(
        table.ndim == 2 and table.shape[0] == n,
        f"neighbours() has shape {table.shape}; expected (n_sites={n}, z)",
    )
    _require(np.issubdtype(table.dtype, np.integer), f"neighbours() has dtype {table.dtype}")
    bad = (table < -1) | (table >= n)
    if bad.any():
        raise _Fail(f"entry {table[bad][0]} at {_first_index(bad)} is outside -1..{n - 1}")
    loops = table == np.arange(n)[:, None]
    if loops.any():
        raise _Fail(f"site {_first_index(loops)[0]} is its own neighbour")
    counts = np.zeros((n, n), np.int64)
    for i, row in enumerate(table):
        for j in row[row >= 0]:
            counts[i, j] += 1
    asymmetric = counts != counts.T
    if asymmetric.any():
        i, j = _first_index(asymmetric)
        raise _Fail(
            f"not symmetric: site {j} appears {counts[i, j]} time(s) among the neighbours of "
            f"site {i}, but site {i} appears {counts[j, i]} time(s) among those of site {j}"
        )


def _model_random_states(model: AbstractModel) -> None:
    states = np.asarray(model.random_states((3, 2), key=_key(1)))
    _require(
        tuple(states.shape) == (3, 2, *model.shape),
        f"random_states((3, 2)) has shape {tuple(states.shape)}, expected (3, 2, *{model.shape})",
    )
    problem = _spin_problem(model, states, "random_states")
    _no_problem(problem)
    again = model.random_states((3, 2), key=_key(1))
    _require(np.array_equal(states, again), "random_states differ under the same key")
    other = model.random_states((3, 2), key=_key(2))
    _require(not np.array_equal(states, other), "random_states are equal under different keys")


def _model_propose(model: AbstractModel) -> None:
    states = jnp.asarray(_states(model, 4, 4))
    widths = (None,) if model.spin_values is not None else (None, 0.5)
    for width in widths:
        proposed = model.propose(states, key=_key(5), width=width)
        problem = _spin_problem(model, proposed, f"propose(width={width}) results")
        _no_problem(problem)
        _require(
            proposed.shape == states.shape,
            f"propose changed the shape {states.shape} -> {proposed.shape}",
        )
        if model.spin_values is not None:
            same = np.asarray(proposed) == np.asarray(states)
            if same.any():
                index = _first_index(same)
                raise _Fail(
                    f"propose kept value {np.asarray(states)[index].item()} at index {index}: "
                    f"a discrete proposal must be another value"
                )
        elif width is not None:
            step = np.abs(np.asarray(wrap_angle(proposed - states)))
            _require(
                step.max() <= width + 1e-5,
                f"propose(width={width}) moved an angle by {step.max():.4f} > width",
            )


def _reference_energy(model: AbstractModel, states: np.ndarray) -> np.ndarray:
    """Half the sum of ``bond_energy`` over every (site, neighbour) pair of the table, plus
    ``site_energy`` of every site."""
    table = np.asarray(model.neighbours())
    flat = np.asarray(states).reshape(len(states), model.n_sites)
    total = np.zeros(len(states), np.float64)
    for k in range(table.shape[1]):
        valid = table[:, k] >= 0
        partner = flat[:, np.where(valid, table[:, k], 0)]
        bonds = np.asarray(model.bond_energy(jnp.asarray(flat), jnp.asarray(partner)), np.float64)
        total += 0.5 * np.sum(np.where(valid, bonds, 0.0), axis=-1)
    site = model.site_energy(jnp.asarray(flat))
    if site is not None:
        _require(
            np.shape(site) == flat.shape,
            f"site_energy gives shape {np.shape(site)} for spins of shape {flat.shape}; it must "
            "be elementwise",
        )
        total += np.sum(np.asarray(site, np.float64), axis=-1)
    return total


def _tolerance(model: AbstractModel, energies: np.ndarray) -> float:
    return 2e-5 * max(1.0, float(np.max(np.abs(energies)))) + 1e-5 * abs(model.J)


def _model_energy(model: AbstractModel) -> None:
    states = _states(model, 8, 6)
    flat = states.reshape(8, model.n_sites)
    a, b = jnp.asarray(flat), jnp.asarray(flat[:, ::-1])
    bond_ab, bond_ba = np.asarray(model.bond_energy(a, b)), np.asarray(model.bond_energy(b, a))
    _require(
        bond_ab.dtype == np.float32,
        f"bond_energy returns {bond_ab.dtype}; energies must be float32",
    )
    asym = ~np.isclose(bond_ab, bond_ba, rtol=1e-5, atol=1e-6)
    if asym.any():
        i = _first_index(asym)
        raise _Fail(
            f"bond_energy is not symmetric: bond_energy({flat[i].item()!r}, "
            f"{flat[:, ::-1][i].item()!r}) = "
            f"{bond_ab[i]} but swapped it is {bond_ba[i]}"
        )
    energies = _energy_fn(model)(jnp.asarray(states))
    _require(
        np.shape(energies) == (8,),
        f"energy of a batch (8, *shape) has shape {np.shape(energies)}, expected (8,)",
    )
    _require(
        np.asarray(energies).dtype == np.float32, f"energy returns {energies.dtype}, not float32"
    )
    expected = _reference_energy(model, states)
    got = np.asarray(energies, np.float64)
    wrong = ~np.isclose(got, expected, rtol=0, atol=_tolerance(model, expected))
    if wrong.any():
        at = int(np.argmax(wrong))
        raise _Fail(
            f"energy of configuration {states[at].tolist()} is {got[at]:.6g}, but half the sum "
            f"of bond_energy over neighbours() gives {expected[at]:.6g}"
        )


def _single_site_changes(
    model: AbstractModel, states: np.ndarray, proposed: np.ndarray
) -> np.ndarray:
    """Energy change ``(batch, n_sites)`` of changing one site at a time, from total energies."""
    batch, n = len(states), model.n_sites
    flat, new = states.reshape(batch, n), proposed.reshape(batch, n)
    eye = np.eye(n, dtype=bool)
    changed = np.where(eye[None], new[:, None, :], flat[:, None, :])  # (batch, site, n)
    after = _energies(model, changed.reshape(batch * n, *model.shape)).reshape(batch, n)
    before = _energies(model, states)
    return after - before[:, None]


def _model_delta_energy(model: AbstractModel) -> None:
    states = _states(model, 3, 7)
    proposed = _proposals(model, states, 7)
    delta = jax.jit(model.delta_energy)(jnp.asarray(states), jnp.asarray(proposed))
    _require(
        tuple(np.shape(delta)) == states.shape,
        f"delta_energy has shape {tuple(np.shape(delta))}, expected {states.shape} (one value "
        f"per site)",
    )
    _require(np.asarray(delta).dtype == np.float32, f"delta_energy returns {delta.dtype}")
    expected = _single_site_changes(model, states, proposed)
    got = np.asarray(delta, np.float64).reshape(expected.shape)
    wrong = ~np.isclose(got, expected, rtol=0, atol=_tolerance(model, expected) * 4)
    if wrong.any():
        b, site = _first_index(wrong)
        raise _Fail(
            f"at flat site {site} of configuration {states[b].tolist()}, changing the spin from "
            f"{states[b].reshape(-1)[site].item()!r} to {proposed[b].reshape(-1)[site].item()!r}: "
            f"delta_energy gives {got[b, site]:.6g}, the difference of total energies is "
            f"{expected[b, site]:.6g}"
        )


def _model_site_delta_energy(model: AbstractModel) -> None:
    states = _states(model, 2, 8)
    proposed = _proposals(model, states, 8)
    expected = _single_site_changes(model, states, proposed)
    sites = jnp.arange(model.n_sites)

    def one(state: Any, new_flat: Any) -> Any:
        return jax.vmap(lambda site: model.site_delta_energy(state, site, new_flat[site]))(sites)

    got = np.asarray(
        jax.jit(jax.vmap(one))(
            jnp.asarray(states), jnp.asarray(proposed.reshape(2, model.n_sites))
        ),
        np.float64,
    )
    _require(got.shape == expected.shape, f"site_delta_energy is not a scalar: {got.shape}")
    wrong = ~np.isclose(got, expected, rtol=0, atol=_tolerance(model, expected) * 4)
    if wrong.any():
        b, site = _first_index(wrong)
        raise _Fail(
            f"at flat site {site} of configuration {states[b].tolist()}, new value "
            f"{proposed[b].reshape(-1)[site].item()!r}: site_delta_energy (jitted, vmapped) gives "
            f"{got[b, site]:.6g}, the difference of total energies is {expected[b, site]:.6g}"
        )


def _model_colouring(model: AbstractModel) -> None:
    colours = np.asarray(model.colouring())
    _require(
        colours.shape == tuple(model.shape),
        f"colouring() has shape {colours.shape}, expected {model.shape}",
    )
    _require(np.issubdtype(colours.dtype, np.integer), f"colouring() has dtype {colours.dtype}")
    flat = colours.reshape(-1)
    _require(flat.min() == 0, f"colours must start at 0, got {flat.min()}")
    table = np.asarray(model.neighbours())
    valid = table >= 0
    clash = valid & (flat[np.where(valid, table, 0)] == flat[:, None])
    if clash.any():
        site, k = _first_index(clash)
        raise _Fail(
            f"sites {site} and {table[site, k]} are neighbours with the same colour "
            f"{flat[site]}: checkerboard updates would change both at once"
        )


def _transform(model: AbstractModel, states: Any, rng: np.random.Generator) -> tuple[Any, str]:
    """The states under a random element of the declared symmetry, and its description."""
    if model.symmetry == "flip":
        return -states, "s -> -s"
    if model.symmetry == "rotation":
        shift = float(rng.uniform(0.3, 2 * np.pi - 0.3))
        return wrap_angle(states + shift), f"theta -> theta + {shift:.3f}"
    assert model.spin_values is not None
    values = np.asarray(model.spin_values)
    perm = rng.permutation(len(values))
    if np.array_equal(perm, np.arange(len(values))):
        perm = np.roll(perm, 1)
    table = dict(zip(values.tolist(), values[perm].tolist(), strict=True))
    mapped = np.vectorize(table.__getitem__, otypes=[np.int8])(np.asarray(states))
    return jnp.asarray(mapped), f"values permuted {table}"


def _model_symmetry(rec: _Recorder, model: AbstractModel) -> None:
    with rec.check("symmetry", _where(model)):
        _symmetry_problem(model.symmetry, model.spin_values)
    if model.symmetry is None:
        rec.skip("symmetry", "the model declares no global symmetry (symmetry = None)")
        return
    with rec.check("symmetry", _where(model)):
        states = jnp.asarray(_states(model, 6, 9))
        moved, description = _transform(model, states, np.random.default_rng(10))
        energy = _energy_fn(model)
        before, after = np.asarray(energy(states)), np.asarray(energy(moved))
        wrong = ~np.isclose(before, after, rtol=0, atol=_tolerance(model, before))
        if wrong.any():
            i = int(np.argmax(wrong))
            raise _Fail(
                f"the model declares symmetry {model.symmetry!r} but the energy changes under "
                f"{description}: {before[i]:.6g} -> {after[i]:.6g} for configuration "
                f"{np.asarray(states)[i].tolist()}"
            )
        observables = jax.jit(model.observables)
        obs_before, obs_after = observables(states), observables(moved)
        for name in ("abs_magnetization", "correlation"):
            if name not in obs_before:
                continue
            x, y = np.asarray(obs_before[name]), np.asarray(obs_after[name])
            bad = ~np.isclose(x, y, rtol=1e-4, atol=1e-5)
            if bad.any():
                at = _first_index(bad)
                raise _Fail(
                    f"observable {name!r} is not invariant under {description} (declared "
                    f"symmetry {model.symmetry!r}): {x[at]:.6g} -> {y[at]:.6g} at index {at}"
                )


def _model_observables(model: AbstractModel) -> None:
    states = jnp.asarray(_states(model, 5, 11))
    observables = jax.jit(model.observables)(states)
    for name in ("energy", "abs_magnetization", "correlation"):
        _require(name in observables, f"observables() lacks {name!r}; has {sorted(observables)}")
    distances = np.asarray(model.correlation_distances())
    _require(distances.ndim == 1 and len(distances) > 0, f"correlation_distances() {distances}")
    shapes = {
        "energy": (5,),
        "abs_magnetization": (5,),
        "correlation": (5, len(distances)),
    }
    for name, shape in shapes.items():
        value = np.asarray(observables[name])
        _require(
            value.shape == shape,
            f"observable {name!r} of a batch of 5 has shape {value.shape}, expected {shape}",
        )
        bad = ~np.isfinite(value)
        _require(not bad.any(), f"observable {name!r} is not finite at {np.argwhere(bad)[:1]}")
    per_site = np.asarray(_energy_fn(model)(states)) / model.n_sites
    _require(
        np.allclose(np.asarray(observables["energy"]), per_site, rtol=1e-5, atol=1e-6),
        f"observables()['energy'] {np.asarray(observables['energy'])} is not energy()/n_sites "
        f"{per_site}",
    )
    vectors = np.asarray(jax.jit(model.spin_vectors)(states))
    _require(
        vectors.ndim == 3 and vectors.shape[:2] == (5, model.n_sites),
        f"spin_vectors of a batch of 5 has shape {vectors.shape}; expected (5, n_sites, d)",
    )
    largest = float(np.max(np.linalg.norm(vectors, axis=-1)))
    m = np.asarray(observables["abs_magnetization"])
    _require(
        np.all(m >= 0) and np.all(m <= largest + 1e-5),
        f"abs_magnetization {m} must lie in [0, largest |spin vector| = {largest:.4g}]",
    )
    corr = np.asarray(observables["correlation"])
    _require(
        np.all(np.abs(corr) <= largest**2 + 1e-5),
        f"correlation {corr} exceeds the largest |s_i . s_j| = {largest**2:.4g}",
    )


def check_model(
    model_or_cls: AbstractModel | type[AbstractModel],
    *,
    sizes: Sequence[str | int] = ("3", "4"),
    couplings: Sequence[float] = (1.0, -0.7),
    checks: Iterable[str] | None = None,
) -> Report:
    """Check a model class (built with ``from_size`` at each of ``sizes``, every boundary it
    accepts and the first coupling, plus the first size at the other couplings) or one instance.

    ``checks`` restricts the run to some of :data:`MODEL_CHECKS`. Sizes are spelled as on the
    command line; the defaults give 3 and 4 sites per axis (an odd torus tests the colouring of
    non-bipartite lattices). Raises :class:`ConformanceError` listing every failure.
    """
    return _run_model_checks(
        model_or_cls, sizes=sizes, couplings=couplings, checks=checks
    ).raise_for()


def _run_model_checks(
    model_or_cls: AbstractModel | type[AbstractModel],
    *,
    sizes: Sequence[str | int] = ("3", "4"),
    couplings: Sequence[float] = (1.0, -0.7),
    checks: Iterable[str] | None = None,
) -> Report:
    cls = model_or_cls if isinstance(model_or_cls, type) else type(model_or_cls)
    rec = _Recorder(_describe_class(cls), MODEL_CHECKS, checks)
    if rec.wants("attributes"):
        _check_attributes(rec, cls)
    if not (isinstance(cls, type) and issubclass(cls, AbstractModel)):
        with rec.check("attributes", cls.__qualname__):
            raise _Fail(f"{cls!r} is not a subclass of spinbench.AbstractModel")
        return rec.finish()
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        with rec.check("attributes", cls.__qualname__):
            raise _Fail(f"abstract methods not implemented: {', '.join(abstract)}")
        return rec.finish()
    if isinstance(model_or_cls, AbstractModel):
        rec.skip("from_size", "an instance was given; pass the class to check from_size")
    models = _model_instances(rec, model_or_cls, sizes, couplings)
    simple: list[tuple[str, Callable[[AbstractModel], None]]] = [
        ("static", _model_static),
        ("neighbours", _model_neighbours),
        ("random_states", _model_random_states),
        ("propose", _model_propose),
        ("energy", _model_energy),
        ("delta_energy", _model_delta_energy),
        ("site_delta_energy", _model_site_delta_energy),
        ("colouring", _model_colouring),
    ]
    for index, model in enumerate(models):
        for name, function in simple:
            if name in ("random_states", "propose") and index > 0:
                continue  # jax.random compiles per shape (about a second each): first only
            if rec.wants(name):
                with rec.check(name, _where(model)):
                    function(model)
        if rec.wants("symmetry"):
            _model_symmetry(rec, model)
        if rec.wants("observables"):
            with rec.check("observables", _where(model)):
                _model_observables(model)
        if rec.wants("exact"):
            _model_exact(rec, model)
    if not models:
        for name in MODEL_CHECKS[2:]:
            if rec.wants(name):
                rec.skip(name, "no instance could be built (see from_size)")
    return rec.finish()
