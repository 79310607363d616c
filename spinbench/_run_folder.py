"""The run folder (``spinbench run --out DIR``): its layout, its formats and its rules.

::

    DIR/
      spinbench-run.json          marker: a folder spinbench made (format, version, created)
      .lock, .lock.json           held by the run writing the folder (holder's PID and host)
      grid.toml                   the grid of the run (with the seed it ran with)
      cells/<cell>.json           one record per method cell: digest, status, rows
      cells/reference/<model>.json  each model's reference sampling: digest, status, reason
      samples/<cell>/             each method cell's configurations (for the figures)
      cache/                      reference configurations, keyed by their request
      results.csv, results.json   the table: the rows of the grid's cells, nothing else
      summary.md, figures/, provenance.json

Rules that keep the folder and its table true to one run:

* One run at a time: :meth:`RunFolder.lock` holds an OS file lock (released by the system if
  the process dies, so a dead run's lock is simply taken over) and names its holder.
* Only spinbench's folders are written: a non-empty folder without the marker is refused unless
  the user forces it, so their own ``results.csv`` is never overwritten.
* A cell file is reused only when it parses, has this format, the cell's digest and a status
  other than ``failed``; anything else is re-run. Damaged files are reported by path.
* Cell files of cells no longer in the grid are removed, and the table, summary and
  provenance of a previous grid are removed before the new grid is written, so ``grid.toml``,
  ``provenance.json`` and the table always describe the same run.
* Every file is written atomically with the user's umask (:mod:`spinbench._atomic`).
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import pandas as pd

from ._atomic import encode_json, write_json_atomic, write_text_atomic
from ._errors import RunFolderError
from ._version import __version__

__all__ = [
    "CELL_FORMAT_VERSION",
    "CELL_STATUSES",
    "COLUMNS",
    "FLAGGED_STATUSES",
    "MARKER",
    "NUMERIC_COLUMNS",
    "TIMING_COLUMNS",
    "RunFolder",
    "RunFolderError",
    "describe_row",
    "flagged_rows",
    "read_table",
]

#: The marker file that makes a folder a spinbench run folder.
MARKER = "spinbench-run.json"
#: Version of the folder's layout (the marker's ``format``).
RUN_FORMAT_VERSION = 1
#: Version of the rows a cell produces; part of every digest, so a new format re-runs cells.
CELL_FORMAT_VERSION = 4

#: Columns of results.csv / results.json, in order.
COLUMNS = (
    "model",
    "size",
    "boundary",
    "options",
    "method",
    "T",
    "observable",
    "r",
    "estimate",
    "stderr",
    "tau_int",
    "ess",
    "rhat",
    "exact",
    "abs_error",
    "rel_error",
    "z",
    "reference",
    "noise_floor",
    "acceptance",
    "ess_fraction",
    "status",
    "reason",
    "wall_time",
    "train_time",
    "sample_time",
    "ess_per_second",
)
#: Columns holding numbers (``inf`` allowed, NaN written as blank / null).
NUMERIC_COLUMNS = (
    "T",
    "r",
    "estimate",
    "stderr",
    "tau_int",
    "ess",
    "rhat",
    "exact",
    "abs_error",
    "rel_error",
    "z",
    "noise_floor",
    "acceptance",
    "ess_fraction",
    "wall_time",
    "train_time",
    "sample_time",
    "ess_per_second",
)
#: Columns holding seconds, or rates per second: they differ between runs of the same grid.
TIMING_COLUMNS = ("wall_time", "train_time", "sample_time", "ess_per_second")
#: Columns holding text (``options``: the model's options, ``h=0.3``; empty without any).
TEXT_COLUMNS = tuple(c for c in COLUMNS if c not in NUMERIC_COLUMNS and c != "reason")
#: Row statuses: a number that can be trusted, and the ways one cannot be.
ROW_STATUSES = ("ok", "unconverged", "degenerate", "diverged", "failed")
#: Statuses of rows that are results (listed at the end of a run), not failures to run.
FLAGGED_STATUSES = ("unconverged", "degenerate", "diverged")
#: Statuses of a cell record.
CELL_STATUSES = ("ok", "flagged", "failed")

#: Files a run writes from its cells, removed when the grid changes.
DERIVED = ("results.csv", "results.json", "summary.md", "provenance.json", "report.html")


@dataclass(frozen=True)
class CellState:
    """What the folder holds for one cell: its record (when the file is sound and of this
    cell, failed or not), or the problem with a file that is there but cannot be used."""

    record: dict[str, Any] | None
    problem: str | None = None

    @property
    def done(self) -> bool:
        """True when the record can be reused: a cell that failed is run again."""
        return self.record is not None and self.record["status"] != "failed"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _decode_number(value: Any) -> Any:
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value


def _record_problem(record: Any, expected: dict[str, Any], rows: bool) -> str | None:
    """What is wrong with a cell record's schema, or None."""
    if not isinstance(record, dict) or not record:
        return "it does not hold a cell record"
    for key, value in expected.items():
        if record.get(key) != value:
            return f"its {key} is {record.get(key)!r}, expected {value!r}"
    if record.get("status") not in CELL_STATUSES:
        return f"its status {record.get('status')!r} is not one of {', '.join(CELL_STATUSES)}"
    if not isinstance(record.get("wall_time"), int | float):
        return "it has no wall time"
    if rows:
        table = record.get("rows")
        if not isinstance(table, list) or not table:
            return "it has no rows"
        for row in table:
            if not isinstance(row, dict) or set(row) != set(COLUMNS):
                return "a row does not have the table's columns"
            if row["status"] not in ROW_STATUSES:
                return f"a row has the unknown status {row['status']!r}"
    return None


class RunFolder:
    """One run folder on disk (see the module docstring for its layout and rules)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ places
    @property
    def cells(self) -> Path:
        return self.path / "cells"

    @property
    def cache(self) -> Path:
        return self.path / "cache"

    @property
    def grid(self) -> Path:
        return self.path / "grid.toml"

    def cell_path(self, cell_id: str, *, reference: bool = False) -> Path:
        """``cells/<id>.json``, or ``cells/reference/<id>.json`` for a reference cell."""
        folder = self.cells / "reference" if reference else self.cells
        return folder / f"{cell_id}.json"

    def samples_path(self, cell_id: str) -> Path:
        return self.path / "samples" / cell_id

    # ------------------------------------------------------------------ ownership
    def is_run(self) -> bool:
        """True for a folder spinbench made (its marker, or the layout of an older version)."""
        return (self.path / MARKER).is_file() or (self.grid.is_file() and self.cells.is_dir())

    def claim(self, *, force: bool = False) -> None:
        """Make sure the folder exists and is spinbench's (refusing a foreign one unless
        ``force``), and mark it."""
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} is a file, not a folder; choose another --out")
        if self.path.is_dir() and not self.is_run() and not force:
            foreign = sorted(p.name for p in self.path.iterdir())
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise RunFolderError(
                    f"{self.path} holds files spinbench did not write ({shown}); choose an "
                    "empty or new --out, or pass --force to write the run there anyway"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / MARKER).is_file():
            write_json_atomic(
                self.path / MARKER,
                {
                    "format": RUN_FORMAT_VERSION,
                    "spinbench": __version__,
                    "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                },
            )

    @contextmanager
    def lock(self, log: Callable[[str], None] = lambda message: None) -> Iterator[None]:
        """Hold the folder's lock for one run; a clear error naming the holder if another
        live run has it. A lock left by a process that died is taken over (and logged)."""
        info = self.path / ".lock.json"
        lock = filelock.FileLock(str(self.path / ".lock"))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = _holder(info)
            raise RunFolderError(
                f"{self.path} is in use by another spinbench run ({holder}); wait for it to "
                "finish or choose another --out"
            ) from None
        try:
            if info.exists():
                log(f"took over the lock of a run that no longer runs ({_holder(info)})")
            write_json_atomic(
                info,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                },
            )
            yield
        finally:
            info.unlink(missing_ok=True)
            lock.release()

    # ------------------------------------------------------------------ the grid
    def previous_grid(self) -> str | None:
        """The grid text of the run that last wrote this folder, if any."""
        try:
            return self.grid.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def start(self, grid_text: str) -> None:
        """Record the grid of this run; outputs of a different previous grid are removed
        first, so the folder never pairs a new grid with an old table."""
        if self.previous_grid() != grid_text:
            for name in DERIVED:
                (self.path / name).unlink(missing_ok=True)
            shutil.rmtree(self.path / "figures", ignore_errors=True)
        write_text_atomic(self.grid, grid_text)

    # ------------------------------------------------------------------ cells
    def read_cell(self, cell_id: str, digest: str, *, reference: bool = False) -> CellState:
        """The record of a cell with this digest, or None (with the problem of a damaged
        file, or none when the file is absent or belongs to another version of the cell)."""
        path = self.cell_path(cell_id, reference=reference)
        if not path.exists():
            return CellState(None)
        try:
            record = _read_json(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return CellState(None, f"{path} is damaged ({type(error).__name__}: {error})")
        expected = {"format": CELL_FORMAT_VERSION, "cell": cell_id}
        problem = _record_problem(record, expected, rows=not reference)
        if problem is not None:
            return CellState(None, f"{path} is damaged: {problem}")
        if record.get("digest") != digest:
            return CellState(None)  # the result of another version of this cell
        return CellState(record)

    def write_cell(self, cell_id: str, record: dict[str, Any], *, reference: bool = False) -> None:
        """Write a cell's record atomically."""
        write_json_atomic(self.cell_path(cell_id, reference=reference), record)

    def remove_others(self, method_ids: Iterable[str], reference_ids: Iterable[str]) -> list[str]:
        """Remove cell files and sample folders of cells not in this run, and staging files
        left by an interrupted write; return the ids of the cells removed."""
        keep = set(method_ids)
        keep_reference = set(reference_ids)
        removed: list[str] = []
        for path in sorted(self.cells.glob("*.json")) if self.cells.is_dir() else []:
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                removed.append(path.stem)
        reference = self.cells / "reference"
        for path in sorted(reference.glob("*.json")) if reference.is_dir() else []:
            if path.stem not in keep_reference:
                path.unlink(missing_ok=True)
        samples = self.path / "samples"
        for path in sorted(samples.iterdir()) if samples.is_dir() else []:
            if path.name.split("+")[0] not in keep:  # a correction's samples: <cell>+mcmc
                shutil.rmtree(path, ignore_errors=True)
        for folder in (self.cells, reference, samples, self.cache):
            for staging in folder.glob(".*") if folder.is_dir() else []:
                _remove(staging)
        for name in (*DERIVED, MARKER, "grid.toml", ".lock.json"):
            for staging in self.path.glob(f".{name}.*"):
                _remove(staging)
        return removed

    def collect(self, method_ids: Iterable[str]) -> pd.DataFrame:
        """The rows of these cells' records (those present) as one table, in file-name order."""
        rows: list[dict[str, Any]] = []
        for cell_id in sorted(method_ids, key=lambda i: f"{i}.json"):
            path = self.cell_path(cell_id)
            if not path.exists():
                continue
            try:
                record = _read_json(path)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if _record_problem(record, {"cell": cell_id}, rows=True) is None:
                rows += record["rows"]
        return rows_to_table(rows)

    def write_table(self, table: pd.DataFrame) -> None:
        """results.csv and results.json, atomically (NaN blank / null, infinities ``inf``)."""
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        write_text_atomic(self.path / "results.csv", buffer.getvalue())
        records = [
            {k: (None if _is_nan(v) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")
        ]
        write_json_atomic(self.path / "results.json", encode_json(records))


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _holder(info: Path) -> str:
    """``PID 123 on host x, started ...`` from a lock's holder file (or that it is unknown)."""
    try:
        holder = _read_json(info)
        return f"PID {holder['pid']} on host {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def describe_row(row: Mapping[Any, Any]) -> str:
    """``ising2d 4x4 vae T=2.27 correlation r=2``: which row, for messages."""
    T = "" if row.get("T") is None or _is_nan(row["T"]) else f" T={row['T']:g}"
    r = "" if row.get("r") is None or _is_nan(row["r"]) else f" r={int(row['r'])}"
    observable = f" {row['observable']}" if isinstance(row.get("observable"), str) else ""
    return f"{row['model']} {row['size']} {row['method']}{T}{observable}{r}"


def flagged_rows(table: pd.DataFrame) -> list[str]:
    """One line per flagged row: which row, its status and the reason."""
    flagged = table[table["status"].isin(FLAGGED_STATUSES)]
    return [
        f"{describe_row(row)}: {row['status']}: {row['reason']}"
        for row in flagged.to_dict(orient="records")
    ]


def rows_to_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Cell rows as the results table: the columns in order, numbers as floats (``"inf"``
    strings back to infinities)."""
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in NUMERIC_COLUMNS:
        table[column] = pd.to_numeric(table[column].map(_decode_number), errors="coerce")
    for column in TEXT_COLUMNS:
        table[column] = table[column].astype(object)
    return table


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A results.csv as written by :meth:`RunFolder.write_table` (text columns stay text:
    a size ``6`` is the string ``"6"``)."""
    text = [*TEXT_COLUMNS, "reason"]
    table = pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=False)
    for column in NUMERIC_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    for column in ("reason", "reference", "observable"):  # absent, not empty text
        table[column] = table[column].where(table[column] != "", None)
    return table
