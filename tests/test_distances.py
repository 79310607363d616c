"""Tests of spinbench._distances: known values, histogramming, and the sampling-noise floor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from spinbench import _distances as distances


def test_total_variation_known_values() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(distances.total_variation(p, q), [0.5, 0.0])
    # Broadcasting: one q against a batch.
    assert distances.total_variation(p, [0, 0, 1]).shape == (2,)
    np.testing.assert_allclose(distances.total_variation(p, [0, 0, 1]), [1.0, 0.5])


def test_kl_known_values_and_infinity() -> None:
    kl = distances.kl_divergence([0.5, 0.5], [0.25, 0.75])
    assert kl == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3))
    assert distances.kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert distances.kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    rows = distances.kl_divergence([[0.5, 0.5], [0.3, 0.7]], [[1.0, 0.0], [0.3, 0.7]])
    assert rows[0] == np.inf and rows[1] == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(distances.kl_divergence([np.nan, 1.0], [0.5, 0.5]))
    with pytest.raises(ValueError):
        distances.kl_divergence([-0.1, 1.1], [0.5, 0.5])


def test_histogram_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 1000)) + np.arange(4)[:, None]
    edges = np.linspace(-2.0, 5.0, 15)
    h = distances.histogram(v, edges)
    assert h.shape == (4, 14)
    for t in range(4):
        counts, _ = np.histogram(v[t], edges)
        np.testing.assert_allclose(h[t], counts / 1000)
    # Equal-width bins on a common range agree with the explicit edges.
    h2 = distances.histogram(v, 14, value_range=(-2.0, 5.0))
    np.testing.assert_allclose(h2, h, atol=1e-12)
    # Default range: each row's own min/max, everything inside.
    np.testing.assert_allclose(distances.histogram(v, 10).sum(axis=-1), 1.0)
    # Values outside the edges count in the total only; a NaN row is NaN.
    v[0, 0] = 100.0
    v[1, 5] = np.nan
    h = distances.histogram(v, edges)
    inside = np.sum((v[0] >= edges[0]) & (v[0] <= edges[-1])) / 1000
    assert h[0].sum() == pytest.approx(inside) and inside < 1
    assert np.all(np.isnan(h[1])) and np.isfinite(h[2]).all()


def test_level_histogram() -> None:
    rng = np.random.default_rng(1)
    levels = np.array([1.0, -3.0, 3.0, -1.0])  # any order
    p = np.array([0.1, 0.2, 0.3, 0.4])
    idx = rng.choice(4, size=(3, 5000), p=p)
    values = levels[idx] + rng.uniform(-1e-6, 1e-6, size=idx.shape)  # float noise
    h = distances.level_histogram(values, levels)
    for t in range(3):
        np.testing.assert_allclose(h[t], np.bincount(idx[t], minlength=4) / 5000)
    with pytest.raises(ValueError, match="level"):
        distances.level_histogram([[0.0, 1.0]], levels)


def test_noise_floor_scales_as_inverse_sqrt_n() -> None:
    p = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0.05, 0.15, 0.6, 0.15, 0.05]])
    small = distances.noise_floor(p, 1000, key_or_seed=0, repeats=400)
    large = distances.noise_floor(p, 16000, key_or_seed=1, repeats=400)
    assert small.tv.shape == (2,) and small.kl.shape == (2,)
    np.testing.assert_allclose(small.tv / large.tv, 4.0, rtol=0.1)
    np.testing.assert_allclose(small.kl / large.kl, 16.0, rtol=0.15)  # KL ~ 1/n
    assert np.all(np.isfinite(small.kl))
    # Two empirical sets differ by about sqrt(2) x (one empirical set vs exact).
    exact = distances.empirical_vs_exact_floor(p, 1000, repeats=400)
    np.testing.assert_allclose(small.tv / exact.tv, np.sqrt(2), rtol=0.1)


def test_empirical_vs_exact_floor_matches_binomial_expectation() -> None:
    p = np.array([0.05, 0.15, 0.3, 0.5])
    n = 500
    x = np.arange(n + 1)
    pmf = binom.pmf(x[:, None], n, p[None, :])
    expected_tv = 0.5 * np.sum(pmf * np.abs(x[:, None] / n - p[None, :]))
    floor = distances.empirical_vs_exact_floor(p, n, repeats=2000)
    assert floor.tv == pytest.approx(expected_tv, rel=0.05)
    assert floor.kl == pytest.approx((p.size - 1) / (2 * n), rel=0.15)  # asymptotic χ²/2n
    again = distances.empirical_vs_exact_floor(p, n, repeats=2000)
    assert again.tv == floor.tv  # fixed default seed


def test_noise_floor_seeds_and_keys() -> None:
    jax = pytest.importorskip("jax")
    p = np.array([0.2, 0.3, 0.5])
    a = distances.noise_floor(p, 100, key_or_seed=jax.random.key(3))
    b = distances.noise_floor(p, 100, key_or_seed=jax.random.key(3))
    c = distances.noise_floor(p, 100, key_or_seed=4)
    assert a.tv == b.tv and a.tv != c.tv
    gen = distances.noise_floor(p, 100, key_or_seed=np.random.default_rng(4))
    assert gen.tv == c.tv
    with pytest.raises(ValueError):
        distances.noise_floor([0.2, 0.3], 100, key_or_seed=0)  # does not sum to 1


def test_smooth() -> None:
    p = np.array([[0.0, 0.25, 0.75]])
    s = distances.smooth(p, 4)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0)
    np.testing.assert_allclose(s, [[0.5 / 5.5, 1.5 / 5.5, 3.5 / 5.5]])
