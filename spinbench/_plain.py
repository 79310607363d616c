"""Plain Python values for messages: ``-1.0``, not ``np.float64(-1.0)``."""

from __future__ import annotations

from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """A numpy scalar or array as the Python number or list it holds; anything else as it is.

    Messages format values with ``!r`` so that strings show their quotes; numpy's own reprs
    (``np.float64(-1.0)``, ``array([...])``) would leak the storage type into them.
    """
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return value
