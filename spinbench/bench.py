"""Throughput of spinbench's Metropolis kernels against plain reference implementations.

``spinbench bench`` measures attempted spin flips per nanosecond of the 2D Ising Metropolis
update, side by side in one process: spinbench's kernels (checkerboard and random-site), and a
plain reference written here — a straightforward vectorised NumPy checkerboard on the CPU, and
a straightforward jitted JAX checkerboard (one launch per half-sweep) on a GPU. Every timing
excludes compilation (a warm-up call first), waits for the device, and is the median of
repeats.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .models import Ising2D
from .samplers.metropolis import benchmark_sweeps

#: Inverse temperature of every benchmark (near T_c, where acceptance is moderate).
BETA = 1.0 / 2.269185314


@dataclass(frozen=True)
class Case:
    """One benchmark configuration: lattice side, temperatures x chains, sweeps per call."""

    side: int
    temps: int
    chains: int
    sweeps: int

    @property
    def label(self) -> str:
        return f"{self.side}x{self.side}, {self.temps}x{self.chains} lattices"

    @property
    def flips_per_call(self) -> int:
        return self.side * self.side * self.temps * self.chains * self.sweeps


CPU_CASES = (
    Case(side=256, temps=1, chains=1, sweeps=20),
    Case(side=64, temps=4, chains=4, sweeps=20),
    Case(side=10, temps=10, chains=20, sweeps=200),
)
GPU_CASES = (
    Case(side=4096, temps=1, chains=1, sweeps=20),
    Case(side=16384, temps=1, chains=1, sweeps=10),
    Case(side=10, temps=20, chains=20, sweeps=2000),
)


def numpy_checkerboard(case: Case, seed: int = 0) -> Callable[[], Any]:
    """The plain reference on the CPU: vectorised NumPy, one colour at a time."""
    rng = np.random.default_rng(seed)
    shape = (case.temps * case.chains, case.side, case.side)
    spins = rng.choice(np.array([-1, 1], np.int8), size=shape)
    x, y = np.indices((case.side, case.side))
    colours = [((x + y) % 2 == c) for c in (0, 1)]

    def run() -> Any:
        nonlocal spins
        for _ in range(case.sweeps):
            for mask in colours:
                neighbours = (
                    np.roll(spins, 1, 1)
                    + np.roll(spins, -1, 1)
                    + np.roll(spins, 1, 2)
                    + np.roll(spins, -1, 2)
                )
                delta = 2.0 * spins * neighbours
                accept = mask & (rng.random(shape, dtype=np.float32) < np.exp(-BETA * delta))
                spins = np.where(accept, -spins, spins).astype(np.int8)
        return spins

    return run


def jax_checkerboard(case: Case, seed: int = 0) -> Callable[[], Any]:
    """The plain reference on a GPU: a jitted JAX half-sweep launched once per colour."""
    shape = (case.temps * case.chains, case.side, case.side)
    key = jax.random.key(seed)
    spins = jax.random.choice(key, jnp.array([-1, 1], jnp.int8), shape)
    x, y = np.indices((case.side, case.side))
    colours = [jnp.asarray((x + y) % 2 == c) for c in (0, 1)]

    @jax.jit
    def half_sweep(spins: jax.Array, key: jax.Array, mask: jax.Array) -> jax.Array:
        neighbours = (
            jnp.roll(spins, 1, 1)
            + jnp.roll(spins, -1, 1)
            + jnp.roll(spins, 1, 2)
            + jnp.roll(spins, -1, 2)
        )
        delta = 2.0 * spins * neighbours
        accept = mask & (jax.random.uniform(key, shape) < jnp.exp(-BETA * delta))
        return jnp.where(accept, -spins, spins)

    def run() -> Any:
        nonlocal spins, key
        for _ in range(case.sweeps):
            for mask in colours:
                key, subkey = jax.random.split(key)
                spins = half_sweep(spins, subkey, mask)
        return spins.block_until_ready()

    return run


def spinbench_kernel(case: Case, update: str, seed: int = 0) -> Callable[[], Any]:
    """spinbench's Metropolis sampler on Ising2D, one jitted program for all sweeps."""
    model = Ising2D.from_size(case.side)
    temps = np.full(case.temps, 1.0 / BETA)
    key = jax.random.key(seed)

    def run() -> Any:
        return benchmark_sweeps(
            model, temps, case.sweeps, key=key, chains=case.chains, update=update
        )

    return run


def median_seconds(run: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``run`` after one untimed warm-up call (compilation)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_benchmarks(
    *, repeats: int = 5, cases: tuple[Case, ...] | None = None, random_site: bool = True
) -> list[dict[str, Any]]:
    """Flips per ns of each implementation per case, with the ratio to the plain reference."""
    on_gpu = jax.default_backend() == "gpu"
    cases = cases or (GPU_CASES if on_gpu else CPU_CASES)
    reference_name = "plain JAX checkerboard" if on_gpu else "plain NumPy checkerboard"
    reference_factory = jax_checkerboard if on_gpu else numpy_checkerboard
    device = jax.devices()[0]
    records: list[dict[str, Any]] = []
    for case in cases:
        implementations: list[tuple[str, Callable[[], Any]]] = [
            (reference_name, reference_factory(case)),
            ("spinbench checkerboard", spinbench_kernel(case, "checkerboard")),
        ]
        if random_site and case.side <= 64:
            implementations.append(("spinbench random-site", spinbench_kernel(case, "random-site")))
        reference_rate = None
        for name, run in implementations:
            seconds = median_seconds(run, repeats)
            rate = case.flips_per_call / (seconds * 1e9)
            reference_rate = reference_rate or rate
            records.append(
                {
                    "case": case.label,
                    "implementation": name,
                    "flips_per_ns": rate,
                    "ratio": rate / reference_rate,
                    "seconds": seconds,
                    "device": getattr(device, "device_kind", str(device)),
                }
            )
    return records
