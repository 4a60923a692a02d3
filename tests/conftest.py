"""Shared fixtures: where the corpora in `../shared/` live, and how to read their index.

The repository is normally cloned next to `shared/` (so `../shared` relative to the repo root
holds the corpora); `MLPC_SHARED` overrides that location. Tests that need a corpus skip with
a clear reason when it is absent, as in a user's fresh clone.
"""

from __future__ import annotations

import atexit
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "MLPC_SHARED"

# Subprocesses the tests start (`python -m mlpc.cli ...`) must import the installed package.
# `python -m` puts the working directory first on sys.path, and in the repository root the
# `mlpc/` folder there holds only part of the package (`mlpc.compiler` and `mlpc.runtime` live
# in `compiler/` and `runtime/`), so with a non-editable install (as in `.ci/run`) it would
# shadow the installed package. PYTHONSAFEPATH (Python 3.11+) leaves the directory out.
os.environ.setdefault("PYTHONSAFEPATH", "1")

# Compiled models that `mlpc run` caches go to a folder of the test session's own (its xdist
# workers and subprocesses inherit it), not the user's ~/.cache/mlpc; removed at the end.
if not os.environ.get("MLPC_CACHE"):
    os.environ["MLPC_CACHE"] = tempfile.mkdtemp(prefix="mlpc-test-cache-")
    atexit.register(shutil.rmtree, os.environ["MLPC_CACHE"], True)


# A short sample of the slow tests (about a minute on 2 cores) that `.ci/run` runs after the
# default suite, so that the long paths stay exercised: `pytest -m slow_sample`. Each is also
# `slow`; `tests/test_docs.py` checks that every id here is collected.
SLOW_SAMPLE = (
    "tests/test_long_run.py::test_batch_of_64_through_one_session",
    "tests/test_examples.py::test_default_inputs_on_the_network[crc32-onnx]",
    "tests/test_examples.py::test_default_inputs_on_the_network[gcd-numpy]",
    "tests/test_network.py::test_beer_on_stock_onnxruntime[int64]",
    "tests/test_differential.py::test_seeded_programs_on_the_network_engines[3]",
    "tests/test_robustness.py::test_max_steps_huge[9223372036854775807-onnx]",
    "tests/test_docs.py::test_header_under_a_second_on_the_network[isqrt]",
)


# The fixtures that hand a test the public corpora: such a test is marked `corpus` (run them
# with `MLPC_SHARED=DIR pytest -m corpus`; without the corpora they skip, saying how).
CORPUS_FIXTURES = ("subleq_corpus", "hsq_corpus")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    sample = set(SLOW_SAMPLE)
    for item in items:
        if item.nodeid in sample:
            item.add_marker(pytest.mark.slow_sample)
        if any(f in getattr(item, "fixturenames", ()) for f in CORPUS_FIXTURES):
            item.add_marker(pytest.mark.corpus)


def shared_root() -> Path:
    """`$MLPC_SHARED` if set, else `shared/` next to the repository checkout."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "shared"


def _corpus(name: str, marker: str) -> Path:
    path = shared_root() / name
    if not (path / marker).is_file():
        where = (f"{SHARED_ENV}={os.environ[SHARED_ENV]} has no {name}/{marker}"
                 if os.environ.get(SHARED_ENV) else f"no {path}")
        pytest.skip(f"the public corpora are not here ({where}): set {SHARED_ENV}=DIR to the "
                    "folder holding subleq-corpus/ and hsq-corpus/ (see the README's "
                    "'Conformance')")
    return path


@pytest.fixture(scope="session")
def subleq_corpus() -> Path:
    """The public SUBLEQ corpus (hello.dec, hi.dec, beer.dec, self.dec)."""
    return _corpus("subleq-corpus", "hello.dec")


@pytest.fixture(scope="session")
def hsq_corpus() -> Path:
    """The 148 compiled Higher Subleq tests with expected outputs (INDEX.tsv)."""
    return _corpus("hsq-corpus", "INDEX.tsv")


@dataclass(frozen=True)
class IndexRow:
    """One row of `hsq-corpus/INDEX.tsv`."""

    name: str
    words: int
    max_address_touched: int
    steps: int
    output_bytes: int
    source_test_path: str


def load_index(path: Path) -> list[IndexRow]:
    """The rows of an `INDEX.tsv` file, in file order, with numeric columns as ints."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        return [
            IndexRow(
                name=row["name"],
                words=int(row["words"]),
                max_address_touched=int(row["max_address_touched"]),
                steps=int(row["steps"]),
                output_bytes=int(row["output_bytes"]),
                source_test_path=row["source_test_path"],
            )
            for row in reader
        ]


def hsq_index_names() -> list[str]:
    """Test names for parametrisation, read at collection time (empty if the corpus is
    absent; the corpus test then skips through the `hsq_corpus` fixture)."""
    index = shared_root() / "hsq-corpus" / "INDEX.tsv"
    if not index.is_file():
        return []
    return [row.name for row in load_index(index)]


def assert_state_matches(layout: object, x_row: object, state: object, out: list[int],
                         budget: int, where: str) -> None:
    """One network state vector (`x_row`, decoded with `decode_state`, the pending write
    landed) against the reference machine `state` after the same steps: memory, pc, fault,
    step count (`budget` minus the budget left) and output tape (`out` collects the output
    events; this appends the step's event, if any)."""
    from mlpc.compiler.codegen import decode_state
    from mlpc.compiler.machine_config import canonical_pc

    d = decode_state(layout, x_row)  # type: ignore[arg-type]
    if d.out_event is not None:
        out.append(d.out_event)
    m = layout.config.memory  # type: ignore[attr-defined]
    assert list(d.memory) == state.memory, where  # type: ignore[attr-defined]
    assert canonical_pc(d.pc, m) == canonical_pc(state.pc, m), where  # type: ignore[attr-defined]
    assert d.fault == state.fault, where  # type: ignore[attr-defined]
    assert budget - d.budget == state.steps, where  # type: ignore[attr-defined]
    assert out == state.tape_out, where  # type: ignore[attr-defined]
    assert d.status == state.status, where  # type: ignore[attr-defined]


def _have_netron() -> bool:
    try:
        import netron  # noqa: F401
    except ImportError:
        return False
    return True


needs_netron = pytest.mark.skipif(not _have_netron(),
                                  reason="netron is not installed (pip install 'mlpc[view]')")


def run_python_strictly(script: str) -> str:
    """Runs a Python script in a fresh interpreter with every warning an error (as a user of
    plain onnxruntime would see one), checks that it succeeds and prints nothing on stderr,
    and returns its stdout."""
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


# The command line's tests call `mlpc.cli.main` in the test's process, with its own standard
# streams and working directory: a subprocess proves nothing more about a command (the
# entry point itself is run as a subprocess by tests/test_startup.py, tests/test_docs.py and
# the subprocess tests of tests/test_cli_foundation.py) and costs a second of imports.
# MLPC_TEST_SUBPROCESS=1 runs every such call as `python -m mlpc.cli` instead.
SUBPROCESS_ENV = "MLPC_TEST_SUBPROCESS"


def run_cli(args: Sequence[object], cwd: Path | str | None = None, stdin: bytes | str = b"",
            text: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[Any]:
    """`mlpc ARGS` as a finished process: its exit status, stdout and stderr (bytes, or str
    with `text`)."""
    argv = [str(a) for a in args]
    data = stdin.encode() if isinstance(stdin, str) else stdin
    if os.environ.get(SUBPROCESS_ENV):
        done = subprocess.run([sys.executable, "-m", "mlpc.cli", *argv], input=data,
                              capture_output=True, cwd=cwd, timeout=timeout)
        out, err, code = done.stdout, done.stderr, done.returncode
    else:
        from mlpc.cli import main

        out_buf, err_buf = io.BytesIO(), io.BytesIO()
        streams = (sys.stdin, sys.stdout, sys.stderr)
        # held here: a wrapper closes its buffer when it is collected
        fakes = (io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"),
                 io.TextIOWrapper(out_buf, encoding="utf-8", write_through=True),
                 io.TextIOWrapper(err_buf, encoding="utf-8", write_through=True))
        sys.stdin, sys.stdout, sys.stderr = fakes
        here = os.getcwd()
        try:
            if cwd is not None:
                os.chdir(cwd)
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's --help and --version
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os.chdir(here)
            sys.stdin, sys.stdout, sys.stderr = streams
        out, err = out_buf.getvalue(), err_buf.getvalue()
        del fakes
    if text:
        return subprocess.CompletedProcess(argv, code, out.decode(), err.decode())
    return subprocess.CompletedProcess(argv, code, out, err)


# The slow `*_many` property tests run hundreds of large generated programs; shrinking one
# failure of theirs can take far longer than finding it. They report the failing example as
# generated (the default suite's variants of the same properties shrink theirs), unless
# MLPC_SHRINK=1 asks for shrinking, which Hypothesis bounds (MAX_SHRINKING_SECONDS).
MANY_PHASES = tuple(p for p in Phase if os.environ.get("MLPC_SHRINK") or p != Phase.shrink)
