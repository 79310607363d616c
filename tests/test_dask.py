"""Cells on Dask: a real LocalCluster of worker processes gives the LocalExecutor's table (the
`quick` preset), a
worker killed mid-cell costs nothing, Ctrl-C leaves a folder that resumes, and an unreachable
scheduler is one clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from spinbench._dask import thread_environment, worker_threads
from spinbench.cli import main
from spinbench.runner import (
    TIMING_COLUMNS,
    DaskExecutor,
    Runner,
    load_preset,
    parse_grid,
    read_table,
)

GRID = """
seed = 3
samples = 400

[reference]
chains = 4
warmup = 50
sweeps = 400
every = 2

[[models]]
name = "ising1d"
size = "6"
temps = "1.0:3.0:3"

[[models]]
name = "ising2d"
size = "3"
temps = [2.0, 3.0]

[[methods]]
name = "metropolis"

[[methods]]
name = "vae"
epochs = 3
likelihood = "auto"
corrections = ["reweight"]
"""


def _table(out: Path) -> pd.DataFrame:
    return read_table(out / "results.csv").drop(columns=list(TIMING_COLUMNS))


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every row's estimate, error and exact value equal; Monte Carlo rows bit for bit."""
    pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def local_table(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("local") / "out"
    Runner(parse_grid(GRID), out, progress=False).run()
    return _table(out)


@pytest.mark.slow
def test_the_quick_preset_on_a_local_cluster_gives_the_local_table(tmp_path: Path) -> None:
    """Monte Carlo and generator rows bit for bit: the local run is given the workers' thread
    settings (XLA's reductions over a different number of threads round differently in
    training; with other settings the generator rows agree within their errors only)."""
    spec = load_preset("quick")
    environment = {**os.environ, **thread_environment(worker_threads(2))}
    command = [sys.executable, "-m", "spinbench", "run", "--preset", "quick", "--quiet"]
    local = subprocess.run(
        [*command, "--out", str(tmp_path / "local")], env=environment, capture_output=True
    )
    assert local.returncode == 0, local.stderr
    executor = DaskExecutor(workers=2)
    runner = Runner(spec, tmp_path / "dask", executor=executor, progress=False)
    runner.run()
    _same_rows(_table(tmp_path / "dask"), _table(tmp_path / "local"))
    described = executor.describe()
    assert described["executor"] == "dask" and len(described["workers"]) == 2
    assert all(w["device"] and w["threads"] == 1 for w in described["workers"])
    provenance = json.loads((tmp_path / "dask" / "provenance.json").read_text())
    assert provenance["settings"]["executor"]["executor"] == "dask"


class KillsAWorker(DaskExecutor):
    """Kills (SIGKILL) a worker process while it runs a method cell: preferably one that also
    holds a finished reference task's result, which Dask must then compute again."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.killed: list[tuple[int, bool]] = []

    def submitted(self, client: Any) -> None:
        pids = client.run(os.getpid)
        start = time.monotonic()
        while time.monotonic() < start + 120:
            busy = {
                address
                for address, keys in client.processing().items()
                if any("metropolis" in str(k) or "vae" in str(k) for k in keys)
            }
            holders = {
                address
                for key, addresses in client.who_has().items()
                if "metropolis" not in key and "vae" not in key
                for address in addresses
            }
            chosen = sorted(busy & holders) or (
                sorted(busy) if time.monotonic() > start + 20 else []
            )
            if chosen:
                time.sleep(0.3)  # inside the cell
                os.kill(pids[chosen[0]], signal.SIGKILL)
                self.killed.append((pids[chosen[0]], chosen[0] in holders))
                return
            time.sleep(0.02)


@pytest.mark.slow
def test_a_worker_killed_during_a_cell_still_gives_the_whole_table(
    tmp_path: Path, local_table: pd.DataFrame
) -> None:
    executor = KillsAWorker(workers=2)
    runner = Runner(parse_grid(GRID), tmp_path / "out", executor=executor, progress=False)
    runner.run()
    assert executor.killed, "no worker was killed: the test did not test anything"
    assert runner.outcome.exit_code() == 0
    _same_rows(_table(tmp_path / "out"), local_table)


@pytest.mark.slow
def test_ctrl_c_leaves_a_folder_that_resumes(tmp_path: Path, local_table: pd.DataFrame) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "spinbench", "run", "--config", str(grid), "--out", str(out)]
    command += ["--executor", "dask", "--workers", "2", "--quiet"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((out / "cells").glob("*.json")):
        time.sleep(0.1)  # until the first method cell is written
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, stderr
    assert not (out / "results.csv").exists()
    resumed = CliRunner().invoke(main, ["run", "--config", str(grid), "--out", str(out), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.output
    _same_rows(_table(out), local_table)


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--config",
            str(grid),
            "--out",
            str(tmp_path / "out"),
            "--executor",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "2"], "--executor dask"),
        (["--scheduler", "tcp://x:1"], "--executor dask"),
        (["--executor", "dask", "--workers", "2", "--scheduler", "tcp://x:1"], "not both"),
        (["--executor", "dask", "--workers", "0"], "0"),
    ],
)
def test_executor_options_are_checked(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(
        main, ["run", "--preset", "quick", "--out", str(tmp_path / "out"), *arguments]
    )
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_worker_threads_share_the_cores() -> None:
    assert worker_threads(2, cores=16) == 8 and worker_threads(4, cores=2) == 1
    assert "intra_op_parallelism_threads=1" in thread_environment(1)["XLA_FLAGS"]


def test_a_jobqueue_cluster_builds_its_job_script() -> None:
    """The Slurm example of docs/distributed.md, as far as its job script."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    cluster = jobqueue.SLURMCluster(
        cores=8,
        processes=8,
        memory="32GB",
        walltime="02:00:00",
        job_extra_directives=["--gres=gpu:0"],
        worker_extra_args=["--resources", "GPU=0"],
        job_script_prologue=["export XLA_FLAGS=--xla_cpu_multi_thread_eigen=false"],
        scheduler_options={"dashboard_address": ":0"},
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH" in script and "distributed.cli.dask_worker" in script
    assert "--nworkers 8" in script and "XLA_FLAGS" in script
