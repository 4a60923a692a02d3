"""The Higher Subleq conformance corpus through the onnx engine: compiled to ONNX, run in
onnxruntime, outputs and step counts equal to INDEX.tsv. A fast sample runs by default; the
whole corpus (1.3 million steps) is slow-marked."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import hsq_index_names, load_index

from mlpc.compiler.assembler import load_image
from mlpc.compiler.driver import machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.model import compile_model
from mlpc.runtime.onnx_model import OnnxModel

# cheap programs (steps x memory) with output, from all three folders, and one silent halt
FAST_SAMPLE = [
    "mat-mg_18_6", "pos1-ex033", "mat-mg_19_4", "pos2-ex058", "mat-mg_24_2", "pos1-ex007",
]


def _run_and_compare(hsq: Path, name: str, dtype: str) -> None:
    row = {r.name: r for r in load_index(hsq / "INDEX.tsv")}[name]
    image = load_image([str(hsq / f"{name}.dec")])
    model = OnnxModel(compile_model(image, machine_config(image), ExportOptions(dtype=dtype)),
                      threads=1)
    run = model.run(max_steps=2_000_000, chunk=1 << 20)
    expected = (hsq / f"{name}.out").read_bytes()
    assert int(run.status[0]) == 1, f"{name}: status {int(run.status[0])}"
    assert bytes(run.tapes[0]) == expected
    assert int(run.steps[0]) == row.steps


@pytest.mark.parametrize("dtype", ["int64", "float64"])
@pytest.mark.parametrize("name", FAST_SAMPLE)
def test_hsq_sample_on_onnx(hsq_corpus: Path, name: str, dtype: str) -> None:
    _run_and_compare(hsq_corpus, name, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int64", "float64"])
@pytest.mark.parametrize("name", hsq_index_names())
def test_hsq_all_on_onnx(hsq_corpus: Path, name: str, dtype: str) -> None:
    _run_and_compare(hsq_corpus, name, dtype)
