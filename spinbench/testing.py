"""Conformance kit: does a model, sampler or generator keep spinbench's plugin contract?

Plugin authors call these from their own test suites::

    from spinbench.testing import check_model, check_sampler, check_generator

    def test_my_model():
        check_model(MyModel)              # a class (built at small sizes) or an instance

    def test_my_sampler():
        check_sampler(MySampler(chains=32, warmup=100, sweeps=2000, every=10))

or, to see one pytest item per check, with the pytest helpers (pytest is imported only when a
helper is called, so this module imports without pytest)::

    from spinbench.testing import model_conformance
    test_my_model = model_conformance(MyModel)

Each ``check_*`` runs every check (or those named in ``checks``), collects all failures and
raises one :class:`ConformanceError` (an ``AssertionError``) whose message names the class, the
check, where it failed (size, boundary, coupling, temperature) and the offending values. On
success it returns a :class:`Report` of the checks that passed and those skipped, with reasons.

What is checked (see the ``*_CHECKS`` tuples for the names):

* models: class attributes; construction from a size spelling and the errors for bad input;
  that instances are static (hashable, no array leaves: they are passed into jitted code);
  the neighbour table; spin dtypes and values of ``random_states`` and ``propose``; the total
  energy against an independent sum of ``bond_energy`` over the neighbour table; the local
  ``delta_energy`` and ``site_delta_energy`` against differences of total energies at every
  site; the colouring; invariance of the energy and observables under the declared global
  symmetry; observables' names and shapes; exact references against brute-force enumeration.
* samplers: options and ``from_options`` round trip; ``supports``; the layout, dtype and
  values of :class:`~spinbench.Samples`; determinism under a fixed key; the distribution
  against the exact Boltzmann distribution of tiny instances (a χ² test, below).
* generators: options; ``init`` stacked over temperatures; ``fit`` on exact Boltzmann samples;
  shapes, dtype and valid spins of generated states; determinism; save/load identity. Not
  accuracy: training is brief.

**The sampler's χ² test.** Each test model is tiny: the Ising chain of 5 sites (32 states) and
the 3x3 Ising torus (512 states), whose exact state distribution is enumerated; the XY chain of
4 rotors with free ends, whose bond angles are independent von Mises variables (κ = J/T) and
whose first angle is uniform (20 bins each). The samples of each temperature are thinned by
``ceil(2 τ_int)``, the largest integrated autocorrelation time of the energy and of each
component of the magnetisation vector (Wolff's Γ-method, :func:`spinbench.stats.estimate`),
so that the kept configurations are nearly independent; bins expecting fewer than 5 counts are
pooled. Each (model, temperature, repeat) gives a p-value (one per angle for XY); they are
combined by Fisher's method and, against a single large deviation, as the smallest p-value
times their number; the combined p-value is twice the smaller of the two, and the sampler is
rejected when it is below ``threshold`` (1e-4 by default): a correct sampler fails at most about
once in 10,000 runs, a wrong acceptance rule fails every time. The failure names the worst
test (model, temperature, χ², degrees of freedom, p-value).

Every temperature is tested, however few configurations thinning leaves: a test on few is
weaker, not wrong, and a wrong acceptance rule often mixes slowly, so that thinning leaves few
(more chains would not help it). Fewer than ``MIN_INDEPENDENT`` (400) configurations at a
temperature fail the check as "too few samples, configure more chains or sweeps" only when the
χ² tests pass: a pass on so few says little.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from ._plain import plain
from .exact.enumerate import has_at_most_states
from .generators.base import AbstractGenerator, TrainedGenerator
from .models.base import AbstractModel, ModelError, wrap_angle
from .samplers.base import AbstractSampler, options_of
from .samples import Samples

__all__ = [
    "GENERATOR_CHECKS",
    "MODEL_CHECKS",
    "SAMPLER_CHECKS",
    "ConformanceError",
    "Failure",
    "Report",
    "boltzmann_samples",
    "check_generator",
    "check_model",
    "check_sampler",
    "enumerate_boltzmann",
    "generator_conformance",
    "model_conformance",
    "sampler_conformance",
]

#: Names of the model checks, in the order they run.
MODEL_CHECKS = (
    "attributes",
    "from_size",
    "static",
    "neighbours",
    "random_states",
    "propose",
    "energy",
    "delta_energy",
    "site_delta_energy",
    "colouring",
    "symmetry",
    "observables",
    "exact",
)
#: Names of the sampler checks, in the order they run.
SAMPLER_CHECKS = ("attributes", "supports", "samples", "determinism", "distribution")
#: Names of the generator checks, in the order they run.
GENERATOR_CHECKS = ("attributes", "supports", "init", "fit", "generate", "determinism", "save_load")

#: Global symmetries a model may declare, and what they mean.
SYMMETRIES = {
    "flip": "s -> -s (discrete values symmetric about 0)",
    "rotation": "theta -> theta + c for angles",
    "permutation": "any permutation of the discrete values (Potts)",
}

#: Largest state space enumerated by the ``exact`` check.
ENUMERATE_MAX_STATES = 2**15
#: Default rejection threshold of the sampler's combined χ² p-value.
CHI2_THRESHOLD = 1e-4
#: Fewest thinned configurations per temperature for the χ² test's pass to count.
MIN_INDEPENDENT = 400
#: Bins of the continuous (von Mises / uniform) χ² tests.
ANGLE_BINS = 20

KeyLike = PRNGKeyArray | int | None


# ====================================================================== results


@dataclasses.dataclass(frozen=True)
class Failure:
    """One failed check: its name, where (instance, temperature) and what is wrong."""

    check: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        where = f" [{self.where}]" if self.where else ""
        return f"check '{self.check}'{where}: {self.message}"


class ConformanceError(AssertionError):
    """A class breaks the spinbench contract; the message lists every failed check.

    ``subject`` names the class (and its registry name); ``failures`` holds the
    :class:`Failure` records.
    """

    def __init__(self, subject: str, failures: Sequence[Failure]) -> None:
        self.subject = subject
        self.failures = tuple(failures)
        lines = [f"{subject} breaks the spinbench contract ({len(self.failures)} failure(s)):"]
        lines += [f"  - {failure}" for failure in self.failures]
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class Report:
    """What a ``check_*`` call did: checks passed, skipped (with reasons) and failures."""

    subject: str
    passed: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    failures: list[Failure] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failures

    def failed(self, check: str) -> list[Failure]:
        """The failures of one check."""
        return [f for f in self.failures if f.check == check]

    def raise_for(self, checks: Iterable[str] | None = None) -> Report:
        """Raise :class:`ConformanceError` for the failures (of ``checks``, if given)."""
        wanted = None if checks is None else set(checks)
        failures = [f for f in self.failures if wanted is None or f.check in wanted]
        if failures:
            raise ConformanceError(self.subject, failures)
        return self


class _Fail(Exception):
    """Raised inside a check to record one failure with its message."""


class _Recorder:
    """Runs named checks, turning assertion failures and crashes into :class:`Failure` s."""

    def __init__(self, subject: str, known: Sequence[str], checks: Iterable[str] | None) -> None:
        wanted = list(known) if checks is None else list(checks)
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; valid checks: {', '.join(known)}")
        self.wanted = set(wanted)
        self.report = Report(subject)
        self._failed_now: set[str] = set()

    def wants(self, check: str) -> bool:
        return check in self.wanted

    @contextmanager
    def check(self, name: str, where: str = "") -> Iterator[None]:
        """Record a failure of ``name`` if the body raises; mark it passed otherwise."""
        try:
            yield
        except _Fail as failure:
            self._record(Failure(name, str(failure), where))
        except Exception as error:  # a crash inside the checked code is a failure too
            tb = traceback.extract_tb(error.__traceback__)
            origin = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
            self._record(Failure(name, f"raised {type(error).__name__}: {error}{origin}", where))
        else:
            wanted = name in self.wanted
            if wanted and name not in self.report.passed and name not in self._failed_now:
                self.report.passed.append(name)

    def _record(self, failure: Failure) -> None:
        self.report.failures.append(failure)
        self._failed_now.add(failure.check)
        if failure.check in self.report.passed:
            self.report.passed.remove(failure.check)

    def skip(self, check: str, reason: str) -> None:
        if check not in self.wanted:
            return
        if check not in self.report.passed and check not in self._failed_now:
            self.report.skipped.setdefault(check, reason)

    def finish(self) -> Report:
        for name in list(self.report.skipped):
            if name in self.report.passed or name in self._failed_now:
                del self.report.skipped[name]
        return self.report


def _require(condition: Any, message: str) -> None:
    if not bool(condition):
        raise _Fail(message)


def _no_problem(problem: str | None) -> None:
    if problem is not None:
        raise _Fail(problem)


def _key(key: KeyLike) -> PRNGKeyArray:
    if key is None:
        return jax.random.key(0)
    if isinstance(key, int):
        return jax.random.key(key)
    return key


def _describe_class(cls: type) -> str:
    name = getattr(cls, "name", None)
    return f"{cls.__module__}.{cls.__qualname__} (name {name!r})"


def _where(model: AbstractModel) -> str:
    return f"{model.name} size {model.size}, boundary {model.boundary}, J={model.J}"


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _spin_problem(model: AbstractModel, states: Any, what: str) -> str | None:
    """Why ``states`` are not valid configurations of ``model`` (dtype and values), or None."""
    array = np.asarray(states)
    if array.dtype != np.dtype(model.dtype):
        return f"{what} have dtype {array.dtype}; {model.name} spins must be {model.dtype}"
    if tuple(array.shape[array.ndim - len(model.shape) :]) != tuple(model.shape):
        return f"{what} have shape {array.shape}, which does not end in the lattice {model.shape}"
    if model.spin_values is not None:
        bad = ~np.isin(array, np.asarray(model.spin_values))
        if bad.any():
            index = _first_index(bad)
            return (
                f"{what} hold value {array[index].item()!r} at index {index}, not one of "
                f"spin_values {model.spin_values}"
            )
        return None
    low, high = np.float32(-np.pi), np.float32(np.pi)
    bad = ~(np.isfinite(array) & (array >= low) & (array < high))
    if bad.any():
        index = _first_index(bad)
        return f"{what} hold angle {array[index].item()!r} at index {index}, outside [-pi, pi)"
    return None


def _states(model: AbstractModel, batch: int, seed: int) -> np.ndarray:
    """Random valid configurations ``(batch, *shape)`` drawn with numpy (cheap: no jax.random
    compilation per lattice shape); ``model.random_states`` itself is checked separately."""
    rng = np.random.default_rng(seed)
    shape = (batch, *model.shape)
    if model.spin_values is not None:
        return rng.choice(np.asarray(model.spin_values, np.int8), shape)
    return rng.uniform(-np.pi, np.pi, shape).astype(np.float32)


def _proposals(model: AbstractModel, states: np.ndarray, seed: int) -> np.ndarray:
    """A valid different value at every site (discrete) or a move within 0.9 (angles)."""
    rng = np.random.default_rng(seed)
    if model.spin_values is not None:
        values = np.asarray(model.spin_values, np.int8)
        index = np.argmax(states[..., None] == values, axis=-1)
        shift = rng.integers(1, len(values), states.shape)
        return values[(index + shift) % len(values)]
    step = rng.uniform(-0.9, 0.9, states.shape).astype(np.float32)
    return np.asarray(wrap_angle(jnp.asarray(states + step)))


def _energy_fn(model: AbstractModel) -> Callable[[Any], Any]:
    return jax.jit(model.energy)


def _all_leaves_stacked(tree: Any, n: int) -> str | None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if eqx.is_array(leaf) and (leaf.ndim == 0 or leaf.shape[0] != n):
            return (
                f"parameter {jax.tree_util.keystr(path)} has shape {leaf.shape}; every array "
                f"must have a leading temperature axis of length {n}"
            )
    return None


def _trees_equal(a: Any, b: Any, *, exact: bool = True) -> str | None:
    """None if the array leaves of two pytrees agree, else where they first differ."""
    leaves_a = jax.tree_util.tree_leaves_with_path(eqx.filter(a, eqx.is_array))
    leaves_b = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array))
    if len(leaves_a) != len(leaves_b):
        return f"{len(leaves_a)} arrays against {len(leaves_b)}"
    for (path, x), y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return f"{jax.tree_util.keystr(path)}: shape {x.shape} against {y.shape}"
        same = np.array_equal(x, y) if exact else np.allclose(x, y, rtol=1e-5, atol=1e-6)
        if not same:
            index = _first_index(~np.isclose(x, y, rtol=0, atol=0)) if x.ndim else ()
            where = f"{jax.tree_util.keystr(path)}{list(index)}"
            return f"{where}: {plain(x[index])!r} against {plain(y[index])!r}"
    return None


# ====================================================================== exact distributions


def _enumerable(model: AbstractModel, limit: int = ENUMERATE_MAX_STATES) -> bool:
    return has_at_most_states(model, limit)


def _all_states(model: AbstractModel) -> np.ndarray:
    """Every configuration of a small discrete model, ``(q**n_sites, *shape)`` int8; the
    configuration at row k has flat site i equal to ``spin_values[digit i of k in base q]``."""
    assert model.spin_values is not None
    q, n = len(model.spin_values), model.n_sites
    digits = np.stack(np.unravel_index(np.arange(q**n), (q,) * n)[::-1], axis=-1)
    values = np.asarray(model.spin_values, dtype=np.int8)
    return values[digits].reshape(q**n, *model.shape)


def _state_index(model: AbstractModel, states: np.ndarray) -> np.ndarray:
    """Row of :func:`_all_states` of each configuration ``(*batch, *shape)`` -> ``(*batch,)``."""
    assert model.spin_values is not None
    q, n = len(model.spin_values), model.n_sites
    flat = np.asarray(states).reshape(*states.shape[: states.ndim - len(model.shape)], n)
    lookup = {v: i for i, v in enumerate(model.spin_values)}
    digits = np.vectorize(lookup.__getitem__, otypes=[np.int64])(flat)
    return np.sum(digits * q ** np.arange(n, dtype=np.int64), axis=-1)


def _energies(model: AbstractModel, states: np.ndarray, chunk: int = 2**14) -> np.ndarray:
    energy = _energy_fn(model)
    parts = [
        np.asarray(energy(jnp.asarray(states[i : i + chunk])), np.float64)
        for i in range(0, len(states), chunk)
    ]
    return np.concatenate(parts)


def enumerate_boltzmann(model: AbstractModel, temps: Sequence[float] | np.ndarray) -> np.ndarray:
    """Exact Boltzmann probabilities ``(temps, q**n_sites)`` of every configuration of a tiny
    discrete model, in the order of flat site 0 as the fastest-varying base-q digit.

    Written independently of :mod:`spinbench.exact` (only ``model.energy`` is used), so that
    the kit does not test spinbench with itself.
    """
    if not _enumerable(model):
        raise ValueError(f"{model.name} {model.size} is too large or not discrete to enumerate")
    energies = _energies(model, _all_states(model))
    beta = 1.0 / np.asarray(temps, np.float64)
    log_w = -beta[:, None] * (energies - energies.min())[None, :]
    log_w -= log_w.max(axis=1, keepdims=True)
    weights = np.exp(log_w)
    return weights / weights.sum(axis=1, keepdims=True)


def boltzmann_samples(
    model: AbstractModel, temps: Sequence[float] | np.ndarray, n: int, *, key: KeyLike = None
) -> Samples:
    """``n`` independent exact Boltzmann configurations per temperature, as a Samples set
    (``(temps, 1, n, *lattice)``, method ``"exact"``): training data for generator tests.

    Supported: discrete models small enough to enumerate (about 2**15 states), and XY chains
    with free ends (``model.name == "xy1d"``-like: angles, ``boundary == "free"``, one
    dimension), whose bond angles are independent von Mises variables with κ = J/T.
    """
    temps = np.asarray(temps, np.float64)
    key = _key(key)
    if _enumerable(model):
        probabilities = enumerate_boltzmann(model, temps)
        states = _all_states(model)
        keys = jax.random.split(key, len(temps))
        picks = [
            np.asarray(jax.random.choice(k, len(states), (n,), p=jnp.asarray(p)))
            for k, p in zip(keys, probabilities, strict=True)
        ]
        array = states[np.stack(picks)][:, None]
    elif model.spin_values is None and len(model.shape) == 1 and model.boundary == "free":
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        rng = np.random.default_rng(seed)
        chains = []
        for T in temps:
            first = rng.uniform(-np.pi, np.pi, (n, 1))
            bonds = rng.vonmises(0.0, model.J / T, (n, model.n_sites - 1))
            chains.append(np.cumsum(np.concatenate([first, bonds], axis=1), axis=1))
        array = np.asarray(wrap_angle(jnp.asarray(np.stack(chains), jnp.float32)))[:, None]
    else:
        raise ValueError(
            f"no exact sampler for {model.name} {model.size} ({model.boundary}); use a discrete "
            f"model of at most {ENUMERATE_MAX_STATES} states or an XY chain with free ends"
        )
    return Samples(
        states=np.asarray(array, dtype=np.dtype(model.dtype)),
        temps=temps,
        model=model.describe(),
        method="exact",
        settings={"n": int(n)},
    )


# ====================================================================== models


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
        symmetry = cls.symmetry
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
    """Half the sum of ``bond_energy`` over every (site, neighbour) pair of the table."""
    table = np.asarray(model.neighbours())
    flat = np.asarray(states).reshape(len(states), model.n_sites)
    total = np.zeros(len(states), np.float64)
    for k in range(table.shape[1]):
        valid = table[:, k] >= 0
        partner = flat[:, np.where(valid, table[:, k], 0)]
        bonds = np.asarray(model.bond_energy(jnp.asarray(flat), jnp.asarray(partner)), np.float64)
        total += 0.5 * np.sum(np.where(valid, bonds, 0.0), axis=-1)
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


def _model_exact(rec: _Recorder, model: AbstractModel) -> None:
    """Exact references against brute-force enumeration (or sanity where that is too big)."""
    scale = abs(model.J)
    temps = np.array([0.7, 1.6, 4.0]) * scale
    where = _where(model)
    with rec.check("exact", where):
        result = model.exact(temps)
        distribution = model.exact_energy_distribution(temps)
    if rec.report.failed("exact"):
        return
    if result is None and distribution is None:
        rec.skip("exact", f"{model.name} {model.size} has no exact reference (exact() is None)")
        return
    enumerable = _enumerable(model)
    with rec.check("exact", where):
        if result is not None:
            _require(
                np.allclose(np.asarray(result.temps, np.float64), temps),
                f"exact(temps).temps is {result.temps}, not the temperatures asked for {temps}",
            )
            for name in ("energy", "heat_capacity", "abs_magnetization", "ln_z"):
                value = getattr(result, name)
                if value is not None:
                    _require(
                        np.shape(value) == temps.shape,
                        f"exact().{name} has shape {np.shape(value)}, expected {temps.shape}",
                    )
        if not enumerable:
            return
        states = _all_states(model)
        energies = _energies(model, states)
        probabilities = enumerate_boltzmann(model, temps)
        mean = probabilities @ energies
        variance = probabilities @ energies**2 - mean**2
        beta = 1.0 / temps
        shifted = -beta[:, None] * (energies - energies.min())[None, :]
        top = shifted.max(axis=1)
        counted = {
            "energy": mean / model.n_sites,
            "heat_capacity": variance / (model.n_sites * temps**2),
            # The total ln Z of the finite system (spinbench.exact's convention), not per site.
            "ln_z": -beta * energies.min() + top + np.log(np.exp(shifted - top[:, None]).sum(1)),
        }
        wants_m = result is not None and result.abs_magnetization is not None
        wants_corr = result is not None and result.correlation is not None
        if wants_m or wants_corr:
            observables = jax.jit(model.observables)
            parts = [
                observables(jnp.asarray(states[i : i + 2**13]))
                for i in range(0, len(states), 2**13)
            ]
            m = np.concatenate([np.asarray(p["abs_magnetization"], np.float64) for p in parts])
            corr = np.concatenate([np.asarray(p["correlation"], np.float64) for p in parts])
            if wants_m:
                counted["abs_magnetization"] = probabilities @ m
            if wants_corr:
                assert result is not None and result.correlation is not None
                distances = np.asarray(model.correlation_distances())
                known = np.asarray(result.distances) if result.distances is not None else distances
                columns = [int(np.flatnonzero(distances == r)[0]) for r in known if r in distances]
                exact_corr = np.asarray(result.correlation, np.float64)
                _require(
                    exact_corr.shape == (len(temps), len(known)),
                    f"exact().correlation has shape {exact_corr.shape}; expected (temps, "
                    f"distances) = {(len(temps), len(known))}",
                )
                counted_corr = probabilities @ corr[:, columns]
                finite = np.isfinite(exact_corr[:, : len(columns)])
                wrong = finite & ~np.isclose(
                    exact_corr[:, : len(columns)], counted_corr, rtol=1e-4, atol=1e-5
                )
                if wrong.any():
                    t, k = _first_index(wrong)
                    raise _Fail(
                        f"exact().correlation at T={temps[t]:g}, r={known[k]} is "
                        f"{exact_corr[t, k]:.8g}; enumerating all {len(states)} configurations "
                        f"gives {counted_corr[t, k]:.8g}"
                    )

        for name, expected in counted.items():
            value = None if result is None else getattr(result, name)
            if value is None:
                continue
            got = np.asarray(value, np.float64)
            wrong = ~np.isclose(got, expected, rtol=1e-4, atol=1e-5 * max(1.0, scale))
            if wrong.any():
                i = int(np.argmax(wrong))
                per_site = " (ln_z is the total ln Z, not per site)" if name == "ln_z" else ""
                raise _Fail(
                    f"exact().{name} at T={temps[i]:g} is {got[i]:.8g}; enumerating all "
                    f"{len(states)} configurations gives {expected[i]:.8g}{per_site}"
                )
        if distribution is not None:
            levels = np.asarray(distribution.levels, np.float64)
            p = np.asarray(distribution.probabilities, np.float64)
            _require(
                p.shape == (len(temps), len(levels)),
                f"exact_energy_distribution probabilities have shape {p.shape}, expected "
                f"(temps, levels) = {(len(temps), len(levels))}",
            )
            _require(
                np.allclose(p.sum(axis=1), 1.0, atol=1e-6),
                f"exact_energy_distribution probabilities sum to {p.sum(axis=1)}, not 1",
            )
            nearest = np.argmin(np.abs(energies[:, None] - levels[None, :]), axis=1)
            off = np.abs(levels[nearest] - energies)
            _require(
                off.max() < 1e-3 * max(1.0, scale),
                f"energy {energies[int(np.argmax(off))]:.6g} of an enumerated configuration is "
                f"not among exact_energy_distribution levels",
            )
            counts = np.stack([np.bincount(nearest, w, len(levels)) for w in probabilities])
            wrong = ~np.isclose(p, counts, rtol=1e-4, atol=1e-7)
            if wrong.any():
                t, level = _first_index(wrong)
                raise _Fail(
                    f"exact_energy_distribution at T={temps[t]:g}, level E={levels[level]:.6g} "
                    f"has probability {p[t, level]:.6g}; enumeration gives {counts[t, level]:.6g}"
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


# ====================================================================== samplers


@dataclasses.dataclass(frozen=True)
class _Case:
    """A tiny model and temperatures for the sampler's distribution test."""

    model: AbstractModel
    temps: tuple[float, ...]


def _default_cases() -> list[_Case]:
    from .models import XY1D, Ising1D, Ising2D

    return [
        _Case(Ising1D.from_size(5, boundary="free"), (0.8, 2.0)),
        _Case(Ising2D.from_size(3), (3.0, 5.0)),
        _Case(XY1D.from_size(4, boundary="free"), (0.5, 2.0)),
    ]


def _accepts_keywords(function: Callable[..., Any], names: Sequence[str]) -> list[str]:
    """The keyword names among ``names`` that ``function`` does not accept."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    accepted = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return [n for n in names if n not in accepted]


def _check_options(rec: _Recorder, method: AbstractSampler | AbstractGenerator) -> None:
    cls = type(method)
    with rec.check("attributes", cls.__qualname__):
        name = getattr(cls, "name", None)
        _require(
            isinstance(name, str) and name and name == name.lower() and name.split() == [name],
            f"name {name!r} must be a non-empty lowercase string without spaces",
        )
        leaves = jax.tree_util.tree_leaves(method)
        _require(
            not leaves,
            "the instance has array leaves; options must be eqx.field(static=True) values",
        )
        hash(method)
        settings = method.settings()
        json.dumps(settings)
        options = {k: v for k, v in settings.items() if k in options_of(cls)}
        rebuilt = cls.from_options(**options)
        _require(
            rebuilt == method,
            f"from_options(**settings()) gives {rebuilt!r}, not {method!r}: settings must hold "
            f"every option",
        )


def _thinning(model: AbstractModel, states: np.ndarray) -> np.ndarray:
    """Stride per temperature ``ceil(2 tau_int)`` from the energy and the magnetisation vector."""
    from .stats import estimate

    batch = states.shape[:3]
    flat = jnp.asarray(states.reshape(-1, *model.shape))
    series = [np.asarray(model.energy(flat), np.float64).reshape(batch)]
    vectors = np.asarray(jnp.mean(model.spin_vectors(flat), axis=-2), np.float64)
    series += [vectors[:, d].reshape(batch) for d in range(vectors.shape[-1])]
    if states.shape[2] < 4:  # too short to estimate: no thinning
        return np.ones(states.shape[0], dtype=int)
    taus = []
    for values in series:
        tau = estimate(values).tau_int
        taus.append(np.where(np.isfinite(tau), tau, 0.5))
    tau_max = np.max(np.stack(taus), axis=0)
    return np.asarray(np.maximum(1, np.ceil(2 * tau_max)), dtype=int)


@dataclasses.dataclass(frozen=True)
class _Chi2Test:
    """One χ² test of thinned samples against exact probabilities."""

    label: str  # what was binned: "" for whole configurations, else which angle
    chi2: float
    dof: int
    p: float
    worst: str  # the bin that contributes most to chi2, observed against exact


@dataclasses.dataclass(frozen=True)
class _Thinned:
    """The samples of one (model, temperature, repeat) after thinning, and their χ² tests."""

    model: str  # where: the model's name, size, boundary and coupling
    T: float
    kept: int  # configurations left after thinning
    stride: int
    chains: int
    samples: int  # per chain, before thinning
    tests: tuple[_Chi2Test, ...]

    @property
    def thin(self) -> bool:
        """Fewer than MIN_INDEPENDENT configurations: a pass of its tests means little."""
        return self.kept < MIN_INDEPENDENT

    def describe(self, test: _Chi2Test) -> str:
        label = f", {test.label}" if test.label else ""
        return (
            f"{self.model}, T={self.T:g}{label}: chi2={test.chi2:.1f} with {test.dof} dof "
            f"over {self.kept} configurations (thinned by {self.stride}), p-value "
            f"{_pvalue(test.p)}; {test.worst}"
        )


def _pvalue(p: float) -> str:
    """A p-value as plain text; one that underflows (scipy returns 0) as ``<1e-300``."""
    return f"{p:.2g}" if p >= 1e-300 else "<1e-300"


def _chi2(
    observed: np.ndarray, expected: np.ndarray, name: Callable[[int], str]
) -> tuple[float, int, str]:
    """χ² statistic, degrees of freedom and the unpooled bin that contributes most, named by
    ``name``, pooling bins expecting < 5 into one. ``dof`` is 0 when fewer than two bins
    remain: no test."""
    small = expected < 5
    bins = np.flatnonzero(~small)
    obs = np.append(observed[bins], observed[small].sum())
    exp = np.append(expected[bins], expected[small].sum())
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    if len(exp) < 2:  # nothing to compare; from here on, at least one bin is unpooled
        return 0.0, 0, ""
    terms = (obs - exp) ** 2 / exp
    i = int(np.argmax(terms[: len(bins)]))
    total = observed.sum()
    worst = f"worst {name(int(bins[i]))} observed {obs[i] / total:.4f} against exact "
    worst += f"{exp[i] / total:.4f}"
    return float(terms.sum()), len(exp) - 1, worst


def _chi2_test(
    label: str, observed: np.ndarray, probabilities: np.ndarray, name: Callable[[int], str]
) -> tuple[_Chi2Test, ...]:
    """The χ² test of ``observed`` counts against ``probabilities``, or none without a
    degree of freedom (every bin pooled: too few samples to test anything)."""
    from scipy import stats

    chi2, dof, worst = _chi2(observed, probabilities * observed.sum(), name)
    if dof < 1:
        return ()
    return (_Chi2Test(label, chi2, dof, float(stats.chi2.sf(chi2, dof)), worst),)


def _distribution_tests(case: _Case, samples: Samples, stride: np.ndarray) -> list[_Thinned]:
    """The thinned samples of each temperature with their χ² tests: one test of whole
    configurations (discrete models), or one per angle (XY chains). Tests run however few
    configurations are left: a test on few is weaker, not wrong, and a wrong acceptance rule
    often mixes slowly, so that thinning leaves few."""
    from scipy import stats

    model = case.model
    where = _where(model)
    chains, n_samples = samples.states.shape[1:3]
    results: list[_Thinned] = []
    if model.spin_values is not None:
        exact = enumerate_boltzmann(model, case.temps)
        index = _state_index(model, samples.states)
        states = _all_states(model)

        def configuration(i: int) -> str:
            return f"configuration {states[i].reshape(-1).tolist()}"

        for t, T in enumerate(case.temps):
            kept = index[t][:, :: stride[t]].reshape(-1)
            observed = np.bincount(kept, minlength=exact.shape[1]).astype(np.float64)
            tests = _chi2_test("", observed, exact[t], configuration)
            results.append(_Thinned(where, T, kept.size, int(stride[t]), chains, n_samples, tests))
        return results
    edges = np.linspace(-np.pi, np.pi, ANGLE_BINS + 1)

    def angle_bin(i: int) -> str:
        return f"bin [{edges[i]:.2f}, {edges[i + 1]:.2f})"

    for t, T in enumerate(case.temps):
        kept = samples.states[t][:, :: stride[t]].reshape(-1, model.n_sites).astype(np.float64)
        # Bond angles are von Mises with kappa = |J|/T, centred on 0 (J > 0) or pi (J < 0).
        kappa, shift = abs(model.J) / T, (0.0 if model.J > 0 else np.pi)
        columns = [("angle of site 0", kept[:, 0], np.diff(edges) / (2 * np.pi))]
        bond_p = np.diff(stats.vonmises.cdf(edges, kappa))
        bond_p /= bond_p.sum()
        for i in range(model.n_sites - 1):
            difference = jnp.asarray(kept[:, i + 1] - kept[:, i] + shift, jnp.float32)
            bond = np.asarray(wrap_angle(difference))
            label = f"bond angle {i}-{i + 1} (+{shift:.3g}; von Mises, kappa={kappa:g})"
            columns.append((label, bond, bond_p))
        per_angle: tuple[_Chi2Test, ...] = ()
        for label, values, p_bins in columns:
            counts = np.histogram(values, edges)[0].astype(np.float64)
            per_angle += _chi2_test(label, counts, p_bins, angle_bin)
        results.append(_Thinned(where, T, len(kept), int(stride[t]), chains, n_samples, per_angle))
    return results


def _distribution_verdict(thinned: Sequence[_Thinned], threshold: float) -> str | None:
    """Why the thinned samples fail the distribution check, or None if they pass.

    The χ² p-values are combined twice: by Fisher's method (power against deviations spread
    over many tests) and as the smallest times the number of tests (Bonferroni: power against
    one large deviation, which Fisher's sum dilutes among passing tests). The combined p-value
    is twice the smaller, so a correct sampler fails in at most a fraction ``threshold`` of
    runs. A failure is reported as such even where samples were thin; only a pass on thin
    samples fails, as too few samples to trust it.
    """
    from scipy import stats

    pairs = [(sample, test) for sample in thinned for test in sample.tests]
    thin = sorted((s for s in thinned if s.thin), key=lambda s: s.kept)
    combined = 1.0
    if pairs:
        ps = np.clip([test.p for _, test in pairs], 1e-300, 1.0)
        fisher = float(stats.combine_pvalues(ps, method="fisher").pvalue)
        smallest = float(ps.min())
        combined = min(1.0, 2 * min(fisher, len(ps) * smallest))
        if combined < threshold:
            sample, test = min(pairs, key=lambda pair: (pair[1].p, -pair[1].chi2 / pair[1].dof))
            message = (
                f"the samples do not follow the Boltzmann distribution: combined p-value "
                f"{_pvalue(combined)} is below the threshold {threshold:g} ({len(ps)} chi2 "
                f"test(s); Fisher's method {_pvalue(fisher)}, smallest p-value "
                f"{_pvalue(smallest)}). Worst test: {sample.describe(test)}"
            )
            if thin:
                message += (
                    f". {len(thin)} of {len(thinned)} sample(s) (model, temperature, repeat) "
                    f"kept fewer than {MIN_INDEPENDENT} configurations after thinning by "
                    f"2 tau_int (fewest: {thin[0].kept} at T={thin[0].T:g}, {thin[0].model}, "
                    f"thinned by {thin[0].stride}): slow mixing, which a wrong acceptance rule "
                    f"causes too; tests on few configurations are weaker, not wrong"
                )
            return message
    if not thin:
        return None
    fewest = thin[0]
    others = f" (and {len(thin) - 1} more sample(s) under {MIN_INDEPENDENT})" if thin[1:] else ""
    verdict = (
        f"the chi2 tests pass (combined p-value {_pvalue(combined)}), but a pass on so few "
        f"configurations says little"
        if pairs
        else "too few for a chi2 test"
    )
    return (
        f"only {fewest.kept} configurations at T={fewest.T:g} ({fewest.model}) remain after "
        f"thinning by 2 tau_int = {fewest.stride} ({fewest.chains} chains x {fewest.samples} "
        f"samples){others}; {verdict}: configure the sampler with more chains or sweeps (at "
        f"least {MIN_INDEPENDENT} nearly independent configurations per temperature)"
    )


def _run_sampler(sampler: AbstractSampler, case: _Case, key: PRNGKeyArray) -> Samples:
    kwargs: dict[str, Any] = {}
    missing = _accepts_keywords(sampler.sample, ("seed", "progress"))
    if "progress" not in missing:
        kwargs["progress"] = False
    return sampler.sample(case.model, np.asarray(case.temps), key=key, **kwargs)


def _check_samples(sampler: AbstractSampler, case: _Case, samples: Samples) -> None:
    model, temps = case.model, case.temps
    _require(isinstance(samples, Samples), f"sample() returned {type(samples).__name__}")
    shape = samples.states.shape
    _require(
        len(shape) == 3 + len(model.shape)
        and shape[0] == len(temps)
        and tuple(shape[3:]) == tuple(model.shape),
        f"states have shape {shape}; expected (temps={len(temps)}, chains, samples, "
        f"*{model.shape})",
    )
    problem = _spin_problem(model, samples.states, "states")
    _no_problem(problem)
    _require(
        np.allclose(np.asarray(samples.temps, np.float64), temps),
        f"Samples.temps {samples.temps} differ from the temperatures asked for {temps}",
    )
    _require(samples.method == sampler.name, f"Samples.method is {samples.method!r}")
    _require(
        samples.model == model.describe(),
        f"Samples.model is {samples.model}, expected model.describe() = {model.describe()}",
    )
    for name, value in samples.info.items():
        _require(
            np.shape(value)[:1] == (len(temps),),
            f"Samples.info[{name!r}] has shape {np.shape(value)}; info arrays need a leading "
            f"temperature axis of length {len(temps)}",
        )
    json.dumps(samples.metadata(), default=str)


def check_sampler(
    sampler: AbstractSampler,
    *,
    cases: Sequence[tuple[AbstractModel, Sequence[float]]] | None = None,
    repeats: int = 3,
    threshold: float = CHI2_THRESHOLD,
    key: KeyLike = None,
    checks: Iterable[str] | None = None,
) -> Report:
    """Check a configured sampler instance (its options decide the run length).

    ``cases`` are (tiny model, temperatures) pairs for the distribution test; by default the
    5-site Ising chain, the 3x3 Ising torus and the 4-rotor XY chain (those the sampler does
    not support are skipped, at least one must be supported). Discrete models must have at
    most 2**15 states; continuous ones must be XY chains with free ends. The sampler should
    give at least ~2000 configurations per temperature (e.g. 32 chains x 100 samples) for the
    χ² test to have power: a pass on fewer than ``MIN_INDEPENDENT`` after thinning fails as
    too few samples (a failure is reported as such). Raises :class:`ConformanceError` listing
    every failure.
    """
    return _run_sampler_checks(
        sampler, cases=cases, repeats=repeats, threshold=threshold, key=key, checks=checks
    ).raise_for()


def _run_sampler_checks(
    sampler: AbstractSampler,
    *,
    cases: Sequence[tuple[AbstractModel, Sequence[float]]] | None = None,
    repeats: int = 3,
    threshold: float = CHI2_THRESHOLD,
    key: KeyLike = None,
    checks: Iterable[str] | None = None,
) -> Report:
    cls = type(sampler)
    rec = _Recorder(_describe_class(cls), SAMPLER_CHECKS, checks)
    if not isinstance(sampler, AbstractSampler):
        with rec.check("attributes", cls.__qualname__):
            raise _Fail(f"{sampler!r} is not an instance of spinbench.AbstractSampler")
        return rec.finish()
    if rec.wants("attributes"):
        _check_options(rec, sampler)
        with rec.check("attributes", f"{cls.__qualname__}.sample"):
            missing = _accepts_keywords(sampler.sample, ("key", "seed", "progress"))
            _require(
                not missing,
                f"sample() does not accept keyword(s) {missing}; the runner calls "
                f"sample(model, temps, key=..., seed=..., progress=...)",
            )
    test_cases = (
        _default_cases()
        if cases is None
        else [_Case(m, tuple(float(t) for t in temps)) for m, temps in cases]
    )
    supported: list[_Case] = []
    for case in test_cases:
        with rec.check("supports", _where(case.model)):
            reason = sampler.supports(case.model)
            _require(
                reason is None or (isinstance(reason, str) and reason),
                f"supports() returned {reason!r}; return None or a non-empty reason",
            )
            if reason is None:
                supported.append(case)
    if not supported:
        with rec.check("supports", "all test models"):
            raise _Fail(
                f"supports none of {[c.model.name for c in test_cases]}; pass cases= with "
                f"tiny models this sampler runs"
            )
        return rec.finish()

    base_key = _key(key)
    thinned: list[_Thinned] = []
    for c, case in enumerate(supported):
        where = _where(case.model)
        for r in range(max(1, repeats)):
            run_key = jax.random.fold_in(jax.random.fold_in(base_key, c), r)
            with rec.check("samples", where):
                samples = _run_sampler(sampler, case, run_key)
                if r == 0 and rec.wants("samples"):
                    _check_samples(sampler, case, samples)
            if rec.report.failed("samples"):
                break
            if r == 0 and rec.wants("determinism"):
                with rec.check("determinism", where):
                    again = _run_sampler(sampler, case, run_key)
                    differ = samples.states != again.states
                    if differ.any():
                        raise _Fail(
                            f"two runs with the same key differ first at index "
                            f"{_first_index(differ)}: randomness must come from the key only"
                        )
                    other = _run_sampler(sampler, case, jax.random.fold_in(run_key, 99))
                    _require(
                        not np.array_equal(other.states, samples.states),
                        "runs with different keys give identical states",
                    )
            if not rec.wants("distribution"):
                break
            with rec.check("distribution", where):
                if _spin_problem(case.model, samples.states, "states") is not None:
                    raise _Fail("states are not valid configurations (see 'samples')")
                stride = _thinning(case.model, np.asarray(samples.states))
                thinned += _distribution_tests(case, samples, stride)
    if rec.wants("distribution") and thinned and not rec.report.failed("distribution"):
        n_tests = sum(len(sample.tests) for sample in thinned)
        where = f"{n_tests} chi2 test(s) of {len(thinned)} (model, temperature, repeat) sample(s)"
        with rec.check("distribution", where):
            _no_problem(_distribution_verdict(thinned, threshold))
    return rec.finish()


# ====================================================================== generators


def _generator_model(generator: AbstractGenerator) -> AbstractModel | None:
    from .models import XY1D, Ising1D

    for model in (Ising1D.from_size(6, boundary="free"), XY1D.from_size(6, boundary="free")):
        if generator.supports(model) is None:
            return model
    return None


def _load_trained(trained: TrainedGenerator, directory: Path) -> TrainedGenerator:
    """Save ``trained`` to ``directory`` and load it back through the public API (which finds
    the generator class by its registry name)."""
    from .registry import RegistryError, get_registry

    cls, name = type(trained.generator), trained.generator.name
    try:
        registered = get_registry().get("generators", name)
    except RegistryError as error:
        raise _Fail(
            f"TrainedGenerator.load finds the generator by its registry name, and {name!r} is "
            f"not registered ({error}); install the plugin (its entry point) before this check"
        ) from error
    _require(
        registered is cls,
        f"the registry name {name!r} belongs to {registered.__qualname__}, not {cls.__qualname__}",
    )
    trained.save(directory)
    return TrainedGenerator.load(directory)


def check_generator(
    generator: AbstractGenerator,
    *,
    model: AbstractModel | None = None,
    temps: Sequence[float] = (1.0, 3.0),
    n_train: int = 1000,
    n_generate: int = 64,
    key: KeyLike = None,
    checks: Iterable[str] | None = None,
) -> Report:
    """Check a configured generator instance: train it briefly on ``n_train`` exact Boltzmann
    samples per temperature of ``model`` (by default the 6-site Ising chain, or the 6-rotor XY
    chain when Ising spins are not supported) and check what it makes, not how well.

    Configure it to train quickly (a few epochs). Raises :class:`ConformanceError`.
    """
    return _run_generator_checks(
        generator,
        model=model,
        temps=temps,
        n_train=n_train,
        n_generate=n_generate,
        key=key,
        checks=checks,
    ).raise_for()


def _run_generator_checks(
    generator: AbstractGenerator,
    *,
    model: AbstractModel | None = None,
    temps: Sequence[float] = (1.0, 3.0),
    n_train: int = 1000,
    n_generate: int = 64,
    key: KeyLike = None,
    checks: Iterable[str] | None = None,
) -> Report:
    cls = type(generator)
    rec = _Recorder(_describe_class(cls), GENERATOR_CHECKS, checks)
    if not isinstance(generator, AbstractGenerator):
        with rec.check("attributes", cls.__qualname__):
            raise _Fail(f"{generator!r} is not an instance of spinbench.AbstractGenerator")
        return rec.finish()
    if rec.wants("attributes"):
        _check_options(rec, generator)
    with rec.check("supports", cls.__qualname__):
        if model is None:
            model = _generator_model(generator)
            _require(
                model is not None,
                "supports neither ising1d nor xy1d with 6 sites; pass model= (a discrete "
                "model of at most 2**15 states, or an XY chain with free ends)",
            )
        else:
            reason = generator.supports(model)
            _require(reason is None, f"does not support the model given: {reason}")
    if model is None or rec.report.failed("supports"):
        for name in GENERATOR_CHECKS[2:]:
            rec.skip(name, "no supported test model")
        return rec.finish()
    where = f"{_where(model)}, T={list(temps)}"
    n_temps = len(temps)
    base_key = _key(key)
    init_key, data_key, fit_key, gen_key = jax.random.split(base_key, 4)

    if rec.wants("init"):
        with rec.check("init", where):
            params = generator.init(model, n_temps, key=init_key)
            problem = _all_leaves_stacked(params, n_temps)
            _require(problem is None, f"init(): {problem}")
            difference = _trees_equal(params, generator.init(model, n_temps, key=init_key))
            _require(difference is None, f"init() differs under the same key: {difference}")

    trained: TrainedGenerator | None = None
    data = boltzmann_samples(model, temps, n_train, key=data_key)
    with rec.check("fit", where):
        trained = generator.fit(model, data, key=fit_key)
        _require(
            isinstance(trained, TrainedGenerator),
            f"fit() returned {type(trained).__name__}, not a spinbench.TrainedGenerator",
        )
        _require(trained.generator == generator, "TrainedGenerator.generator is not the generator")
        _require(trained.model == model, "TrainedGenerator.model is not the model trained on")
        _require(
            np.allclose(np.asarray(trained.temps, np.float64), temps),
            f"TrainedGenerator.temps {trained.temps} differ from the data's {list(temps)}",
        )
        problem = _all_leaves_stacked(trained.params, n_temps)
        _require(problem is None, f"trained params: {problem}")
        for name, curve in trained.history.items():
            _require(
                np.shape(curve)[:1] == (n_temps,),
                f"history[{name!r}] has shape {np.shape(curve)}; expected (temps, steps)",
            )
        diverged = np.asarray(trained.diverged_step)
        _require(
            diverged.shape == (n_temps,) and np.issubdtype(diverged.dtype, np.integer),
            f"diverged_step {diverged!r} must be an int array (temps,)",
        )
        _require(
            np.all(diverged < 0),
            f"training diverged at steps {diverged.tolist()} on easy data (T={list(temps)})",
        )
    if trained is None or rec.report.failed("fit"):
        for name in ("generate", "determinism", "save_load"):
            rec.skip(name, "fit() failed")
        return rec.finish()

    if rec.wants("generate"):
        with rec.check("generate", where):
            states = generator.generate_states(model, trained.params, n_generate, key=gen_key)
            _require(
                tuple(states.shape) == (n_temps, n_generate, *model.shape),
                f"generate_states(n={n_generate}) has shape {tuple(states.shape)}, expected "
                f"(temps, n, *lattice) = {(n_temps, n_generate, *model.shape)}",
            )
            problem = _spin_problem(model, states, "generated states")
            _no_problem(problem)
            samples = trained.generate(n_generate, key=gen_key)
            _require(isinstance(samples, Samples), f"generate() returned {type(samples).__name__}")
            shape = samples.states.shape
            _require(
                len(shape) == 3 + len(model.shape)
                and shape[0] == n_temps
                and shape[1] * shape[2] == n_generate,
                f"generate({n_generate}).states has shape {shape}; expected "
                f"(temps, 1, n, *lattice)",
            )
            problem = _spin_problem(model, samples.states, "generate() states")
            _no_problem(problem)
            _require(samples.method == generator.name, f"Samples.method is {samples.method!r}")
    if rec.wants("determinism"):
        with rec.check("determinism", where):
            first = np.asarray(
                generator.generate_states(model, trained.params, n_generate, key=gen_key)
            )
            second = np.asarray(
                generator.generate_states(model, trained.params, n_generate, key=gen_key)
            )
            differ = first != second
            if differ.any():
                raise _Fail(
                    f"generate_states with the same key differs first at index "
                    f"{_first_index(differ)}: randomness must come from the key only"
                )
            other = np.asarray(
                generator.generate_states(
                    model, trained.params, n_generate, key=jax.random.fold_in(gen_key, 1)
                )
            )
            _require(not np.array_equal(first, other), "different keys give identical states")
            refit = generator.fit(model, data, key=fit_key)
            difference = _trees_equal(trained.params, refit.params, exact=False)
            _require(
                difference is None,
                f"fit() twice with the same key and data gives different parameters: {difference}",
            )
    if rec.wants("save_load"):
        with rec.check("save_load", where), tempfile.TemporaryDirectory() as folder:
            loaded = _load_trained(trained, Path(folder) / "trained")
            difference = _trees_equal(trained.params, loaded.params)
            _require(difference is None, f"loaded parameters differ: {difference}")
            _require(
                loaded.generator == generator,
                f"loaded generator {loaded.generator!r} is not {generator!r}",
            )
            _require(loaded.model == model, f"loaded model {loaded.model!r} is not {model!r}")
            _require(
                np.allclose(np.asarray(loaded.temps, np.float64), temps),
                f"loaded temps {loaded.temps} differ",
            )
            skeleton = generator.init(model, n_temps, key=init_key)
            structure: Any = jax.tree_util.tree_structure(eqx.filter(skeleton, eqx.is_array))
            same_structure = structure == jax.tree_util.tree_structure(
                eqx.filter(trained.params, eqx.is_array)
            )
            hint = (
                ""
                if same_structure
                else "; the trained params do not have the structure of init()'s skeleton (a "
                "static field or non-array leaf set in fit is not saved: loading takes it from "
                "init)"
            )
            before = np.asarray(
                generator.generate_states(model, trained.params, n_generate, key=gen_key)
            )
            after = np.asarray(
                loaded.generator.generate_states(model, loaded.params, n_generate, key=gen_key)
            )
            differ = before != after
            if differ.any():
                index = _first_index(differ)
                raise _Fail(
                    f"states generated after save/load differ from before, first at index "
                    f"{index}: {before[index].item()!r} -> {after[index].item()!r}{hint}"
                )
            _require(not hint, hint.strip("; "))
    return rec.finish()


# ====================================================================== pytest helpers


def _conformance_test(
    kind: str, checks: Sequence[str], run: Callable[[], Report]
) -> Callable[[str], None]:
    """A pytest test function parametrised over ``checks``; the checks run once, lazily."""
    import pytest

    cache: list[Report] = []

    @pytest.mark.parametrize("check", list(checks))
    def test(check: str) -> None:
        if not cache:
            cache.append(run())
        report = cache[0]
        if check in report.skipped:
            pytest.skip(report.skipped[check])
        report.raise_for([check])

    test.__doc__ = f"spinbench conformance of a {kind}: one test per check."
    return test


def model_conformance(
    model_or_cls: AbstractModel | type[AbstractModel], **options: Any
) -> Callable[[str], None]:
    """A pytest test (one item per model check); assign it to a ``test_*`` name in a test
    module: ``test_potts = model_conformance(Potts3)``. Options as for :func:`check_model`."""
    checks = tuple(options.get("checks") or MODEL_CHECKS)
    return _conformance_test("model", checks, lambda: _run_model_checks(model_or_cls, **options))


def sampler_conformance(sampler: AbstractSampler, **options: Any) -> Callable[[str], None]:
    """A pytest test (one item per sampler check): ``test_mine = sampler_conformance(Mine())``.
    The sampler runs once for all items. Options as for :func:`check_sampler`."""
    checks = tuple(options.get("checks") or SAMPLER_CHECKS)
    return _conformance_test("sampler", checks, lambda: _run_sampler_checks(sampler, **options))


def generator_conformance(generator: AbstractGenerator, **options: Any) -> Callable[[str], None]:
    """A pytest test (one item per generator check): ``test_g = generator_conformance(G())``.
    Training runs once for all items. Options as for :func:`check_generator`."""
    checks = tuple(options.get("checks") or GENERATOR_CHECKS)
    return _conformance_test(
        "generator", checks, lambda: _run_generator_checks(generator, **options)
    )
