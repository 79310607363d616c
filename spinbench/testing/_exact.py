"""The ``exact`` check of the conformance kit: a model's exact values against enumeration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..models import AbstractModel
from ._common import (
    _all_states,
    _energies,
    _enumerable,
    _Fail,
    _first_index,
    _Recorder,
    _require,
    _where,
    enumerate_boltzmann,
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
            for name in ("energy", "heat_capacity", "abs_magnetization", "ln_z", *result.extra):
                value = result.observable(name)
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
        scalars = [] if result is None else ["abs_magnetization", *sorted(result.extra)]
        scalars = [
            name for name in scalars if result is not None and result.observable(name) is not None
        ]
        wants_corr = result is not None and result.correlation is not None
        if scalars or wants_corr:
            observables = jax.jit(model.observables)
            parts = [
                observables(jnp.asarray(states[i : i + 2**13]))
                for i in range(0, len(states), 2**13)
            ]
            for name in scalars:
                _require(
                    name in parts[0],
                    f"exact() gives {name!r}, which observables() does not measure; exact values "
                    f"must be of observables the model measures ({', '.join(parts[0])})",
                )
                values = np.concatenate([np.asarray(p[name], np.float64) for p in parts])
                counted[name] = probabilities @ values
            corr = np.concatenate([np.asarray(p["correlation"], np.float64) for p in parts])
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
            value = None if result is None else result.observable(name)
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
