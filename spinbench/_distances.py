"""Distances between energy distributions, and the sampling-noise floor to print beside them.

Histograms are probabilities over the last axis, vectorised over leading axes (usually
temperatures): ``(temps, n_bins)``. A method's distance means little without the distance that
sampling noise alone produces at the same sample size, so :func:`noise_floor` (two empirical
histograms of one distribution) and :func:`empirical_vs_exact_floor` (an empirical histogram
against its exact distribution) give that baseline.

KL between two *empirical* histograms is infinite as soon as one bin is empty on one side only,
so for that case both histograms are smoothed with :func:`smooth` (a pseudo-count of 0.5 per bin,
the Jeffreys/Krichevsky-Trofimov prior) before taking KL; compare a method with an empirical
reference the same way so that its KL and the floor are on one footing. Against an exact
distribution no smoothing is needed: KL(empirical || exact) is finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.special

from ._plain import plain

__all__ = [
    "NoiseFloor",
    "empirical_vs_exact_floor",
    "histogram",
    "kl_divergence",
    "level_histogram",
    "noise_floor",
    "smooth",
    "total_variation",
]

FloatArray = npt.NDArray[np.float64]

#: Pseudo-count per bin used to smooth empirical histograms before KL (Jeffreys prior).
PSEUDO_COUNT = 0.5


def _rows(values: npt.ArrayLike) -> FloatArray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[-1] == 0:
        raise ValueError(f"values must have shape (..., n) with n >= 1; got {v.shape}")
    return v


def _count(index: npt.NDArray[np.int64], valid: np.ndarray, n_bins: int) -> FloatArray:
    """Counts of ``index`` (..., n) over ``n_bins`` bins, ignoring entries with ``valid`` False;
    one ``bincount`` over all rows (row r's bins offset by r * n_bins)."""
    lead = index.shape[:-1]
    n_rows = int(np.prod(lead, dtype=np.int64))
    offset = (np.arange(n_rows, dtype=np.int64) * n_bins).reshape(*lead, 1)
    flat = (index + offset)[valid]
    counts = np.bincount(flat, minlength=n_rows * n_bins).astype(np.float64)
    return counts.reshape(*lead, n_bins)


def histogram(
    values: npt.ArrayLike,
    bins: int | npt.ArrayLike,
    *,
    value_range: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> FloatArray:
    """Probabilities of ``values`` (..., n) in bins, over the last axis: ``(..., n_bins)``.

    ``bins`` is either 1-D increasing edges ``(n_bins + 1,)`` shared by every row, or a number
    of equal-width bins on ``value_range = (lo, hi)`` (scalars or arrays broadcasting to the
    leading axes ``(...)``; by default each row's own min and max, which is only good for a look
    at one set: give a common range, or edges, to compare two sets). Bins are half-open
    ``[a, b)`` except the last, which is closed (as in ``numpy.histogram``). Values outside the
    range fall in no bin but count in the total, so such a row sums to less than 1. A row with a
    NaN is all NaN.
    """
    v = _rows(values)
    n = v.shape[-1]
    nan_row = np.any(np.isnan(v), axis=-1)
    v = np.where(np.isnan(v), 0.0, v)
    if np.ndim(bins) == 0:
        n_bins = int(bins)  # type: ignore[arg-type]
        if n_bins < 1:
            raise ValueError(f"bins must be >= 1, got {n_bins}")
        if value_range is None:
            lo, hi = v.min(axis=-1), v.max(axis=-1)
        else:
            lo = np.broadcast_to(np.asarray(value_range[0], dtype=np.float64), v.shape[:-1])
            hi = np.broadcast_to(np.asarray(value_range[1], dtype=np.float64), v.shape[:-1])
        if np.any(hi < lo):
            raise ValueError("value_range must have lo <= hi")
        width = np.where(hi > lo, hi - lo, 1.0)[..., None]
        pos = (v - lo[..., None]) / width * n_bins
        inside = (v >= lo[..., None]) & (v <= hi[..., None])
        index = np.clip(np.floor(np.where(inside, pos, 0.0)), 0, n_bins - 1).astype(np.int64)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be 1-D, strictly increasing, at least two")
        n_bins = edges.size - 1
        inside = (v >= edges[0]) & (v <= edges[-1])
        index = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_bins - 1)
    probs = _count(index, inside, n_bins) / n
    return np.where(nan_row[..., None], np.nan, probs)


def level_histogram(
    values: npt.ArrayLike, levels: npt.ArrayLike, *, tol: float | None = None
) -> FloatArray:
    """Probabilities of discrete ``values`` (..., n) over known ``levels`` (n_levels,).

    Each value is mapped to its nearest level; one farther than ``tol`` (by default a quarter of
    the smallest level spacing) is an error, since it means the levels are wrong (e.g. energy
    per site against total-energy levels). Returns ``(..., n_levels)``; a row with a NaN is NaN.
    """
    v = _rows(values)
    lev = np.asarray(levels, dtype=np.float64)
    if lev.ndim != 1 or lev.size < 1:
        raise ValueError("levels must be a non-empty 1-D array")
    order = np.argsort(lev)
    srt = lev[order]
    if np.any(np.diff(srt) <= 0):
        raise ValueError("levels must be distinct")
    if tol is None:
        tol = 0.25 * float(np.min(np.diff(srt))) if srt.size > 1 else 1e-9
    nan_row = np.any(np.isnan(v), axis=-1)
    v = np.where(np.isnan(v), srt[0], v)
    if srt.size == 1:
        nearest = np.zeros(v.shape, dtype=np.int64)
    else:
        right = np.clip(np.searchsorted(srt, v), 1, srt.size - 1)
        left = right - 1
        nearest = np.where(v - srt[left] <= srt[right] - v, left, right)
    miss = np.abs(v - srt[nearest]) > tol
    if np.any(miss):
        bad = v[miss][0]
        raise ValueError(f"value {plain(bad)!r} is farther than {tol:g} from every level")
    counts = _count(order[nearest], np.ones(v.shape, dtype=bool), srt.size)
    return np.where(nan_row[..., None], np.nan, counts / v.shape[-1])


def _probs(p: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim < 1:
        raise ValueError(f"{name} must have a last axis of bins")
    if np.any(a < 0):
        raise ValueError(f"{name} has negative probabilities")
    return a


def total_variation(p: npt.ArrayLike, q: npt.ArrayLike) -> FloatArray:
    """Total variation distance ``½ Σ |p - q|`` over the last axis (broadcast over the rest)."""
    a, b = _probs(p, "p"), _probs(q, "q")
    result: FloatArray = 0.5 * np.sum(np.abs(a - b), axis=-1)
    return result


def kl_divergence(p: npt.ArrayLike, q: npt.ArrayLike) -> FloatArray:
    """KL(p || q) = Σ p ln(p/q) in nats over the last axis; inf where some p > 0 has q = 0.

    Inputs are taken as given (not renormalised). Terms with p = 0 contribute 0.
    """
    a, b = _probs(p, "p"), _probs(q, "q")
    result: FloatArray = np.sum(scipy.special.rel_entr(a, b), axis=-1)
    return result


def smooth(
    probabilities: npt.ArrayLike, n_samples: int, pseudo_count: float = PSEUDO_COUNT
) -> FloatArray:
    """Empirical probabilities of ``n_samples`` draws with ``pseudo_count`` added to each bin's
    count and renormalised: ``(n p + a) / (n + a K)`` over the last axis (K bins)."""
    p = _probs(probabilities, "probabilities")
    k = p.shape[-1]
    result: FloatArray = (n_samples * p + pseudo_count) / (n_samples + pseudo_count * k)
    return result


@dataclass(frozen=True, eq=False)
class NoiseFloor:
    """Expected distances from sampling noise alone; arrays of the input's leading shape.

    ``tv`` and ``kl`` are means over the simulated repeats; ``tv_std`` and ``kl_std`` their
    spread across repeats (the scatter of one draw, not the error of the mean).
    """

    tv: np.ndarray
    kl: np.ndarray
    tv_std: np.ndarray
    kl_std: np.ndarray
    n_samples: int
    repeats: int


def _generator(key_or_seed: Any) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator, or a ``jax.random`` key."""
    if isinstance(key_or_seed, np.random.Generator):
        return key_or_seed
    if isinstance(key_or_seed, int | np.integer):
        return np.random.default_rng(int(key_or_seed))
    if type(key_or_seed).__module__.startswith("jax"):
        import jax  # only when handed a jax key

        data = key_or_seed
        if jax.dtypes.issubdtype(data.dtype, jax.dtypes.prng_key):
            data = jax.random.key_data(data)
        words = np.asarray(data).astype(np.uint64).ravel()
        return np.random.default_rng(np.random.SeedSequence(words.tolist()))
    raise TypeError(f"key_or_seed must be an int, numpy Generator or jax key, not {key_or_seed!r}")


def _draw(p: FloatArray, n_samples: int, repeats: int, rng: np.random.Generator) -> FloatArray:
    """Empirical probabilities ``(repeats, ..., K)`` of ``n_samples`` draws from each row."""
    if n_samples < 1 or repeats < 2:
        raise ValueError("need n_samples >= 1 and repeats >= 2")
    total = p.sum(axis=-1, keepdims=True)
    if np.any(np.abs(total - 1.0) > 1e-6) or np.any(~np.isfinite(p)):
        raise ValueError("probabilities must be finite and sum to 1 over the last axis")
    p = p / total
    counts = rng.multinomial(n_samples, p, size=(repeats, *p.shape[:-1]))
    result: FloatArray = counts.astype(np.float64) / n_samples
    return result


def _floor(tv: FloatArray, kl: FloatArray, n_samples: int, repeats: int) -> NoiseFloor:
    return NoiseFloor(
        tv=tv.mean(axis=0),
        kl=kl.mean(axis=0),
        tv_std=tv.std(axis=0, ddof=1),
        kl_std=kl.std(axis=0, ddof=1),
        n_samples=n_samples,
        repeats=repeats,
    )


def noise_floor(
    probabilities: npt.ArrayLike,
    n_samples: int,
    *,
    key_or_seed: Any,
    repeats: int = 200,
    pseudo_count: float = PSEUDO_COUNT,
) -> NoiseFloor:
    """Expected TV and KL between two independent ``n_samples``-draw histograms of one
    distribution ``probabilities`` (..., K): the distance an exact sampler would show against
    an empirical reference of the same size.

    Simulated by ``repeats`` multinomial pairs. KL is taken between the two histograms after
    :func:`smooth` with ``pseudo_count`` (finite even with empty bins); TV uses the raw ones.
    ``key_or_seed``: int seed, ``numpy.random.Generator`` or ``jax.random`` key.
    """
    p = _probs(probabilities, "probabilities")
    rng = _generator(key_or_seed)
    a = _draw(p, n_samples, repeats, rng)
    b = _draw(p, n_samples, repeats, rng)
    tv = total_variation(a, b)
    kl = kl_divergence(smooth(a, n_samples, pseudo_count), smooth(b, n_samples, pseudo_count))
    return _floor(tv, kl, n_samples, repeats)


def empirical_vs_exact_floor(
    p_exact: npt.ArrayLike, n_samples: int, *, key_or_seed: Any = 0, repeats: int = 200
) -> NoiseFloor:
    """Expected TV and KL(empirical || exact) of an ``n_samples``-draw histogram of ``p_exact``
    (..., K) against ``p_exact`` itself: the floor for a method compared with an exact
    distribution. No smoothing (the KL is finite). Simulated with a fixed default seed.
    """
    p = _probs(p_exact, "p_exact")
    rng = _generator(key_or_seed)
    a = _draw(p, n_samples, repeats, rng)
    pn = p / p.sum(axis=-1, keepdims=True)
    return _floor(total_variation(a, pn), kl_divergence(a, pn), n_samples, repeats)
