"""From configurations to records: observables, error bars and the comparison with exact values.

Shared by ``spinbench sample`` and the runner. :func:`measure` turns a ``(temps, chains,
samples, *lattice)`` array into per-configuration observables; :func:`analyse` turns a
:class:`~spinbench._samples.Samples` into one flat record per (T, observable, r) with the
estimate, its standard error, τ_int, ESS and R̂ (:mod:`spinbench.stats`) and, where an exact
value is given, the absolute error and ``z = abs_error / stderr``.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Shaped

from . import stats
from ._samples import Samples
from .exact._result import ExactResult
from .models._base import AbstractModel

#: Observables of every record set, in output order (correlation has one record per r).
OBSERVABLES = ("energy", "heat_capacity", "abs_magnetization", "correlation")

#: Split-R̂ above this marks a row ``unconverged`` (Gelman et al., BDA3, use 1.1 and Vehtari et
#: al. 2021 1.01; with the 10-20 chains of a benchmark run, well-mixed chains stay below 1.01).
RHAT_MAX = 1.05
#: Fewer effective samples than this mark a row ``unconverged``: the error bar itself is then
#: uncertain by more than about 7 % (its relative error is about 1 / sqrt(2 ESS)).
ESS_MIN = 100
#: An estimate with a zero error bar matches its exact value when they differ by at most this,
#: relative to ``max(1, |exact|)`` (float32 configurations, float64 exact values).
MATCH_TOLERANCE = 1e-9

#: Keys of every record, in output order (``acceptance`` is added where a sampler records it).
RECORD_KEYS = (
    "model",
    "size",
    "boundary",
    "options",
    "method",
    "T",
    "observable",
    "r",
    "estimate",
    "stderr",
    "tau_int",
    "ess",
    "rhat",
    "exact",
    "abs_error",
    "z",
    "status",
    "reason",
)

#: Spins per jitted measurement chunk: bounds the memory of :func:`measure`.
MEASURE_CHUNK_SITES = 2**22


@eqx.filter_jit
def _observables(model: AbstractModel, states: Array) -> dict[str, Array]:
    return model.observables(states)


def measure(
    model: AbstractModel, states: Shaped[np.ndarray, "temps chains samples *lattice"]
) -> dict[str, np.ndarray]:
    """Per-configuration observables of ``states`` ``(temps, chains, samples, *lattice)``.

    Returns float64 arrays ``(temps, chains, samples)`` (``correlation``: ``(..., r)`` at
    ``model.correlation_distances()``). The samples axis is processed in equal jitted chunks
    (the last one padded), so memory stays bounded and one program serves every chunk.
    """
    states = np.asarray(states)
    lattice = tuple(model.shape)
    if states.ndim != 3 + len(lattice) or tuple(states.shape[3:]) != lattice:
        raise ValueError(
            f"states must have shape (temps, chains, samples, {', '.join(map(str, lattice))}); "
            f"got {states.shape}"
        )
    n_temps, n_chains, n_samples = states.shape[:3]
    per_sample = max(1, n_temps * n_chains * model.n_sites)
    chunk = max(1, min(n_samples, MEASURE_CHUNK_SITES // per_sample))
    pieces: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_samples, chunk):
        part = states[:, :, start : start + chunk]
        count = part.shape[2]
        if count < chunk:  # pad with copies of the last configuration, dropped below
            pad = np.repeat(part[:, :, -1:], chunk - count, axis=2)
            part = np.concatenate([part, pad], axis=2)
        values = _observables(model, jnp.asarray(part, dtype=model.dtype))
        for name, value in values.items():
            pieces.setdefault(name, []).append(np.asarray(value, np.float64)[:, :, :count])
    return {name: np.concatenate(parts, axis=2) for name, parts in pieces.items()}


def _z(abs_error: float | None, stderr: float, exact: float | None) -> float | None:
    """``abs_error / stderr``; with a zero error bar 0 for a match and inf for a miss."""
    if abs_error is None:
        return None
    if stderr == 0.0:
        tolerance = MATCH_TOLERANCE * max(1.0, abs(exact or 0.0))
        return 0.0 if abs_error <= tolerance else math.inf
    return abs_error / stderr


def flag(record: dict[str, Any]) -> tuple[str, str | None]:
    """The status of a record (``ok``, ``unconverged`` or ``degenerate``) and the reason.

    * ``degenerate``: a zero error bar on an estimate that misses its exact value (every
      configuration gave one value: a generator collapsed onto one state, or frozen chains);
      z is then inf.
    * ``unconverged``: split-R̂ above :data:`RHAT_MAX` (infinite when chains are stuck at
      different values), fewer than :data:`ESS_MIN` effective samples, or an error analysis
      that failed (no finite error bar).
    """
    estimate, stderr = record["estimate"], record["stderr"]
    if record.get("z") == math.inf and stderr == 0.0:
        return "degenerate", (
            f"every configuration gives {estimate:.6g}, so there is no error bar, and the "
            f"exact value is {record['exact']:.6g}: a sampler that is stuck or a generator "
            "that collapsed onto one state"
        )
    rhat, ess = record.get("rhat"), record.get("ess")
    if rhat is not None and not math.isnan(rhat) and rhat > RHAT_MAX:
        if math.isinf(rhat):
            return "unconverged", (
                "R-hat = inf: the chains are stuck at different values and never mix"
            )
        return "unconverged", (
            f"R-hat = {rhat:.4g} > {RHAT_MAX}: the chains disagree; run longer (more warm-up "
            "and sweeps)"
        )
    if ess is not None and not math.isnan(ess) and ess < ESS_MIN:
        return "unconverged", (
            f"only {ess:.3g} effective samples (at least {ESS_MIN} are needed for an error bar "
            "that can be trusted); run longer or measure less often"
        )
    if math.isfinite(estimate) and not math.isfinite(stderr):
        return "unconverged", (
            "the error analysis failed (the autocorrelation could not be estimated); run longer"
        )
    return "ok", None


#: Relative errors are given only where the exact value is at least this far from zero, in
#: per-site units of |J| for energies and absolute for the others: closer to zero (e.g.
#: correlations at high T), a relative error measures the noise, not the method.
REL_ERROR_MIN_EXACT = 0.05


def relative_error(
    estimate: float | None, exact: float | None, observable: str | None, J: float = 1.0
) -> float | None:
    """``|estimate - exact| / |exact|`` where the exact value is not near zero, else None."""
    if estimate is None or exact is None:
        return None
    scale = abs(J) if observable == "energy" else 1.0
    if abs(exact) < REL_ERROR_MIN_EXACT * scale:
        return None
    return abs(estimate - exact) / abs(exact)


def exact_where_known(model: AbstractModel, temps: np.ndarray) -> ExactResult | None:
    """``model.exact(temps)``, with the temperatures an exact solver refuses (below its
    numerical limit, say) left unknown (NaN) instead of failing the whole grid; None when
    no temperature has exact values."""
    temps = np.asarray(temps, np.float64)
    try:
        return model.exact(temps)
    except ValueError:
        if len(temps) == 1:
            return None
    parts = [exact_where_known(model, temps[i : i + 1]) for i in range(len(temps))]
    known = [p for p in parts if p is not None]
    if not known:
        return None
    template = known[0]

    def stacked(values: list[np.ndarray | None]) -> np.ndarray:
        shape = np.shape(next(v for v in values if v is not None))[1:]
        return np.stack([np.full(shape, np.nan) if v is None else v[0] for v in values])

    fields: dict[str, Any] = {}
    for name in ("ln_z", "energy", "heat_capacity", "abs_magnetization", "correlation"):
        values = [None if p is None else p.observable(name) for p in parts]
        known_values = [v for v in values if v is not None]
        fields[name] = stacked(values) if known_values else None
    extra = {
        name: stacked([None if p is None else p.extra.get(name) for p in parts])
        for name in template.extra
    }
    refused = [f"{t:g}" for t, p in zip(temps, parts, strict=True) if p is None]
    notes = {**template.notes, "refused": f"no exact values at T = {', '.join(refused)}"}
    return ExactResult(
        temps=temps,
        distances=template.distances,
        source=template.source,
        notes=notes,
        extra=extra,
        **fields,
    )


def _exact_value(values: np.ndarray | None, index: tuple[int, ...]) -> float | None:
    if values is None:
        return None
    value = float(values[index])
    return value if math.isfinite(value) else None


def _exact_columns(exact: ExactResult, distances: np.ndarray) -> np.ndarray | None:
    """Exact correlations ``(temps, r)`` at the model's distances (NaN where not known)."""
    if exact.correlation is None or exact.distances is None:
        return None
    known = {int(r): j for j, r in enumerate(np.asarray(exact.distances))}
    table = np.asarray(exact.correlation, np.float64)
    out = np.full((table.shape[0], len(distances)), np.nan)
    for j, r in enumerate(distances):
        if int(r) in known:
            out[:, j] = table[:, known[int(r)]]
    return out


def analyse(
    model: AbstractModel, samples: Samples, *, exact: ExactResult | None = None
) -> list[dict[str, Any]]:
    """One flat record per (T, observable, r) of ``samples`` (see :data:`RECORD_KEYS`).

    Energy, |magnetisation| and correlations by the Γ-method, the heat capacity by the
    jackknife. ``exact`` (e.g. ``model.exact(samples.temps)``, at the same temperatures) adds
    ``exact``, ``abs_error`` and ``z``; they are None where no exact value is known.
    """
    temps = np.asarray(samples.temps, np.float64)
    if exact is not None and (
        len(exact.temps) != len(temps) or not np.allclose(exact.temps, temps, rtol=1e-9)
    ):
        raise ValueError(
            f"exact values are at temperatures {list(exact.temps)}, samples at {list(temps)}"
        )
    observed = measure(model, samples.states)
    estimates: dict[str, stats.Estimate] = {
        "energy": stats.estimate(observed["energy"]),
        "heat_capacity": stats.heat_capacity(observed["energy"], temps, model.n_sites),
        "abs_magnetization": stats.estimate(observed["abs_magnetization"]),
        "correlation": stats.estimate(observed["correlation"]),
    }
    extras = [
        name
        for name, values in observed.items()
        if name not in estimates and values.ndim == 3  # plugin observables, one value each
    ]
    for name in extras:
        estimates[name] = stats.estimate(observed[name])
    acceptance = samples.info.get("acceptance")
    per_temperature = None if acceptance is None else np.asarray(acceptance).mean(axis=1)
    return records_of(model, temps, estimates, samples.method, exact, acceptance=per_temperature)


def records_of(
    model: AbstractModel,
    temps: np.ndarray,
    estimates: dict[str, stats.Estimate],
    method: str,
    exact: ExactResult | None = None,
    *,
    acceptance: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One flat record per (T, observable, r) of ``estimates`` (each ``(temps,)``, or
    ``(temps, r)`` for the correlation), compared with ``exact`` where it has a value, and
    flagged (:func:`flag`); ``acceptance`` ``(temps,)`` is added where given."""
    distances = np.asarray(model.correlation_distances())
    exact_values: dict[str, np.ndarray | None] = {}
    if exact is not None:
        for name in estimates:
            exact_values[name] = (
                _exact_columns(exact, distances)
                if name == "correlation"
                else exact.observable(name)
            )
    base = {
        "model": model.name,
        "size": model.size,
        "boundary": model.boundary,
        "options": model.options_label(),
        "method": method,
    }
    records: list[dict[str, Any]] = []
    for i, T in enumerate(temps):
        for name, result in estimates.items():
            entries: list[tuple[tuple[int, ...], int | None]] = (
                [((i, j), int(r)) for j, r in enumerate(distances)]
                if name == "correlation"
                else [((i,), None)]
            )
            for index, r in entries:
                values = result.record(index)
                exact_value = _exact_value(exact_values.get(name), index)
                abs_error = None if exact_value is None else abs(values["estimate"] - exact_value)
                record: dict[str, Any] = {
                    **base,
                    "T": float(T),
                    "observable": name,
                    "r": r,
                    "estimate": values["estimate"],
                    "stderr": values["stderr"],
                    "tau_int": values["tau_int"],
                    "ess": values["ess"],
                    "rhat": values["rhat"],
                    "exact": exact_value,
                    "abs_error": abs_error,
                    "z": _z(abs_error, values["stderr"], exact_value),
                }
                record["status"], record["reason"] = flag(record)
                if acceptance is not None:
                    record["acceptance"] = float(acceptance[i])
                records.append(record)
    return records


__all__ = [
    "ESS_MIN",
    "MEASURE_CHUNK_SITES",
    "OBSERVABLES",
    "RECORD_KEYS",
    "REL_ERROR_MIN_EXACT",
    "RHAT_MAX",
    "analyse",
    "exact_where_known",
    "flag",
    "measure",
    "records_of",
    "relative_error",
]
