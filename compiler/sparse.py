"""The network written out as sparse weight matrices: one `SparseLinear` (a matrix of
(row, column, weight) triples and a bias) per space, every family unit its own row.

This is the form the generic exporters consume (`--weights sparse`: gathers of constant
indices; `--weights dense`: `MatMul`), and what `mlpc inspect --plot` draws. It is derived
from the family IR of `compiler/network.py` and knows nothing about SUBLEQ.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mlpc.compiler.network import Network, Space, flat_names, matched_units


@dataclass(frozen=True, eq=False)
class SparseLinear:
    """`y = W x + b` with `W[rows[i], cols[i]] = vals[i]` (int64; duplicates are summed;
    rows sorted)."""

    name: str
    n_in: int
    n_out: int
    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    bias: np.ndarray
    doc: str = ""

    @property
    def nnz(self) -> int:
        return int(self.vals.size)

    def dense(self) -> np.ndarray:
        """The (n_out, n_in) weight matrix."""
        w = np.zeros((self.n_out, self.n_in), dtype=np.int64)
        np.add.at(w, (self.rows, self.cols), self.vals)
        return w

    def row_counts(self) -> np.ndarray:
        return np.bincount(self.rows, minlength=self.n_out)


@dataclass(frozen=True, eq=False)
class SparseLayer:
    """One layer: its affine map (the product of `factors`, applied in order), then ReLU."""

    name: str
    factors: tuple[SparseLinear, ...]
    relu: bool
    doc: str = ""

    @property
    def width(self) -> int:
        return self.factors[-1].n_out

    @property
    def nnz(self) -> int:
        return sum(f.nnz for f in self.factors)

    @property
    def dense_params(self) -> int:
        """Weights of the equivalent dense layer (input width x output width)."""
        return self.factors[0].n_in * self.factors[-1].n_out


@dataclass(frozen=True, eq=False)
class SparseNetwork:
    layers: tuple[SparseLayer, ...]
    n_state: int

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)

    def factors(self) -> Iterator[SparseLinear]:
        for layer in self.layers:
            yield from layer.factors


@lru_cache(maxsize=4)
def lower_to_sparse(network: Network) -> SparseNetwork:
    """Every space as a sparse matrix over the flat slots of the previous space."""
    layers = []
    source = network.state
    docs = network.layer_docs
    for group in network.layers():
        factors = []
        for space in group:
            factors.append(_lower_space(space, source))
            source = space
        i = len(layers)
        layers.append(SparseLayer(group[-1].name, tuple(factors), group[-1].relu,
                                  docs[i] if i < len(docs) else ""))
    return SparseNetwork(tuple(layers), network.n_state)


def _slots(space: Space) -> tuple[dict[str, int], dict[str, int]]:
    """Where each family starts and where each scalar sits in the flat vector."""
    starts, at = {}, 0
    for d in space.families:
        starts[d.name] = at
        at += d.length
    return starts, {d.name: at + k for k, d in enumerate(space.scalars)}


def _lower_space(space: Space, source: Space) -> SparseLinear:
    fam_at, scal_at = _slots(source)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    bias = np.zeros(space.width, dtype=np.int64)
    row = 0
    positions = {f.name: f.positions for f in source.families}
    for d in space.families:
        j = np.arange(d.length, dtype=np.int64)
        r = row + j
        bias[r] = d.expr.const + d.expr.slope * np.asarray(d.positions, dtype=np.int64)
        for name, c in d.expr.vectors:
            if d.restricted:  # the source's units at the same positions (none: 0)
                units = np.array(matched_units(positions[name], d.positions), dtype=np.int64)
                has = units >= 0
                rows.append(r[has])
                cols.append(fam_at[name] + units[has])
                vals.append(np.full(int(has.sum()), c, dtype=np.int64))
                continue
            rows.append(r)
            cols.append(fam_at[name] + j)
            vals.append(np.full(d.length, c, dtype=np.int64))
        for name, c in d.expr.scalars:
            rows.append(r)
            cols.append(np.full(d.length, scal_at[name], dtype=np.int64))
            vals.append(np.full(d.length, c, dtype=np.int64))
        row += d.length
    for d in space.scalars:
        bias[row] = d.expr.const
        for name, c in d.expr.scalars:
            rows.append(np.array([row]))
            cols.append(np.array([scal_at[name]]))
            vals.append(np.array([c]))
        for red in d.expr.sums:
            weights = np.asarray(red.weights or (1,) * red.length, dtype=np.int64)
            for name, c in red.terms:
                rows.append(np.full(red.length, row, dtype=np.int64))
                cols.append(fam_at[name] + np.arange(red.length, dtype=np.int64))
                vals.append(c * weights)
        row += 1
    r = np.concatenate(rows).astype(np.int64)
    c = np.concatenate(cols).astype(np.int64)
    v = np.concatenate(vals).astype(np.int64)
    order = np.lexsort((c, r))
    assert len(flat_names(space)) == space.width
    return SparseLinear(space.name, source.width, space.width, r[order], c[order], v[order],
                        bias, space.doc)
