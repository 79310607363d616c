"""Tests of spinbench.stats against processes with known autocorrelation and variance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.signal import lfilter

from spinbench import stats

RHO = 0.9
TAU_AR1 = (1 + RHO) / (2 * (1 - RHO))  # 9.5
REPS, CHAINS, SAMPLES = 200, 4, 5000


def ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Stationary AR(1), x_t = ρ x_{t-1} + sqrt(1-ρ²) ε_t, unit variance, along the last axis."""
    eps = rng.standard_normal(shape)
    x0 = rng.standard_normal((*shape[:-1], 1))
    return lfilter([np.sqrt(1 - rho**2)], [1, -rho], eps, axis=-1, zi=rho * x0)[0]


@pytest.fixture(scope="module")
def ar1_series() -> np.ndarray:
    """200 independent realisations on the temperature axis: (200, 4, 5000)."""
    return ar1(np.random.default_rng(12345), (REPS, CHAINS, SAMPLES), RHO)


@pytest.fixture(scope="module")
def ar1_gamma(ar1_series: np.ndarray) -> stats.Estimate:
    return stats.estimate(ar1_series)


def test_ar1_tau_within_its_error(ar1_gamma: stats.Estimate) -> None:
    est = ar1_gamma
    assert est.shape == (REPS,)
    assert est.method == "gamma" and est.n_samples == CHAINS * SAMPLES
    assert est.tau_int_err is not None
    pulls = (est.tau_int - TAU_AR1) / est.tau_int_err
    assert np.mean(np.abs(pulls) < 3) > 0.95
    # The error bar of τ_int describes its scatter, and the mean is unbiased within that.
    assert 0.7 < np.std(est.tau_int) / np.mean(est.tau_int_err) < 1.4
    assert abs(np.mean(est.tau_int) - TAU_AR1) < 4 * np.std(est.tau_int) / np.sqrt(REPS)
    np.testing.assert_allclose(est.ess, est.n_samples / (2 * est.tau_int))


def test_ar1_stderr_matches_spread(ar1_gamma: stats.Estimate) -> None:
    est = ar1_gamma
    ratio = np.std(est.estimate) / np.mean(est.stderr)
    assert 0.8 < ratio < 1.25
    exact = np.sqrt(2 * TAU_AR1 / (CHAINS * SAMPLES))
    assert np.mean(est.stderr) == pytest.approx(exact, rel=0.05)


def test_binning_agrees_with_gamma(ar1_series: np.ndarray, ar1_gamma: stats.Estimate) -> None:
    binned = stats.estimate(ar1_series, method="binning")
    assert binned.method == "binning"
    ratio = binned.stderr / ar1_gamma.stderr
    assert 0.93 < np.mean(ratio) < 1.07
    assert np.mean(binned.tau_int) == pytest.approx(TAU_AR1, rel=0.1)
    assert 0.8 < np.std(binned.estimate) / np.mean(binned.stderr) < 1.25
    assert binned.window is not None and np.all(binned.window >= 4 * TAU_AR1)


def test_iid_tau_half_and_naive_stderr() -> None:
    rng = np.random.default_rng(7)
    sigma = 2.5
    x = 1.0 + sigma * rng.standard_normal((REPS, 2, 4000))
    n = x.shape[1] * x.shape[2]
    for method in ("gamma", "binning"):
        est = stats.estimate(x, method=method)
        assert np.mean(est.tau_int) == pytest.approx(0.5, abs=0.02)
        assert np.mean(est.stderr) == pytest.approx(sigma / np.sqrt(n), rel=0.03)
        assert 0.8 < np.std(est.estimate) / np.mean(est.stderr) < 1.25
        assert np.mean(est.ess) == pytest.approx(n, rel=0.05)


def test_rhat() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 1000))
    x[1, 0] += 2.0  # one chain with a shifted mean
    rhat = stats.estimate(x).rhat
    assert abs(rhat[0] - 1) < 0.01
    assert rhat[1] > 1.1
    single = stats.estimate(x[:, :1])
    assert np.all(np.isnan(single.rhat))
    # A drift inside chains is caught by the split halves.
    drift = rng.standard_normal((1, 4, 1000)) + np.linspace(0, 3, 1000)
    assert stats.estimate(drift).rhat[0] > 1.1


def test_heat_capacity_iid_gaussian() -> None:
    rng = np.random.default_rng(11)
    n_sites, s = 16, 0.1
    temps = np.linspace(1.0, 3.0, REPS)
    e = -1.2 + s * rng.standard_normal((REPS, 2, 2000))
    c = stats.heat_capacity(e, temps, n_sites)
    exact = n_sites * s**2 / temps**2
    assert c.method == "jackknife" and c.shape == (REPS,)
    pulls = (c.estimate - exact) / c.stderr
    assert np.all(np.abs(pulls) < 5)
    assert np.mean(np.abs(pulls) < 4) > 0.99
    assert 0.8 < np.std(pulls) < 1.25  # error spread over repeats matches the stderr
    assert abs(np.mean(pulls)) < 4 / np.sqrt(REPS)
    assert np.mean(c.tau_int) == pytest.approx(0.5, abs=0.03)


def test_heat_capacity_correlated_blocks(ar1_series: np.ndarray) -> None:
    temps = np.full(REPS, 2.0)
    c = stats.heat_capacity(ar1_series, temps, 1)
    exact = 1.0 / 4.0  # unit variance, N = 1, T = 2
    assert c.window is not None and np.all(c.window >= 4 * TAU_AR1)
    assert 0.8 < np.std(c.estimate) / np.mean(c.stderr) < 1.25
    assert abs(np.mean(c.estimate) - exact) < 4 * np.std(c.estimate) / np.sqrt(REPS)


def test_heat_capacity_mixed_correlation_times() -> None:
    rng = np.random.default_rng(5)
    fast = rng.standard_normal((3, 2, 4000))
    slow = ar1(rng, (3, 2, 4000), 0.98)
    c = stats.heat_capacity(np.concatenate([fast, slow]), np.ones(6), 1)
    assert c.window is not None
    assert np.all(c.window[3:] > c.window[:3])
    assert np.all(c.window[3:] >= 4 * c.tau_int[3:])
    assert np.all(c.stderr[3:] > c.stderr[:3])


def test_constant_series_no_nan_no_warning() -> None:
    x = np.ones((3, 2, 100))
    x[1] = -2.0
    x[2] = 0.1  # not exactly representable: a summed mean may be off in the last bit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("gamma", "binning"):
            est = stats.estimate(x, method=method)
            np.testing.assert_array_equal(est.estimate, [1.0, -2.0, 0.1])
            np.testing.assert_array_equal(est.stderr, 0.0)
            np.testing.assert_array_equal(est.tau_int, 0.5)
            np.testing.assert_array_equal(est.ess, 200.0)
            np.testing.assert_array_equal(est.rhat, 1.0)
        c = stats.heat_capacity(x, np.ones(3), 10)
        np.testing.assert_array_equal(c.estimate, 0.0)
        np.testing.assert_array_equal(c.stderr, 0.0)


def test_nan_in_nan_out() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 50, 2))
    x[1, 0, 7, 1] = np.nan
    x[2, 1, 3, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("gamma", "binning"):
            est = stats.estimate(x, method=method)
            for field in (est.estimate, est.stderr, est.tau_int, est.ess, est.rhat):
                assert np.isnan(field[1, 1]) and np.isnan(field[2, 0])
                assert np.isfinite(field[0]).all() and np.isfinite(field[1, 0])
        c = stats.heat_capacity(x[..., 0], np.ones(3), 4)
        assert np.isnan(c.estimate[2]) and np.isnan(c.stderr[2])
        assert np.isfinite(c.estimate[:2]).all()


def test_extra_axes_match_slices() -> None:
    rng = np.random.default_rng(2)
    x = np.moveaxis(ar1(rng, (3, 2, 4, 600), 0.5), 2, -1)  # (temps, chains, samples, r)
    est = stats.estimate(x)
    assert est.shape == (3, 4)
    for r in range(4):
        one = stats.estimate(x[..., r])
        np.testing.assert_allclose(est.stderr[:, r], one.stderr, rtol=1e-10)
        np.testing.assert_allclose(est.tau_int[:, r], one.tau_int, rtol=1e-10)
        np.testing.assert_allclose(est.rhat[:, r], one.rhat, rtol=1e-10)
    rec = est.record((1, 2))
    assert set(rec) >= {"estimate", "stderr", "tau_int", "ess", "rhat"}
    assert all(type(v) is float for v in rec.values())
    assert rec["stderr"] == est.stderr[1, 2]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="samples"):
        stats.estimate(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="shape"):
        stats.estimate(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="method"):
        stats.estimate(np.zeros((1, 1, 10)), method="bootstrap")


def test_window_zero_when_S_zero(ar1_series: np.ndarray) -> None:
    est = stats.estimate(ar1_series[:5], S=0)
    assert est.window is not None
    np.testing.assert_array_equal(est.window, 0)
    assert np.all(np.abs(est.tau_int - 0.5) < 0.01)


def test_jackknife_helper() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((REPS, 3000))
    mean, err = stats.jackknife(x, lambda m: m, 50)
    np.testing.assert_allclose(mean, x.mean(axis=-1), atol=1e-12)
    assert np.mean(err) == pytest.approx(1 / np.sqrt(3000), rel=0.05)
    # Two series and chains: variance via <x²> - <x>², blocks within chains.
    y = rng.standard_normal((REPS, 4, 1000)) * 2.0
    var, verr = stats.jackknife((y, y**2), lambda a, b: b - a**2, 40, chain_axis=-2)
    assert var.shape == (REPS,)
    assert 0.8 < np.std(var) / np.mean(verr) < 1.25
    assert abs(np.mean(var) - 4.0) < 4 * np.std(var) / np.sqrt(REPS)
