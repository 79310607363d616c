"""Metropolis throughput: attempted flips per ns for both update schemes, lattice sizes and
batch shapes (temperatures x chains), and the peak memory of a run.

``checkerboard`` is the sampler's checkerboard update (for Ising2D: the multi-spin-coded
kernel of ``spinbench.samplers._packed``), ``checkerboard-generic`` the same update held to
the generic kernel every model gets, ``random-site`` the paper's update. One call runs a fixed
number of sweeps of every chain in one jitted program; compilation happens in ``setup``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .common import T_CRITICAL, block, median_seconds, parse_batch

#: About this many attempted flips per timed call (random-site: a tenth, it is sequential).
FLIPS_PER_CALL = 2_000_000


def _sampler(update: str, chains: int) -> Any:
    from spinbench.samplers import Metropolis

    if update == "checkerboard-generic":
        return Metropolis(
            chains=chains, warmup=0, sweeps=1, every=1, update="checkerboard", kernel="generic"
        )
    return Metropolis(chains=chains, warmup=0, sweeps=1, every=1, update=update)


class IsingThroughput:
    """2D Ising at T_c: ``sweeps`` sweeps of every chain per call."""

    params = (
        ["checkerboard", "checkerboard-generic", "random-site"],
        [10, 64, 256],
        ["1x1", "4x16"],
    )
    param_names: ClassVar[list[str]] = ["update", "side", "batch"]
    timeout = 300.0

    def setup(self, update: str, side: int, batch: str) -> None:
        import jax
        import numpy as np

        from spinbench.models import Ising2D

        n_temps, chains = parse_batch(batch)
        flips_per_sweep = side * side * n_temps * chains
        if update == "random-site" and flips_per_sweep > 200_000:
            raise NotImplementedError("random-site on this many sites is too slow to time")
        budget = FLIPS_PER_CALL // (10 if update == "random-site" else 1)
        self.sweeps = max(2, budget // flips_per_sweep)
        self.flips = flips_per_sweep * self.sweeps
        self.model = Ising2D.from_size(side)
        self.temps = np.full(n_temps, T_CRITICAL)
        self.sampler = _sampler(update, chains)
        self.state = self.sampler.init_state(self.model, self.temps, key=jax.random.key(0))
        self.state = block(self.sampler.run_sweeps(self.model, self.temps, self.state, 1))

    def _call(self) -> Any:
        self.state = self.sampler.run_sweeps(self.model, self.temps, self.state, self.sweeps)
        return block(self.state)

    def time_sweeps(self, update: str, side: int, batch: str) -> None:
        self._call()

    def track_flips_per_ns(self, update: str, side: int, batch: str) -> float:
        return self.flips / median_seconds(self._call, repeats=3) / 1e9

    track_flips_per_ns.unit = "flips/ns"  # type: ignore[attr-defined]

    def peakmem_sweeps(self, update: str, side: int, batch: str) -> None:
        self._call()


class LargeLattice:
    """One large lattice, checkerboard: 1024^2 on a CPU, 16384^2 on a GPU (the issue's case)."""

    timeout = 600.0

    def setup(self) -> None:
        import jax
        import numpy as np

        from spinbench.models import Ising2D

        from .common import backend

        side = 16384 if backend() == "gpu" else 1024
        self.model = Ising2D.from_size(side)
        self.temps = np.array([T_CRITICAL])
        self.sweeps = 20 if backend() == "gpu" else 4
        self.flips = side * side * self.sweeps
        self.sampler = _sampler("checkerboard", 1)
        self.state = self.sampler.init_state(self.model, self.temps, key=jax.random.key(0))
        self.state = block(self.sampler.run_sweeps(self.model, self.temps, self.state, 1))

    def _call(self) -> Any:
        self.state = self.sampler.run_sweeps(self.model, self.temps, self.state, self.sweeps)
        return block(self.state)

    def time_sweeps(self) -> None:
        self._call()

    def track_flips_per_ns(self) -> float:
        return self.flips / median_seconds(self._call, repeats=3) / 1e9

    track_flips_per_ns.unit = "flips/ns"  # type: ignore[attr-defined]

    def peakmem_sweeps(self) -> None:
        self._call()


class Sample:
    """A whole ``Metropolis.sample`` call with measurements (states copied to the host)."""

    params = (["checkerboard", "random-site"],)
    param_names: ClassVar[list[str]] = ["update"]
    timeout = 300.0

    def setup(self, update: str) -> None:
        import jax
        import numpy as np

        from spinbench.models import Ising2D
        from spinbench.samplers._metropolis import Metropolis

        self.model = Ising2D.from_size(10)
        self.temps = np.linspace(1.5, 3.5, 5)
        self.sampler = Metropolis(chains=20, warmup=200, sweeps=1000, every=10, update=update)
        self.key = jax.random.key(0)
        self.sampler.sample(self.model, self.temps, key=self.key)  # compile

    def time_sample(self, update: str) -> None:
        self.sampler.sample(self.model, self.temps, key=self.key)

    def peakmem_sample(self, update: str) -> None:
        self.sampler.sample(self.model, self.temps, key=self.key)
