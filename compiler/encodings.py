"""The encodings of a network in ONNX (`--weights`) behind one interface, `Encoding`, and
the options of an export (`ExportOptions`).

The exporter (`compiler/export_onnx.py`) builds the model around the step and calls only
`Encoding`'s methods; each encoding is one module (`export_families.py`, `export_sparse.py`,
`export_dense.py`), registered by one line of `compiler/limits.py`'s `ENCODINGS` (its name,
module, dtypes and limits, which the command line reads without importing onnx). This module
imports only leaves at run time, so the exporter and the encodings import it without a
cycle between them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from mlpc.compiler.limits import DEFAULT_UNROLL, DTYPES, ENCODINGS, WEIGHTS
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS

if TYPE_CHECKING:
    from collections.abc import Callable

    import onnx

    from mlpc.compiler.exactness import Prover
    from mlpc.compiler.network import Network
    from mlpc.compiler.onnx_graph import Graph

@dataclass(frozen=True)
class ExportOptions:
    unroll: int = DEFAULT_UNROLL  # SUBLEQ steps per Loop iteration
    weights: str = WEIGHTS[0]  # one of WEIGHTS (limits.ENCODINGS)
    dtype: str = DTYPES[0]  # one of the encoding's dtypes
    default_max_steps: int = DEFAULT_MAX_STEPS
    op_cost: int = 20000  # padding elements worth one extra op, for sparse bucket planning


class Encoding(Protocol):
    """How the Loop carries the state and how one step of the network is written: the
    carried values (`value_infos`), made from the flat int64 state [batch, n_state] before
    the Loop (`split`) and made back into it after (`join`); one step on them (`emit`);
    state slots read off them (`tap`). Weights and other constants go to the main graph
    (`main`), shared by the K unrolled steps and the step model's one step."""

    prover: Prover  # proves every op `emit` writes; its report is the `exactness` metadata

    def __init__(self, network: Network, main: Graph, options: ExportOptions) -> None: ...

    @staticmethod
    def check(network: Network, options: ExportOptions) -> None:
        """Refuse, with a one-line `ExportError`, what this encoding cannot export (beyond
        the dtype, which `limits.ENCODINGS` states)."""

    def prepare(self, g: Graph, batch: Callable[[], str]) -> list[str]:
        """Loop-invariant values computed once before the Loop, in `g` (the body reads
        them): returns them, to be passed into the Loop. `batch()` gives the batch size
        ([1] int64); an encoding that needs none does not call it."""

    def value_infos(self, suffix: str) -> list[onnx.ValueInfoProto]:
        """The carried values' names (each + `suffix`), types and shapes, in order."""

    def split(self, g: Graph, x0: str) -> list[str]:
        """The carried values of the flat int64 state `x0`."""

    def emit(self, g: Graph, carried: list[str], step: int) -> list[str]:
        """One step (`step` numbers the unrolled copies): the carried values after it."""

    def event_shape(self, K: int) -> list[int | str]:
        """The shape of K steps' output events, as `tap` gives them, concatenated."""

    def tap(self, g: Graph, carried: list[str], start: int, end: int, hint: str) -> str:
        """The flat state's scalar slots [start, end), as int64."""

    def join(self, g: Graph, finals: list[str]) -> str:
        """The flat int64 state [batch, n_state] of the carried values."""


def encoding(name: str) -> type[Encoding]:
    """The encoding registered as `name` in `limits.ENCODINGS`: its module's `ENCODING`.
    The module is imported here, when a model is built with it, since the registry is a
    leaf that must not import onnx."""
    return cast("type[Encoding]", importlib.import_module(ENCODINGS[name].module).ENCODING)
