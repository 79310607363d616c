"""The sampler checks of the conformance kit (:func:`check_sampler`), with the χ² test of the
distribution against the exact Boltzmann distribution of tiny models.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .._samples import Samples
from ..models import XY1D, AbstractModel, Ising1D, Ising2D, wrap_angle
from ..samplers import AbstractSampler
from ..stats import estimate
from ._common import (
    ANGLE_BINS,
    CHI2_THRESHOLD,
    MIN_INDEPENDENT,
    SAMPLER_CHECKS,
    KeyLike,
    Report,
    _accepts_keywords,
    _all_states,
    _check_options,
    _describe_class,
    _Fail,
    _first_index,
    _key,
    _no_problem,
    _Recorder,
    _require,
    _spin_problem,
    _state_index,
    _where,
    enumerate_boltzmann,
)


@dataclasses.dataclass(frozen=True)
class _Case:
    """A tiny model and temperatures for the sampler's distribution test."""

    model: AbstractModel
    temps: tuple[float, ...]


def _default_cases() -> list[_Case]:
    return [
        _Case(Ising1D.from_size(5, boundary="free"), (0.8, 2.0)),
        _Case(Ising2D.from_size(3), (3.0, 5.0)),
        _Case(XY1D.from_size(4, boundary="free"), (0.5, 2.0)),
    ]


def _thinning(model: AbstractModel, states: np.ndarray) -> np.ndarray:
    """Stride per temperature ``ceil(2 tau_int)`` from the energy and the magnetisation vector."""
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
    rec = _Recorder(_describe_class(cls, sampler), SAMPLER_CHECKS, checks)
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
