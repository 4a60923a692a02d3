"""The families encoding (`--weights families`, the default): the network's own structure
as ONNX ops. A space's scalars are one `MatMul` with a constant matrix; its families that
share a formula's vector part are one stacked tensor `[batch, k, n]` (vector part
`[batch, 1, n]` + per-family scalar part `[batch, k, 1]`, then `Max(., 0)`); a reduction over
j is a `MatMul` of the stacked families with a constant combination and a column of weights
(ones, or a weighted reduction's). int64 or float64.

Exactness: every op a step emits is proven in range by `compiler/exactness.py` (`Prover`,
run on each step as it is emitted; see its docstring for the bound and why each dtype holds
it). Two choices here depend on that proof, for both dtypes:

- *Folding* (`Column`): a linear space's matrix is left pending and multiplied into the next
  matrix (one MatMul fewer) only when the folded matrix W2 W1 satisfies
  sum_k |(W2 W1)[i, k]| * max|x[k]| < LIMIT (2^63 int64, 2^53 float64) for the tensor x it
  is applied to. Otherwise W1 x is computed first (its own bound checked) and W2 applied
  to it.
- *Reductions* (`_reduce`): the sum over j of each whole family (then the families'
  combination) when those sums are proven in range; otherwise each word's combination
  first, whose range the network declares, then its sum over j.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.exactness import ExactnessError, Prover, exact, magnitude
from mlpc.compiler.network import (
    FLOAT64_EXACT,
    Definition,
    Network,
    RangeError,
    Space,
    matched_units,
    scalarise_families,
)
from mlpc.compiler.onnx_graph import ExportError, Graph, columns

# A family of at most this many units that reads no family and is only summed (a small table
# of ramps) is computed with its space's scalars: a row of their one MatMul per unit costs
# less than the 4 ops of a stack of its own (Add, Max, the sum's MatMul, a Reshape).
SCALAR_FAMILY_LIMIT = 64
# what one op more costs, in int64 products: on one onnxruntime 1.32 thread at batch 1 a
# MatMul costs about 0.7 us beside 0.45 ns per int64 product (no BLAS for int64; measured on
# the 2-core development machine, W [r, c] @ x [1, c, 1] for r, c from 12 to 1,906). A
# cheaper way of computing the same values is taken only when it saves more than this.
OP_PRODUCTS = 1500


def families_form(network: Network, dtype: str) -> Network:
    """The network as this encoding emits it: short tables as scalar units
    (`scalarise_families`), unless that needs larger bounds than the dtype holds."""
    try:
        out = scalarise_families(network, SCALAR_FAMILY_LIMIT)
    except RangeError:
        return network
    if dtype == "float64" and out.max_magnitude() >= FLOAT64_EXACT:
        return network
    return out


@dataclass(frozen=True, eq=False)
class Column:
    """A space's scalars as a column [batch, r, 1]: `tensor` itself, or `matrix @ tensor`
    not yet computed (`matrix` as exact integers, `rows` the proven bound of each entry of
    the product). A linear space's product is left pending so that the next space may
    multiply `tensor` by the product of both matrices (one MatMul fewer). Invariant: a
    pending `matrix` is itself provably exact on `tensor` (`FamilyEmitter._exact_on`), so it
    can always be computed on its own when a fold is not."""

    tensor: str
    matrix: np.ndarray | None = None
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class Ref:
    """Where a family's values live: `tensor` is [batch, k, n]; `index` picks one of the k
    (None: k is 1 and the tensor is the family itself)."""

    tensor: str
    index: int | None
    k: int
    n: int
    offset: int = 0  # the tensor holds family[j] + offset * j (single families only)


def family_bound(d: Definition, offset: int = 0) -> np.ndarray:
    """max |value + offset * j| over each unit j of family `d` ([1, 1, n], exact integers)."""
    p = np.asarray(d.positions, dtype=object) * offset
    return np.maximum(abs(d.lo + p), abs(d.hi + p)).reshape(1, 1, d.length)


def column_bound(defs: Sequence[Definition], pre: bool = False) -> np.ndarray:
    """max |value| (or |pre-activation|) of each scalar, and 1 for the constant-1 entry:
    the bound of a column [batch, r + 1, 1]."""
    ends = [(d.pre_lo, d.pre_hi) if pre else (d.lo, d.hi) for d in defs]
    return np.array([max(abs(lo), abs(hi)) for lo, hi in ends] + [1],
                    dtype=object).reshape(1, -1, 1)


def carried_offsets(network: Network) -> dict[str, int]:
    """The slope each state family is carried with inside the Loop: `X + c j` instead of X
    when the first layer's units read X as `X[j] + c j + ...` (c = -S here), so that the
    `+ c j` of every such unit, and of the memory's next read, costs no op. An affine change
    of variables of the loop state, undone when the Loop ends; each value it produces is a
    partial sum of a definition's terms, so the magnitude bound covers it."""
    first = network.spaces[0]
    offsets = {}
    for d in network.state.families:
        slopes = [f.expr.slope for f in first.families
                  if f.expr.vectors == ((d.name, 1),) and not f.passthrough]
        offsets[d.name] = slopes[0] if slopes else 0
    return offsets


class FamilyEmitter:
    """Emits one step of the family form. Weights are initializers of the main graph,
    shared by the K unrolled steps. Carried state: each state family as [batch, 1, n] and
    the scalars as a column [batch, ns + 1, 1] whose last entry is the constant 1 (so every
    bias is a column of the weight matrix, as in an MLP with a bias unit: no `Add` per bias).
    """

    def __init__(self, network: Network, main: Graph, dtype: str) -> None:
        self.network = network
        self.main = main
        self.np_dtype = np.float64 if dtype == "float64" else np.int64
        self.onnx_dtype = TensorProto.DOUBLE if dtype == "float64" else TensorProto.INT64
        self.zero = main.const("zero", np.array(0, dtype=self.np_dtype))
        self.offsets = carried_offsets(network)
        self.prover = Prover(dtype, main.arrays)
        self._products: dict[tuple[str, int], str] = {}  # pending products computed
        # the positions of each family (a name stands for the same units in every space)
        self._positions = {d.name: d.positions for space in (network.state, *network.spaces)
                           for d in space.families}

    def state_bounds(self, names: Sequence[str]) -> list[np.ndarray]:
        """The proven bound of each carried value (the state families, each with its
        offset, then the scalars' column)."""
        by_name = {d.name: d for d in self.network.state.families}
        return ([family_bound(by_name[n], self.offsets[n]) for n in names]
                + [column_bound(self.network.state.scalars)])

    def c(self, hint: str, array: np.ndarray) -> str:
        return self.main.const(hint, np.asarray(array).astype(self.np_dtype))

    def emit(self, g: Graph, families: dict[str, str], scalars: str, step: int
             ) -> tuple[dict[str, str], str]:
        """One step from the carried values; every op it emits is proven exact (`Prover`),
        and so is the induction: the values it carries on are within the bounds assumed of
        the values it was given."""
        assumed = self.state_bounds(list(families))
        self.prover.begin(g.nodes)
        for t, b in zip([*families.values(), scalars], assumed, strict=True):
            self.prover.given(t, b)
        lengths = {d.name: d.length for d in self.network.state.families}
        env = {name: Ref(t, None, 1, lengths[name], self.offsets[name])
               for name, t in families.items()}
        source = self.network.state
        column = Column(scalars)
        for space in self.network.spaces:
            env, column = self._space(g, space, source, env, column, f"s{step}/{space.name}")
            source = space
        scalars = self._computed(g, column, f"s{step}/{source.name}/scalars")
        out = {}
        last = {d.name: d for d in source.families}
        state = [d.name for d in self.network.state.families]
        step_like = all(name in last for name in state)  # else the read-out's own results
        for d in [last[n] for n in state] if step_like else source.families:
            ref = env[d.name]
            value = ref.tensor if ref.index is None else self._pick(g, ref, d.name)
            carried = self.offsets.get(d.name, 0)  # a read-out's families carry none
            if ref.offset != carried:
                value = g.op("Add", [value, self.ramp(carried - ref.offset, d.positions)],
                             f"{d.name}_offset")
                self.prover.hint(value, family_bound(last[d.name], carried))
            out[d.name] = value
        if not step_like:
            return out, scalars  # the read-out: its results replace no state
        for t, b in zip([*out.values(), scalars], assumed, strict=True):
            if np.any(np.broadcast_to(self.prover.bound(g.nodes, t), b.shape) > b):
                raise ExactnessError(f"step {step}: {t} may leave the range assumed of the "
                                     "state it replaces")
        return out, scalars

    def ramp(self, slope: int, positions: tuple[int, ...]) -> str:
        """slope * j over a family's positions, as a [1, 1, n] constant."""
        return self.c("slope", slope * np.asarray(positions).reshape(1, 1, len(positions)))

    def _pick(self, g: Graph, ref: Ref, hint: str) -> str:
        assert ref.index is not None
        i = ref.index
        return g.op("Slice", [ref.tensor, self.main.const("i0", np.array([i])),
                              self.main.const("i1", np.array([i + 1])),
                              self.main.const("axis1", np.array([1]))], hint)

    def _exact_on(self, g: Graph, matrix: np.ndarray, tensor: str) -> bool:
        """Whether `MatMul(matrix, tensor)` is provably exact: every weight below the limit
        and sum_k |matrix[i, k]| * max|tensor[k]| below it for every row i."""
        return self._exact_with(matrix, self.prover.bound(g.nodes, tensor))

    def _fold(self, g: Graph, w: np.ndarray, scalars: Column, hint: str,
              places: Sequence[np.ndarray] = (), sums: Sequence[str] = (),
              unfolded: str = "") -> tuple[np.ndarray, list[str]]:
        """The weights and the tensors (to be concatenated) that compute `w @ scalars`
        (+ `places[i] @ sums[i]`, the reductions' sums). With a pending matrix P on x:
        - w P applied to x (one MatMul fewer) when that is provably exact and costs no
          more products than two MatMuls (with one op counted as `OP_PRODUCTS`);
        - else, when it costs fewer products, P's rows U that cannot be folded computed
          first (their declared ranges bound them) and the others folded:
          w[:, ~U] P[~U] on x beside w[:, U] on P[U] x (`_unfolded_rows`);
        - else P x computed, and w applied to it."""
        bounds = [self.prover.bound(g.nodes, t) for t in sums]
        if scalars.matrix is None:
            return np.concatenate([exact(w), *places], axis=1), [scalars.tensor, *sums]
        x, P = scalars.tensor, scalars.matrix
        bx = self.prover.bound(g.nodes, x)
        extra = sum(p.shape[1] for p in places)
        o, (r, n) = w.shape[0], P.shape
        folded = np.concatenate([np.matmul(exact(w), P), *places], axis=1)
        if (o * n <= r * n + o * r + OP_PRODUCTS
                and self._exact_with(folded, np.concatenate([bx, *bounds], axis=1))):
            return folded, [x, *sums]

        def unfold() -> tuple[np.ndarray, list[str]]:
            return (np.concatenate([exact(w), *places], axis=1),
                    [self._computed(g, scalars, unfolded or f"{hint}_unfolded"), *sums])

        assert scalars.rows is not None
        U = self._unfolded_rows(w, P, bx, scalars.rows, places, bounds)
        if U is None or (len(U) * n + o * (n + len(U) + extra) + (0 if sums else OP_PRODUCTS)
                         >= r * n + o * (r + extra)):
            return unfold()
        keep = np.setdiff1d(np.arange(r), U)
        partly = np.concatenate([np.matmul(exact(w[:, keep]), P[keep]), exact(w[:, U]),
                                 *places], axis=1)
        rows_u = scalars.rows[:, U]
        if not self._exact_with(partly, np.concatenate([bx, rows_u, *bounds], axis=1)):
            return unfold()
        first = g.op("MatMul", [self.c("weights", P[U]), x], f"{hint}_first")
        self.prover.hint(first, rows_u)
        return partly, [x, first, *sums]

    def _unfolded_rows(self, w: np.ndarray, P: np.ndarray, bx: np.ndarray, rows: np.ndarray,
                       places: Sequence[np.ndarray], bounds: Sequence[np.ndarray]
                       ) -> np.ndarray | None:
        """The rows U of a pending matrix P to compute before w is applied, so that the
        rest folds exactly: for each output row whose folded bound (at most sum_i |w_i| |P_i|
        max|x|) reaches half the limit, the rows with the largest excess over their own
        range are taken out until it no longer does (the exact check is the caller's)."""
        half = self.prover.limit / 2
        aw = np.abs(w.astype(np.float64))
        blame = aw * (np.abs(P.astype(np.float64)) @ bx.reshape(-1).astype(np.float64))
        own = aw * rows.reshape(-1).astype(np.float64)
        fixed = sum((np.abs(p.astype(np.float64)) @ b.reshape(-1).astype(np.float64)
                     for p, b in zip(places, bounds, strict=True)), np.zeros(w.shape[0]))
        chosen: set[int] = set()
        for i in range(w.shape[0]):
            total = fixed[i] + sum(own[i, k] if k in chosen else blame[i, k]
                                   for k in range(w.shape[1]))
            for k in map(int, np.argsort(own[i] - blame[i])):
                if total < half or blame[i, k] <= own[i, k]:
                    break
                if k not in chosen:
                    chosen.add(k)
                    total += own[i, k] - blame[i, k]
            if total >= half:
                return None
        return np.array(sorted(chosen), dtype=np.int64) if chosen else None

    def _times(self, g: Graph, w: np.ndarray, scalars: Column, hint: str) -> str:
        """MatMul of a weight matrix and a column (folding a pending matrix into w)."""
        weights, tensors = self._fold(g, w, scalars, hint)
        column = (tensors[0] if len(tensors) == 1 else
                  g.op("Concat", tensors, f"{hint}_column", axis=1))
        return g.op("MatMul", [self.c("weights", weights), column], hint)

    def _computed(self, g: Graph, scalars: Column, hint: str) -> str:
        """The column's value as a tensor: a pending product is computed once, however
        many consumers need it."""
        if scalars.matrix is None:
            return scalars.tensor
        key = (scalars.tensor, id(scalars.matrix))
        if key not in self._products:
            out = g.op("MatMul", [self.c("weights", scalars.matrix), scalars.tensor], hint)
            assert scalars.rows is not None
            self.prover.hint(out, scalars.rows)
            self._products[key] = out
        return self._products[key]

    def _space(self, g: Graph, space: Space, source: Space, env: dict[str, Ref],
               scalars: Column, tag: str) -> tuple[dict[str, Ref], Column]:
        src = {d.name: k for k, d in enumerate(source.scalars)}
        new_env: dict[str, Ref] = {}
        pending: dict[tuple, list[Definition]] = {}
        for d in space.families:
            if d.passthrough and (space.relu or not d.expr.scalars):
                new_env[d.name] = env[d.expr.vectors[0][0]]
            elif space.relu:
                key = (d.expr.vectors, d.expr.slope, d.positions)
                pending.setdefault(key, []).append(d)
            else:
                tensor, offset = self._linear_family(g, d, env, scalars, src, tag)
                new_env[d.name] = Ref(tensor, None, 1, d.length, offset)
        groups = list(pending.values())
        # a linear space has no stacks: its scalars are `_scalars`' (perhaps left pending)
        parts = (self._shared_scalar_parts(g, space, groups, env, scalars, src, tag)
                 if space.relu else [None])
        for i, group in enumerate(groups):
            stacked = self._stack(g, group, env, parts[i], f"{tag}/stack{i}", space.doc)
            for k, d in enumerate(group):
                new_env[d.name] = Ref(stacked, k, len(group), d.length)
        out = self._scalars(g, space, env, scalars, src, tag, parts[-1])
        return new_env, out

    def _shared_scalar_parts(self, g: Graph, space: Space, groups: list[list[Definition]],
                             env: dict[str, Ref], scalars: Column, src: dict[str, int],
                             tag: str) -> list[str | None]:
        """The scalar parts of every stack ([batch, k, 1] each) and, when the space has no
        reductions, its scalars too: one MatMul of the source scalars, then `Split`."""
        whole = not self._reductions(space, env)
        blocks = [self._weights(group, src, False) for group in groups]
        if whole:
            blocks.append(self._weights(space.scalars, src, True))
        if not blocks:
            return [None]
        if len(blocks) == 1:
            one = self._times(g, blocks[0], scalars, f"{tag}/scalar_part")
            if whole:
                self.prover.hint(one, column_bound(space.scalars, pre=True))
            return [one] if whole else [one, None]
        both = self._times(g, np.concatenate(blocks), scalars, f"{tag}/scalar_parts")
        sizes = self.main.const("sizes", np.array([b.shape[0] for b in blocks]))
        names = [g.name(f"{tag}/part{i}") for i in range(len(blocks))]
        g.nodes.append(helper.make_node("Split", [both, sizes], names, name=names[0], axis=1))
        if whole:  # the space's own pre-activations (and the 1)
            self.prover.hint(names[-1], column_bound(space.scalars, pre=True))
        return names + ([] if whole else [None])

    def _vector_part(self, g: Graph, expr_vectors: tuple[tuple[str, int], ...], slope: int,
                     positions: tuple[int, ...], env: dict[str, Ref], tag: str,
                     keep_offset: bool = False
                     ) -> tuple[str | None, int]:
        """sum c * family[j] + slope * j as a [batch, 1, n] tensor (None if zero), and the
        offset slope it still holds (0 unless `keep_offset`)."""
        v, offset = self._combine(g, expr_vectors, env, tag, positions)
        missing = slope - offset
        if keep_offset and v is not None:
            return v, -missing
        if missing:
            ramp = self.ramp(missing, positions)
            v = ramp if v is None else g.op("Add", [v, ramp], f"{tag}/plus_slope")
        return v, 0

    def _combine(self, g: Graph, terms: tuple[tuple[str, int], ...], env: dict[str, Ref],
                 tag: str, positions: tuple[int, ...] | None = None
                 ) -> tuple[str | None, int]:
        """sum c * family[j] and the slope it carries (from families carried with one),
        over `positions`: families over other units are combined over theirs first, then
        matched by position once (`_matched`)."""
        by_units: dict[tuple[int, ...] | None, list[tuple[str, int]]] = {}
        for name, c in terms:
            units = self._positions[name]
            by_units.setdefault(None if positions is None or units == positions else units,
                                []).append((name, c))
        parts, offset = [], 0
        for units, group in by_units.items():
            total, carried = self._combine_same(g, group, env, tag)
            if total is not None and units is not None:
                total, carried = self._matched(g, Ref(total, None, 1, len(units), carried),
                                               units, positions or (), tag)
            if total is not None:
                parts.append(total)
                offset += carried
        total = None
        for p in parts:
            total = p if total is None else g.op("Add", [total, p], f"{tag}/add")
        return total, offset

    def _combine_same(self, g: Graph, terms: list[tuple[str, int]], env: dict[str, Ref],
                      tag: str) -> tuple[str | None, int]:
        """sum c * family[j] of families over the same units, and the slope it carries."""
        by_tensor: dict[str, list[tuple[Ref, int]]] = {}
        for name, c in terms:
            ref = env[name]
            by_tensor.setdefault(ref.tensor, []).append((ref, c))
        parts = []
        offset = 0
        for tensor, members in by_tensor.items():
            if len(members) == 1 and members[0][0].index is None:
                ref, c = members[0]
                offset += c * ref.offset
                parts.append(tensor if c == 1 else
                             g.op("Mul", [tensor, self.c("coeff", np.array(c))], f"{tag}/scale"))
                continue
            row = np.zeros((1, members[0][0].k))
            for ref, c in members:
                row[0, ref.index or 0] += c
            parts.append(g.op("MatMul", [self.c("combination", row), tensor], f"{tag}/combine"))
        total = None
        for p in parts:
            total = p if total is None else g.op("Add", [total, p], f"{tag}/add")
        return total, offset

    def _weights(self, defs: Sequence[Definition], src: dict[str, int], keep_one: bool
                 ) -> np.ndarray:
        """(len(defs) [+ 1], ns + 1): const + sum c * scalar of each definition, the bias in
        the last column (the constant-1 input); with `keep_one`, a last row copies the 1."""
        w = np.zeros((len(defs) + keep_one, len(src) + 1))
        for k, d in enumerate(defs):
            w[k, -1] = d.expr.const
            for name, c in d.expr.scalars:
                w[k, src[name]] += c
        if keep_one:
            w[-1, -1] = 1
        return w

    def _stack(self, g: Graph, group: list[Definition], env: dict[str, Ref], col: str | None,
               tag: str, doc: str) -> str:
        """ReLU(vector part [batch, 1, n] + scalar part `col` [batch, k, 1]): [batch, k, n]."""
        assert col is not None
        d0 = group[0]
        vec, _ = self._vector_part(g, d0.expr.vectors, d0.expr.slope, d0.positions, env, tag)
        pre = col if vec is None else g.op("Add", [vec, col], f"{tag}/pre")
        self.prover.hint(pre, np.array([max(abs(d.pre_lo), abs(d.pre_hi)) for d in group],
                                       dtype=object).reshape(1, -1, 1))
        names = ", ".join(d.name for d in group)
        out = g.op("Max", [pre, self.zero], f"{tag}/relu", doc=f"ReLU units {names}: {doc}")
        self.prover.hint(out, np.array([max(abs(d.lo), abs(d.hi)) for d in group],
                                       dtype=object).reshape(1, -1, 1))
        return out

    def _matched(self, g: Graph, ref: Ref, source: tuple[int, ...],
                 positions: tuple[int, ...], tag: str) -> tuple[str, int]:
        """A family over the units `source`, at `positions` instead (a family defined with
        `restricted`): its units there, 0 where it has none: `Gather`s at constant indices
        (from the family with one 0 unit after it when some are missing). Returns the
        tensor [batch, 1, len(positions)] and the slope offset it carries."""
        tensor = ref.tensor
        if ref.index is not None:
            tensor = g.op("Gather", [tensor, self.main.const("row", np.array([ref.index]))],
                          f"{tag}/row", axis=1)
        units = matched_units(source, positions)
        n = len(source)
        if -1 in units:
            assert ref.offset == 0, "a family carried with a slope is not widened"
            last = self.main.const("last", np.array([n - 1]))
            zero = g.op("Mul", [g.op("Slice", [tensor, last, self.main.const("end", np.array(
                [n])), self.main.const("axis2", np.array([2]))], f"{tag}/last_unit"),
                self.zero], f"{tag}/zero_unit")
            tensor = g.op("Concat", [tensor, zero], f"{tag}/with_zero", axis=2)
        take = self.main.const("units", np.array([u if u >= 0 else n for u in units],
                                                 dtype=np.int64))
        return g.op("Gather", [tensor, take], f"{tag}/units", axis=2), ref.offset

    def _linear_family(self, g: Graph, d: Definition, env: dict[str, Ref], scalars: Column,
                       src: dict[str, int], tag: str) -> tuple[str, int]:
        """A linear family as a tensor, still carrying the offset of its sources."""
        v, offset = self._vector_part(g, d.expr.vectors, d.expr.slope, d.positions, env,
                                      f"{tag}/{d.name}", keep_offset=True)
        if d.expr.scalars or d.expr.const:
            col = self._times(g, self._weights([d], src, False), scalars,
                              f"{tag}/{d.name}/scalar_part")
            v = col if v is None else g.op("Add", [v, col], f"{tag}/{d.name}/plus")
        assert v is not None
        self.prover.hint(v, family_bound(d, offset))
        return v, offset

    def _scalars(self, g: Graph, space: Space, env: dict[str, Ref], scalars: Column,
                 src: dict[str, int], tag: str, done: str | None = None) -> Column:
        """The space's scalars (and the constant 1) as one MatMul of the source scalars and
        the sums over j of its reductions, concatenated: [batch, ns + 1, 1]; `done` when
        that product was already computed (see `_shared_scalar_parts`). A linear space's
        product is left pending when the dtype allows (`Column`)."""
        if done is not None:
            assert space.relu
            return Column(self._relu_column(g, space, done, tag))
        w = exact(self._weights(space.scalars, src, True))
        sums, places = [], []
        for ref, rows in self._reductions(space, env).values():
            total, place = self._reduce(g, ref, rows, len(space.scalars) + 1, tag)
            sums.append(total)
            places.append(exact(place))
        weights, tensors = self._fold(g, w, scalars, f"{tag}/scalars", places, sums,
                                      f"{tag}/unfolded")
        return self._apply(g, space, weights, tensors, tag)

    def _exact_with(self, matrix: np.ndarray, bound: np.ndarray) -> bool:
        """`_exact_on` for a column whose entries have the bounds `bound` ([1, r, 1])."""
        w = magnitude(matrix)
        return self.prover.fits(w) and self.prover.fits(np.matmul(w, bound))

    def _apply(self, g: Graph, space: Space, w: np.ndarray, inputs: list[str], tag: str
               ) -> Column:
        """`w` times the concatenated `inputs`: a linear space's product left pending when it
        is provably exact on its own (`Column`), else computed (a ReLU space's, with ReLU)."""
        column = (inputs[0] if len(inputs) == 1 else
                  g.op("Concat", inputs, f"{tag}/scalars_and_sums", axis=1))
        if not space.relu and self._exact_on(g, w, column):
            return Column(column, w, column_bound(space.scalars))
        out = g.op("MatMul", [self.c("weights", w), column], f"{tag}/scalars")
        self.prover.hint(out, column_bound(space.scalars, pre=space.relu))
        return Column(self._relu_column(g, space, out, tag) if space.relu else out)

    def _relu_column(self, g: Graph, space: Space, pre: str, tag: str) -> str:
        """ReLU of a space's scalar column [batch, ns + 1, 1], as `Max` with a column of
        zeros [1, ns + 1, 1]: onnxruntime walks a scalar 0 against a trailing axis of 1
        element by element (about 15 ns each, measured), a zero column along with it."""
        zeros = self.c("zeros", np.zeros((1, len(space.scalars) + 1, 1)))
        out = g.op("Max", [pre, zeros], f"{tag}/relu_scalars", doc=space.doc)
        self.prover.hint(out, column_bound(space.scalars))
        return out

    def _reductions(self, space: Space, env: dict[str, Ref]
                    ) -> dict[str, tuple[Ref, list[Sum]]]:
        """For each stacked tensor: (combination over its k families, output scalar,
        weights over its units) of each reduction over it."""
        found: dict[str, tuple[Ref, list[Sum]]] = {}
        for out, d in enumerate(space.scalars):
            for red in d.expr.sums:
                first = env[red.terms[0][0]]
                comb = np.zeros(first.k)
                for name, c in red.terms:
                    ref = env[name]
                    if ref.offset:
                        raise ExportError(f"{space.name}.{d.name}: a reduction over a family "
                                          "carried with an offset")
                    if ref.tensor != first.tensor:
                        raise ExportError(f"{space.name}.{d.name}: a reduction over families "
                                          "of different stacks")
                    comb[ref.index or 0] += c
                found.setdefault(first.tensor, (first, []))[1].append(
                    Sum(comb, out, red.weights, max(abs(red.lo), abs(red.hi))))
        return found

    def _reduce(self, g: Graph, ref: Ref, rows: list[Sum], n_out: int, tag: str
                ) -> tuple[str, np.ndarray]:
        """The (weighted) sums over j a space needs from one stacked tensor ([batch, r, 1])
        and the matrix (n_out, r) that places them into its scalars.

        Two ways, each refused unless provably exact:
        - *whole*: the sum over j of each of the k families, combined afterwards by `place`
          (one MatMul of k n c products, c the distinct weight columns): sum_j |w_j| *
          max|family[j]| and sum |place| * those below the limit;
        - *combined*: each distinct combination of the families per word first (u of them;
          their range is declared: one word's combination), then its sums over j (two
          MatMuls of u k n + u n c products). A single family's sum can be far larger than
          the combination the network uses (the half-tents' sum reaches S m^2 / 2 where the
          combination's is S m), and k families summed whole cost k / u times the products.
        The whole sums are taken when they are exact and cost no more than the combination
        (one op more, counted as `OP_PRODUCTS`)."""
        columns = list(dict.fromkeys(r.weights or (1,) * ref.n for r in rows))
        ones = np.asarray(columns).T.reshape(ref.n, len(columns))
        weights = self.c("ones", ones)
        combs = list(dict.fromkeys(tuple(r.comb.tolist()) for r in rows))
        whole = np.matmul(self.prover.bound(g.nodes, ref.tensor), magnitude(ones))
        place = np.zeros((n_out, ref.k * len(columns)), dtype=np.int64)
        for r in rows:
            q = columns.index(r.weights or (1,) * ref.n)
            place[r.out, q :: len(columns)] += r.comb.astype(np.int64)
        whole_cost = ref.k * ref.n * len(columns)
        combined_cost = len(combs) * ref.n * (ref.k + len(columns)) + OP_PRODUCTS
        if (self.prover.fits(whole) and self._exact_with(place, whole.reshape(1, -1, 1))
                and (ref.k == 1 or whole_cost <= combined_cost)):
            sums = g.op("MatMul", [ref.tensor, weights], f"{tag}/sums")  # [batch, k, columns]
        else:
            comb = np.array(combs, dtype=np.int64).reshape(len(combs), ref.k)
            words = g.op("MatMul", [self.c("combination", comb), ref.tensor], f"{tag}/words")
            word = [min(r.word for r in rows if tuple(r.comb.tolist()) == c) for c in combs]
            self.prover.hint(words, np.array(word, dtype=object).reshape(1, -1, 1))
            sums = g.op("MatMul", [words, weights], f"{tag}/sums")  # [batch, u, columns]
            place = np.zeros((n_out, len(combs) * len(columns)), dtype=np.int64)
            for r in rows:
                i = combs.index(tuple(r.comb.tolist()))
                place[r.out, i * len(columns) + columns.index(r.weights or (1,) * ref.n)] += 1
        if len(columns) > 1:  # [batch, rows, columns] as one column
            sums = g.op("Reshape", [sums, self.main.const("column", np.array([0, -1, 1]))],
                        f"{tag}/sums_column")
        return sums, place


@dataclass(frozen=True)
class Sum:
    """One reduction over a stacked tensor: its combination of the k families, the scalar
    it adds to, its weights over the units (() = all 1) and the bound of one unit's
    combination (declared by the network)."""

    comb: np.ndarray
    out: int
    weights: tuple[int, ...]
    word: int


class FamilyLoop:
    """The families encoding as loop-carried tensors: each state family [batch, 1, n] and
    the scalars as a column [batch, ns + 1, 1] (the last entry the constant 1), in the
    model's dtype."""

    def __init__(self, network: Network, main: Graph, options: ExportOptions) -> None:
        self.source = network
        network = families_form(network, options.dtype)
        self.network = network
        self.emitter = FamilyEmitter(network, main, options.dtype)
        self.prover = self.emitter.prover
        self.main = main
        self.dtype = options.dtype
        self.names = [d.name for d in network.state.families] + ["scalars"]
        self.n_families = sum(d.length for d in network.state.families)
        self.ns = len(network.state.scalars)
        self._check_offsets()

    @staticmethod
    def check(network: Network, options: ExportOptions) -> None:
        """Nothing beyond the dtype's exactness, which the exporter checks for every
        encoding: a family's reduction is combined per word where its sum could not be."""

    def prepare(self, g: Graph, batch: Callable[[], str]) -> list[str]:
        return []  # its constants are initializers: nothing to broadcast to the batch

    def _check_offsets(self) -> None:
        """`split` adds each family's offset ramp c * j to the state (`carried_offsets`) and
        `join` subtracts it: one Add or Sub of a state value X and c * j each, bounded by
        max|X| + |c| * max j for every state within the state's ranges (the Loop keeps its
        states there: `FamilyEmitter.emit`)."""
        limit = self.emitter.prover.limit
        for d in self.network.state.families:
            reach = abs(self.emitter.offsets[d.name]) * max(abs(p) for p in d.positions)
            if max(abs(d.lo), abs(d.hi)) + reach >= limit:
                raise ExactnessError(f"the offset of state family {d.name} can reach "
                                     f"{max(abs(d.lo), abs(d.hi)) + reach} >= {limit}")

    def value_infos(self, suffix: str) -> list[onnx.ValueInfoProto]:
        t = self.emitter.onnx_dtype
        infos = [helper.make_tensor_value_info(f"{d.name}{suffix}", t, ["batch", 1, d.length])
                 for d in self.network.state.families]
        infos.append(helper.make_tensor_value_info(f"scalars{suffix}", t,
                                                   ["batch", self.ns + 1, 1]))
        return infos

    def split(self, g: Graph, x0: str) -> list[str]:
        out, at = [], 0
        cast = self.dtype == "float64"
        x = g.op("Cast", [x0], "state_as_float", to=TensorProto.DOUBLE) if cast else x0
        axis1 = g.const("axis1", np.array([1]))
        for d in self.network.state.families:
            part = columns(g, x, at, at + d.length, f"initial_{d.name}")
            part = g.op("Unsqueeze", [part, axis1], f"initial_{d.name}_3d")
            offset = self.emitter.offsets[d.name]
            if offset:
                part = g.op("Add", [part, self.emitter.ramp(offset, d.positions)],
                            f"initial_{d.name}_offset")
            out.append(part)
            at += d.length
        scal = columns(g, x, at, at + self.ns, "initial_scalars")
        ones = g.op("Slice", [g.op("Add", [g.op("Mul", [x, self.emitter.zero], "zeros"),
                                           g.const("one_f", np.array(1).astype(
                                               self.emitter.np_dtype))], "ones"),
                              g.const("c0", np.array([0])), g.const("c1", np.array([1])),
                              axis1], "one_column")
        both = g.op("Concat", [scal, ones], "scalars_and_one", axis=1)
        out.append(g.op("Unsqueeze", [both, g.const("axis2", np.array([2]))], "scalars_col"))
        return out

    def emit(self, g: Graph, carried: list[str], step: int) -> list[str]:
        families = dict(zip(self.names[:-1], carried[:-1], strict=True))
        new, scalars = self.emitter.emit(g, families, carried[-1], step)
        return [new[n] for n in self.names[:-1]] + [scalars]

    def readout(self, g: Graph, x: str) -> str:
        """The network applied once to the flat int64 state `x`, as the read-out: its last
        space holds results, not a next state; returns that space flat, int64 [batch, width]
        (its families, then its scalars)."""
        parts = self.split(g, x)
        families, scalars = self.emitter.emit(
            g, dict(zip(self.names[:-1], parts[:-1], strict=True)), parts[-1], 0)
        last = self.network.spaces[-1]
        assert [d.name for d in last.families] == [d.name for d in self.source.spaces[-1].families]
        flat = g.const("r_flat", np.array([0, -1]))
        pieces = [g.op("Reshape", [families[d.name], flat], f"r_{d.name}") for d in last.families]
        column = g.op("Reshape", [scalars, flat], "r_scalars_flat")
        pieces.append(columns(g, column, 0, len(last.scalars), "r_scalars"))
        value = g.op("Concat", pieces, "results_raw", axis=1)
        if self.dtype == "float64":
            value = g.op("Cast", [value], "results_int", to=TensorProto.INT64)
        return value

    def event_shape(self, K: int) -> list[int | str]:
        return ["batch", 3 * K, 1]

    def tap(self, g: Graph, carried: list[str], start: int, end: int, hint: str) -> str:
        """Flat state slots [start, end) (scalars only) as int64 [batch, end - start, 1]."""
        m = self.main
        cols = g.op("Slice", [carried[-1], m.const("c_start", np.array([start - self.n_families])),
                              m.const("c_end", np.array([end - self.n_families])),
                              m.const("axis1", np.array([1]))], hint)
        if self.dtype == "float64":
            cols = g.op("Cast", [cols], f"{hint}_int", to=TensorProto.INT64)
        return cols

    def join(self, g: Graph, finals: list[str]) -> str:
        flat = g.const("flat2", np.array([0, -1]))
        parts = []
        for d, v in zip(self.network.state.families, finals[:-1], strict=True):
            offset = self.emitter.offsets[d.name]
            if offset:
                v = g.op("Sub", [v, self.emitter.ramp(offset, d.positions)],
                         f"final_{d.name}_j")
            parts.append(g.op("Reshape", [v, flat], f"final_{d.name}"))
        scal = g.op("Reshape", [finals[-1], flat], "final_scalars_flat")
        parts.append(columns(g, scal, 0, self.ns, "final_scalars"))
        x = g.op("Concat", parts, "final_state_raw", axis=1)
        if self.dtype == "float64":
            x = g.op("Cast", [x], "final_state_int", to=TensorProto.INT64)
        return x


ENCODING = FamilyLoop  # --weights families (limits.ENCODINGS)
