"""The conformance kit (``spinbench.testing``): it passes spinbench's own classes and fails
deliberately broken models, samplers and generators with messages that say what and where."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, PRNGKeyArray

import spinbench
from spinbench.models import XY1D, Ising1D, Ising2D
from spinbench.samplers import AbstractAcceptanceRule, Metropolis
from spinbench.testing import (
    GENERATOR_CHECKS,
    MODEL_CHECKS,
    SAMPLER_CHECKS,
    ConformanceError,
    boltzmann_samples,
    check_generator,
    check_model,
    check_sampler,
    enumerate_boltzmann,
    model_conformance,
)

# The kit's thresholds and its χ² verdict on thinned samples (unit-tested below) are internal.
from spinbench.testing._common import CHI2_THRESHOLD, MIN_INDEPENDENT
from spinbench.testing._samplers import _Chi2Test, _distribution_verdict, _Thinned

# A sampler configuration that gives the χ² test ~3000 configurations per temperature.
QUICK = {"chains": 32, "warmup": 100, "sweeps": 500, "every": 5}


def failure_of(error: pytest.ExceptionInfo[ConformanceError], check: str) -> str:
    """The message of the first failure of ``check`` (the test fails if there is none)."""
    messages = [str(f) for f in error.value.failures if f.check == check]
    assert messages, f"no failure of check {check!r} in:\n{error.value}"
    return messages[0]


# ====================================================================== passing built-ins


@pytest.mark.slow
@pytest.mark.parametrize("cls", [Ising1D, Ising2D, XY1D], ids=lambda c: c.name)
def test_builtin_models_pass(cls: type[spinbench.AbstractModel]) -> None:
    # Ising2D: the negative coupling on the even lattice (sizes[0]), because Ising2D.exact
    # raises ValueError for frustrated tori (J < 0, odd length) instead of returning None or
    # an enumeration; the kit reports that as a failure of the 'exact' check.
    sizes = ("4", "3") if cls is Ising2D else ("3", "4")
    report = check_model(cls, sizes=sizes)
    assert set(report.passed) | set(report.skipped) == set(MODEL_CHECKS)
    assert "energy" in report.passed and "delta_energy" in report.passed


def test_a_model_instance_passes_quickly() -> None:
    report = check_model(Ising2D.from_size("2x4", J=-0.5))  # exact: Kaufman vs enumeration
    assert "from_size" in report.skipped  # an instance says nothing about the constructor
    assert {"energy", "delta_energy", "symmetry", "colouring"} <= set(report.passed)


@pytest.mark.slow
@pytest.mark.parametrize("update", ["random-site", "checkerboard"])
def test_metropolis_passes(update: str) -> None:
    report = check_sampler(Metropolis(update=update, **QUICK))
    assert report.passed == list(SAMPLER_CHECKS)


def test_metropolis_distribution_on_one_case() -> None:
    cases = [(Ising1D.from_size(5), (0.8, 2.0))]
    report = check_sampler(
        Metropolis(update="checkerboard", **QUICK), cases=cases, checks=["distribution"]
    )
    assert report.passed == ["distribution"]


@pytest.mark.slow
def test_a_builtin_generator_passes() -> None:
    from spinbench.generators import DenseVAE

    report = check_generator(DenseVAE(epochs=2, batch_size=100))
    assert report.passed == list(GENERATOR_CHECKS)


def test_exact_boltzmann_helpers() -> None:
    model = Ising1D.from_size(3)
    p = enumerate_boltzmann(model, [1.0])[0]
    # Configuration k has site i = spin_values[digit i of k]: k=0 is all -1, k=7 all +1.
    ground = np.exp(2.0) / (2 * np.exp(2.0) + 4 + 2 * np.exp(-2.0))
    assert p[0] == pytest.approx(ground) and p[7] == pytest.approx(ground)
    samples = boltzmann_samples(XY1D.from_size(4), [0.5, 2.0], 500, key=jax.random.key(0))
    assert samples.states.shape == (2, 1, 500, 4) and samples.states.dtype == np.float32
    bonds = np.cos(np.diff(samples.states[:, 0].astype(np.float64), axis=-1)).mean(axis=(1, 2))
    from scipy.special import i0, i1

    expected = i1(np.array([2.0, 0.5])) / i0(np.array([2.0, 0.5]))  # <cos> of von Mises(J/T)
    np.testing.assert_allclose(bonds, expected, atol=0.06)


# ====================================================================== broken models


class WrongDelta(Ising2D):
    """Local energy change with a factor 2 missing (a classic Ising slip)."""

    name: ClassVar[str] = "wrong-delta"

    def delta_energy(self, states: Array, proposed: Array) -> Array:
        return 0.5 * super().delta_energy(states, proposed)


class WideSpins(Ising1D):
    """Draws spins as int32 instead of int8."""

    name: ClassVar[str] = "wide-spins"

    def random_states(self, batch_shape: tuple[int, ...] = (), *, key: PRNGKeyArray) -> Array:
        return super().random_states(batch_shape, key=key).astype(jnp.int32)


class FieldButFlip(Ising1D):
    """A magnetic field in the bond energy, yet it declares the global flip symmetry."""

    name: ClassVar[str] = "field-but-flip"

    def bond_energy(self, a: Array, b: Array) -> Array:
        a, b = a.astype(jnp.float32), b.astype(jnp.float32)
        return -self.J * a * b - 0.3 * (a + b)


class Shouting(Ising1D):
    """An uppercase registry name."""

    name: ClassVar[str] = "Shouting"


def test_wrong_delta_energy_is_reported_with_site_and_values() -> None:
    with pytest.raises(ConformanceError) as error:
        check_model(WrongDelta, sizes=("3",), couplings=(1.0,))
    message = str(error.value)
    assert "WrongDelta" in message and "'wrong-delta'" in message
    detail = failure_of(error, "delta_energy")
    assert "size 3x3, boundary periodic, J=1.0" in detail
    assert "delta_energy gives" in detail and "the difference of total energies is" in detail
    assert "site" in detail
    # The other checks of the same class still ran, and the energy itself is right.
    assert {"energy", "site_delta_energy"}.isdisjoint(f.check for f in error.value.failures)


def test_wrong_dtype_is_reported() -> None:
    with pytest.raises(ConformanceError) as error:
        check_model(WideSpins, sizes=("4",), checks=["random_states"])
    detail = failure_of(error, "random_states")
    assert "dtype int32" in detail and "int8" in detail


def test_broken_symmetry_is_reported() -> None:
    with pytest.raises(ConformanceError) as error:
        check_model(FieldButFlip.from_size(4), checks=["symmetry"])
    detail = failure_of(error, "symmetry")
    assert "declares symmetry 'flip'" in detail and "s -> -s" in detail


def test_bad_name_is_reported() -> None:
    with pytest.raises(ConformanceError) as error:
        check_model(Shouting, checks=["attributes"])
    assert "'Shouting'" in failure_of(error, "attributes")


class NoExactForYou(Ising1D):
    """Raises where it should return None (no exact solution for this instance)."""

    name: ClassVar[str] = "no-exact-for-you"

    def exact(self, temps: np.ndarray) -> spinbench.ExactResult:
        raise ValueError("no closed form for this one")


class WrongExact(Ising1D):
    """A closed form with a slip: the heat capacity off by a factor (N-1)/N."""

    name: ClassVar[str] = "wrong-exact"

    def exact(self, temps: np.ndarray) -> spinbench.ExactResult:
        result = super().exact(temps)
        assert result.heat_capacity is not None
        slip = result.heat_capacity * (self.n_sites - 1) / self.n_sites
        return dataclasses.replace(result, heat_capacity=slip)


def test_exact_that_raises_is_reported() -> None:
    with pytest.raises(ConformanceError) as error:
        check_model(NoExactForYou.from_size(4), checks=["exact"])
    assert "raised ValueError: no closed form" in failure_of(error, "exact")


def test_wrong_exact_solution_is_caught_by_enumeration() -> None:
    with pytest.raises(ConformanceError) as error:
        check_model(WrongExact.from_size(5), checks=["exact"])
    detail = failure_of(error, "exact")
    assert "exact().heat_capacity at T=" in detail and "enumerating all 32 configurations" in detail


def test_not_a_model_is_reported() -> None:
    with pytest.raises(ConformanceError, match=r"not a subclass of spinbench\.AbstractModel"):
        check_model(dict)  # type: ignore[arg-type]


def test_unknown_check_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown check"):
        check_model(Ising1D, checks=["energies"])


# ====================================================================== broken samplers


class TooHot(AbstractAcceptanceRule):
    """Accepts with exp(-dE / 2T): samples at twice the temperature."""

    name: ClassVar[str] = "too-hot"

    def log_acceptance(self, delta_e: Array, temp: Array) -> Array:
        return -delta_e / (2.0 * temp)


class TooCold(AbstractAcceptanceRule):
    """Accepts with exp(-2 dE / T): samples at half the temperature, and mixes slowly."""

    name: ClassVar[str] = "too-cold"

    def log_acceptance(self, delta_e: Array, temp: Array) -> Array:
        return -2.0 * delta_e / temp


class Forgetful(Metropolis):
    """Mixes the clock into its key: no two runs agree."""

    name: ClassVar[str] = "forgetful"

    def sample(self, model: Any, temps: Any, *, key: PRNGKeyArray, **options: Any) -> Any:
        key = jax.random.fold_in(key, time.perf_counter_ns() % 2**31)
        return super().sample(model, temps, key=key, **options)


def test_wrong_acceptance_rule_fails_the_chi2_test() -> None:
    cases = [(Ising1D.from_size(5), (0.8, 2.0))]
    with pytest.raises(ConformanceError) as error:
        check_sampler(
            Metropolis(update="checkerboard", rule=TooHot(), **QUICK), cases=cases, repeats=2
        )
    detail = failure_of(error, "distribution")
    assert "do not follow the Boltzmann distribution" in detail
    assert "combined p-value" in detail and "worst configuration" in detail
    assert "spinbench.samplers.Metropolis (name 'metropolis'" in str(error.value)
    assert "rule='too-hot'" in str(error.value)  # the configuration that is wrong


@pytest.mark.parametrize(
    ("model", "T"), [(Ising1D.from_size(5), 0.8), (XY1D.from_size(4), 0.5)], ids=["ising", "xy"]
)
def test_wrong_rule_that_mixes_slowly_is_reported_as_wrong_not_as_too_short(
    model: spinbench.AbstractModel, T: float
) -> None:
    # The rule's long autocorrelations leave about 200 (Ising) or 130 (XY) of the 3200
    # configurations after thinning, fewer than MIN_INDEPENDENT; the chi2 tests on them still
    # fail, with combined p-values of about 1e-15 and 1e-21.
    with pytest.raises(ConformanceError) as error:
        check_sampler(
            Metropolis(update="checkerboard", rule=TooCold(), **QUICK),
            cases=[(model, (T,))],
            repeats=2,
            key=0,
            checks=["distribution"],
        )
    detail = failure_of(error, "distribution")
    assert "do not follow the Boltzmann distribution" in detail
    assert f"T={T}" in detail and "chi2=" in detail and "dof over" in detail
    assert "p-value" in detail and "np.float64" not in detail
    assert f"fewer than {MIN_INDEPENDENT} configurations after thinning" in detail
    assert "more chains or sweeps" not in str(error.value)


def test_one_overwhelming_chi2_test_fails_where_fisher_dilutes_it() -> None:
    def sample(T: float, p: float, kept: int = 1000) -> _Thinned:
        test = _Chi2Test("", chi2=-2 * np.log(p), dof=2, p=p, worst="worst bin 0")
        return _Thinned("ising1d size 5", T, kept, 2, 32, 100, (test,))

    passing = [sample(1.0 + i / 10, 0.5) for i in range(30)]
    assert _distribution_verdict(passing, CHI2_THRESHOLD) is None
    # Fisher's method alone gives p ~ 0.08 here; the smallest p-value times 31 tests, 3e-7.
    verdict = _distribution_verdict([*passing, sample(0.8, 1e-8)], CHI2_THRESHOLD)
    assert verdict is not None and "T=0.8: chi2=36.8 with 2 dof" in verdict
    assert "p-value 1e-08" in verdict
    thin = _distribution_verdict([*passing, sample(0.8, 0.5, kept=50)], CHI2_THRESHOLD)
    assert thin is not None and thin.startswith("only 50 configurations at T=0.8")
    assert "the chi2 tests pass" in thin and "more chains or sweeps" in thin
    untested = _Thinned("ising1d size 5", 0.8, 6, 9, 2, 20, ())  # every bin pooled: no test
    verdict = _distribution_verdict([untested], CHI2_THRESHOLD)
    assert verdict is not None and verdict.startswith("only 6 configurations at T=0.8")
    assert "too few for a chi2 test" in verdict and "more chains or sweeps" in verdict


def test_non_deterministic_sampler_is_reported() -> None:
    cases = [(Ising1D.from_size(5), (1.0,))]
    sampler = Forgetful(chains=4, warmup=5, sweeps=20, every=5, update="checkerboard")
    with pytest.raises(ConformanceError) as error:
        check_sampler(sampler, cases=cases, checks=["determinism"])
    assert "two runs with the same key differ" in failure_of(error, "determinism")


def test_too_few_samples_is_a_clear_configuration_error() -> None:
    # A correct sampler run too short: about 200 configurations after thinning, on which the
    # chi2 test passes without meaning much.
    cases = [(Ising1D.from_size(5), (1.0,))]
    sampler = Metropolis(chains=4, warmup=10, sweeps=200, every=2, update="checkerboard")
    with pytest.raises(ConformanceError) as error:
        check_sampler(sampler, cases=cases, checks=["distribution"], repeats=1, key=0)
    (failure,) = error.value.failures
    assert failure.check == "distribution" and failure.message.startswith("only ")
    assert "configurations at T=1 (ising1d size 5" in failure.message
    assert "(4 chains x 100 samples)" in failure.message
    assert "the chi2 tests pass" in failure.message and "more chains or sweeps" in failure.message


# ====================================================================== generators


class MeanFieldParams(eqx.Module):
    """Per-site logits of spin value ``spin_values[1]``, stacked over temperatures."""

    logits: Array
    flip: bool = eqx.field(static=True, default=False)


class MeanField(spinbench.AbstractGenerator):
    """Independent sites with the data's mean: a tiny, exactly fitted generator (test-only)."""

    name: ClassVar[str] = "mean-field"
    smoothing: float = eqx.field(static=True, default=1.0)

    def supports(self, model: spinbench.AbstractModel) -> str | None:
        values = model.spin_values
        return None if values is not None and len(values) == 2 else "two-valued spins only"

    def init(self, model: spinbench.AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> Any:
        return MeanFieldParams(jnp.zeros((n_temps, *model.shape)))

    def fit(
        self, model: spinbench.AbstractModel, data: spinbench.Samples, *, key: PRNGKeyArray
    ) -> spinbench.TrainedGenerator:
        assert model.spin_values is not None
        states = data.states.reshape(len(data.temps), -1, *model.shape)
        up = np.sum(states == model.spin_values[1], axis=1) + self.smoothing
        down = np.sum(states == model.spin_values[0], axis=1) + self.smoothing
        params = self._trained(jnp.asarray(np.log(up / down), jnp.float32))
        return spinbench.TrainedGenerator(
            generator=self,
            model=model,
            temps=np.asarray(data.temps),
            params=params,
            history={"loss": np.zeros((len(data.temps), 1))},
            diverged_step=np.full(len(data.temps), -1),
        )

    def _trained(self, logits: Array) -> MeanFieldParams:
        return MeanFieldParams(logits)

    def generate_states(
        self, model: spinbench.AbstractModel, params: Any, n: int, *, key: PRNGKeyArray
    ) -> Array:
        assert model.spin_values is not None
        logits = params.logits[:, None]
        up = jax.random.bernoulli(key, jax.nn.sigmoid(logits), (logits.shape[0], n, *model.shape))
        if params.flip:
            up = ~up
        values = jnp.asarray(model.spin_values, jnp.int8)
        return jnp.where(up, values[1], values[0])


class ZeroOne(MeanField):
    """Emits 0/1 where the model's spins are -1/+1."""

    name: ClassVar[str] = "zero-one"

    def generate_states(self, model: Any, params: Any, n: int, *, key: PRNGKeyArray) -> Array:
        return (super().generate_states(model, params, n, key=key) > 0).astype(jnp.int8)


class Forgets(MeanField):
    """Keeps part of what it learned in a static field, which saving does not store."""

    name: ClassVar[str] = "forgets"

    def _trained(self, logits: Array) -> MeanFieldParams:
        return MeanFieldParams(-logits, flip=True)  # the same distribution, spelled differently


@pytest.fixture
def registered_test_generators() -> Iterator[None]:
    """Register the test generators (loading a saved generator resolves it by name)."""
    classes = [MeanField, ZeroOne, Forgets]
    plugin = type(
        "TestGenerators",
        (),
        {"spinbench_register_generators": staticmethod(spinbench.hookimpl(lambda: classes))},
    )
    with spinbench.plugins_registered(("test-generators", plugin)):
        yield


def test_a_simple_generator_passes(registered_test_generators: None) -> None:
    report = check_generator(MeanField())
    assert report.passed == list(GENERATOR_CHECKS)


def test_invalid_spins_are_reported(registered_test_generators: None) -> None:
    with pytest.raises(ConformanceError) as error:
        check_generator(ZeroOne(), checks=["generate"])
    detail = failure_of(error, "generate")
    assert "value 0" in detail and "not one of spin_values (-1, 1)" in detail
    assert "ZeroOne" in str(error.value)


def test_save_load_that_loses_state_is_reported(registered_test_generators: None) -> None:
    with pytest.raises(ConformanceError) as error:
        check_generator(Forgets(), checks=["fit", "save_load"])
    detail = failure_of(error, "save_load")
    assert "after save/load differ" in detail and "structure of init()" in detail


def test_an_unregistered_generator_round_trips() -> None:
    """Loading reads the saved parameters into the generator's own template: no registry."""
    report = check_generator(MeanField(), checks=["save_load"])
    assert "save_load" in report.passed


# ====================================================================== pytest helper


test_helper_makes_one_item_per_check = model_conformance(
    Ising1D.from_size(4), checks=["energy", "delta_energy", "from_size"]
)


def test_helper_reports_only_its_own_check() -> None:
    test = model_conformance(WrongDelta.from_size(3), checks=["energy", "delta_energy"])
    marks = getattr(test, "pytestmark", [])
    assert [m.args for m in marks] == [("check", ["energy", "delta_energy"])]
    test("energy")  # passes: energy is right
    with pytest.raises(ConformanceError, match="check 'delta_energy'"):
        test("delta_energy")


def test_all_check_names_are_distinct() -> None:
    for names in (MODEL_CHECKS, SAMPLER_CHECKS, GENERATOR_CHECKS):
        assert len(set(names)) == len(names)
