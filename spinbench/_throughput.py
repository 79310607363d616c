"""Throughput of spinbench's Metropolis kernels against plain reference implementations.

``spinbench bench`` measures attempted spin flips per nanosecond of the 2D Ising Metropolis
update, side by side in one process, one implementation after the other:

* the plain reference written here: a straightforward vectorised NumPy checkerboard on a CPU
  (whole-lattice rolls, a float uniform and an ``exp`` per site, colour masks), and a
  straightforward jitted JAX checkerboard on a GPU (int8 spins, one launch per half-sweep);
* ``spinbench checkerboard``: :class:`~spinbench.samplers.Metropolis` with
  ``update="checkerboard"``, which runs the multi-spin-coded kernel of
  :mod:`spinbench.samplers._packed` for Ising2D;
* ``spinbench checkerboard (generic)``: the same sampler held to its generic kernel, the one
  any model gets through ``delta_energy``;
* ``spinbench random-site``: the paper's update (small lattices only: it is sequential).

Every timing excludes compilation and set-up (a warm-up call first, the initial state made
outside the timed call), waits for the device (``block_until_ready``), and is the median of
``repeats`` calls. Ratios are to the reference measured in the same run, so they hold on a
shared or throttled machine where absolute rates do not.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .models import Ising2D
from .samplers import Metropolis

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
    def lattices(self) -> int:
        return self.temps * self.chains

    @property
    def label(self) -> str:
        return f"{self.side}x{self.side}, {self.lattices} lattice{'s' * (self.lattices > 1)}"

    @property
    def flips_per_call(self) -> int:
        return self.side * self.side * self.lattices * self.sweeps


CPU_CASES = (
    Case(side=256, temps=1, chains=1, sweeps=100),
    Case(side=64, temps=4, chains=4, sweeps=100),
    Case(side=10, temps=10, chains=20, sweeps=200),
)
#: The issue's GPU cases: one 16384^2 lattice; 400 lattices of 10x10 for 2000 sweeps.
GPU_CASES = (
    Case(side=16384, temps=1, chains=1, sweeps=20),
    Case(side=4096, temps=1, chains=1, sweeps=50),
    Case(side=10, temps=20, chains=20, sweeps=2000),
)
#: A smoke test of the command (seconds on any machine).
QUICK_CASES = (
    Case(side=32, temps=1, chains=2, sweeps=4),
    Case(side=10, temps=2, chains=4, sweeps=10),
)
#: Random-site updates are sequential: only lattices up to this side are timed.
RANDOM_SITE_MAX_SIDE = 64


def numpy_checkerboard(case: Case, seed: int = 0) -> Callable[[], Any]:
    """The plain reference on the CPU: vectorised NumPy, one colour at a time."""
    rng = np.random.default_rng(seed)
    shape = (case.lattices, case.side, case.side)
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
    shape = (case.lattices, case.side, case.side)
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


def spinbench_kernel(
    case: Case, update: str, *, generic: bool = False, seed: int = 0
) -> Callable[[], Any]:
    """spinbench's Metropolis sampler on Ising2D: ``case.sweeps`` sweeps of every chain per
    call, in one jitted program, continuing from the previous call's state."""
    model = Ising2D.from_size(case.side)
    temps = np.full(case.temps, 1.0 / BETA)
    kernel = "generic" if generic else "auto"
    sampler = Metropolis(
        chains=case.chains, warmup=0, sweeps=1, every=1, update=update, kernel=kernel
    )
    state = jax.block_until_ready(sampler.init_state(model, temps, key=jax.random.key(seed)))

    def run() -> Any:
        nonlocal state
        state = sampler.run_sweeps(model, temps, state, case.sweeps)  # waits for the result
        return state

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


def machine() -> str:
    """The device that ran the kernels: the GPU's name, or the CPU's model and core count."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        return str(getattr(device, "device_kind", device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def implementations(
    case: Case, *, on_gpu: bool, random_site: bool, generic: bool
) -> list[tuple[str, Callable[[], Callable[[], Any]]]]:
    """(name, factory) of everything timed for ``case``, the reference first."""
    out: list[tuple[str, Callable[[], Callable[[], Any]]]] = [
        ("plain JAX checkerboard", lambda: jax_checkerboard(case))
        if on_gpu
        else ("plain NumPy checkerboard", lambda: numpy_checkerboard(case)),
        ("spinbench checkerboard", lambda: spinbench_kernel(case, "checkerboard")),
    ]
    if generic:
        out.append(
            (
                "spinbench checkerboard (generic)",
                lambda: spinbench_kernel(case, "checkerboard", generic=True),
            )
        )
    if random_site and case.side <= RANDOM_SITE_MAX_SIDE:
        out.append(("spinbench random-site", lambda: spinbench_kernel(case, "random-site")))
    return out


def run_benchmarks(
    *,
    repeats: int = 5,
    cases: tuple[Case, ...] | None = None,
    random_site: bool = True,
    generic: bool = True,
) -> list[dict[str, Any]]:
    """Flips per ns of each implementation per case, with the ratio to the plain reference.

    Each implementation is built, warmed up, timed and dropped before the next, so that one
    case's memory is freed before the next is allocated.
    """
    on_gpu = jax.default_backend() == "gpu"
    cases = cases or (GPU_CASES if on_gpu else CPU_CASES)
    where = machine()
    records: list[dict[str, Any]] = []
    for case in cases:
        reference_rate = None
        for name, factory in implementations(
            case, on_gpu=on_gpu, random_site=random_site, generic=generic
        ):
            seconds = median_seconds(factory(), repeats)
            rate = case.flips_per_call / (seconds * 1e9)
            reference_rate = reference_rate or rate
            records.append(
                {
                    "case": case.label,
                    "implementation": name,
                    "flips_per_ns": rate,
                    "ratio": rate / reference_rate,
                    "seconds": seconds,
                    "sweeps": case.sweeps,
                    "device": where,
                }
            )
    return records
