"""What mlpc's commands import before doing their work (the start-up time a user waits:
benchmarks/bench_startup.py measures it). Each check runs a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = {"numpy", "onnx", "onnxruntime", "lark", "networkx", "ml_dtypes"}


def modules_after(argv: list[str], tmp_path: Path) -> set[str]:
    """The top-level packages and mlpc modules a fresh interpreter holds after `mlpc ARGV`."""
    script = ("import sys\nfrom mlpc.cli import main\ntry:\n    main(sys.argv[1:])\n"
              "except SystemExit:\n    pass\n"
              "print(*('MODULE ' + m for m in sorted(sys.modules)), sep='\\n')")
    env = dict(os.environ, MLPC_CACHE=str(tmp_path / "cache"), PYTHONSAFEPATH="1")
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = {line[7:] for line in done.stdout.splitlines() if line.startswith("MODULE ")}
    return {m for m in loaded if "." not in m or m.startswith("mlpc.")}


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    loaded = modules_after(argv, tmp_path)
    assert not loaded & HEAVY
    assert not {m for m in loaded if m.startswith("mlpc.compiler.")} - {
        "mlpc.compiler.limits", "mlpc.compiler.machine_config", "mlpc.compiler.assembler",
        "mlpc.compiler.image"}


def test_running_a_model_file_imports_no_onnx_and_no_compiler(tmp_path: Path) -> None:
    model = tmp_path / "gcd.onnx"
    from mlpc.cli import main

    assert main(["compile", str(REPO / "examples" / "gcd.tl"), "-o", str(model)]) == 0
    loaded = modules_after(["run", str(model), "--input", "a=1071", "--input", "b=462"],
                           tmp_path)
    assert {"onnxruntime", "numpy", "mlpc.runtime.onnx_model"} <= loaded
    assert not loaded & {"onnx", "lark", "networkx", "ml_dtypes"}
    assert not {m for m in loaded if m.startswith("mlpc.compiler.")} - {
        "mlpc.compiler.limits", "mlpc.compiler.machine_config", "mlpc.compiler.assembler",
        "mlpc.compiler.image"}
