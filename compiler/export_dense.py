"""The dense encoding (`--weights dense`): the network lowered to matrices
(`compiler/sparse.py`), each applied as a dense `MatMul` and a bias `Add`: the plainest
form to look at in Netron, and the largest. Loop and exactness as the sparse encoding's
(`FlatLoop`, `compiler/export_sparse.py`): int64 only, each row's whole sum proven below
2^63. Refused past `limits.ENCODINGS["dense"].max_elements` weight entries."""

from __future__ import annotations

import numpy as np

from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_sparse import FlatLoop
from mlpc.compiler.limits import ENCODINGS
from mlpc.compiler.network import Network
from mlpc.compiler.onnx_graph import ExportError, Graph
from mlpc.compiler.sparse import lower_to_sparse


class DenseLoop(FlatLoop):
    """The dense encoding: each factor's (n_in, n_out) weight matrix and its bias as
    initializers of the main graph."""

    def __init__(self, network: Network, main: Graph, options: ExportOptions) -> None:
        super().__init__(network, main, options)
        self.factors = list(self.network.factors())
        self.matrices: list[tuple[str, str]] = []  # each factor's W and bias
        for f in self.factors:
            w = main.const(f"{f.name}.W", f.dense().T.copy(), doc=f.doc)
            self.matrices.append((w, main.const(f"{f.name}.bias", f.bias)))

    @staticmethod
    def check(network: Network, options: ExportOptions) -> None:
        """Refuse weight matrices of more entries in all than its registry line allows."""
        limit = ENCODINGS["dense"].max_elements
        elements = sum(f.n_in * f.n_out for f in lower_to_sparse(network).factors())
        if elements > limit:
            raise ExportError(f"dense weights would have {elements:,} entries "
                              f"(more than {limit:,}); use --weights families")

    def _factor(self, g: Graph, v: str, n: int, step: int) -> tuple[str, np.ndarray]:
        f, (w, b) = self.factors[n], self.matrices[n]
        mm = g.op("MatMul", [v, w], f"s{step}/{f.name}/matmul", doc=f.doc)
        return g.op("Add", [mm, b], f"s{step}/{f.name}"), np.arange(f.n_out)


ENCODING = DenseLoop  # --weights dense (limits.ENCODINGS)
