"""Pictures (matplotlib, the optional extra `mlpc[plot]`): memory cells over a traced run
(`mlpc trace --plot`) and the sparsity pattern of a model's weight factors
(`mlpc inspect --plot`).

Figures have a fixed size in pixels (no tight bounding box), so a caller knows what it gets:
`trace_plot_size(n)` and `model_plot_size(k)`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from mlpc.compiler.codegen import build_step_network
from mlpc.compiler.machine_config import MachineConfig
from mlpc.compiler.sparse import lower_to_sparse
from mlpc.errors import MlpcError
from mlpc.runtime.trace import CellNames, Trace

DPI = 100
TRACE_WIDTH, TRACE_ROW, TRACE_EXTRA = 1000, 160, 80
MAX_TRACE_CELLS = 6
PANEL_WIDTH, PANEL_HEIGHT, PANEL_COLUMNS = 420, 360, 3
# a factor larger than its panel (in pixels) is binned into blocks, about one per pixel
MAX_ROWS, MAX_COLS = 240, 300


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MlpcError("--plot needs matplotlib: pip install 'mlpc[plot]'") from None
    return plt


def require_matplotlib() -> None:
    """Raise the one-line error now when matplotlib is missing."""
    _pyplot()


def trace_plot_size(cells: int) -> tuple[int, int]:
    """(width, height) in pixels of a trace plot of `cells` memory cells."""
    return TRACE_WIDTH, TRACE_ROW * cells + TRACE_EXTRA


def model_plot_size(factors: int) -> tuple[int, int]:
    rows = -(-factors // PANEL_COLUMNS)
    return PANEL_WIDTH * PANEL_COLUMNS, PANEL_HEIGHT * rows


def choose_cells(trace: Trace, wanted: Sequence[str] = ()) -> list[int]:
    """The cells to plot: those named in `wanted` (names or addresses), else the program's
    named variables that changed in the window, else the most-changed cells."""
    names = CellNames(trace.image)
    if wanted:
        out = []
        for item in wanted:
            address = names.address_of(item)
            if address is None:
                try:
                    address = int(item, 0)
                except ValueError:
                    raise MlpcError(f"--cells: no cell named {item!r}") from None
            if not 0 <= address < trace.config.memory:
                raise MlpcError(f"--cells: address {address} is outside memory")
            out.append(address)
        return out
    counts: Counter[int] = Counter(c.address for s in trace.steps for c in s.changes)
    named = {address for _, address in trace.image.symbols}
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    chosen = [a for a in ranked if a in named][:MAX_TRACE_CELLS]
    return chosen or ranked[:MAX_TRACE_CELLS]


def cell_series(trace: Trace, address: int) -> tuple[np.ndarray, np.ndarray]:
    """Step numbers (starting with the state before the window) and the cell's value."""
    value = trace.window_memory[address]
    xs, ys = [trace.first - 1], [value]
    for s in trace.steps:
        for c in s.changes:
            if c.address == address:
                value = c.new
        xs.append(s.step)
        ys.append(value)
    return np.asarray(xs), np.asarray(ys)


def plot_trace(trace: Trace, path: str, wanted: Sequence[str] = ()) -> list[int]:
    """Plot memory cells over the traced window; returns the addresses plotted."""
    plt = _pyplot()
    if not trace.steps:
        raise MlpcError("--plot: no steps in the traced window")
    cells = choose_cells(trace, wanted)
    if not cells:
        raise MlpcError("--plot: no memory cell changed in the traced window (name cells "
                        "with --cells)")
    names = CellNames(trace.image)
    width, height = trace_plot_size(len(cells))
    fig, axes = plt.subplots(len(cells), 1, sharex=True, squeeze=False,
                             figsize=(width / DPI, height / DPI), dpi=DPI)
    for ax, address in zip(axes[:, 0], cells, strict=True):
        xs, ys = cell_series(trace, address)
        ax.step(xs, ys, where="post", linewidth=1.2)
        ax.set_ylabel(names.label(address), rotation=0, ha="right", va="center")
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(f"{trace.image.source_path}: steps {trace.first}-{trace.steps[-1].step}")
    fig.subplots_adjust(left=0.16, right=0.98, top=1 - 40 / height, bottom=60 / height,
                        hspace=0.35)
    _save(fig, path, plt)
    return cells


def _save(fig: Any, path: str, plt: Any) -> None:
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise MlpcError(f"{path}: cannot write: {exc.strerror}") from None
    except ValueError as exc:  # an unknown file extension
        raise MlpcError(f"{path}: {exc}") from None
    finally:
        plt.close(fig)


def spy_image(rows: np.ndarray, cols: np.ndarray, n_out: int, n_in: int
              ) -> tuple[np.ndarray, int, int]:
    """The non-zero pattern as a boolean image, binned into blocks of (br, bc) entries when
    the matrix is larger than MAX_ROWS x MAX_COLS (a block is set when any entry is)."""
    br = max(1, -(-n_out // MAX_ROWS))
    bc = max(1, -(-n_in // MAX_COLS))
    image = np.zeros((-(-n_out // br), -(-n_in // bc)), dtype=bool)
    image[rows // br, cols // bc] = True
    return image, br, bc


def plot_model(model: onnx.ModelProto, model_path: str, path: str) -> int:
    """Spy plots of every weight factor of a model's step network (the network lowered to
    sparse matrices, one factor per space: `compiler/sparse.py`), written to `path`; returns
    how many. `model_path` names the model in messages."""
    plt = _pyplot()
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        config = MachineConfig(memory=int(meta["memory_words"]),
                               word_bits=int(meta["word_bits"]),
                               tape_in=int(meta["tape_in"]), tape_out=int(meta["tape_out"]))
    except (KeyError, ValueError):
        raise MlpcError(f"{model_path}: this ONNX model was not made by mlpc "
                        "(no machine metadata)") from None
    try:
        network = build_step_network(config).network
    except ValueError as exc:
        raise MlpcError(str(exc)) from None
    sparse = lower_to_sparse(network)
    factors = [(layer, f) for layer in sparse.layers for f in layer.factors]
    expected = json.loads(meta.get("layers", "[]"))
    nnz_meta = sum(int(layer.get("nonzeros", 0)) for layer in expected)
    if expected and nnz_meta != sum(f.nnz for _, f in factors):
        raise MlpcError(f"{model_path}: its layers differ from the network this mlpc builds "
                        "for the same machine (compiled by another version?)")
    width, height = model_plot_size(len(factors))
    columns = PANEL_COLUMNS
    rows = -(-len(factors) // columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(width / DPI, height / DPI), dpi=DPI)
    for ax in axes.flat[len(factors):]:
        ax.axis("off")
    for ax, (layer, f) in zip(axes.flat, factors, strict=False):
        image, br, bc = spy_image(f.rows, f.cols, f.n_out, f.n_in)
        ax.imshow(image, cmap="Greys", interpolation="nearest", aspect="auto",
                  extent=(0, f.n_in, f.n_out, 0), vmin=0, vmax=1)
        binned = f", {br}x{bc} blocks" if br > 1 or bc > 1 else ""
        relu = " + ReLU" if layer.relu and f is layer.factors[-1] else ""
        ax.set_title(f"{layer.name}: {f.name}{relu}\n{f.n_out} x {f.n_in}, "
                     f"{f.nnz:,} non-zeros{binned}", fontsize=9)
        ax.set_xlabel("input", fontsize=8)
        ax.set_ylabel("output", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{model_path}: m = {config.memory}, W = {config.word_bits}, "
                 f"{network.relu_layers} ReLU layers per step", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 70 / height, bottom=40 / height,
                        wspace=0.35, hspace=0.6)
    _save(fig, path, plt)
    return len(factors)
