"""The sparse encoding (`--weights sparse`): the network lowered to sparse matrices
(`compiler/sparse.py`), each applied as `GatherElements` of constant indices, `Mul` by the
weights and row sums by `MatMul`. `FlatLoop`, the loop both it and the dense encoding
(`compiler/export_dense.py`) write, carries the flat int64 state and applies the lowered
matrices in order.

Exactness (int64 only): every op of a step is proven in range by `compiler/exactness.py`
(`Prover`) as it is emitted. A row of a factor sums all its terms in one `MatMul` (sparse:
with a column of ones; dense: the whole row), so the bound proven is the sum over the row of
|weight| * max|input|; for a reduction that is the sum of every family it combines over
every word, each counted whole: S * m^2 / 2 per half-tent family, which passes 2^63 from
m = 23,500 or so at W = 32. Such a network is refused (`ExactnessError`), not exported
relying on wraparound; the families encoding combines each word first and is exact there."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.exactness import ExactnessError, Prover
from mlpc.compiler.network import Network, Space
from mlpc.compiler.onnx_graph import Graph, columns, i64
from mlpc.compiler.sparse import SparseLinear, SparseNetwork, lower_to_sparse


@dataclass(frozen=True, eq=False)
class Bucket:
    rows: np.ndarray  # original row ids, in the order the bucket outputs them
    width: int
    cols: np.ndarray  # (len(rows) * width,) original column ids (padding: 0)
    vals: np.ndarray  # (len(rows) * width,) weights (padding: 0)


def plan_buckets(counts: np.ndarray, op_cost: int) -> list[np.ndarray]:
    """Partition rows into groups padded to the group's widest row, minimising
    (padded entries + op_cost per group): a dynamic program over the distinct counts."""
    order = np.argsort(counts, kind="stable")
    distinct, first = np.unique(counts[order], return_index=True)
    sizes = np.diff(np.append(first, len(order)))
    k = len(distinct)
    best = [0.0] + [float("inf")] * k  # best[i]: cost of the first i distinct counts
    cut = [0] * (k + 1)
    for i in range(1, k + 1):
        rows = 0
        for j in range(i, 0, -1):  # group = distinct counts j-1 .. i-1
            rows += int(sizes[j - 1])
            cost = best[j - 1] + rows * max(int(distinct[i - 1]), 1) + op_cost
            if cost < best[i]:
                best[i], cut[i] = cost, j - 1
    groups = []
    i = k
    while i > 0:
        j = cut[i]
        groups.append(order[first[j] : (first[i] if i < k else len(order))])
        i = j
    return groups[::-1]


def sparse_buckets(f: SparseLinear, op_cost: int) -> list[Bucket]:
    counts = f.row_counts()
    starts = np.concatenate([[0], np.cumsum(counts)])
    buckets = []
    for rows in plan_buckets(counts, op_cost):
        width = max(int(counts[rows].max()), 1)
        cols = np.zeros((len(rows), width), dtype=np.int64)
        vals = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            n = counts[r]
            cols[i, :n] = f.cols[starts[r] : starts[r] + n]
            vals[i, :n] = f.vals[starts[r] : starts[r] + n]
        buckets.append(Bucket(np.asarray(rows, dtype=np.int64), width, cols.ravel(), vals.ravel()))
    return buckets


def flat_bound(space: Space, pre: bool = False) -> np.ndarray:
    """max |value| (or |pre-activation|) of each flat slot of a space, [1, width], as exact
    integers: the network's proven or declared range of each quantity."""
    out: list[int] = []
    for d in space.families:
        lo, hi = (d.pre_lo, d.pre_hi) if pre else (d.lo, d.hi)
        out.extend([max(abs(lo), abs(hi))] * d.length)
    for d in space.scalars:
        lo, hi = (d.pre_lo, d.pre_hi) if pre else (d.lo, d.hi)
        out.append(max(abs(lo), abs(hi)))
    return np.array(out, dtype=object).reshape(1, -1)


class FlatLoop:
    """One loop-carried int64 state [batch, n_state]; a step applies the network's lowered
    matrices (`lower_to_sparse`) in order, each as `_factor` writes it, with ReLU closing
    each layer. Weights are initializers of the main graph, shared by the K unrolled steps.
    Every op of a step is proven exact (`Prover`), each factor's output bounded by its
    space's ranges (in the order `_factor` gives its rows)."""

    def __init__(self, network: Network, main: Graph, options: ExportOptions) -> None:
        self.source = network
        self.network: SparseNetwork = lower_to_sparse(network)
        self.options = options
        self.main = main
        self.n = network.n_state
        # the sparse encoding's index rows expanded to the batch, which the proof reads
        self._index_values: dict[str, np.ndarray] = {}
        self.prover = Prover("int64", ChainMap(self._index_values, main.arrays))

    @staticmethod
    def check(network: Network, options: ExportOptions) -> None:
        """Nothing to refuse before emitting: a row sum that could pass 2^63 is refused as
        the step is emitted and proven (`emit`)."""

    def prepare(self, g: Graph, batch: Callable[[], str]) -> list[str]:
        """No loop-invariant values (the dense encoding's: the sparse one has its indices).
        The batch size is asked for all the same, as it always was for the lowered matrices:
        a dense step model keeps that `Shape` node, unread, and stays byte for byte what it
        was."""
        batch()
        return []

    def _factor(self, g: Graph, v: str, n: int, step: int) -> tuple[str, np.ndarray]:
        """The `n`-th factor applied to `v` (pre-activation), and the order of its rows."""
        raise NotImplementedError

    def _in_state_order(self, g: Graph, v: str, step: int) -> str:
        """The last factor's output `v` in the state's order."""
        return v

    def value_infos(self, suffix: str) -> list[onnx.ValueInfoProto]:
        return [i64(f"state{suffix}", ["batch", self.n])]

    def split(self, g: Graph, x0: str) -> list[str]:
        return [x0]

    def emit(self, g: Graph, carried: list[str], step: int) -> list[str]:
        try:
            return [self._step(g, carried[0], step)]
        except ExactnessError as exc:  # a row sum counts every word of a reduction whole
            raise ExactnessError(f"{exc} (use --weights families)") from None

    def _step(self, g: Graph, x: str, step: int) -> str:
        """One step from the flat state `x`; every op it emits is proven exact, and the next
        state within the bounds assumed of `x`."""
        v = x
        assumed = flat_bound(self.source.state)
        self.prover.begin(g.nodes)
        self.prover.given(x, assumed)
        spaces = iter(self.source.spaces)
        n = 0
        for layer in self.network.layers:
            for _ in layer.factors:
                space = next(spaces)
                v, order = self._factor(g, v, n, step)
                n += 1
                self.prover.hint(v, flat_bound(space, pre=space.relu)[:, order])
            if layer.relu:
                v = g.op("Relu", [v], f"s{step}/{layer.name}/relu", doc=layer.doc)
                self.prover.hint(v, flat_bound(space)[:, order])
        v = self._in_state_order(g, v, step)
        if np.any(self.prover.bound(g.nodes, v) > assumed):
            raise ExactnessError(f"step {step}: the next state may leave the range assumed "
                                 "of the state")
        return v

    def event_shape(self, K: int) -> list[int | str]:
        return ["batch", 3 * K]

    def tap(self, g: Graph, carried: list[str], start: int, end: int, hint: str) -> str:
        return columns(g, carried[0], start, end, hint, self.main)

    def join(self, g: Graph, finals: list[str]) -> str:
        return finals[0]


@dataclass(frozen=True, eq=False)
class Plan:
    """A factor as the sparse encoding applies it: its buckets (each with its expanded
    index and its weights, None when all are 1), its bias, the order of its output rows,
    and (the last factor's, if that order is not the state's) the index that reorders
    them."""

    factor: SparseLinear
    buckets: list[tuple[Bucket, str, str | None]]
    bias: str
    order: np.ndarray
    perm: str


class SparseLoop(FlatLoop):
    """The sparse encoding. Its factors gather with `GatherElements`, whose index tensors
    must have the batch dimension: each constant index row is expanded to the batch once,
    before the Loop (`prepare`), and the body reads those loop-invariant values."""

    def __init__(self, network: Network, main: Graph, options: ExportOptions) -> None:
        super().__init__(network, main, options)
        self._shared: dict[str, str] = {}
        self._indices: list[tuple[str, np.ndarray]] = []  # (name, constant index row)
        self._expanded: dict[str, str] = {}
        self.plans: list[Plan] = []
        position = np.arange(self.network.n_state)  # where each input row sits in the input
        factors = list(self.network.factors())
        for n, f in enumerate(factors):
            emitted = []
            for i, bk in enumerate(sparse_buckets(f, options.op_cost)):
                idx = self._index(f"{f.name}.b{i}.index", position[bk.cols])
                val = None
                if not np.all(bk.vals == 1):
                    val = main.const(f"{f.name}.b{i}.weight", bk.vals[None, :])
                emitted.append((bk, idx, val))
            # the factor outputs its rows bucket by bucket; the next factor reads that order
            order = np.concatenate([bk.rows for bk, _, _ in emitted])
            bias = main.const(f"{f.name}.bias", f.bias[order][None, :])
            perm = ""
            if n == len(factors) - 1 and not np.array_equal(order, np.arange(len(order))):
                perm = self._index(f"{f.name}.order", np.argsort(order))
            self.plans.append(Plan(f, emitted, bias, order, perm))
            position = np.argsort(order)

    def _index(self, hint: str, row: np.ndarray) -> str:
        name = self.main.name(hint)
        self._indices.append((name, row.astype(np.int64)))
        return name

    def prepare(self, g: Graph, batch: Callable[[], str]) -> list[str]:
        """Broadcast every constant index row to (batch, len) before the Loop; returns the
        expanded values (the Loop body reads them)."""
        size = batch()
        for name, row in self._indices:
            const = g.const(name + ".row", row[None, :])
            shape = g.op("Concat", [size, g.const(name + ".len", np.array([row.size]))],
                         name + ".shape", axis=0)
            self._expanded[name] = g.op("Expand", [const, shape], name)
            self._index_values[self._expanded[name]] = row[None, :]
        return list(self._expanded.values())

    def _in_state_order(self, g: Graph, v: str, step: int) -> str:
        last = self.plans[-1]
        if not last.perm:
            return v
        return g.op("GatherElements", [v, self._expanded[last.perm]], f"s{step}/state_order",
                    axis=1)

    def shared(self, key: str, array: np.ndarray) -> str:
        if key not in self._shared:
            self._shared[key] = self.main.const(key, array)
        return self._shared[key]

    def _factor(self, g: Graph, v: str, n: int, step: int) -> tuple[str, np.ndarray]:
        plan = self.plans[n]
        f = plan.factor
        parts = []
        for i, (bk, idx, val) in enumerate(plan.buckets):
            tag = f"s{step}/{f.name}/b{i}"
            gathered = g.op("GatherElements", [v, self._expanded[idx]], f"{tag}/gather", axis=1)
            prod = gathered if val is None else g.op("Mul", [gathered, val], f"{tag}/mul")
            if bk.width > 1:
                # row sums as a product with a column of ones: an int64 MatMul, exact because
                # its bound is proven (`Prover`); onnxruntime's int64 ReduceSum is exact only
                # to 2^53 (it accumulates in double); a (w, 1) column is ~4x faster than a
                # 1-D vector of ones (measured)
                shape = self.shared(f"shape_{len(bk.rows)}x{bk.width}",
                                    np.array([0, len(bk.rows), bk.width], dtype=np.int64))
                r = g.op("Reshape", [prod, shape], f"{tag}/rows")
                ones = self.shared(f"ones_{bk.width}", np.ones((bk.width, 1), dtype=np.int64))
                col = g.op("MatMul", [r, ones], f"{tag}/sum")
                flat = self.shared(f"shape_{len(bk.rows)}",
                                   np.array([0, len(bk.rows)], dtype=np.int64))
                prod = g.op("Reshape", [col, flat], f"{tag}/flat")
            parts.append(prod)
        cat = parts[0] if len(parts) == 1 else g.op("Concat", parts, f"s{step}/{f.name}/concat",
                                                    axis=1)
        return g.op("Add", [cat, plan.bias], f"s{step}/{f.name}", doc=f.doc), plan.order


ENCODING = SparseLoop  # --weights sparse (limits.ENCODINGS)
