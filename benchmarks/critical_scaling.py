"""How each method's cost grows with the lattice side L at T_c (Ising2D, periodic).

    python benchmarks/critical_scaling.py [--sizes 8,12,16,24,32] [--methods metropolis,wolff,van]
        [--out docs/figures/critical-scaling.png] [--json scaling.json]

Every (method, L) runs in its own Python process (so its peak memory is its own), at
T_c = 2/ln(1+sqrt 2), with the settings of the ``critical`` preset:

* **metropolis** (checkerboard, 16 chains, 40 L^2 sweeps measured every L/8) and **wolff**
  (8 chains of 1,000 single-cluster updates): the time of a second, compiled call, tau_int of
  the energy and of |m| (Gamma method) in sweeps (Wolff: in cluster updates), and the *time per
  effective sample* = measured-sweep time / ESS of |m| (the slowest mode);
* **van**: variational training (the preset's network and 600 steps of 128 draws — the
  same budget at every L), then 5,000 draws with their densities: training time, the relative
  error of the variational free energy against Kaufman's exact F, the Kish ESS fraction of
  importance reweighting, and the time per effective sample = draw time / (ESS fraction x 5,000).

Fitted exponents (least squares in log-log) are printed: tau ~ L^z for the Monte Carlo chains
(z ~ 2.17 for local Metropolis; Wolff's, per cluster update, is not its dynamic exponent per
sweep, which is ~0.25), and the growth of each
method's time per effective sample and of VAN's training time. Absolute times are of this
machine (its CPU is named in the output); ratios between methods of one run are the result.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from typing import Any

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))
VAN_OPTIONS = {
    "training": "variational",
    "steps": 600,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "radius": 2,
    "width": 16,
    "depth": 1,
    "symmetrize": True,
}
DRAWS = 5000


def cpu_name() -> str:
    """The machine, as ``spinbench bench`` names it (CPU model and cores, or the GPU)."""
    from spinbench._throughput import machine

    return machine()


def _chain(method: str, L: int) -> dict[str, Any]:
    """Monte Carlo at T_c: time per measured sweep and the autocorrelation of E and |m|."""
    import jax
    import numpy as np

    from spinbench import get_sampler
    from spinbench._analysis import measure
    from spinbench.models import Ising2D
    from spinbench.stats import estimate

    model = Ising2D.from_size(L)
    # Measure often enough to resolve tau (the interval floors tau_int at every / 2).
    if method == "metropolis":
        sweeps, every = max(4000, 40 * L * L), max(1, L // 8)
        options = {"chains": 16, "update": "checkerboard"}
    else:  # a "sweep" of wolff here is one cluster update
        sweeps, every = 1000, 1
        options = {"chains": 8, "clusters": 1}
    options.update(warmup=sweeps // 10, sweeps=sweeps, every=every)
    sampler = get_sampler(method).from_options(**options)
    temps = np.asarray([T_C])
    sampler.sample(model, temps, key=jax.random.key(0), progress=False)  # compile
    start = time.perf_counter()
    samples = sampler.sample(model, temps, key=jax.random.key(1), progress=False)
    wall = time.perf_counter() - start
    observed = measure(model, samples.states)
    energy = estimate(observed["energy"])
    magnetisation = estimate(observed["abs_magnetization"])
    measured = sweeps / (sweeps + options["warmup"])
    return {
        "sweeps": sweeps,
        "tau_energy": float(energy.tau_int[0]) * every,
        "tau_abs_m": float(magnetisation.tau_int[0]) * every,
        "ess_abs_m": float(magnetisation.ess[0]),
        "seconds": wall,
        "seconds_per_effective": wall * measured / float(magnetisation.ess[0]),
    }


def _van(L: int) -> dict[str, Any]:
    """Variational VAN at T_c: training time, F_q error, ESS fraction, time per effective draw."""
    import jax
    import numpy as np

    from spinbench import get_generator
    from spinbench.corrections import free_energy_exact, reweighted
    from spinbench.models import Ising2D
    from spinbench.testing import boltzmann_samples

    model = Ising2D.from_size(L)
    temps = np.asarray([T_C])
    generator = get_generator("van").from_options(**VAN_OPTIONS)
    data = boltzmann_samples(Ising2D.from_size(2), temps, 1, key=jax.random.key(0))
    start = time.perf_counter()
    trained = generator.fit(model, data, key=jax.random.key(1), progress=False)
    jax.block_until_ready(trained.params)
    train = time.perf_counter() - start
    trained.generate(DRAWS, key=jax.random.key(2), density=True)  # compile
    start = time.perf_counter()
    draws = trained.generate(DRAWS, key=jax.random.key(3), density=True)
    draw = time.perf_counter() - start
    energy = np.asarray(model.energy(draws.states[:, 0]), np.float64)
    per_site = (energy + T_C * draws.info["log_q"]) / model.n_sites
    exact_f = free_energy_exact(model.exact(temps), temps, model.n_sites)[0]
    fraction = next(
        r["ess_fraction"] for r in reweighted(model, draws) if r["observable"] == "energy"
    )
    return {
        "train_seconds": train,
        "free_energy_rel_error": float((per_site[0].mean() - exact_f) / abs(exact_f)),
        "ess_fraction": float(fraction),
        "seconds_per_draw": draw / DRAWS,
        "seconds_per_effective": draw / (DRAWS * max(float(fraction), 1e-12)),
    }


def _one(method: str, L: int) -> dict[str, Any]:
    result = _van(L) if method == "van" else _chain(method, L)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _fit(sizes: list[int], values: list[float]) -> float:
    import numpy as np

    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(values, float))
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,12,16,24,32")
    parser.add_argument("--methods", default="metropolis,wolff,van")
    parser.add_argument("--out", default=None, help="the figure (PNG)")
    parser.add_argument("--json", default=None, help="the measurements (JSON)")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "L"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], int(args.one[1]))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    results: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in methods}
    for method in methods:
        for L in sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--one", method, str(L)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(f"{method} L={L} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            results[method][L] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{method:>10} L={L:>3} {results[method][L]}", flush=True)
    fits: dict[str, dict[str, float]] = {}
    for method, by_size in results.items():
        done = sorted(by_size)
        if len(done) < 2:
            continue
        keys = ["seconds_per_effective", "peak_rss_mb"]
        keys += ["train_seconds"] if method == "van" else ["tau_abs_m", "tau_energy"]
        fits[method] = {k: _fit(done, [by_size[L][k] for L in done]) for k in keys}
    print(f"\nIsing2D at T_c, {cpu_name()}; fitted exponents of L:")
    for method, fit in fits.items():
        print(f"  {method:>10}: " + ", ".join(f"{k} ~ L^{v:.2f}" for k, v in fit.items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpu": cpu_name(), "results": results, "fits": fits}, handle, indent=2)
    if args.out:
        _figure(results, fits, args.out)


def _figure(results: dict[str, dict[int, dict[str, Any]]], fits: dict[str, Any], out: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    styles = {"metropolis": "o-", "wolff": "s-", "van": "^-"}
    for method, by_size in results.items():
        sizes = sorted(by_size)
        if not sizes:
            continue
        label = method + (
            f" (~L^{fits[method]['seconds_per_effective']:.2f})" if method in fits else ""
        )
        axes[0].loglog(
            sizes,
            [by_size[L]["seconds_per_effective"] for L in sizes],
            styles.get(method, "x-"),
            label=label,
        )
        if method == "van":
            axes[1].loglog(
                sizes, [by_size[L]["train_seconds"] for L in sizes], "^-", label="van training"
            )
        else:
            tau = [by_size[L]["tau_abs_m"] for L in sizes]
            fit = f" (z = {fits[method]['tau_abs_m']:.2f})" if method in fits else ""
            axes[1].loglog(sizes, tau, styles.get(method, "x-"), label=f"{method} τ(|m|){fit}")
        axes[2].semilogx(
            sizes,
            [by_size[L]["peak_rss_mb"] for L in sizes],
            styles.get(method, "x-"),
            label=method,
        )
    axes[0].set(
        xlabel="L", ylabel="seconds per effective sample", title="cost per effective sample"
    )
    axes[1].set(xlabel="L", ylabel="sweeps (τ) / seconds (training)", title="τ_int and training")
    axes[2].set(xlabel="L", ylabel="peak RSS (MB)", title="memory of the process")
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3, which="both")
    fig.suptitle(f"Ising2D at T_c: cost against L ({cpu_name()})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
