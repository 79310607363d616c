"""Metropolis throughput: attempted spin updates per nanosecond, for both update schemes.

    python benchmarks/metropolis_throughput.py [--model ising2d] [--sizes 8 16 32 64]
        [--batches 1x20 4x20 16x64] [--repeats 5] [--seconds 0.3] [--format table|json]

For each lattice size, batch (temperatures x chains) and update scheme: compile and warm up
first (excluded), pick a sweep count that takes about ``--seconds``, then time ``--repeats``
runs of that many sweeps (each ending in ``block_until_ready``) and report the median.
Runs on JAX's default device (``JAX_PLATFORMS=cpu`` forces the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spinbench.registry import get_model
from spinbench.samplers.metropolis import UPDATES, Metropolis


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


def measure(
    model: Any, update: str, n_temps: int, chains: int, *, repeats: int, seconds: float
) -> dict[str, Any]:
    """Median attempted updates per ns of ``advance`` over ``repeats`` timed runs."""
    sampler = Metropolis(chains=chains, update=update)
    temps = jnp.linspace(1.5, 3.5, n_temps)
    state = sampler.init_state(model, temps, key=jax.random.key(0))
    state = sampler.advance(model, temps, state, 2)  # compile and warm up
    state.spins.block_until_ready()
    sweeps, elapsed = 2, 0.0
    while elapsed < seconds / 4:  # calibrate the sweep count
        sweeps *= 2
        start = time.perf_counter()
        state = sampler.advance(model, temps, state, sweeps)
        state.spins.block_until_ready()
        elapsed = time.perf_counter() - start
    sweeps = max(1, int(sweeps * seconds / elapsed))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = sampler.advance(model, temps, state, sweeps)
        state.spins.block_until_ready()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    updates = n_temps * chains * model.n_sites * sweeps
    return {
        "model": model.name,
        "size": model.size,
        "update": update,
        "temps": n_temps,
        "chains": chains,
        "sweeps": sweeps,
        "seconds": median,
        "flips_per_ns": updates / median / 1e9,
        "ns_per_sweep_per_chain": median / sweeps / (n_temps * chains) * 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ising2d", help="A registered model name.")
    parser.add_argument("--sizes", nargs="+", default=["8", "16", "32", "64"])
    parser.add_argument(
        "--batches", nargs="+", default=["1x20", "4x20", "16x64"], help="TEMPSxCHAINS"
    )
    parser.add_argument("--updates", nargs="+", default=list(UPDATES), choices=UPDATES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="Target time of one run.")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()

    cls: Any = get_model(args.model)
    rows = []
    for size in args.sizes:
        model = cls.from_size(size)
        for batch in args.batches:
            n_temps, chains = (int(part) for part in batch.lower().split("x"))
            for update in args.updates:
                rows.append(
                    measure(
                        model,
                        update,
                        n_temps,
                        chains,
                        repeats=args.repeats,
                        seconds=args.seconds,
                    )
                )
    device = jax.devices()[0]
    header = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "device": f"{device.platform} ({getattr(device, 'device_kind', device)})",
        "jax": jax.__version__,
    }
    if args.format == "json":
        print(json.dumps({**header, "results": rows}, indent=2))
        return
    print(
        f"# JAX device: {header['device']} | CPU: {header['cpu']}, {header['cores']} cores"
        f" | jax {header['jax']}"
    )
    columns = [
        "model",
        "size",
        "update",
        "temps",
        "chains",
        "flips_per_ns",
        "ns_per_sweep_per_chain",
    ]
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    main()
