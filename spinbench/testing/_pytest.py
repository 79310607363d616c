"""pytest helpers of the conformance kit: one test item per check, the checks run once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..generators import AbstractGenerator
from ..models import AbstractModel
from ..samplers import AbstractSampler
from ._common import (
    GENERATOR_CHECKS,
    MODEL_CHECKS,
    SAMPLER_CHECKS,
    Report,
)
from ._generators import (
    _run_generator_checks,
)
from ._models import (
    _run_model_checks,
)
from ._samplers import (
    _run_sampler_checks,
)


def _conformance_test(
    kind: str, checks: Sequence[str], run: Callable[[], Report]
) -> Callable[[str], None]:
    """A pytest test function parametrised over ``checks``; the checks run once, lazily."""
    import pytest

    cache: list[Report] = []

    @pytest.mark.parametrize("check", list(checks))
    def test(check: str) -> None:
        if not cache:
            cache.append(run())
        report = cache[0]
        if check in report.skipped:
            pytest.skip(report.skipped[check])
        report.raise_for([check])

    test.__doc__ = f"spinbench conformance of a {kind}: one test per check."
    return test


def model_conformance(
    model_or_cls: AbstractModel | type[AbstractModel], **options: Any
) -> Callable[[str], None]:
    """A pytest test (one item per model check); assign it to a ``test_*`` name in a test
    module: ``test_potts = model_conformance(Potts3)``. Options as for :func:`check_model`."""
    checks = tuple(options.get("checks") or MODEL_CHECKS)
    return _conformance_test("model", checks, lambda: _run_model_checks(model_or_cls, **options))


def sampler_conformance(sampler: AbstractSampler, **options: Any) -> Callable[[str], None]:
    """A pytest test (one item per sampler check): ``test_mine = sampler_conformance(Mine())``.
    The sampler runs once for all items. Options as for :func:`check_sampler`."""
    checks = tuple(options.get("checks") or SAMPLER_CHECKS)
    return _conformance_test("sampler", checks, lambda: _run_sampler_checks(sampler, **options))


def generator_conformance(generator: AbstractGenerator, **options: Any) -> Callable[[str], None]:
    """A pytest test (one item per generator check): ``test_g = generator_conformance(G())``.
    Training runs once for all items. Options as for :func:`check_generator`."""
    checks = tuple(options.get("checks") or GENERATOR_CHECKS)
    return _conformance_test(
        "generator", checks, lambda: _run_generator_checks(generator, **options)
    )
