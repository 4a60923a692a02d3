"""Pictures: `mlpc trace --plot` (memory cells over time) and `mlpc inspect --plot` (the
sparsity pattern of every weight factor). The PNG tests skip without matplotlib; they check
the file's size in pixels and that it is not blank."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mlpc.cli import main
from mlpc.compiler.codegen import build_step_network
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.sparse import lower_to_sparse
from mlpc.runtime import plots
from mlpc.runtime.request import RunRequest, prepared_image
from mlpc.runtime.trace import trace_run

REPO = Path(__file__).resolve().parents[1]
HELLO = str(REPO / "examples" / "hello.asm")
GCD_TL = """\
input a, b;
output g;
while (b != 0) { var t = a % b; a = b; b = t; }
g = a;
"""

try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB,
                                      reason="matplotlib is not installed (pip install "
                                      "'mlpc[plot]')")


def hello_trace(steps: int = 1000):  # type: ignore[no-untyped-def]
    program = load_program([HELLO], CompileOptions())
    config = machine_config(program.image)
    words = prepared_image(RunRequest(program, config))
    return trace_run(program.image, config, words, (), steps)


def png_pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    return np.asarray(matplotlib.image.imread(str(path)))


def assert_not_blank(pixels: np.ndarray) -> None:
    rgb = pixels[..., :3]
    dark = (rgb.mean(axis=-1) < 0.5).mean()
    assert 0.005 < dark < 0.5, f"{dark:.4f} of the pixels are dark"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 10


def test_cells_chosen_and_their_series() -> None:
    trace = hello_trace()
    assert plots.choose_cells(trace) == [0, 18]  # loop/ptr and count: 14 changes each
    xs, ys = plots.cell_series(trace, 18)
    assert xs.tolist() == list(range(57))
    assert ys[:8].tolist() == [14, 14, 14, 13, 13, 13, 13, 12]
    assert ys[-1] == 0
    assert plots.choose_cells(trace, ["z", "0x10"]) == [17, 16]


def test_window_series_start_before_the_first_step() -> None:
    program = load_program([HELLO], CompileOptions())
    config = machine_config(program.image)
    trace = trace_run(program.image, config, list(program.image.words), (), 20, first=10,
                      last=12)
    xs, ys = plots.cell_series(trace, 18)
    assert xs.tolist() == [9, 10, 11, 12]
    assert ys.tolist() == [12, 12, 11, 11]


def test_spy_image_exact_and_binned() -> None:
    rows = np.array([0, 1, 2, 2])
    cols = np.array([0, 2, 1, 2])
    image, br, bc = plots.spy_image(rows, cols, 3, 3)
    assert (br, bc) == (1, 1)
    assert image.astype(int).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    n = plots.MAX_ROWS * 2 + 1  # 481 rows: blocks of 3, 161 block rows
    image, br, bc = plots.spy_image(np.array([0, n - 1]), np.array([0, 5]), n, 6)
    assert (br, bc, image.shape) == (3, 1, (161, 6))
    assert image.sum() == 2 and image[0, 0] and image[160, 5]


@needs_matplotlib
def test_trace_plot_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "hello.png"
    assert main(["trace", HELLO, "--plot", str(out)]) == 0
    assert capsys.readouterr().err == f"wrote {out}: 2 memory cells over 56 steps\n"
    pixels = png_pixels(out)
    assert (pixels.shape[1], pixels.shape[0]) == plots.trace_plot_size(2) == (1000, 400)
    assert_not_blank(pixels)


@needs_matplotlib
def test_trace_plot_of_named_variables(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = tmp_path / "gcd.tl"
    src.write_text(GCD_TL)
    out = tmp_path / "gcd.png"
    assert main(["trace", str(src), "--input", "a=48", "--input", "b=18", "--plot", str(out),
                 "--cells", "a,b,g"]) == 0
    assert capsys.readouterr().err.startswith(f"wrote {out}: 3 memory cells over ")
    pixels = png_pixels(out)
    assert (pixels.shape[1], pixels.shape[0]) == plots.trace_plot_size(3) == (1000, 560)
    assert_not_blank(pixels)


@needs_matplotlib
def test_trace_plot_unknown_cell(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["trace", HELLO, "--plot", str(tmp_path / "x.png"), "--cells", "nope"]) == 1
    assert capsys.readouterr().err == "error: --cells: no cell named 'nope'\n"


@needs_matplotlib
def test_inspect_plot_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "tiny.tl"
    src.write_text("input x;\noutput y;\ny = x + 1;\n")
    model = tmp_path / "tiny.onnx"
    assert main(["compile", str(src), "-o", str(model)]) == 0
    capsys.readouterr()
    out = tmp_path / "spy.png"
    assert main(["inspect", str(model), "--plot", str(out)]) == 0
    captured = capsys.readouterr()
    # one factor per space of the step network (its sparse lowering)
    image = load_program([str(src)], CompileOptions()).image
    network = build_step_network(machine_config(image)).network
    factors = len(network.spaces)
    assert factors == len(list(lower_to_sparse(network).factors())) >= 4
    assert captured.err == f"wrote {out}: sparsity of {factors} weight factors\n"
    assert captured.out.startswith(f"{model}: ")
    pixels = png_pixels(out)
    width, height = plots.model_plot_size(factors)
    assert (pixels.shape[1], pixels.shape[0]) == (width, height)
    assert (width, height) == (1260, 360 * -(-factors // 3))
    assert_not_blank(pixels)


def test_inspect_plot_needs_an_mlpc_model(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [1])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert main(["inspect", str(path), "--plot", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: this ONNX model was not made by mlpc (no layer metadata)\n")


def test_without_matplotlib(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    out = tmp_path / "x.png"
    assert main(["trace", HELLO, "--steps", "3", "--plot", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: --plot needs matplotlib: pip install 'mlpc[plot]'\n"
    assert captured.out == ""
    assert not out.exists()
