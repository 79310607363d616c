"""The generator checks of the conformance kit (:func:`check_generator`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .._samples import Samples
from ..generators import AbstractGenerator, TrainedGenerator
from ..models import XY1D, AbstractModel, Ising1D
from ._common import (
    GENERATOR_CHECKS,
    KeyLike,
    Report,
    _all_leaves_stacked,
    _check_options,
    _describe_class,
    _Fail,
    _first_index,
    _key,
    _no_problem,
    _Recorder,
    _require,
    _spin_problem,
    _trees_equal,
    _where,
    boltzmann_samples,
)


def _generator_model(generator: AbstractGenerator) -> AbstractModel | None:
    for model in (Ising1D.from_size(6, boundary="free"), XY1D.from_size(6, boundary="free")):
        if generator.supports(model) is None:
            return model
    return None


def _load_trained(trained: TrainedGenerator, directory: Path) -> TrainedGenerator:
    """Save ``trained`` to ``directory`` and load it back into a template made from a copy of
    the generator built from its settings (what a later session would do)."""
    trained.save(directory)
    rebuilt = type(trained.generator).from_options(**trained.generator.settings())
    return TrainedGenerator.load(directory, generator=rebuilt, model=trained.model)


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
    rec = _Recorder(_describe_class(cls, generator), GENERATOR_CHECKS, checks)
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
