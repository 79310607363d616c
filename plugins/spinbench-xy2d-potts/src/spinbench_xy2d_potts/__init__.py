"""spinbench plugin: the 2D XY model (``xy2d``) and the q-state Potts model (``potts3``,
``potts4``) on a torus.

spinbench finds this module through the ``spinbench`` entry point in ``pyproject.toml`` and
calls the hooks below, marked with :data:`spinbench.hookimpl`.
"""

from __future__ import annotations

import spinbench

from .potts import AbstractPotts, Potts3, Potts4, potts_critical_temperature
from .xy2d import T_BKT, XY2D

__all__ = ["T_BKT", "XY2D", "AbstractPotts", "Potts3", "Potts4", "potts_critical_temperature"]


@spinbench.hookimpl
def spinbench_register_models() -> list[type[spinbench.AbstractModel]]:
    return [XY2D, Potts3, Potts4]
