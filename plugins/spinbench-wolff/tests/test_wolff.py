"""The Wolff sampler: spinbench's conformance kit (χ² against exact enumeration included),
antiferromagnets, what it refuses, and registration."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import spinbench
from spinbench.models import XY1D, Ising1D, Ising2D
from spinbench.testing import check_sampler, sampler_conformance

from spinbench_wolff import Wolff, ising_coupling

SAMPLER = Wolff(chains=32, warmup=50, sweeps=500, every=5, clusters=2)

# One pytest item per contract check; the χ² test runs on the built-in Ising chain and torus.
test_wolff_conformance = sampler_conformance(SAMPLER)


def test_antiferromagnets_follow_the_boltzmann_distribution() -> None:
    cases = [  # the shapes of the default cases, so the compiled programs are reused
        (Ising1D.from_size(5, J=-1.0), (0.8, 2.0)),
        (Ising2D.from_size(3, J=-0.8), (2.0, 4.0)),  # frustrated: odd lengths
    ]
    check_sampler(SAMPLER, cases=cases, checks=["distribution"], repeats=2)


def test_refuses_models_without_ising_spins_with_a_reason() -> None:
    reason = SAMPLER.supports(XY1D.from_size(4))
    assert reason is not None and "Ising spins" in reason
    with pytest.raises(ValueError, match="wolff cannot sample xy1d"):
        SAMPLER.sample(XY1D.from_size(4), np.array([1.0]), key=jax.random.key(0))


def test_ising_coupling_is_read_from_bond_energies() -> None:
    assert ising_coupling(Ising2D.from_size(4, J=0.7)) == pytest.approx(0.7)
    assert ising_coupling(Ising1D.from_size(4, J=-1.5)) == pytest.approx(-1.5)
    assert ising_coupling(XY1D.from_size(4)) is None


def test_clusters_are_large_below_and_small_above_tc() -> None:
    samples = SAMPLER.sample(Ising2D.from_size(3), np.array([0.5, 20.0]), key=jax.random.key(1))
    fraction = samples.info["cluster_fraction"].mean(axis=1)
    assert fraction[0] > 0.95 and fraction[1] < 0.2
    assert samples.states.shape == (2, 32, 100, 3, 3)


@pytest.mark.parametrize("option", ["chains", "sweeps", "every", "clusters"])
def test_invalid_options_are_clear_errors(option: str) -> None:
    with pytest.raises(spinbench.OptionError, match=f"{option} must be a positive integer"):
        Wolff.from_options(**{option: 0})


def test_registered_with_its_distribution() -> None:
    entry = spinbench.get_registry().entry("samplers", "wolff")
    assert entry.cls is Wolff
    assert entry.distribution == "spinbench-wolff"
