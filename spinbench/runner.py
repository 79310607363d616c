"""Grids and run folders from Python: what ``spinbench run`` and ``spinbench report`` do.

::

    from spinbench.runner import Runner, load_grid

    runner = Runner(load_grid("grid.toml"), "results/mine")
    table = runner.run()                 # a pandas DataFrame, also in results/mine
    print(runner.outcome.exit_code())    # 1 if a cell failed or a reference is flagged

:func:`load_grid` / :func:`parse_grid` / :func:`load_preset` read grids; :func:`make_plan`
checks one against the registry and this machine (every problem at once) and expands it into
cells; :class:`Runner` runs it into a run folder (:class:`RunFolder`, whose rules the README
states); :func:`read_table` reads a ``results.csv`` back; :func:`write_report` rebuilds the
summary and figures. An :class:`Executor` runs the cells (:class:`LocalExecutor` by default).
"""

from ._dask import DaskExecutor, SchedulerUnreachable
from ._errors import GridError, ReportError, RunFolderError
from ._grid import GridSpec, MethodSpec, ModelSpec, ReferenceSpec, load_grid, parse_grid
from ._plan import Cell, Plan, make_plan
from ._presets import list_presets, load_preset
from ._report import Report, write_report
from ._run_folder import (
    CELL_FORMAT_VERSION,
    COLUMNS,
    FLAGGED_STATUSES,
    TIMING_COLUMNS,
    RunFolder,
    read_table,
)
from ._runner import Executor, LocalExecutor, Runner, RunOutcome, cell_key

__all__ = [
    "CELL_FORMAT_VERSION",
    "COLUMNS",
    "FLAGGED_STATUSES",
    "TIMING_COLUMNS",
    "Cell",
    "DaskExecutor",
    "Executor",
    "GridError",
    "GridSpec",
    "LocalExecutor",
    "MethodSpec",
    "ModelSpec",
    "Plan",
    "ReferenceSpec",
    "Report",
    "ReportError",
    "RunFolder",
    "RunFolderError",
    "RunOutcome",
    "Runner",
    "SchedulerUnreachable",
    "cell_key",
    "list_presets",
    "load_grid",
    "load_preset",
    "make_plan",
    "parse_grid",
    "read_table",
    "write_report",
]
