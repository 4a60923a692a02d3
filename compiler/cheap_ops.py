"""The cheaper-operation rewrites: `v op k` by a constant k in macros cheaper than the O(W)
routine the operator otherwise calls.

Why here and not in the lowering: these are rewrites of one operation into macros, with
nothing to do with walking the AST. Each rewrite is one function of the `REWRITES` list; the
lowering (`_Lowerer._apply`) calls `rewrite` at one place and falls back to the general
routine when it returns None. Adding a cheaper operation is writing one `Rewrite` and
listing it.

Why at lowering time and not as a pass over the finished `MacroProgram` (like `cfg_opt`):
a rewrite decides things the lowering lays out for good as it goes, and the images, models
and listings must stay the same byte for byte: the result cell (`x & -1` is `x` itself, no
code and no temporary), a temporary of the current function (`x = x * 5` builds the product
beside x; temporaries are numbered per function and sized by the most in use at once), a
code label (`x & INT_MAX`; labels are numbered in lowering order and named in the listing),
and the runtime routines the program includes (`x / 10` uses `$cdiv10`, not `$divmod`;
`macro_program` lays routines' code and data out in name order).

The rewrites (W-bit words, INT_MIN = -2^(W-1)):

- `v << k` for 0 <= k <= 8: k doublings;
- `v * k` when |k| is small or sparse (at most 12 doublings and additions): Horner on the
  bits of |k|, then a negation for k < 0; `v * 0` is 0, `v * 1` a copy;
- `v & k`, `v | k`, `v ^ k`: identities for 0 and -1 (`v ^ -1` is -1 - v), `v ^ INT_MIN`
  and `v & INT_MAX` by one addition of INT_MIN, and a low mask `v & (2^j - 1)` by the
  unrolled `mask` routine;
- `v / k`, `v % k` (2 <= |k| < 2^(W-1)), `v >> k` and `v >>> k` (1 <= k <= W-2) by the
  unrolled constant-divisor routines of `runtime_lib` (one step per quotient bit instead of
  a loop over all W bits); `v >> 0` and `v >>> 0` are copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mlpc.compiler import macros as mc
from mlpc.compiler import runtime_lib
from mlpc.compiler.macros import const


class Emitter(Protocol):
    """What a rewrite needs of the lowering: the word size, fresh temporaries and labels of
    the function being lowered, somewhere to append macros, and the set of runtime routines
    the program includes."""

    w: int
    routines: set[str]

    def temp(self) -> str: ...

    def label(self, stem: str) -> str: ...

    def emit(self, *items: mc.Macro) -> None: ...


@dataclass(frozen=True)
class Operation:
    """`dst = v op k` (`dst` None: any cell, the result's is returned)."""

    op: str
    v: str
    k: int
    dst: str | None
    line: int


# A rewrite emits the cheaper macros and returns the cell holding the result, or emits
# nothing and returns None when it does not apply (the next one is tried, then the routine).
Rewrite = Callable[[Emitter, Operation], str | None]


def _into(e: Emitter, cell: str, dst: str | None) -> str:
    """`cell` as the result: copied into `dst` when there is one (the lowering's `_into`)."""
    if dst is None or dst == cell:
        return cell
    e.emit(mc.Mov(dst, cell))
    return dst


def shift_left(e: Emitter, o: Operation) -> str | None:
    """v << k for 0 <= k <= 8: k doublings (3 steps each) instead of the `shl` routine."""
    if o.op != "<<" or not 0 <= o.k <= 8:
        return None
    out = o.dst or e.temp()
    e.emit(mc.Mov(out, o.v, line=o.line))
    for _ in range(o.k):
        e.emit(mc.Add(out, out, line=o.line))
    return out


def multiply(e: Emitter, o: Operation) -> str | None:
    """v * k by doublings and additions (Horner on the bits of |k|) when k is small or
    sparse: a few steps instead of a routine call. None when the routine is better."""
    if o.op != "*":
        return None
    v, k, dst, line = o.v, o.k, o.dst, o.line
    if k == 0:
        return _into(e, const(0), dst)
    if k == 1:
        return _into(e, v, dst or e.temp())
    m = abs(k)
    additions = m.bit_length() - 1 + bin(m).count("1") - 1
    if additions > 12 or k == -(1 << (e.w - 1)):
        return None
    out = dst or e.temp()
    if out == v:  # v is needed through the whole chain
        out = e.temp()
    e.emit(mc.Mov(out, v, line=line))
    for bit in bin(m)[3:]:
        e.emit(mc.Add(out, out, line=line))
        if bit == "1":
            e.emit(mc.Add(out, v, line=line))
    if k < 0:
        e.emit(mc.Neg(out, out, line=line))
    return _into(e, out, dst)


def bitwise(e: Emitter, o: Operation) -> str | None:
    """v op k without the bit-by-bit routine where k allows: identities (0, -1), the top
    bit (x ^ INT_MIN and x & INT_MAX flip or clear it by an addition), and low masks
    2^j - 1 (the `mask` routine). None when the routine is needed."""
    if o.op not in ("&", "|", "^"):
        return None
    op, v, k, dst, line = o.op, o.v, o.k, o.dst, o.line
    int_min = -(1 << (e.w - 1))
    if (op, k) in (("&", -1), ("|", 0), ("^", 0)):
        return _into(e, v, dst)
    if (op, k) in (("&", 0), ("|", -1)):
        return _into(e, const(k), dst)
    if op == "^" and k in (-1, int_min):
        out = dst or e.temp()
        if k == -1:  # ~v = -1 - v
            if out == v:
                e.emit(mc.Neg(out, v, line=line), mc.Sub(out, const(1), line=line))
            else:
                e.emit(mc.Mov(out, const(-1), line=line), mc.Sub(out, v, line=line))
        else:
            e.emit(mc.Mov(out, v, line=line), mc.Add(out, const(int_min), line=line))
        return out
    if op == "&" and k == -int_min - 1:  # clear the top bit: v < 0 -> v + INT_MIN
        out = dst or e.temp()
        done = e.label("pos")
        e.emit(mc.Mov(out, v, line=line), mc.Jump("ge", out, done, line=line),
               mc.Add(out, const(int_min), line=line), mc.Label(done))
        return out
    if op == "&" and k > 0 and (k + 1) & k == 0:  # 2^j - 1: v mod 2^j
        return _const_routine(e, "mask", k + 1, v, dst, line)
    return None


def divide(e: Emitter, o: Operation) -> str | None:
    """v / k, v % k (2 <= |k| < 2^(W-1)), v >> k and v >>> k (0 <= k <= W-2) by the
    unrolled constant-divisor routines of `runtime_lib` (one step per quotient bit
    instead of a loop over all W bits). None when the general routine is needed."""
    op, v, k, dst, line = o.op, o.v, o.k, o.dst, o.line
    if op in (">>", ">>>") and k == 0:
        return _into(e, v, dst or e.temp())
    if op in (">>", ">>>") and 1 <= k <= e.w - 2:
        mode, d, negate = ("sar" if op == ">>" else "shr"), 1 << k, True
    elif op in ("/", "%") and 2 <= abs(k) < 1 << (e.w - 1):
        mode, d, negate = ("div" if op == "/" else "mod"), abs(k), k > 0
    else:
        return None
    return _const_routine(e, mode, d, v, dst, line, negate)


def _const_routine(e: Emitter, mode: str, d: int, v: str, dst: str | None, line: int,
                   negate: bool = True) -> str:
    """Call the constant-divisor routine `mode` for d on v. The quotient modes leave
    minus the result: negated into the destination (two steps), or copied when the
    divisor was negative (x / -d = -(x / d))."""
    name = runtime_lib.const_name(mode, d)
    e.routines.add(name)
    r = runtime_lib.routine(name, e.w)
    e.emit(mc.Mov(r.args[0], v, line=line), mc.Call(r.entry, r.ra, line=line))
    out = dst or e.temp()
    if mode in ("mod", "mask") or not negate:
        e.emit(mc.Mov(out, r.results[0], line=line))
    else:
        e.emit(mc.Neg(out, r.results[0], line=line))
    return out


# Tried in order; the first that applies wins. Each handles its own operators, so the order
# only matters for a new rewrite that overlaps an old one.
REWRITES: tuple[Rewrite, ...] = (shift_left, multiply, bitwise, divide)


def rewrite(e: Emitter, op: str, v: str, k: int, dst: str | None, line: int) -> str | None:
    """Emit `dst = v op k` by the first rewrite that applies; returns the result's cell, or
    None (nothing emitted) when the operator's general routine is needed."""
    operation = Operation(op, v, k, dst, line)
    for candidate in REWRITES:
        out = candidate(e, operation)
        if out is not None:
            return out
    return None
