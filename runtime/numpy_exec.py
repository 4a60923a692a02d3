"""The numpy executor: runs a `Network`'s layers on a batch of int64 state vectors.

It is a second, independent implementation of the same arithmetic the ONNX exporter encodes
(gather the inputs of each non-zero weight, multiply, sum per row, add the bias, ReLU), and
the `numpy` engine of `mlpc run`. With `check=True` it asserts, after every factor, that each
value lies within the bound the builder proved or the code generator declared for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpc.compiler.network import Network, SparseLinear


class BoundViolation(AssertionError):
    """A value left its proven or declared range: the construction is wrong somewhere."""


@dataclass(frozen=True, eq=False)
class _PreparedFactor:
    factor: SparseLinear
    row_ids: np.ndarray  # rows that have at least one weight
    starts: np.ndarray  # where each such row's weights start in cols/vals

    def apply(self, x: np.ndarray) -> np.ndarray:
        f = self.factor
        y = np.broadcast_to(f.bias, (x.shape[0], f.n_out)).copy()
        if f.nnz:
            products = x[:, f.cols] * f.vals  # int64, exact modulo 2^64
            y[:, self.row_ids] += np.add.reduceat(products, self.starts, axis=1)
        return y


def _prepare(factor: SparseLinear) -> _PreparedFactor:
    if factor.nnz and np.any(np.diff(factor.rows) < 0):
        raise ValueError(f"{factor.name}: weights must be sorted by row")
    row_ids, starts = np.unique(factor.rows, return_index=True)
    return _PreparedFactor(factor, row_ids.astype(np.int64), starts.astype(np.int64))


class NumpyExecutor:
    """`executor.step(x)` applies the network once to a (batch, n_state) int64 array."""

    def __init__(self, network: Network, check: bool = False) -> None:
        self.network = network
        self.check = check
        self._layers = [
            ([_prepare(f) for f in layer.factors], layer.relu) for layer in network.layers
        ]

    def step(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, dtype=np.int64)
        for factors, relu in self._layers:
            for pf in factors:
                v = pf.apply(v)
                if self.check:
                    _check_bounds(pf.factor, v)
            if relu:
                v = np.maximum(v, 0)
        return v


def _check_bounds(f: SparseLinear, v: np.ndarray) -> None:
    low = v < f.out_lo
    high = v > f.out_hi
    if low.any() or high.any():
        bad = np.argwhere(low | high)[0]
        i = int(bad[1])
        raise BoundViolation(
            f"{f.name}.{f.out_names[i]} = {int(v[bad[0], i])} outside "
            f"[{int(f.out_lo[i])}, {int(f.out_hi[i])}]"
        )
