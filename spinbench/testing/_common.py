"""The conformance kit's shared pieces: the check names, the failure record and its recorder,
the option check every method gets, and the independent brute-force Boltzmann distribution
the checks compare with.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .._methods import options_of
from .._plain import plain
from .._samples import Samples
from ..exact import has_at_most_states
from ..generators import AbstractGenerator
from ..models import AbstractModel, wrap_angle
from ..samplers import AbstractSampler

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


def _public_module(cls: type) -> str:
    """The module users import ``cls`` from: its own, or the nearest package above a private
    module (``spinbench.samplers._metropolis`` -> ``spinbench.samplers``) that exports it."""
    parts = cls.__module__.split(".")
    while len(parts) > 1 and any(part.startswith("_") for part in parts):
        parent = sys.modules.get(".".join(parts[:-1]))
        if parent is None or getattr(parent, cls.__name__, None) is not cls:
            break
        parts = parts[:-1]
    return ".".join(parts)


def _describe_class(cls: type, instance: Any = None) -> str:
    """``spinbench.samplers.Metropolis (name 'metropolis', rule='toohot', ...)``: the class,
    and the settings of the instance checked (what tells two configurations apart)."""
    name = getattr(cls, "name", None)
    settings = ""
    if instance is not None and hasattr(instance, "settings"):
        try:
            settings = "".join(f", {k}={v!r}" for k, v in instance.settings().items())
        except Exception:  # a broken settings() is reported by the attributes check
            settings = ""
    return f"{_public_module(cls)}.{cls.__qualname__} (name {name!r}{settings})"


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
