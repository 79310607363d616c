"""Generators on Ising1D N=6 against the exact Boltzmann distribution (all 64 states).

    python benchmarks/generator_kl.py [--generators vae dense-vae avb] [--temps 0.5:4.0:8]
        [--epochs 200] [--seeds 2] [--data exact|metropolis] [--samples 10000]
        [--format table|json]

For each generator (the paper's defaults; ``--epochs`` epochs of 20 minibatches of 500) and
seed: train one network per temperature on 10,000 configurations (exact Boltzmann draws by
default, or the paper's Metropolis protocol with ``--data metropolis``), generate 10,000
configurations per temperature, and report per temperature

* ``dE``: E_gen - E_exact per site, and its standard error;
* ``dC1..dC3``: <s_i s_{i+r}>_gen - tanh(1/T)^r, r = 1, 2, 3 (averaged over the chain's pairs);
* ``KL(g||B)``: KL(empirical generated || Boltzmann) over the 64 states, unsmoothed (finite,
  since every Boltzmann probability is positive), beside its noise floor: the mean of the same
  KL for 10,000 exact draws (200 simulated repeats);
* ``KL(B||g)``: KL(Boltzmann || generated), the generated histogram smoothed with a
  pseudo-count of 0.5 per state (Jeffreys; otherwise a state never generated makes it
  infinite), beside the same floor for 10,000 exact draws smoothed the same way;

and per generator the wall time of training the whole grid (the first seed's includes JIT
compilation; later seeds reuse it). Runs on JAX's default device.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spinbench import Samples, get_generator, get_sampler
from spinbench._distances import empirical_vs_exact_floor, kl_divergence, smooth
from spinbench.exact import boltzmann_log_probabilities, enumerate_states, state_index
from spinbench.models import Ising1D
from spinbench.temperatures import parse_temps

PSEUDO_COUNT = 0.5
FLOOR_REPEATS = 200


def cpu_name() -> str:
    """The CPU model name (``lscpu``'s "Model name"), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def exact_data(model: Ising1D, temps: np.ndarray, n: int, seed: int) -> Samples:
    """``n`` exact Boltzmann configurations per temperature, drawn over all 64 states."""
    rng = np.random.default_rng(seed)
    states = enumerate_states(model)
    probabilities = np.exp(boltzmann_log_probabilities(model, temps))
    picks = np.stack([rng.choice(len(states), size=n, p=p / p.sum()) for p in probabilities])
    return Samples(states[picks][:, None], temps, model.describe(), "exact", seed=seed)


def metropolis_data(model: Ising1D, temps: np.ndarray, seed: int) -> Samples:
    """The paper's protocol: 20 chains, 2000 warm-up sweeps, 10,000 sweeps, every 20th kept."""
    sampler = get_sampler("metropolis")()
    return sampler.sample(model, temps, key=jax.random.key(seed), seed=seed)


def reverse_floor(exact: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Mean KL(exact || smoothed empirical of n exact draws), per temperature."""
    rng = np.random.default_rng(seed)
    counts = np.stack([rng.multinomial(n, p / p.sum(), size=FLOOR_REPEATS) for p in exact])
    empirical = smooth(counts / n, n, PSEUDO_COUNT)  # (temps, repeats, states)
    return np.asarray(kl_divergence(exact[:, None], empirical).mean(axis=1))


def evaluate(
    model: Ising1D, temps: np.ndarray, states: np.ndarray, exact: np.ndarray
) -> list[dict[str, Any]]:
    """Energy, correlation and KL errors of generated ``states`` (temps, 1, n, 6)."""
    n = states.shape[2]
    energy = np.asarray(model.energy(jnp.asarray(states[:, 0])), np.float64) / model.n_sites
    spins = states[:, 0].astype(np.float64)
    index = state_index(model, states[:, 0])
    counts = np.stack([np.bincount(i, minlength=exact.shape[1]) for i in index])
    empirical = counts / n
    forward = kl_divergence(empirical, exact)
    backward = kl_divergence(exact, smooth(empirical, n, PSEUDO_COUNT))
    rows = []
    for t, T in enumerate(temps):
        e_exact = -(model.n_sites - 1) * math.tanh(1 / T) / model.n_sites
        row: dict[str, Any] = {
            "T": float(T),
            "E": float(energy[t].mean()),
            "E_exact": e_exact,
            "dE": float(energy[t].mean() - e_exact),
            "dE_err": float(energy[t].std(ddof=1) / math.sqrt(n)),
        }
        for r in (1, 2, 3):
            corr = float(np.mean(spins[t, :, :-r] * spins[t, :, r:]))
            row[f"dC{r}"] = corr - math.tanh(1 / T) ** r
        row["KL_gen_B"] = float(forward[t])
        row["KL_B_gen"] = float(backward[t])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generators", nargs="+", default=["vae", "dense-vae", "avb"])
    parser.add_argument("--temps", default="0.5:4.0:8")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--data", choices=["exact", "metropolis"], default="exact")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()

    model = Ising1D.from_size(6)
    temps = parse_temps(args.temps)
    exact = np.exp(boltzmann_log_probabilities(model, temps))
    n = args.samples
    forward_floor = empirical_vs_exact_floor(exact, n, key_or_seed=0, repeats=FLOOR_REPEATS).kl
    backward_floor = reverse_floor(exact, n, seed=1)
    results: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        data = (
            exact_data(model, temps, n, seed)
            if args.data == "exact"
            else metropolis_data(model, temps, seed)
        )
        for name in args.generators:
            generator = get_generator(name).from_options(epochs=args.epochs)  # type: ignore[attr-defined]
            start = time.perf_counter()
            trained = generator.fit(model, data, key=jax.random.key(seed))
            jax.block_until_ready(trained.params)
            elapsed = time.perf_counter() - start
            timings.append(
                {
                    "generator": name,
                    "seed": seed,
                    "train_seconds": elapsed,
                    "steps": int(trained.info["steps_run"][0]),
                    "diverged": int(trained.diverged.sum()),
                }
            )
            samples = trained.generate(n, key=jax.random.key(1000 + seed))
            for t, row in enumerate(evaluate(model, temps, samples.states, exact)):
                row.update(
                    generator=name,
                    seed=seed,
                    KL_gen_B_floor=float(forward_floor[t]),
                    KL_B_gen_floor=float(backward_floor[t]),
                    diverged=bool(trained.diverged[t]),
                )
                results.append(row)
    header = {
        "cpu": cpu_name(),
        "device": str(jax.devices()[0]),
        "jax": jax.__version__,
        "temps": [float(t) for t in temps],
        "epochs": args.epochs,
        "data": args.data,
        "samples": n,
    }
    if args.format == "json":
        print(json.dumps({**header, "timings": timings, "results": results}, indent=2))
        return
    print(" ".join(f"{k}={v}" for k, v in header.items() if k != "temps"))
    print("\ntraining wall time per temperature grid (seed 0 includes JIT compilation):")
    for timing in timings:
        print(
            f"  {timing['generator']:<10} seed {timing['seed']}"
            f"  {timing['train_seconds']:7.1f} s"
            f"  ({timing['steps']} Adam steps per T, {timing['diverged']} diverged)"
        )
    columns = ["generator", "seed", "T", "dE", "dE_err", "dC1", "dC2", "dC3"]
    columns += ["KL_gen_B", "KL_gen_B_floor", "KL_B_gen", "KL_B_gen_floor"]
    print()
    print("  ".join(f"{c:>14}" for c in columns))
    for row in results:
        cells = [
            f"{row[c]:>14}" if isinstance(row[c], str | int) else f"{row[c]:>14.4f}"
            for c in columns
        ]
        print("  ".join(cells))
    print(
        "\nmean |dC1| + |dC2| + |dC3| over seeds, by temperature (paper: AVB beats VAE at low T):"
    )
    for name in args.generators:
        by_t = [
            np.mean(
                [
                    abs(r["dC1"]) + abs(r["dC2"]) + abs(r["dC3"])
                    for r in results
                    if r["generator"] == name and r["T"] == float(T)
                ]
            )
            for T in temps
        ]
        print(f"  {name:<10}" + "".join(f"{v:8.4f}" for v in by_t))


if __name__ == "__main__":
    main()
