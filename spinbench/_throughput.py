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
* ``spinbench random-site``: the paper's update (small lattices only: it is sequential);
* on a CPU, the C multi-spin reference (:mod:`._c_reference`, built with the system C
  compiler; skipped with a message when there is none), with the same layout and an
  independent random number for every decision, in two forms: ``C multi-spin (one number per
  decision)`` and ``C multi-spin (bit-sliced)``, spinbench's own rule in 64-bit lanes.

Every timing excludes compilation and set-up (a warm-up call first, the initial state made
outside the timed call) and waits for the device (``block_until_ready``). The
implementations of a case are timed in interleaved rounds (one call of each per round, for
``repeats`` rounds) and each figure is the median of its calls, so that a change in the
machine's load touches all of them alike. ``ratio`` is to the plain reference, ``vs_c`` to
the bit-sliced C reference and ``vs_c_one`` to the one-number C reference, all measured in
the same run: they hold on a shared or throttled machine where absolute rates do not.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _c_reference
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
    Case(side=1024, temps=1, chains=1, sweeps=20),
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


#: One timed call of an implementation: runs it and returns the seconds it took.
Timer = Callable[[], float]
#: Builds an implementation for a case: its timer and a function that releases it.
Factory = Callable[[], tuple[Timer, Callable[[], None]]]

C_NAMES = {
    "one": "C multi-spin (one number per decision)",
    "sliced": "C multi-spin (bit-sliced)",
}


def wall_clock(run: Callable[[], Any]) -> tuple[Timer, Callable[[], None]]:
    """A timer of ``run`` by the wall clock (``run`` waits for its device itself)."""

    def timed() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return timed, lambda: None


def c_reference(case: Case, binary: Any, rule: str) -> tuple[Timer, Callable[[], None]]:
    """The C reference for ``case`` (its own clock: the pipe is not timed)."""
    program = _c_reference.CReference(binary, case.side, case.lattices, BETA, rule)
    return (lambda: program.run(case.sweeps)[0]), program.close


def implementations(
    case: Case,
    *,
    on_gpu: bool,
    random_site: bool,
    generic: bool,
    c_binary: Any = None,
) -> list[tuple[str, Factory]]:
    """(name, factory) of everything timed for ``case``, the plain reference first."""
    out: list[tuple[str, Factory]] = [
        ("plain JAX checkerboard", lambda: wall_clock(jax_checkerboard(case)))
        if on_gpu
        else ("plain NumPy checkerboard", lambda: wall_clock(numpy_checkerboard(case))),
        ("spinbench checkerboard", lambda: wall_clock(spinbench_kernel(case, "checkerboard"))),
    ]
    if generic:
        out.append(
            (
                "spinbench checkerboard (generic)",
                lambda: wall_clock(spinbench_kernel(case, "checkerboard", generic=True)),
            )
        )
    if random_site and case.side <= RANDOM_SITE_MAX_SIDE:
        out.append(
            ("spinbench random-site", lambda: wall_clock(spinbench_kernel(case, "random-site")))
        )
    if c_binary is not None:
        for rule, name in C_NAMES.items():
            out.append((name, _c_factory(case, c_binary, rule)))
    return out


def _c_factory(case: Case, binary: Any, rule: str) -> Factory:
    return lambda: c_reference(case, binary, rule)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def run_benchmarks(
    *,
    repeats: int = 5,
    cases: tuple[Case, ...] | None = None,
    random_site: bool = True,
    generic: bool = True,
    c_reference: bool = True,
    note: Callable[[str], None] = _note,
) -> list[dict[str, Any]]:
    """Flips per ns of each implementation per case, with the ratios to the references.

    The implementations of one case are built and warmed up together, then timed in
    ``repeats`` interleaved rounds, then released before the next case. ``note`` receives
    what the user should know (the C reference skipped, and why; how it was built).
    """
    on_gpu = jax.default_backend() == "gpu"
    cases = cases or (GPU_CASES if on_gpu else CPU_CASES)
    where = machine()
    binary = None
    if c_reference and on_gpu:
        note("C reference skipped: it is a CPU program and this run is on a GPU")
    elif c_reference:
        binary, how = _c_reference.build()
        note(f"C reference skipped: {how}" if binary is None else f"C reference: built with {how}")
    records: list[dict[str, Any]] = []
    for case in cases:
        named = implementations(
            case, on_gpu=on_gpu, random_site=random_site, generic=generic, c_binary=binary
        )
        built: list[tuple[str, Timer, Callable[[], None]]] = []
        try:
            for name, factory in named:
                timer, close = factory()
                built.append((name, timer, close))
                timer()  # warm-up: compilation, caches
            times: dict[str, list[float]] = {name: [] for name, _, _ in built}
            for _ in range(repeats):
                for name, timer, _ in built:
                    times[name].append(timer())
        finally:
            for _, _, close in built:
                close()
        rates = {
            name: case.flips_per_call / (statistics.median(t) * 1e9) for name, t in times.items()
        }
        reference = rates[named[0][0]]
        c_sliced, c_one = rates.get(C_NAMES["sliced"]), rates.get(C_NAMES["one"])
        for name, rate in rates.items():
            records.append(
                {
                    "case": case.label,
                    "implementation": name,
                    "flips_per_ns": rate,
                    "ratio": rate / reference,
                    "vs_c": rate / c_sliced if c_sliced else None,
                    "vs_c_one": rate / c_one if c_one else None,
                    "seconds": statistics.median(times[name]),
                    "sweeps": case.sweeps,
                    "device": where,
                }
            )
    return records
