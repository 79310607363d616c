"""The C multi-spin reference of ``spinbench bench`` (``_c_reference.c``): built on demand
with the system C compiler, cached, and driven as a child process.

The program keeps its lattices between calls; each line ``N`` written to it runs ``N`` sweeps
and it answers the seconds they took (its own monotonic clock, so the pipe is not timed) and
the flips. Two rules (see the C source): ``"one"``, one uniform 32-bit number per decision
(the plain multi-spin rule), and ``"sliced"``, spinbench's bit-sliced
decisions in 64 lanes. Threads: OpenMP where the compiler has it, as many as the CPU has
cores (as XLA uses).

The binary is cached under ``$XDG_CACHE_HOME/spinbench`` (else ``~/.cache/spinbench``, else
the temporary folder), named by a digest of the source, the compiler and the flags, so a
changed source or compiler builds a new one. No compiler, or a failed build, is not an
error: :func:`build` returns the reason and the benchmark skips the reference with it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

#: Compiler flags, tried in order (OpenMP first; without it the reference runs one thread).
FLAGS = (
    ("-O3", "-march=native", "-fopenmp"),
    ("-O3", "-march=native"),
    ("-O3",),
)

RULES = ("one", "sliced")


def source() -> str:
    """The C source shipped with spinbench."""
    return resources.files("spinbench").joinpath("_c_reference.c").read_text()


def compiler() -> str | None:
    """``$CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH, else None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    """Where built binaries are kept (created if missing)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    for folder in (Path(base) / "spinbench", Path(tempfile.gettempdir()) / "spinbench"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise OSError("no writable cache folder for the C reference")


def build() -> tuple[Path | None, str]:
    """The built program, or None, and a note: the flags it was built with, or why not."""
    cc = compiler()
    if cc is None:
        return None, "no C compiler found (set CC or install cc/gcc/clang)"
    text = source()
    try:
        folder = cache_dir()
    except OSError as error:
        return None, str(error)
    failures = []
    for flags in FLAGS:
        digest = hashlib.sha256("\0".join([text, cc, *flags]).encode()).hexdigest()[:16]
        binary = folder / f"c-reference-{digest}"
        note = f"{Path(cc).name} {' '.join(flags)}"
        if binary.exists():
            return binary, note
        with tempfile.TemporaryDirectory(dir=folder) as work:
            src = Path(work) / "reference.c"
            src.write_text(text)
            out = Path(work) / "reference"
            result = subprocess.run(
                [cc, *flags, "-o", str(out), str(src), "-lm"],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                os.replace(out, binary)  # atomic: a concurrent build finds one or the other
                return binary, note
            failures.append(f"{note}: {result.stderr.strip().splitlines()[-1:] or '?'}")
    return None, "the C reference did not build (" + "; ".join(failures) + ")"


class CReference:
    """One running C reference: ``lattices`` lattices ``side x side`` at ``beta``."""

    def __init__(
        self, binary: Path, side: int, lattices: int, beta: float, rule: str, seed: int = 0
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"rule {rule!r} is not known; choose one of: {', '.join(RULES)}")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        env.setdefault("OMP_WAIT_POLICY", "passive")  # no spinning on a shared machine
        self._process = subprocess.Popen(
            [str(binary), str(side), str(lattices), repr(float(beta)), str(seed), rule],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def run(self, sweeps: int) -> tuple[float, int]:
        """``sweeps`` sweeps of every lattice: (seconds, flips)."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{int(sweeps)}\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            error = self._process.stderr.read() if self._process.stderr else ""
            raise RuntimeError(f"the C reference stopped: {error.strip() or 'no output'}")
        seconds, flips = line.split()
        return float(seconds), int(flips)

    def close(self) -> None:
        """Stop the program."""
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write("q\n")
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()


__all__ = ["FLAGS", "RULES", "CReference", "build", "cache_dir", "compiler", "source"]
