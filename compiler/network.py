"""The network as data: sparse affine maps, ReLU layers, and a small builder for them.

Nothing in this module knows about SUBLEQ. A `Network` is the step function

    F(x) = A_L(ReLU(A_{L-1}( ... ReLU(A_1 x) ... )))

where every affine map `A_l` is stored as a product of sparse factors (`SparseLinear`, each
`y = W x + b` with integer weights). Factoring a map through a narrow intermediate vector is
what keeps the number of non-zero weights linear in the width: a scalar that many units read
(an address, say) is summed once into the intermediate vector instead of once per unit. A
product of affine maps is an affine map, so the function is exactly an MLP of
`relu_layers` ReLU layers with no skip connections.

Arithmetic is int64. Two's-complement int64 addition and multiplication are exact modulo
2^64, so a linear map's output is exact whenever its true value lies in [-2^63, 2^63), no
matter how large the partial sums get. The only non-linear operation, ReLU, needs the true
sign of its input, so the proof obligation is: every pre-activation lies in [-2^63, 2^63).
`Builder` checks that obligation by interval arithmetic when it builds each unit, from the
declared range of every intermediate quantity (declared by the code generator next to the
formula that guarantees it, and checked at run time by `runtime/numpy_exec.py` in tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

INT64_LIMIT = 1 << 63


class RangeError(ValueError):
    """A pre-activation could leave the int64 range: the construction would not be exact."""


@dataclass(frozen=True, eq=False)
class SparseLinear:
    """`y = W x + b` with `W[rows[i], cols[i]] = vals[i]` (int64; duplicates are summed)."""

    name: str
    n_in: int
    n_out: int
    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    bias: np.ndarray
    out_names: tuple[str, ...]
    out_lo: np.ndarray  # proven (ReLU pre-activations) or declared bounds of each output
    out_hi: np.ndarray
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
class Layer:
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
class Network:
    """A looped MLP step: `layers` map a state vector of `n_state` int64s to the next one."""

    layers: tuple[Layer, ...]
    state_names: tuple[str, ...]
    doc: str = ""

    @property
    def n_state(self) -> int:
        return len(self.state_names)

    @property
    def relu_layers(self) -> int:
        return sum(1 for layer in self.layers if layer.relu)

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)

    def factors(self) -> Iterable[SparseLinear]:
        for layer in self.layers:
            yield from layer.factors


# --------------------------------------------------------------------------------------------
# The builder: linear expressions over named slots, spaces of slots, and maps between them.


class Expr:
    """A linear expression `const + sum(coeff * slot)` over the slots of one `Space`."""

    __slots__ = ("space", "terms", "const")

    def __init__(self, space: Space | None, terms: dict[int, int] | None = None, const: int = 0):
        self.space = space
        self.terms = terms or {}
        self.const = const

    def _combine(self, other: Expr | int, sign: int) -> Expr:
        if isinstance(other, int):
            return Expr(self.space, dict(self.terms), self.const + sign * other)
        space = self.space if self.space is not None else other.space
        if self.space is not None and other.space is not None and self.space is not other.space:
            raise ValueError(f"mixing slots of {self.space.name} and {other.space.name}")
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + sign * v
        return Expr(space, terms, self.const + sign * other.const)

    def __add__(self, other: Expr | int) -> Expr:
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other: Expr | int) -> Expr:
        return self._combine(other, -1)

    def __rsub__(self, other: int) -> Expr:
        return (-self)._combine(other, 1)

    def __neg__(self) -> Expr:
        return self * -1

    def __mul__(self, k: int) -> Expr:
        if not isinstance(k, int):
            return NotImplemented
        return Expr(self.space, {i: v * k for i, v in self.terms.items()}, self.const * k)

    __rmul__ = __mul__

    def bounds(self) -> tuple[int, int]:
        """Interval of the expression's value from the declared ranges of its slots."""
        lo = hi = self.const
        if self.space is None:
            return lo, hi
        for i, c in self.terms.items():
            a, b = self.space.lo[i] * c, self.space.hi[i] * c
            lo += min(a, b)
            hi += max(a, b)
        return lo, hi


def const(value: int) -> Expr:
    return Expr(None, {}, value)


def total(exprs: Iterable[Expr]) -> Expr:
    """The sum of many expressions, accumulated in place (repeated `+` would copy the
    growing term dictionary each time: quadratic in the number of terms)."""
    space: Space | None = None
    terms: dict[int, int] = {}
    constant = 0
    for e in exprs:
        if e.space is not None:
            if space is not None and e.space is not space:
                raise ValueError(f"mixing slots of {space.name} and {e.space.name}")
            space = e.space
        for k, v in e.terms.items():
            terms[k] = terms.get(k, 0) + v
        constant += e.const
    return Expr(space, terms, constant)


@dataclass
class Space:
    """A vector of named slots. Slots of a ReLU space hold `relu(expr)`; slots of a linear
    space hold `expr` (over the previous space); the input space has no definitions."""

    name: str
    relu: bool = False
    source: Space | None = None
    names: list[str] = field(default_factory=list)
    lo: list[int] = field(default_factory=list)
    hi: list[int] = field(default_factory=list)
    defs: list[Expr] = field(default_factory=list)
    doc: str = ""

    def __len__(self) -> int:
        return len(self.names)

    def _new(self, name: str, lo: int, hi: int) -> Expr:
        self.names.append(name)
        self.lo.append(lo)
        self.hi.append(hi)
        return Expr(self, {len(self.names) - 1: 1})

    def input(self, name: str, lo: int, hi: int) -> Expr:
        """A slot of the input (state) space with its declared range."""
        assert self.source is None
        return self._new(name, lo, hi)

    def unit(self, name: str, pre: Expr) -> Expr:
        """A ReLU unit `relu(pre)`; checks that `pre` stays inside int64."""
        assert self.relu and self._over_source(pre)
        lo, hi = pre.bounds()
        if lo < -INT64_LIMIT or hi >= INT64_LIMIT:
            raise RangeError(f"{self.name}.{name}: pre-activation range [{lo}, {hi}] exceeds int64")
        self.defs.append(pre)
        return self._new(name, max(lo, 0), max(hi, 0))

    def linear(self, name: str, expr: Expr, lo: int, hi: int) -> Expr:
        """A slot holding `expr` (no ReLU), with its range declared by the caller: the
        interval bound of `expr` is usually far too loose because its terms cancel."""
        assert not self.relu and self._over_source(expr)
        if lo < -INT64_LIMIT or hi >= INT64_LIMIT:
            raise RangeError(f"{self.name}.{name}: declared range [{lo}, {hi}] exceeds int64")
        self.defs.append(expr)
        return self._new(name, lo, hi)

    def _over_source(self, e: Expr) -> bool:
        return e.space is None or e.space is self.source

    def to_linear(self, doc: str = "") -> SparseLinear:
        """This space's definitions as one sparse affine map from its source space."""
        assert self.source is not None
        rows: list[int] = []
        cols: list[int] = []
        vals: list[int] = []
        bias = np.zeros(len(self), dtype=np.int64)
        if self.relu:
            bounds = [e.bounds() for e in self.defs]
            out_lo = np.asarray([lo for lo, _ in bounds], dtype=np.int64)
            out_hi = np.asarray([hi for _, hi in bounds], dtype=np.int64)
        else:
            out_lo = np.asarray(self.lo, dtype=np.int64)
            out_hi = np.asarray(self.hi, dtype=np.int64)
        for r, e in enumerate(self.defs):
            bias[r] = e.const
            for c, v in sorted(e.terms.items()):
                if v != 0:
                    rows.append(r)
                    cols.append(c)
                    vals.append(v)
        return SparseLinear(
            name=self.name,
            n_in=len(self.source),
            n_out=len(self),
            rows=np.asarray(rows, dtype=np.int64),
            cols=np.asarray(cols, dtype=np.int64),
            vals=np.asarray(vals, dtype=np.int64),
            bias=bias,
            out_names=tuple(self.names),
            out_lo=out_lo,
            out_hi=out_hi,
            doc=doc or self.doc,
        )


def relu_space(name: str, source: Space, doc: str = "") -> Space:
    return Space(name=name, relu=True, source=source, doc=doc)


def linear_space(name: str, source: Space, doc: str = "") -> Space:
    return Space(name=name, relu=False, source=source, doc=doc)


def assemble(
    spaces: Sequence[Space], state: Space, layer_docs: Sequence[str] = (), doc: str = ""
) -> Network:
    """Group a chain of spaces `state -> s1 -> s2 -> ...` into layers: consecutive linear
    spaces are factors of one affine map, and each ReLU space closes a layer. The last space
    must be a linear space with the same slots as `state` (the next state)."""
    layers: list[Layer] = []
    pending: list[SparseLinear] = []
    prev = state
    for sp in spaces:
        if sp.source is not prev:
            raise ValueError(f"space {sp.name} does not follow {prev.name}")
        pending.append(sp.to_linear())
        if sp.relu:
            i = len(layers)
            layers.append(Layer(sp.name, tuple(pending), True, _doc_at(layer_docs, i)))
            pending = []
        prev = sp
    if not pending:
        raise ValueError("the network must end with an affine map to the next state")
    if prev.names != state.names:
        raise ValueError("the last space must have the state's slots")
    layers.append(Layer(prev.name, tuple(pending), False, _doc_at(layer_docs, len(layers))))
    return Network(tuple(layers), tuple(state.names), doc)


def _doc_at(docs: Sequence[str], i: int) -> str:
    return docs[i] if i < len(docs) else ""
