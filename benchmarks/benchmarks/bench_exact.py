"""Exact solutions: closed forms (1D Ising, 1D XY), Kaufman's finite torus, the torus's density
of states (Beale), enumeration."""

from __future__ import annotations

from typing import Any, ClassVar

#: A temperature grid of the usual length, straddling T_c.
N_TEMPS = 20


def _temps() -> Any:
    import numpy as np

    return np.linspace(0.5, 4.0, N_TEMPS)


class IsingTorus:
    """Kaufman / Ferdinand-Fisher: lnZ, E and C of an L x L torus at 20 temperatures."""

    params = ([10, 64, 256, 1024],)
    param_names: ClassVar[list[str]] = ["side"]

    def setup(self, side: int) -> None:
        from spinbench.exact import ising2d_torus

        self.solve = ising2d_torus
        self.temps = _temps()

    def time_torus(self, side: int) -> None:
        self.solve(side, side, self.temps)

    def peakmem_torus(self, side: int) -> None:
        self.solve(side, side, self.temps)


class DensityOfStates:
    """Beale: the exact density of states of an L x L torus, cold (the in-process cache
    cleared before each call), and the energy distribution at 20 temperatures from it."""

    params = ([16, 32, 64],)
    param_names: ClassVar[list[str]] = ["side"]
    timeout = 300

    def setup(self, side: int) -> None:
        from spinbench.exact import _dos, ising2d_energy_distribution

        self.dos = _dos
        self.distribution = ising2d_energy_distribution
        self.temps = _temps()

    def time_density_of_states(self, side: int) -> None:
        self.dos._density_of_states.cache_clear()
        self.dos.ising2d_density_of_states(side, side)

    def peakmem_density_of_states(self, side: int) -> None:
        self.dos._density_of_states.cache_clear()
        self.dos.ising2d_density_of_states(side, side)

    def time_energy_distribution_cached(self, side: int) -> None:
        self.distribution(side, side, self.temps)


class ClosedForms:
    """1D Ising and XY chains (free and periodic ends) at 20 temperatures."""

    params = (["ising1d", "xy1d"], ["free", "periodic"])
    param_names: ClassVar[list[str]] = ["model", "boundary"]

    def setup(self, model: str, boundary: str) -> None:
        from spinbench.exact import ising1d_exact, xy1d_exact

        self.solve = ising1d_exact if model == "ising1d" else xy1d_exact
        self.boundary = boundary
        self.temps = _temps()
        self.solve(100, self.temps, boundary=boundary)

    def time_chain_of_100(self, model: str, boundary: str) -> None:
        self.solve(100, self.temps, boundary=self.boundary)


class Enumeration:
    """Every state of Ising2D 4x4 (65,536 states) and Ising1D N=16: the one pass over all
    states that gives every observable (its cache cleared before each call)."""

    params = (["ising2d 4", "ising1d 16"],)
    param_names: ClassVar[list[str]] = ["model"]
    timeout = 300.0

    def setup(self, model: str) -> None:
        from spinbench import get_model
        from spinbench.exact import _enumerate as enumeration

        name, size = model.split()
        self.model = get_model(name).from_size(size)  # type: ignore[attr-defined]
        self.enumeration = enumeration
        self.temps = _temps()
        self._call()  # compile the evaluation

    def _call(self) -> None:
        self.enumeration._cached_level_sums.cache_clear()
        self.enumeration.enumerate_exact(self.model, self.temps)

    def time_enumerate(self, model: str) -> None:
        self._call()

    def peakmem_enumerate(self, model: str) -> None:
        self._call()
