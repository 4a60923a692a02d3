"""The numpy executor: runs a `Network`'s spaces on a batch of state vectors.

It is the `numpy` engine of `mlpc run` and an implementation of the network independent of
the ONNX exporters: each space's scalars are one matrix product of the previous space's
scalars (plus biases and reductions), each family is its formula evaluated with numpy
broadcasting. It runs in int64 (exact modulo 2^64) or float64 (exact below 2^53, which the
builder's magnitude bound guarantees). With `check=True` it asserts that every value lies
within the bound the builder proved or the code generator declared for it, and that every
per-word combination of a reduction lies in its declared range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpc.compiler.network import Definition, Network, Space


class BoundViolation(AssertionError):
    """A value left its proven or declared range: the construction is wrong somewhere."""


@dataclass(frozen=True, eq=False)
class _CompiledSpace:
    space: Space
    weights: np.ndarray  # (source scalars, scalars) of the scalar definitions
    bias: np.ndarray
    reductions: tuple[tuple[tuple[tuple[str, int], ...], np.ndarray, int, int], ...]
    # (terms, one row of weights into the scalars, declared lo, hi of one word)


def _compile(space: Space, source: Space, dtype: type) -> _CompiledSpace:
    src = {d.name: i for i, d in enumerate(source.scalars)}
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
            key, sign = _canonical(r.terms)
            row = reductions.setdefault(key, np.zeros(len(space.scalars), dtype=dtype))
            row[k] += sign
            lo, hi = (r.lo, r.hi) if sign > 0 else (-r.hi, -r.lo)
            declared[key] = lo, hi
    return _CompiledSpace(
        space, w, bias,
        tuple((key, row, *declared[key]) for key, row in reductions.items()),
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
        families, scalars = self.split(np.asarray(x, dtype=self.dtype))
        for cs in self._spaces:
            families, scalars = self._apply(cs, families, scalars)
        return np.concatenate([families[d.name] for d in self.network.state.families]
                              + [scalars], axis=1)

    def _apply(self, cs: _CompiledSpace, families: dict[str, np.ndarray], scalars: np.ndarray
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        space = cs.space
        out = scalars @ cs.weights + cs.bias
        for terms, row, lo, hi in cs.reductions:
            word = sum(c * families[n] for n, c in terms)
            if self.check:
                _check(f"{space.name}: a reduction's word", word, lo, hi)
            out = out + np.outer(word.sum(axis=1), row)
        src = {d: i for i, d in enumerate(self._source_names(cs))}
        new_families = {}
        for d in space.families:
            new_families[d.name] = self._family(d, families, scalars, src)
        if self.check:
            for k, d in enumerate(space.scalars):
                _check_definition(space, d, out[:, k])
            for d in space.families:
                _check_definition(space, d, new_families[d.name])
        if space.relu:
            out = np.maximum(out, 0)
            new_families = {n: np.maximum(v, 0) for n, v in new_families.items()}
        return new_families, out

    def _source_names(self, cs: _CompiledSpace) -> list[str]:
        i = self._spaces.index(cs)
        source = self.network.state if i == 0 else self.network.spaces[i - 1]
        return [d.name for d in source.scalars]

    def _family(self, d: Definition, families: dict[str, np.ndarray], scalars: np.ndarray,
                src: dict[str, int]) -> np.ndarray:
        e = d.expr
        value = np.zeros((scalars.shape[0], 1), dtype=self.dtype) + e.const
        for name, c in e.scalars:
            value = value + c * scalars[:, src[name], None]
        if e.slope:
            value = value + e.slope * np.arange(d.length, dtype=self.dtype)
        for name, c in e.vectors:
            value = value + c * families[name]
        return np.broadcast_to(value, (scalars.shape[0], d.length))


def _check_definition(space: Space, d: Definition, value: np.ndarray) -> None:
    lo, hi = (d.pre_lo, d.pre_hi) if space.relu else (d.lo, d.hi)
    _check(f"{space.name}.{d.name}", value, lo, hi)


def _check(what: str, value: np.ndarray, lo: int, hi: int) -> None:
    bad = (value < lo) | (value > hi)
    if np.any(bad):
        where = np.argwhere(bad)[0]
        raise BoundViolation(f"{what} = {value[tuple(where)]} at {tuple(where)} outside "
                             f"[{lo}, {hi}]")
