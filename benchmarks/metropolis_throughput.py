"""Metropolis throughput: attempted spin updates per nanosecond, for both update schemes.

    python benchmarks/metropolis_throughput.py [--model ising2d] [--sizes 8 16 32 64]
        [--batches 1x20 4x20 16x64] [--updates checkerboard random-site] [--generic]
        [--repeats 5] [--seconds 0.3] [--format table|json]
    python benchmarks/metropolis_throughput.py --rng [--words 1048576]

For each lattice size, batch (temperatures x chains) and update scheme: compile and warm up
first (excluded), pick a sweep count that takes about ``--seconds``, then time ``--repeats``
runs of that many sweeps (each ending in ``block_until_ready``) and report the median.
``--generic`` adds the checkerboard held to its generic kernel (the one any model gets) next
to the sampler's own (for Ising2D on an even torus: the multi-spin-coded kernel).

``--rng`` instead times random 32-bit words: ``jax.random.bits`` with each key
implementation (threefry2x32, rbg, unsafe_rbg) against Threefry-2x32 applied to counters as
the fast kernel does (one word per call, or both words of each call). Runs on JAX's default
device (``JAX_PLATFORMS=cpu`` forces the CPU).
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

from spinbench import get_model
from spinbench.samplers import UPDATES, Metropolis
from spinbench.samplers._packed import threefry2x32


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
    model: Any,
    update: str,
    n_temps: int,
    chains: int,
    *,
    repeats: int,
    seconds: float,
    generic: bool = False,
) -> dict[str, Any]:
    """Median attempted updates per ns of ``run_sweeps`` over ``repeats`` timed runs."""
    sampler = Metropolis(chains=chains, update=update, kernel="generic" if generic else "auto")
    kernel = "packed" if sampler.packed_layout(model) is not None else "generic"
    temps = np.linspace(1.5, 3.5, n_temps)
    state = sampler.init_state(model, temps, key=jax.random.key(0))
    state = sampler.run_sweeps(model, temps, state, 2)  # compile and warm up
    sweeps, elapsed = 2, 0.0
    while elapsed < seconds / 4:  # calibrate the sweep count
        sweeps *= 2
        start = time.perf_counter()
        state = sampler.run_sweeps(model, temps, state, sweeps)  # waits for the result
        elapsed = time.perf_counter() - start
    sweeps = max(1, int(sweeps * seconds / elapsed))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = sampler.run_sweeps(model, temps, state, sweeps)  # waits for the result
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    updates = n_temps * chains * model.n_sites * sweeps
    return {
        "model": model.name,
        "size": model.size,
        "update": update,
        "kernel": kernel,
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
    parser.add_argument(
        "--generic", action="store_true", help="Also time the generic checkerboard kernel."
    )
    parser.add_argument("--rng", action="store_true", help="Time random words instead.")
    parser.add_argument("--words", type=int, default=1 << 20, help="Words per --rng call.")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    if args.rng:
        report(rng_rows(args.words, args.repeats), args.format, ["generator", "ns_per_word"])
        return

    cls: Any = get_model(args.model)
    rows = []
    for size in args.sizes:
        model = cls.from_size(size)
        for batch in args.batches:
            n_temps, chains = (int(part) for part in batch.lower().split("x"))
            for update in args.updates:
                both = args.generic and update == "checkerboard"
                for generic in (False, True) if both else (False,):
                    rows.append(
                        measure(
                            model,
                            update,
                            n_temps,
                            chains,
                            repeats=args.repeats,
                            seconds=args.seconds,
                            generic=generic,
                        )
                    )
    columns = [
        "model",
        "size",
        "update",
        "kernel",
        "temps",
        "chains",
        "flips_per_ns",
        "ns_per_sweep_per_chain",
    ]
    report(rows, args.format, columns)


def rng_rows(n_words: int, repeats: int) -> list[dict[str, Any]]:
    """ns per random uint32 word of each way of drawing them, timed side by side."""

    def bits(impl: str) -> Any:
        key = jax.random.key(0, impl=impl)
        return jax.jit(lambda: jax.random.bits(key, (n_words,), jnp.uint32))

    def counter(words_per_call: int, outputs: int) -> Any:
        def draw() -> Any:
            i = jax.lax.iota(jnp.uint32, n_words // words_per_call)
            y0, y1 = threefry2x32(jnp.uint32(1), jnp.uint32(2), i, jnp.zeros_like(i))
            if words_per_call == 1:
                return y0
            return (y0, y1) if outputs == 2 else y0 ^ (y1 >> 1)

        return jax.jit(draw)

    calls = {
        "jax.random.bits, threefry2x32 key": bits("threefry2x32"),
        "jax.random.bits, rbg key": bits("rbg"),
        "jax.random.bits, unsafe_rbg key": bits("unsafe_rbg"),
        "threefry2x32 on counters, 1 word per call": counter(1, 1),
        "threefry2x32 on counters, 2 words per call, 2 arrays": counter(2, 2),
        "threefry2x32 on counters, 2 words per call, used together": counter(2, 1),
    }
    for call in calls.values():
        jax.block_until_ready(call())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):  # interleaved, so that load changes hit every generator alike
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    return [
        {"generator": name, "ns_per_word": statistics.median(t) / n_words * 1e9}
        for name, t in times.items()
    ]


def report(rows: list[dict[str, Any]], output_format: str, columns: list[str]) -> None:
    """Print ``rows`` as JSON or as a table headed by the device and CPU."""
    device = jax.devices()[0]
    header = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "device": f"{device.platform} ({getattr(device, 'device_kind', device)})",
        "jax": jax.__version__,
    }
    if output_format == "json":
        print(json.dumps({**header, "results": rows}, indent=2))
        return
    print(
        f"# JAX device: {header['device']} | CPU: {header['cpu']}, {header['cores']} cores"
        f" | jax {header['jax']}"
    )
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
