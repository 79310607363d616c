"""Hook specifications: what a spinbench plugin may implement.

A plugin is a module (or object) registered under the ``spinbench`` entry-point group whose
functions are decorated with :data:`spinbench.hookimpl`. Each hook returns an iterable of
classes; spinbench collects them from every plugin into one registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .generators._base import AbstractGenerator
    from .models._base import AbstractModel
    from .samplers._base import AbstractSampler

PROJECT_NAME = "spinbench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def spinbench_register_models() -> Iterable[type[AbstractModel]]:  # type: ignore[empty-body]
    """Return the :class:`~spinbench.AbstractModel` subclasses this plugin provides."""


@hookspec
def spinbench_register_samplers() -> Iterable[type[AbstractSampler]]:  # type: ignore[empty-body]
    """Return the :class:`~spinbench.AbstractSampler` subclasses this plugin provides."""


@hookspec
def spinbench_register_generators() -> Iterable[type[AbstractGenerator]]:  # type: ignore[empty-body]
    """Return the :class:`~spinbench.AbstractGenerator` subclasses this plugin provides."""
