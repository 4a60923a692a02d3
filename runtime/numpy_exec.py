"""The numpy executor: runs a `Network`'s spaces on a batch of state vectors.

It is the `numpy` engine of `mlpc run` and an implementation of the network independent of
the ONNX exporters: each space's scalars are one matrix product of the previous space's
scalars (plus biases and reductions), each family is its formula evaluated with numpy
broadcasting. It runs in int64 or float64, exact in both because every partial sum it forms
is a partial sum of one definition (or of one word's combination in a reduction), bounded by
the builder's magnitude (`compiler/network.py`): below 2^63, so int64 never wraps, and below
2^53 where float64 is allowed. With `check=True` it asserts that every value lies
within the bound the builder proved or the code generator declared for it, and that every
per-word combination of a reduction lies in its declared range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpc.compiler.network import Definition, Network, Space, matched_units


class BoundViolation(AssertionError):
    """A value left its proven or declared range: the construction is wrong somewhere."""


@dataclass(frozen=True, eq=False)
class _CompiledFamily:
    """family[j] = base[j] + scalars @ weights + sum c * source family (`alias`: the value is
    the source family itself, a ReLU of a non-negative family or a copy)."""

    definition: Definition
    base: np.ndarray  # const + slope * j
    weights: np.ndarray | None  # (source scalars,) or None when no scalar term
    vectors: tuple[tuple[str, int], ...]
    alias: str | None
    # a restricted family: the units of each source family it reads
    take: dict[str, np.ndarray] | None = None


@dataclass(frozen=True, eq=False)
class _CompiledSpace:
    space: Space
    weights: np.ndarray  # (source scalars, scalars) of the scalar definitions
    bias: np.ndarray
    reductions: tuple[tuple[tuple[tuple[str, int], ...], tuple[int, ...], np.ndarray, int,
                            int], ...]
    # (terms, per-unit weights (() = ones), one row into the scalars, declared lo, hi of one
    # word)
    families: tuple[_CompiledFamily, ...]


def _compile_family(d: Definition, src: dict[str, int], relu: bool, dtype: type,
                    positions: dict[str, tuple[int, ...]]) -> _CompiledFamily:
    e = d.expr
    base = (e.const + e.slope * np.asarray(d.positions, dtype=np.int64)).astype(dtype)
    weights = None
    if e.scalars:
        weights = np.zeros(len(src), dtype=dtype)
        for name, c in e.scalars:
            weights[src[name]] += c
    alias = e.vectors[0][0] if d.passthrough and (relu or not e.scalars) else None
    take = None
    if d.restricted:
        take = {name: np.array(matched_units(positions[name], d.positions), dtype=np.int64)
                for name, _ in e.vectors}  # -1: the family has no unit there (0)
    return _CompiledFamily(d, base, weights, e.vectors, alias, take)


def _compile(space: Space, source: Space, dtype: type) -> _CompiledSpace:
    src = {d.name: i for i, d in enumerate(source.scalars)}
    positions = {f.name: f.positions for f in source.families}
    w = np.zeros((len(source.scalars), len(space.scalars)), dtype=dtype)
    bias = np.zeros(len(space.scalars), dtype=dtype)
    reductions: dict[tuple, np.ndarray] = {}
    declared: dict[tuple, tuple[int, int]] = {}
    for k, d in enumerate(space.scalars):
        bias[k] = d.expr.const
        for name, c in d.expr.scalars:
            w[src[name], k] += c
        for r in d.expr.sums:
            # a reduction used with coefficient -1 is the same sum negated: share it
            terms, sign = _canonical(r.terms)
            key = (terms, r.weights)
            row = reductions.setdefault(key, np.zeros(len(space.scalars), dtype=dtype))
            row[k] += sign
            lo, hi = (r.lo, r.hi) if sign > 0 else (-r.hi, -r.lo)
            declared[key] = lo, hi
    return _CompiledSpace(
        space, w, bias,
        tuple((*key, row, *declared[key]) for key, row in reductions.items()),
        tuple(_compile_family(d, src, space.relu, dtype, positions) for d in space.families),
    )


def _canonical(terms: tuple[tuple[str, int], ...]) -> tuple[tuple[tuple[str, int], ...], int]:
    sign = 1 if terms[0][1] > 0 else -1
    return tuple((n, c * sign) for n, c in terms), sign


class NumpyExecutor:
    """`executor.step(x)` applies the network once to a (batch, n_state) array."""

    def __init__(self, network: Network, check: bool = False, dtype: type = np.int64) -> None:
        self.network = network
        self.check = check
        self.dtype = dtype
        sources = (network.state,) + network.spaces[:-1]
        self._spaces = [_compile(s, src, dtype) for s, src in zip(network.spaces, sources,
                                                                   strict=True)]

    def split(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """A flat state (batch, n_state) as its families (by name) and its scalars."""
        families, at = {}, 0
        for d in self.network.state.families:
            families[d.name] = x[:, at : at + d.length]
            at += d.length
        return families, x[:, at:]

    def step(self, x: np.ndarray) -> np.ndarray:
        """The last space's families, then its scalars, flat: the next state for a step
        network, the results for the read-out (`codegen.StepNetwork.readout`)."""
        families, scalars = self.split(np.asarray(x, dtype=self.dtype))
        for cs in self._spaces:
            families, scalars = self._apply(cs, families, scalars)
        return np.concatenate([families[d.name] for d in self.network.spaces[-1].families]
                              + [scalars], axis=1)

    def _apply(self, cs: _CompiledSpace, families: dict[str, np.ndarray], scalars: np.ndarray
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        space = cs.space
        out = scalars @ cs.weights + cs.bias
        for terms, weights, row, lo, hi in cs.reductions:
            word = sum(c * families[n] for n, c in terms)
            if self.check:
                _check(f"{space.name}: a reduction's word", word, lo, hi)
            total = word @ np.asarray(weights, dtype=self.dtype) if weights else word.sum(axis=1)
            out = out + np.outer(total, row)
        new_families = {}
        for f in cs.families:
            if f.alias is not None:
                value = families[f.alias]
            else:
                value = f.base
                if f.weights is not None:
                    value = value + (scalars @ f.weights)[:, None]
                for name, c in f.vectors:
                    source = families[name] if f.take is None else _matched(
                        families[name], f.take[name])
                    value = value + (source if c == 1 else c * source)
                if not f.vectors:  # const + slope j (+ scalars): one row, or one per item
                    value = np.broadcast_to(value, (scalars.shape[0], f.definition.length))
            if self.check:  # (a pass-through's value is its pre-activation)
                _check_definition(space, f.definition, value)
            if space.relu and f.alias is None:
                value = np.maximum(value, 0)
            new_families[f.definition.name] = value
        if self.check:
            for k, d in enumerate(space.scalars):
                _check_definition(space, d, out[:, k])
        if space.relu:
            out = np.maximum(out, 0)
        return new_families, out


def _matched(family: np.ndarray, take: np.ndarray) -> np.ndarray:
    """A family's units at other positions (`take`), 0 where it has none (-1)."""
    padded = np.concatenate([family, np.zeros_like(family[:, :1])], axis=1)
    return padded[:, take]


def _check_definition(space: Space, d: Definition, value: np.ndarray) -> None:
    lo, hi = (d.pre_lo, d.pre_hi) if space.relu else (d.lo, d.hi)
    _check(f"{space.name}.{d.name}", value, lo, hi)


def _check(what: str, value: np.ndarray, lo: int, hi: int) -> None:
    bad = (value < lo) | (value > hi)
    if np.any(bad):
        where = np.argwhere(bad)[0]
        raise BoundViolation(f"{what} = {value[tuple(where)]} at {tuple(where)} outside "
                             f"[{lo}, {hi}]")
