"""Conformance kit: does a model, sampler or generator keep spinbench's plugin contract?

Plugin authors call these from their own test suites::

    from spinbench.testing import check_model, check_sampler, check_generator

    def test_my_model():
        check_model(MyModel)              # a class (built at small sizes) or an instance

    def test_my_sampler():
        check_sampler(MySampler(chains=32, warmup=100, sweeps=2000, every=10))

or, to see one pytest item per check, with the pytest helpers (pytest is imported only when a
helper is called, so this module imports without pytest)::

    from spinbench.testing import model_conformance
    test_my_model = model_conformance(MyModel)

Each ``check_*`` runs every check (or those named in ``checks``), collects all failures and
raises one :class:`ConformanceError` (an ``AssertionError``) whose message names the class, the
check, where it failed (size, boundary, coupling, temperature) and the offending values. On
success it returns a :class:`Report` of the checks that passed and those skipped, with reasons.

What is checked (see the ``*_CHECKS`` tuples for the names):

* models: class attributes; construction from a size spelling and the errors for bad input;
  that instances are static (hashable, no array leaves: they are passed into jitted code);
  the neighbour table; spin dtypes and values of ``random_states`` and ``propose``; the total
  energy against an independent sum of ``bond_energy`` over the neighbour table; the local
  ``delta_energy`` and ``site_delta_energy`` against differences of total energies at every
  site; the colouring; invariance of the energy and observables under the declared global
  symmetry; observables' names and shapes; exact references against brute-force enumeration.
* samplers: options and ``from_options`` round trip; ``supports``; the layout, dtype and
  values of :class:`~spinbench.Samples`; determinism under a fixed key; the distribution
  against the exact Boltzmann distribution of tiny instances (a χ² test, below).
* generators: options; ``init`` stacked over temperatures; ``fit`` on exact Boltzmann samples;
  shapes, dtype and valid spins of generated states; determinism; save/load identity. Not
  accuracy: training is brief.

**The sampler's χ² test.** Each test model is tiny: the Ising chain of 5 sites (32 states) and
the 3x3 Ising torus (512 states), whose exact state distribution is enumerated; the XY chain of
4 rotors with free ends, whose bond angles are independent von Mises variables (κ = J/T) and
whose first angle is uniform (20 bins each). The samples of each temperature are thinned by
``ceil(2 τ_int)``, the largest integrated autocorrelation time of the energy and of each
component of the magnetisation vector (Wolff's Γ-method, :func:`spinbench.stats.estimate`),
so that the kept configurations are nearly independent; bins expecting fewer than 5 counts are
pooled. Each (model, temperature, repeat) gives a p-value (one per angle for XY); they are
combined by Fisher's method and, against a single large deviation, as the smallest p-value
times their number; the combined p-value is twice the smaller of the two, and the sampler is
rejected when it is below ``threshold`` (1e-4 by default): a correct sampler fails at most about
once in 10,000 runs, a wrong acceptance rule fails every time. The failure names the worst
test (model, temperature, χ², degrees of freedom, p-value).

Every temperature is tested, however few configurations thinning leaves: a test on few is
weaker, not wrong, and a wrong acceptance rule often mixes slowly, so that thinning leaves few
(more chains would not help it). Fewer than ``MIN_INDEPENDENT`` (400) configurations at a
temperature fail the check as "too few samples, configure more chains or sweeps" only when the
χ² tests pass: a pass on so few says little.
"""

from __future__ import annotations

from ._common import (
    GENERATOR_CHECKS,
    MODEL_CHECKS,
    SAMPLER_CHECKS,
    ConformanceError,
    Failure,
    Report,
    boltzmann_samples,
    enumerate_boltzmann,
)
from ._generators import (
    check_generator,
)
from ._models import (
    check_model,
)
from ._pytest import (
    generator_conformance,
    model_conformance,
    sampler_conformance,
)
from ._samplers import (
    check_sampler,
)

__all__ = [
    "GENERATOR_CHECKS",
    "MODEL_CHECKS",
    "SAMPLER_CHECKS",
    "ConformanceError",
    "Failure",
    "Report",
    "boltzmann_samples",
    "check_generator",
    "check_model",
    "check_sampler",
    "enumerate_boltzmann",
    "generator_conformance",
    "model_conformance",
    "sampler_conformance",
]
