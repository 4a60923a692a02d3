"""The network as data: spaces of scalar units and families of units over an index.

Nothing in this module knows about SUBLEQ. A `Network` is the step function

    F(x) = A_L(ReLU(A_{L-1}( ... ReLU(A_1 x) ... )))

written as a chain of `Space`s. Each space defines its quantities from the previous space:
a *scalar* is `const + sum c * scalar + sum of reductions`, a *family* is a vector of units
indexed by j in [0, length) with one formula for all of them,

    family[j] = const + slope * j + sum c * vector[j] + sum c * scalar        (broadcast)

and a *reduction* is `sum over j of w_j (sum_t c_t * family_t[j])` (w_j = 1 unless the
reduction has constant weights): the per-word combination is formed first, then summed.
A family's units stand for the positions j of its *index*: 0, 1, ..., length - 1 unless it
has an explicit one (a family over some words of a memory only), and `slope * j` uses them.
A ReLU space applies ReLU to every definition; a linear space does
not. Every definition is an affine map of the previous space with constant integer weights,
so the chain is exactly an MLP: consecutive linear spaces are factors of one affine map and
each ReLU space closes a layer.

Exactness (the proof obligation checked here, when a space is built): a sum is exact only
while every partial sum is, in whatever order an executor adds the terms, so the bound
checked is the sum of the absolute values of all terms (`magnitude`), for every definition
and for every per-word combination inside a reduction (each product of a weight and a
source is one such term, so it is bounded too).
- int64: every magnitude, every ReLU pre-activation (interval arithmetic from the declared
  ranges of its sources) and every declared range of a linear quantity lies below 2^63, so
  no int64 operation of an executor that computes the definitions as written (the numpy
  engine, the sparse form's rows apart from reductions) overflows: nothing relies on
  two's-complement wraparound, which C++ leaves undefined.
- float64: integers are exact below 2^53; `max_magnitude` reports the largest magnitude, and
  the exporter refuses float64 when it reaches 2^53.
What an exporter emits can differ from the definitions as written (products of two weight
matrices, sums of whole families before their combination): `compiler/exactness.py` proves
those ops at build time.
Linear quantities have ranges *declared* by the code generator next to the formula that
guarantees them (the interval of their expression is far too loose because terms cancel);
`runtime/numpy_exec.py` checks every declared range at run time in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

INT64_LIMIT = 1 << 63
FLOAT64_EXACT = 1 << 53


class RangeError(ValueError):
    """A value could leave the exactly representable range: the construction is not exact."""


# ---- the IR ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reduction:
    """`sum over units u of w_u * sum_t coeff_t * family_t[u]` (w_u = 1 when `weights` is
    empty), with the declared range [lo, hi] of one unit's combination."""

    terms: tuple[tuple[str, int], ...]
    length: int
    lo: int
    hi: int
    weights: tuple[int, ...] = ()

    def bounds(self) -> tuple[int, int]:
        """The interval of the whole sum."""
        if not self.weights:
            return self.length * self.lo, self.length * self.hi
        lo = sum(min(w * self.lo, w * self.hi) for w in self.weights)
        hi = sum(max(w * self.lo, w * self.hi) for w in self.weights)
        return lo, hi

    def magnitude(self) -> int:
        """The sum of the absolute values of its terms (one per unit)."""
        word = max(abs(self.lo), abs(self.hi))
        return word * (sum(map(abs, self.weights)) if self.weights else self.length)


@dataclass(frozen=True)
class Lin:
    """A linear expression over the previous space. With `vectors` or `slope` it is a family
    expression (indexed by j); otherwise a scalar expression (which may hold reductions)."""

    const: int = 0
    scalars: tuple[tuple[str, int], ...] = ()
    vectors: tuple[tuple[str, int], ...] = ()
    slope: int = 0
    sums: tuple[Reduction, ...] = ()

    @property
    def is_family(self) -> bool:
        return bool(self.vectors) or self.slope != 0

    def _merge(self, other: Lin | int, sign: int) -> Lin:
        if isinstance(other, int):
            return Lin(self.const + sign * other, self.scalars, self.vectors, self.slope,
                       self.sums)
        if (self.sums or other.sums) and (self.is_family or other.is_family):
            raise ValueError("a reduction is a scalar: it cannot be part of a family")
        return Lin(
            self.const + sign * other.const,
            _add_terms(self.scalars, other.scalars, sign),
            _add_terms(self.vectors, other.vectors, sign),
            self.slope + sign * other.slope,
            self.sums + tuple(_scale_sum(s, sign) for s in other.sums),
        )

    def __add__(self, other: Lin | int) -> Lin:
        return self._merge(other, 1)

    __radd__ = __add__

    def __sub__(self, other: Lin | int) -> Lin:
        return self._merge(other, -1)

    def __rsub__(self, other: int) -> Lin:
        return (-self)._merge(other, 1)

    def __neg__(self) -> Lin:
        return self * -1

    def __mul__(self, k: int) -> Lin:
        if not isinstance(k, int):
            return NotImplemented
        return Lin(self.const * k, tuple((n, c * k) for n, c in self.scalars),
                   tuple((n, c * k) for n, c in self.vectors), self.slope * k,
                   tuple(_scale_sum(s, k) for s in self.sums))

    __rmul__ = __mul__


def _add_terms(a: tuple[tuple[str, int], ...], b: tuple[tuple[str, int], ...], sign: int
               ) -> tuple[tuple[str, int], ...]:
    out = dict(a)
    for name, c in b:
        out[name] = out.get(name, 0) + sign * c
    return tuple((n, c) for n, c in out.items() if c != 0)


def _scale_sum(s: Reduction, k: int) -> Reduction:
    lo, hi = sorted((s.lo * k, s.hi * k))
    return Reduction(tuple((n, c * k) for n, c in s.terms), s.length, lo, hi, s.weights)


@dataclass(frozen=True)
class Definition:
    """One quantity of a space: a scalar (`length == 0`) or a family of `length` units.
    `lo`/`hi` bound its value (proven for ReLU units, declared for linear quantities);
    `pre_lo`/`pre_hi` bound a ReLU unit's pre-activation. `magnitude` bounds every partial
    sum of its expression (see the module docstring)."""

    name: str
    length: int
    expr: Lin
    lo: int
    hi: int
    pre_lo: int
    pre_hi: int
    magnitude: int
    doc: str = ""
    index: tuple[int, ...] = ()  # the positions j of a family's units; () = 0 .. length-1
    # a family whose source families are matched by position (`SpaceBuilder.unit`): unit j
    # reads their units at position j, 0 where one has none
    restricted: bool = False

    @property
    def is_family(self) -> bool:
        return self.length > 0

    @property
    def positions(self) -> tuple[int, ...]:
        """The j of each unit of a family (what `slope * j` multiplies)."""
        return self.index or tuple(range(self.length))

    @property
    def passthrough(self) -> bool:
        """relu(x) of a non-negative source quantity x (or a linear copy): the value is the
        source's own, so an executor may reuse it instead of computing anything."""
        e = self.expr
        one = e.scalars if not self.is_family else e.vectors
        other = e.vectors if not self.is_family else e.scalars
        return (e.const == 0 and e.slope == 0 and not e.sums and not other
                and len(one) == 1 and one[0][1] == 1 and self.pre_lo >= 0
                and not self.restricted)


@dataclass(frozen=True)
class Space:
    """A vector of quantities defined from the previous space (ReLU applied if `relu`)."""

    name: str
    relu: bool
    scalars: tuple[Definition, ...]
    families: tuple[Definition, ...]
    doc: str = ""

    def definitions(self) -> Iterator[Definition]:
        yield from self.families
        yield from self.scalars

    @property
    def width(self) -> int:
        return sum(d.length for d in self.families) + len(self.scalars)


@dataclass(frozen=True, eq=False)
class Network:
    """A looped MLP step: `spaces` map the state space to the next state (the last space is
    linear and defines exactly the state's quantities, in order)."""

    state: Space  # definitions with empty expressions: the declared ranges of the state
    spaces: tuple[Space, ...]
    doc: str = ""
    layer_docs: tuple[str, ...] = ()

    @property
    def relu_layers(self) -> int:
        return sum(1 for s in self.spaces if s.relu)

    @property
    def state_names(self) -> tuple[str, ...]:
        return flat_names(self.state)

    @property
    def n_state(self) -> int:
        return self.state.width

    def layers(self) -> list[tuple[Space, ...]]:
        """Spaces grouped into layers: linear spaces then the ReLU space that closes them;
        the last group (the map to the next state) has no ReLU."""
        groups: list[tuple[Space, ...]] = []
        pending: list[Space] = []
        for s in self.spaces:
            pending.append(s)
            if s.relu:
                groups.append(tuple(pending))
                pending = []
        groups.append(tuple(pending))
        return groups

    def max_magnitude(self) -> int:
        """The largest value any partial sum of any definition can reach."""
        worst = max(max(abs(d.lo), abs(d.hi)) for d in self.state.definitions())
        for s in self.spaces:
            for d in s.definitions():
                worst = max(worst, d.magnitude, abs(d.lo), abs(d.hi))
        return worst


def matched_units(source: tuple[int, ...], positions: tuple[int, ...]) -> tuple[int, ...]:
    """For a restricted family over `positions` reading a family over `source`: the index
    of the source's unit at each position, -1 where it has none (the unit reads 0 there)."""
    at = {p: i for i, p in enumerate(source)}
    return tuple(at.get(p, -1) for p in positions)


def flat_names(space: Space) -> tuple[str, ...]:
    """The names of a space's slots when it is written as one flat vector: every family
    element `name[j]` in order, then the scalars."""
    names: list[str] = []
    for d in space.families:
        names.extend(f"{d.name}[{j}]" for j in range(d.length))
    names.extend(d.name for d in space.scalars)
    return tuple(names)


# ---- building spaces ---------------------------------------------------------------------------


@dataclass
class SpaceBuilder:
    """Collects the definitions of one space over `source` and proves their bounds."""

    name: str
    relu: bool
    source: Space
    doc: str = ""
    scalars: list[Definition] = field(default_factory=list)
    families: list[Definition] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ranges: dict[str, tuple[int, int, int]] = {
            d.name: (d.lo, d.hi, d.length) for d in self.source.definitions()
        }
        self._index = {d.name: d.index for d in self.source.families}
        self._names: set[str] = set()

    # references to the source space
    def s(self, name: str) -> Lin:
        """A scalar of the source space."""
        if self._ranges[name][2]:
            raise ValueError(f"{name} is a family, not a scalar")
        return Lin(scalars=((name, 1),))

    def v(self, name: str) -> Lin:
        """A family of the source space, as the family expression `name[j]`."""
        if not self._ranges[name][2]:
            raise ValueError(f"{name} is a scalar, not a family")
        return Lin(vectors=((name, 1),))

    def positions(self, name: str) -> tuple[int, ...]:
        """The positions j of a source family's units."""
        return self._index[name] or tuple(range(self._ranges[name][2]))

    def sum(self, expr: Lin, lo: int, hi: int, weights: tuple[int, ...] = ()) -> Lin:
        """`sum over j of w_j expr[j]` for a family expression over source families (no
        scalar part, no slope), with the declared range [lo, hi] of one word's `expr[j]`;
        constant `weights` per unit (all 1 when empty)."""
        if expr.scalars or expr.slope or expr.const or expr.sums or not expr.vectors:
            raise ValueError("a reduction sums a combination of families only")
        length, _ = self._family_of(expr)
        if weights and len(weights) != length:
            raise ValueError(f"{self.name}: {len(weights)} weights for {length} units")
        return Lin(sums=(Reduction(expr.vectors, length, lo, hi, tuple(weights)),))

    # definitions
    def unit(self, name: str, expr: Lin, doc: str = "", length: int | None = None,
             index: tuple[int, ...] = (), restricted: bool = False) -> Lin:
        """A ReLU unit (a scalar) or family of ReLU units; bounds are proven. A family with
        no source family in its formula (const + slope j + ...) needs its `length` or its
        `index` (the positions j of its units). `restricted`: a family over `index`, some
        positions of its source families, whose unit at j reads their units at j (an
        executor gathers them at constant indices)."""
        assert self.relu
        if index:
            length = len(index)
        if restricted:
            self._check_restriction(name, tuple(index))
        return self._define(name, expr, None, doc, length, tuple(index), restricted)

    def _check_restriction(self, name: str, index: tuple[int, ...]) -> None:
        if not index or list(index) != sorted(set(index)):
            raise ValueError(f"{self.name}.{name}: its positions are not distinct and sorted")

    def _partial(self, expr: Lin, positions: tuple[int, ...]) -> frozenset[str]:
        """The families of `expr` without a unit at some of `positions` (0 there)."""
        want = set(positions)
        return frozenset(n for n, _ in expr.vectors
                         if not want <= set(self.positions(n)))

    def linear(self, name: str, expr: Lin, lo: int, hi: int, doc: str = "",
               index: tuple[int, ...] = ()) -> Lin:
        """A linear quantity with its declared range [lo, hi]. With `index`, a family over
        those positions whose families are matched by position (see `unit`)."""
        assert not self.relu
        if index:
            self._check_restriction(name, tuple(index))
            return self._define(name, expr, (lo, hi), doc, len(index), tuple(index), True)
        return self._define(name, expr, (lo, hi), doc)

    def _define(self, name: str, expr: Lin, declared: tuple[int, int] | None, doc: str,
                length: int | None = None, index: tuple[int, ...] = (),
                restricted: bool = False) -> Lin:
        if name in self._names:
            raise ValueError(f"{self.name}: {name} defined twice")
        self._names.add(name)
        if length is None:
            length, index = self._family_of(expr) if expr.is_family else (0, ())
        elif expr.vectors and not restricted and self._family_of(expr) != (length, index):
            raise ValueError(f"{self.name}.{name}: its units differ from its families'")
        positions = index or tuple(range(length))
        pre_lo, pre_hi = self._interval(expr, positions,
                                        self._partial(expr, positions) if restricted
                                        else frozenset())
        where = f"{self.name}.{name}"
        if pre_lo < -INT64_LIMIT or pre_hi >= INT64_LIMIT:
            if declared is None:
                raise RangeError(f"{where}: pre-activation range [{pre_lo}, {pre_hi}] "
                                 "exceeds int64")
        magnitude = self._magnitude(expr, positions)
        if magnitude >= INT64_LIMIT:
            raise RangeError(f"{where}: a partial sum can reach {magnitude} >= 2^63")
        if declared is None:
            lo, hi = max(pre_lo, 0), max(pre_hi, 0)
        else:
            lo, hi = declared
            if lo < -INT64_LIMIT or hi >= INT64_LIMIT:
                raise RangeError(f"{where}: declared range [{lo}, {hi}] exceeds int64")
        d = Definition(name, length, expr, lo, hi, pre_lo, pre_hi, magnitude, doc, index,
                       restricted)
        (self.families if length else self.scalars).append(d)
        return Lin(vectors=((name, 1),)) if length else Lin(scalars=((name, 1),))

    def _family_of(self, expr: Lin) -> tuple[int, tuple[int, ...]]:
        """The length and index shared by the families of `expr`."""
        shapes = {(self._ranges[n][2], self._index[n]) for n, _ in expr.vectors}
        if len(shapes) > 1:
            raise ValueError(f"{self.name}: families over different units in one formula")
        if not shapes:
            raise ValueError(f"{self.name}: a family expression needs a family (its length)")
        return shapes.pop()

    def _bound(self, name: str, c: int) -> tuple[int, int]:
        lo, hi, _ = self._ranges[name]
        a, b = lo * c, hi * c
        return min(a, b), max(a, b)

    def _interval(self, expr: Lin, positions: tuple[int, ...],
                  partial: frozenset[str] = frozenset()) -> tuple[int, int]:
        lo = hi = expr.const
        for name, c in expr.scalars + expr.vectors:
            a, b = self._bound(name, c)
            if name in partial:  # 0 where the family has no unit
                a, b = min(a, 0), max(b, 0)
            lo, hi = lo + a, hi + b
        if expr.slope:
            ends = (expr.slope * min(positions), expr.slope * max(positions))
            lo, hi = lo + min(ends), hi + max(ends)
        for s in expr.sums:
            a, b = s.bounds()
            lo, hi = lo + a, hi + b
        return lo, hi

    def _magnitude(self, expr: Lin, positions: tuple[int, ...]) -> int:
        reach = max((abs(j) for j in positions), default=0)
        total = abs(expr.const) + abs(expr.slope) * reach
        for name, c in expr.scalars + expr.vectors:
            total += max(abs(x) for x in self._bound(name, c))
        inner = 0  # the per-word combination inside a reduction is an intermediate too
        for s in expr.sums:
            total += s.magnitude()
            inner = max(inner, sum(max(abs(x) for x in self._bound(n, c)) for n, c in s.terms))
        return max(total, inner)

    def build(self) -> Space:
        return Space(self.name, self.relu, tuple(self.scalars), tuple(self.families), self.doc)


def state_space(scalars: Iterable[tuple[str, int, int]],
                families: Iterable[tuple[str, int, int, int] | tuple[str, int, int, int,
                                                                      tuple[int, ...]]],
                doc: str = "") -> Space:
    """The state: scalars (name, lo, hi) and families (name, length, lo, hi[, index])."""
    defs = []
    for n, k, lo, hi, *index in families:
        if k <= 0:
            raise ValueError("a family has at least one unit")
        positions = tuple(index[0]) if index else ()
        if positions and len(positions) != k:
            raise ValueError(f"{n}: {len(positions)} positions for {k} units")
        defs.append(Definition(n, k, Lin(), lo, hi, lo, hi, 0, "", positions))
    return Space(
        "state", False,
        tuple(Definition(n, 0, Lin(), lo, hi, lo, hi, 0) for n, lo, hi in scalars),
        tuple(defs),
        doc,
    )


# ---- passes ----------------------------------------------------------------------------------


def scalarise_families(network: Network, max_length: int) -> Network:
    """The same network with every short family of ReLU units that reads no family (its
    units are `relu(scalar part + slope * j)`, e.g. a table of ramps relu(x - k)) and that the
    next space only sums, turned into `length` scalar units `name[j]`, and each sum over it
    into a weighted sum of those scalars. Exporters that handle a space's scalars in one
    matrix product then compute such a family with the scalars, not as a tensor of its own
    (fewer ops per step). Bounds are proven again (`SpaceBuilder`): the values are the same,
    so a pass that would need larger bounds raises `RangeError`."""
    spaces = list(network.spaces)
    for i in range(len(spaces) - 1):
        space, consumer = spaces[i], spaces[i + 1]
        read = {n for d in consumer.definitions() for n, _ in d.expr.vectors}
        chosen = {d.name: d for d in space.families
                  if space.relu and not d.expr.vectors and d.length <= max_length
                  and d.name not in read}
        if chosen:
            spaces[i] = _with_scalar_units(space, tuple(chosen.values()))
            spaces[i + 1] = _sums_as_scalars(consumer, chosen, spaces[i])
    return Network(network.state, tuple(spaces), network.doc, network.layer_docs)


def _with_scalar_units(space: Space, families: tuple[Definition, ...]) -> Space:
    """`space` with each of `families` as scalar units `name[j]` after its scalars."""
    units = []
    for d in families:
        ends = [d.expr.slope * p for p in d.positions]
        base_lo, base_hi = d.pre_lo - min(ends), d.pre_hi - max(ends)  # the scalar part
        for j, end in enumerate(ends):
            pre_lo, pre_hi = base_lo + end, base_hi + end
            expr = Lin(d.expr.const + end, d.expr.scalars)
            units.append(Definition(f"{d.name}[{j}]", 0, expr, max(pre_lo, 0), max(pre_hi, 0),
                                    pre_lo, pre_hi, d.magnitude, d.doc))
    kept = tuple(d for d in space.families if d not in families)
    return Space(space.name, space.relu, space.scalars + tuple(units), kept, space.doc)


def _sums_as_scalars(space: Space, families: dict[str, Definition], source: Space) -> Space:
    """`space` over `source`, each reduction over `families` written as a weighted sum of
    their scalar units; every definition is proven again."""
    b = SpaceBuilder(space.name, space.relu, source, space.doc)
    for d in list(space.families) + list(space.scalars):
        expr = Lin(d.expr.const, d.expr.scalars, d.expr.vectors, d.expr.slope)
        for red in d.expr.sums:
            over = {n in families for n, _ in red.terms}
            if over == {False}:
                expr = expr + Lin(sums=(red,))
                continue
            if over != {True}:
                raise ValueError(f"{space.name}.{d.name}: a sum over families of two kinds")
            weights = red.weights or (1,) * red.length
            expr = expr + Lin(scalars=tuple(
                (f"{n}[{j}]", c * w) for n, c in red.terms for j, w in enumerate(weights) if w))
        declared = None if space.relu else (d.lo, d.hi)
        b._define(d.name, expr, declared, d.doc, d.length if d.is_family else None, d.index,
                  d.restricted)
    built = b.build()
    # the same order of definitions as before (a family's place among families, etc.)
    return Space(space.name, space.relu, built.scalars, built.families, space.doc)
