"""Error analysis of Monte Carlo and generator samples: means, standard errors, τ_int, ESS, R̂.

Input layout (see DESIGN.md, "Conventions"): a series of per-configuration values of one
observable with shape ``(temps, chains, samples, *extra)``, e.g. the energy per site
``(temps, chains, samples)`` or the correlation ``(temps, chains, samples, r)``. Every result
has the input's shape without the chains and samples axes, ``(temps, *extra)``.

Methods:

* ``"gamma"``: U. Wolff, "Monte Carlo errors with less errors", Comput. Phys. Commun. 156
  (2004) 143 (section 3.3 and the UWerr reference code), for a primary observable with the
  chains as replica: the autocorrelation function is estimated about the overall mean and
  averaged over replica, the summation window W is picked automatically, and the bias of the
  mean is corrected.
* ``"binning"``: blocking analysis (Flyvbjerg and Petersen 1989) with doubling block sizes and
  the block size picked by the criterion of Lee et al., Phys. Rev. E 83, 066704 (2011).
* ``"jackknife"``: derived quantities (the heat capacity) from leave-one-block-out means.

All computations are in float64 and vectorised over temperatures and extra axes. Entries whose
series holds a NaN or infinity give NaN in every field; a constant series gives stderr 0,
τ_int 0.5 and ESS = N without warnings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.fft

__all__ = ["MIN_SAMPLES", "Estimate", "estimate", "heat_capacity", "jackknife", "split_rhat"]

#: Fewest samples per chain that :func:`estimate` accepts.
MIN_SAMPLES = 4

#: Binning: the smallest number of blocks a block size must leave to be considered.
MIN_BLOCKS_BINNING = 16

#: Heat capacity: the target range for the number of jackknife blocks.
MAX_JACKKNIFE_BLOCKS = 100

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Estimate:
    """Mean and error analysis of one observable; arrays all of shape ``(temps, *extra)``.

    ``tau_int`` is in units of the measurement interval (0.5 for independent data) and
    ``ess = n_samples / (2 tau_int)``. ``rhat`` is the split-R̂ across chains (NaN for a single
    chain). ``n_samples`` is the total over chains; ``method`` is ``"gamma"``, ``"binning"`` or
    ``"jackknife"``. ``tau_int_err`` is the statistical error of ``tau_int`` and ``window`` the
    window W (Γ-method), block size (binning) or jackknife block length, in samples; both may be
    None when an Estimate is built by hand. (``eq=False``: array fields make ``==`` ambiguous.)
    """

    estimate: np.ndarray
    stderr: np.ndarray
    tau_int: np.ndarray
    ess: np.ndarray
    rhat: np.ndarray
    n_samples: int
    method: str
    tau_int_err: np.ndarray | None = None
    window: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.estimate)
        for name in ("stderr", "tau_int", "ess", "rhat", "tau_int_err", "window"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape:
                raise ValueError(
                    f"Estimate.{name} has shape {np.shape(value)}, estimate has shape {shape}"
                )

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of every array field, ``(temps, *extra)``."""
        return tuple(np.shape(self.estimate))

    def record(self, index: int | tuple[int, ...]) -> dict[str, float]:
        """Plain floats for one entry, e.g. ``record(3)`` or ``record((3, 2))`` for (T, r).

        Keys: ``estimate``, ``stderr``, ``tau_int``, ``tau_int_err`` (NaN if unknown), ``ess``,
        ``rhat``.
        """
        out = {
            name: float(np.asarray(getattr(self, name))[index])
            for name in ("estimate", "stderr", "tau_int", "ess", "rhat")
        }
        err = self.tau_int_err
        out["tau_int_err"] = float(np.asarray(err)[index]) if err is not None else float("nan")
        return out


# --------------------------------------------------------------------------- input handling


def _as_series(series: npt.ArrayLike, *, min_ndim: int = 3) -> FloatArray:
    """The series as float64 with chains and samples moved last: ``(temps, *extra, R, n)``."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim < min_ndim:
        raise ValueError(
            f"series must have shape (temps, chains, samples, *extra); got shape {x.shape}"
        )
    if x.shape[0] == 0 or x.shape[1] < 1:
        raise ValueError(f"series needs at least one temperature and one chain; got {x.shape}")
    if x.shape[2] < MIN_SAMPLES:
        raise ValueError(
            f"series has {x.shape[2]} samples per chain; at least {MIN_SAMPLES} are needed "
            "for an error estimate"
        )
    return np.moveaxis(x, (1, 2), (-2, -1))


def _split_masks(x: FloatArray) -> tuple[FloatArray, np.ndarray, np.ndarray]:
    """Zero the non-finite entries; masks ``bad`` (any non-finite) and ``const`` (no spread)."""
    finite = np.isfinite(x)
    bad = ~np.all(finite, axis=(-2, -1))
    x = np.where(finite, x, 0.0)
    const = ~bad & (np.max(x, axis=(-2, -1)) == np.min(x, axis=(-2, -1)))
    return x, bad, const


def split_rhat(x: npt.ArrayLike) -> FloatArray:
    """Split-R̂ (Gelman et al., BDA3 section 11.4, without rank normalisation).

    ``x`` has shape ``(..., chains, samples)`` (chains and samples last); returns ``(...)``.
    Each chain is cut into halves (the middle sample dropped for odd lengths), so a drift
    within a chain also raises R̂. NaN for a single chain (R̂ compares chains); 1 where every
    half-chain is constant at one value, inf where they are constant at different values.
    """
    a = np.asarray(x, dtype=np.float64)
    n_chains, n = a.shape[-2:]
    if n_chains < 2:
        return np.full(a.shape[:-2], np.nan)
    h = n // 2
    halves = np.concatenate([a[..., :h], a[..., n - h :]], axis=-2)  # (..., 2R, h)
    means = halves.mean(axis=-1)
    within = halves.var(axis=-1, ddof=1).mean(axis=-1)
    between_over_h = means.var(axis=-1, ddof=1)  # B / h
    var_plus = (h - 1) / h * within + between_over_h
    safe = np.where(within > 0, within, 1.0)
    rhat = np.sqrt(var_plus / safe)
    degenerate = np.where(between_over_h > 0, np.inf, 1.0)
    return np.where(within > 0, rhat, degenerate)


# --------------------------------------------------------------------------- Γ-method


def _autocovariance(d: FloatArray, tmax: int) -> FloatArray:
    """Γ(t), t = 0..tmax, of deviations ``d`` (..., R, n), summed over replica and normalised
    by the number of pairs ``R (n - t)`` (Wolff eq. 31 for equal-length replica)."""
    n_chains, n = d.shape[-2:]
    nfft = scipy.fft.next_fast_len(2 * n, real=True)
    f = scipy.fft.rfft(d, n=nfft, axis=-1)
    acf = scipy.fft.irfft(f.real**2 + f.imag**2, n=nfft, axis=-1)[..., : tmax + 1]
    pairs = n_chains * (n - np.arange(tmax + 1, dtype=np.float64))
    result: FloatArray = acf.sum(axis=-2) / pairs
    return result


def _gamma_method(x: FloatArray, S: float) -> dict[str, FloatArray]:
    """Wolff's Γ-method for a primary observable; ``x`` (..., R, n) finite float64."""
    n_chains, n = x.shape[-2:]
    big_n = n_chains * n
    tmax = n // 2
    mean = x.mean(axis=(-2, -1))
    gamma = _autocovariance(x - mean[..., None, None], tmax)  # (..., tmax+1)
    g0 = gamma[..., 0]
    positive = g0 > 0
    g0_safe = np.where(positive, g0, 1.0)

    if S == 0:  # no autocorrelation assumed
        window = np.zeros(g0.shape, dtype=np.int64)
    else:
        # g(W) = exp(-W/τ(W)) - τ(W)/sqrt(W N), τ(W) = S / ln((2τ_int(W)+1)/(2τ_int(W)-1));
        # G(W) = τ_int(W) - 1/2 = Σ_{t=1..W} ρ(t); W = first W with g(W) < 0.
        w = np.arange(1, tmax + 1, dtype=np.float64)
        gint = np.cumsum(gamma[..., 1:], axis=-1) / g0_safe[..., None]
        pos = gint > 0
        gint_safe = np.where(pos, gint, 1.0)
        tau_w = np.where(pos, S / np.log1p(1.0 / gint_safe), np.finfo(np.float64).tiny)
        with np.errstate(under="ignore", over="ignore"):
            g = np.exp(-w / tau_w) - tau_w / np.sqrt(w * big_n)
        negative = g < 0
        found = negative.any(axis=-1)
        window = np.where(found, np.argmax(negative, axis=-1) + 1, tmax)

    csum = np.concatenate([np.zeros((*g0.shape, 1)), np.cumsum(gamma[..., 1:], axis=-1)], -1)
    c_f = g0 + 2.0 * np.take_along_axis(csum, window[..., None], axis=-1)[..., 0]
    ok = positive & (c_f > 0)  # C_F <= 0: Wolff's "strong fluctuations" failure -> NaN
    c_f_safe = np.where(ok, c_f, 1.0)
    # Bias correction: Γ(t) -> Γ(t) + C_F/N, hence C_F -> C_F (1 + (2W+1)/N).
    c_corr = c_f_safe * (1.0 + (2.0 * window + 1.0) / big_n)
    v_corr = np.where(ok, g0, 1.0) + c_f_safe / big_n
    tau = c_corr / (2.0 * v_corr)
    stderr = np.sqrt(c_corr / big_n)
    # Wolff eq. (42): δτ_int ≈ 2 τ_int sqrt((W + 1/2 - τ_int) / N).
    tau_err = 2.0 * tau * np.sqrt(np.maximum(window + 0.5 - tau, 0.0) / big_n)
    nan = np.nan
    return {
        "estimate": mean,
        "stderr": np.where(ok, stderr, nan),
        "tau_int": np.where(ok, tau, nan),
        "tau_int_err": np.where(ok, tau_err, nan),
        "window": window.astype(np.float64),
    }


# --------------------------------------------------------------------------- binning


def _binning(x: FloatArray) -> dict[str, FloatArray]:
    """Blocking analysis; ``x`` (..., R, n) finite float64.

    Block sizes B = 1, 2, 4, ... (blocks within chains, at least ``MIN_BLOCKS_BINNING`` blocks
    in all). σ_B = std(block means) / sqrt(#blocks). The plateau is the smallest B with
    B³ > 2 N (σ_B/σ_1)⁴ (Lee et al. 2011: balances the O(τ/B) bias against the O(sqrt(B/N))
    noise); if no B qualifies, the largest B is used.
    """
    n_chains, n = x.shape[-2:]
    big_n = n_chains * n
    sizes = [1]
    while n_chains * (n // (2 * sizes[-1])) >= MIN_BLOCKS_BINNING:
        sizes.append(2 * sizes[-1])
    errs, counts = [], []
    for b in sizes:
        m = n // b
        blocks = x[..., : m * b].reshape(*x.shape[:-1], m, b).mean(axis=-1)
        errs.append(blocks.std(axis=(-2, -1), ddof=1) / np.sqrt(n_chains * m))
        counts.append(n_chains * m)
    err = np.stack(errs)  # (levels, ...)
    naive = err[0]
    positive = naive > 0
    ratio2 = (err / np.where(positive, naive, 1.0)) ** 2
    b_arr = np.asarray(sizes, dtype=np.float64).reshape(-1, *([1] * naive.ndim))
    crit = b_arr**3 > 2.0 * big_n * ratio2**2
    level = np.where(crit.any(axis=0), np.argmax(crit, axis=0), len(sizes) - 1)
    chosen = np.take_along_axis(err, level[None], axis=0)[0]
    tau = 0.5 * np.take_along_axis(ratio2, level[None], axis=0)[0]
    n_blocks = np.asarray(counts, dtype=np.float64)[level]
    # δσ_B/σ_B ≈ 1/sqrt(2 (M - 1)) for M blocks, so δτ/τ ≈ sqrt(2 / (M - 1)).
    tau_err = tau * np.sqrt(2.0 / np.maximum(n_blocks - 1.0, 1.0))
    return {
        "estimate": x.mean(axis=(-2, -1)),
        "stderr": chosen,
        "tau_int": tau,
        "tau_int_err": tau_err,
        "window": np.asarray(sizes, dtype=np.float64)[level],
    }


# --------------------------------------------------------------------------- public API


def estimate(series: npt.ArrayLike, *, method: str = "gamma", S: float = 1.5) -> Estimate:
    """Mean, standard error, τ_int, ESS and R̂ of a series ``(temps, chains, samples, *extra)``.

    ``method="gamma"`` is Wolff's Γ-method with automatic windowing (``S`` is his S_τ; 1.5 by
    default, 0 assumes no autocorrelation); ``method="binning"`` is the blocking analysis.
    Results have shape ``(temps, *extra)``. Raises ValueError for fewer than
    ``MIN_SAMPLES`` samples per chain or a bad shape.
    """
    if method not in ("gamma", "binning"):
        raise ValueError(f"unknown method {method!r}; expected 'gamma' or 'binning'")
    if not S >= 0:
        raise ValueError(f"S must be >= 0, got {S}")
    x = _as_series(series)
    n_chains, n = x.shape[-2:]
    big_n = n_chains * n
    x, bad, const = _split_masks(x)
    parts = _gamma_method(x, S) if method == "gamma" else _binning(x)

    rhat = split_rhat(x)
    first = x[..., 0, 0]
    out: dict[str, FloatArray] = {}
    fill: dict[str, FloatArray | float] = {
        "estimate": first,
        "stderr": 0.0,
        "tau_int": 0.5,
        "tau_int_err": 0.0,
        "window": 0.0 if method == "gamma" else 1.0,
    }
    for name, value in parts.items():
        out[name] = np.where(bad, np.nan, np.where(const, fill[name], value))
    out["rhat"] = np.where(bad, np.nan, np.where(const, 1.0, rhat))
    tau = out["tau_int"]
    out["ess"] = big_n / (2.0 * np.where(np.isfinite(tau) & (tau > 0), tau, np.nan))
    return Estimate(
        estimate=out["estimate"],
        stderr=out["stderr"],
        tau_int=tau,
        ess=out["ess"],
        rhat=out["rhat"],
        n_samples=big_n,
        method=method,
        tau_int_err=out["tau_int_err"],
        window=out["window"],
    )


def _jackknife_blocks(
    blocks: Sequence[FloatArray], function: Callable[..., Any]
) -> tuple[FloatArray, FloatArray]:
    """Jackknife from block means ``(..., M)`` (one array per series, equal-size blocks).

    ``function`` gets the means of the series as positional arguments, once with shape ``(...)``
    and once with a leading leave-one-out axis ``(M, ...)``. Returns the bias-corrected
    estimate ``M f(mean) - (M-1) mean_j f_j`` and the jackknife standard error.
    """
    m = blocks[0].shape[-1]
    if m < 2:
        raise ValueError("the jackknife needs at least 2 blocks")
    full = [b.mean(axis=-1) for b in blocks]
    loo = [np.moveaxis((b.sum(axis=-1, keepdims=True) - b) / (m - 1), -1, 0) for b in blocks]
    f_full = np.asarray(function(*full), dtype=np.float64)
    f_loo = np.asarray(function(*loo), dtype=np.float64)
    f_bar = f_loo.mean(axis=0)
    var = (m - 1) / m * np.sum((f_loo - f_bar) ** 2, axis=0)
    return m * f_full - (m - 1) * f_bar, np.sqrt(var)


def jackknife(
    series: npt.ArrayLike | Sequence[npt.ArrayLike],
    function: Callable[..., Any],
    n_blocks: int,
    *,
    chain_axis: int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Estimate and standard error of ``function(mean(a), mean(b), ...)`` by a blocked jackknife.

    ``series`` is one array or a sequence of equal-shape arrays ``(..., samples)`` (samples
    last). The samples are cut into ``n_blocks`` contiguous equal blocks (a remainder at the
    end is dropped); blocks should be long compared with τ_int. With ``chain_axis``, that axis
    holds independent chains and each chain is cut into ``n_blocks // chains`` blocks (at least
    one), so no block straddles two chains. ``function`` must broadcast over leading axes: it is
    called with means of shape ``(...)`` (chains and samples axes removed) and with a leading
    leave-one-out axis. Returns the bias-corrected estimate and the stderr, each ``(...)``.
    """
    arrays = (
        [np.asarray(series, dtype=np.float64)]
        if isinstance(series, np.ndarray) or not isinstance(series, Sequence)
        else [np.asarray(s, dtype=np.float64) for s in series]
    )
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays) or len(shape) < 1:
        raise ValueError("jackknife series must be arrays of one shape (..., samples)")
    if chain_axis is not None:
        arrays = [np.moveaxis(a, chain_axis, -2) for a in arrays]
        n_chains = arrays[0].shape[-2]
        per_chain = max(1, n_blocks // n_chains)
    else:
        arrays = [a[..., None, :] for a in arrays]
        per_chain = n_blocks
    n = arrays[0].shape[-1]
    if per_chain > n or per_chain < 1:
        raise ValueError(f"cannot cut {n} samples per chain into {per_chain} blocks")
    length = n // per_chain
    blocks = [
        a[..., : per_chain * length]
        .reshape(*a.shape[:-1], per_chain, length)
        .mean(axis=-1)
        .reshape(*a.shape[:-2], -1)
        for a in arrays
    ]
    return _jackknife_blocks(blocks, function)


def heat_capacity(energy_per_site: npt.ArrayLike, temps: npt.ArrayLike, n_sites: int) -> Estimate:
    """Heat capacity per site ``C/N = N (<e²> - <e>²) / T²`` from energies per site.

    ``energy_per_site`` has shape ``(temps, chains, samples)``, ``temps`` shape ``(temps,)``.
    Errors by a jackknife over blocks within chains: per temperature, blocks per chain are
    ``min(n / (4 τ_int), 100 // chains)`` rounded down to a power of two (at least one, and at
    least two blocks in all), so blocks are ≥ 4 τ_int long where the data allow and the total is
    about 20-100. The estimate is jackknife bias-corrected. ``tau_int``, ``ess``, ``rhat`` and
    ``tau_int_err`` are those of the energy (Γ-method); ``window`` is the block length.
    """
    e = np.asarray(energy_per_site, dtype=np.float64)
    if e.ndim != 3:
        raise ValueError(f"energy_per_site must be (temps, chains, samples); got {e.shape}")
    t = np.broadcast_to(np.asarray(temps, dtype=np.float64), e.shape[:1])
    if np.any(t <= 0):
        raise ValueError("temperatures must be > 0")
    base = estimate(e, method="gamma")
    n_temps, n_chains, n = e.shape
    finite = np.isfinite(e)
    bad = ~np.all(finite, axis=(1, 2))
    e = np.where(finite, e, 0.0)
    e = e - e[:, :1, :1]  # shift by one sample: variance unchanged, no cancellation, 0 if const

    tau = np.where(np.isfinite(base.tau_int), base.tau_int, 0.5)
    per_chain = np.floor(n / np.maximum(1.0, 4.0 * tau))
    per_chain = np.clip(per_chain, 1, max(1, MAX_JACKKNIFE_BLOCKS // n_chains))
    per_chain = 2 ** np.floor(np.log2(per_chain)).astype(np.int64)
    if n_chains == 1:
        per_chain = np.maximum(per_chain, 2)

    value = np.empty(n_temps)
    stderr = np.empty(n_temps)
    length = np.empty(n_temps)
    for nb in np.unique(per_chain):  # a handful of distinct block counts
        idx = np.flatnonzero(per_chain == nb)
        size = n // int(nb)
        chunk = e[idx, :, : nb * size].reshape(len(idx), n_chains * int(nb), size)
        b1, b2 = chunk.mean(axis=-1), (chunk**2).mean(axis=-1)
        t_g = t[idx]

        def c_of(m1: FloatArray, m2: FloatArray, t_g: FloatArray = t_g) -> FloatArray:
            result: FloatArray = n_sites * (m2 - m1**2) / t_g**2
            return result

        value[idx], stderr[idx] = _jackknife_blocks([b1, b2], c_of)
        length[idx] = size
    nan = np.nan
    return Estimate(
        estimate=np.where(bad, nan, value),
        stderr=np.where(bad, nan, stderr),
        tau_int=base.tau_int,
        ess=base.ess,
        rhat=base.rhat,
        n_samples=base.n_samples,
        method="jackknife",
        tau_int_err=base.tau_int_err,
        window=np.where(bad, nan, length),
    )
