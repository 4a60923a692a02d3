"""The runtime library: O(W) subroutines emitted once per program, and only when used.

Why subroutines: `*`, `/`, `%`, shifts and bitwise operators have no SUBLEQ counterpart;
done naively (repeated addition) they would cost O(value) steps. Each routine here walks the
W bits of its operands once (shift-and-add, shift-and-subtract, bit-by-bit), so its cost is
O(W) whatever the values. They are written in the macro IR, take their arguments in fixed
cells (`$mul.a`, ...), leave results in fixed cells, and return through their own
return-address cell. They are leaves (they call nothing), so fixed cells are safe even when
the calling `.tl` function is recursive.

Routines and their contracts (all values are W-bit two's complement):
- `mul`:    r = a * b (wrapping); unrolled over the bits of the operand of smaller
            magnitude when it has at most half the word's bits, else a loop over W bits
- `divmod`: q = a / b truncated toward zero, r = a % b with the dividend's sign; b != 0 is
            checked by the caller; INT_MIN / -1 wraps to INT_MIN with remainder 0
- `udivmod`: q = a / b, r = a % b, a and b read as unsigned; b != 0 checked by the caller
- `shl`:    r = a << k, k read as an unsigned word (k >= W gives 0)
- `sar`:    r = a >> k arithmetic, k unsigned (k >= W gives 0 or -1)
- `shr`:    r = a >>> k logical, k unsigned (k >= W gives 0)
- `and`, `or`, `xor`: r = a op b
- `low`:    r = a & (2^k - 1), the low k bits, given k and s = W - k: s doublings move them
            to the top, then they are read out one by one (the lowering now uses `cmask`)
- `print`:  output the decimal text of a (with '-' for negatives, INT_MIN included)
- `c<mode>.<d>` (`const_name`): division by the constant d, unrolled (one SUBLEQ per
            quotient bit, no loop counter): `cdiv`/`cmod` (C99 `/`, `%`), `cmask`
            (`& (d - 1)`, d = 2^j), and `csar`/`cshr` (`>>`, `>>>` by k, d = 2^k), which
            record the quotient three bits per step (`_const_shift`)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mlpc.compiler.macros import (
    Add,
    Clear,
    DataBlock,
    DataCell,
    Jmp,
    Jump,
    Label,
    Load,
    Macro,
    Mov,
    Neg,
    Out,
    Ret,
    Sub,
    Subleq,
    Z,
    const,
)

ROUTINE_NAMES = ("mul", "divmod", "udivmod", "shl", "sar", "shr", "and", "or", "xor", "low",
                 "print")


@dataclass(frozen=True)
class Routine:
    """One runtime subroutine: call `entry` with `Call(entry, ra)` after filling `args`."""

    name: str
    entry: str
    args: tuple[str, ...]
    results: tuple[str, ...]
    ra: str
    code: tuple[Macro, ...]
    data: tuple[DataCell | DataBlock, ...]


def cell(routine: str, part: str) -> str:
    """The label of a routine's cell, e.g. `$mul.a`."""
    return f"${routine}.{part}"


def _build(name: str, args: tuple[str, ...], results: tuple[str, ...], scratch: tuple[str, ...],
           body: list[Macro], extra_data: tuple[DataBlock, ...] = ()) -> Routine:
    entry = f"${name}"
    ra = cell(name, "ra")
    names = {*args, *results, *scratch, "ra"}
    data: tuple[DataCell | DataBlock, ...] = tuple(
        DataCell(cell(name, n)) for n in sorted(names)
    ) + extra_data
    code = (Label(entry), *body, Ret(ra))
    return Routine(name, entry, tuple(cell(name, a) for a in args),
                   tuple(cell(name, r) for r in results), ra, code, data)


def _mul(w: int) -> Routine:
    """r = a * b (wrapping). The operands are first arranged so that b, the multiplier, is
    the one of smaller magnitude and b >= 0 (a * b = -a * -b and b * a). A multiplier below
    2^16 then goes through an unrolled Horner chain over its bits from the top (r = 2r, or
    2r + a, in 3 or 4 SUBLEQs), with one-step bit tests as in the constant-divisor routines
    (the offset of the previous outcome folded into the next constant) and entries at 2^8
    and 2^4 for small ones: about 5 steps per multiplier bit, none for the bits above it.
    Larger multipliers (a product that needs wrap-around) take the loop over all W bits."""
    a, b, r, i, t = (cell("mul", x) for x in "abrit")
    lp, add, pos, skip, top, done, loop = (
        "$mul." + x for x in ("loop", "add", "pos", "skip", "top", "done", "wide"))
    go, bneg, aneg = "$mul.go", "$mul.bneg", "$mul.aneg"
    high = min(16, w - 1)  # the unrolled chain takes multipliers below 2^high

    def test(j: int, state: str) -> str:
        return f"$mul.{state}{j}" if j >= 0 else done

    body: list[Macro] = [
        Clear(r),
        Jump("lt", b, bneg),
        Label(pos),  # b >= 0 (or INT_MIN)
        Jump("lt", a, aneg),
        Mov(t, a),
        Sub(t, b),  # a - b (wraps only for b = INT_MIN: then swap, b = a)
        Jump("ge", t, go),
        Add(b, t),  # swap: b = a, a = b
        Sub(a, t),
        Label(go),
        # b < 2^16 (2^15 at W = 16)? then < 2^8? < 2^4? Enter the chain at the first bit
        # that may be set, in state "z" (b holds B - 2^(j+1) + 1)
        Subleq(const((1 << high) - 1), b, "$mul.small"),
        Sub(b, const(1 - (1 << high))),
        Jmp(loop),
        Label("$mul.small"),
        Subleq(const((1 << 8) - (1 << high)), b, "$mul.lt8"),
        Subleq(const((1 << high) - (1 << 8)), b, test(high - 1, "z")),  # b <= 0: jumps
        Label("$mul.lt8"),
        Subleq(const((1 << 4) - (1 << 8)), b, test(3, "z")),
        Subleq(const((1 << 8) - (1 << 4)), b, test(7, "z")),
    ]
    for j in range(high - 1, -1, -1):
        double, plus = f"$mul.double{j}", f"$mul.plus{j}"
        body += [
            Label(test(j, "z")),  # b = B - 2^(j+1) + 1 after a 0 bit
            Subleq(const(-(1 << j)), b, double),
            Jmp(plus),
            Label(test(j, "o")),  # b = B + 1 after a 1 bit
            Subleq(const(1 << j), b, double),
            Label(plus),  # r = 2r + a
            Subleq(r, Z),
            Subleq(a, Z),
            Subleq(Z, r),
            Subleq(Z, Z, test(j - 1, "o")),
            Label(double),  # r = 2r
            Subleq(r, Z),
            Subleq(Z, r),
            Subleq(Z, Z, test(j - 1, "z")),
        ]
    body += [
        Label(bneg),  # a * b = -a * -b
        Neg(b, b),
        Neg(a, a),
        Jmp(pos),
        Label(aneg),  # |a| < b iff a + b > 0: then a, b = -b, -a
        Mov(t, a),
        Add(t, b),
        Jump("le", t, go),
        Sub(b, t),
        Sub(a, t),
        Jmp(go),
        # b >= 2^16 (or INT_MIN): shift-and-add over b's bits from the top
        Label(loop),
        Mov(i, const(w)),
        Jump("ge", b, skip),
        Neg(b, b),
        Neg(a, a),
        Label(skip),  # b >= 0 or b = INT_MIN here
        Jump("le", b, top),
        Add(b, b),
        Sub(i, const(1)),
        Jmp(skip),
        Label(top),  # b's top bit is set
        Label(lp),
        Add(r, r),
        Jump("lt", b, add),
        Add(b, b),
        Sub(i, const(1)),
        Jump("gt", i, lp),
        Jmp(done),
        Label(add),
        Add(r, a),
        Add(b, b),
        Sub(i, const(1)),
        Jump("gt", i, lp),
        Label(done),
    ]
    return _build("mul", ("a", "b"), ("r",), ("i", "t"), body)


def _divmod(w: int) -> Routine:
    """Restoring division of the magnitudes (as unsigned W-bit numbers), then signs (C99).

    The dividend's leading zero bits are skipped first (6 steps each). The trial
    subtraction is one SUBLEQ `r -= d - 1; if r <= 0 ...`: for r < 2^(W-1) it is an exact
    signed test of r >= d, and for r >= 2^(W-1) (negative as signed) the wrapped difference
    is the small positive unsigned one, so the test still says "subtract"."""
    a, b, q, r = (cell("divmod", x) for x in "abqr")
    n, d, i, sq, sr, t = (cell("divmod", x) for x in ("n", "d", "i", "sq", "sr", "t"))
    lab = {k: f"$divmod.{k}" for k in ("apos", "bpos", "gen", "fix", "fq", "fr")}
    int_min = -(1 << (w - 1))
    body: list[Macro] = [
        Clear(sq),
        Clear(sr),
        Mov(n, a),
        Jump("ge", a, lab["apos"]),
        Neg(n, a),  # |INT_MIN| stays 0x80..0, which is right read as unsigned
        Sub(sq, const(-1)),
        Sub(sr, const(-1)),
        Label(lab["apos"]),
        Mov(d, b),
        Jump("ge", b, lab["bpos"]),
        Neg(d, b),
        Sub(sq, const(1)),  # sq is -1, 0 or 1: non-zero means a negative quotient
        Label(lab["bpos"]),
        Clear(r),
        Mov(q, n),
        Jump("ge", d, lab["gen"]),
        # |b| = 2^(W-1): q = 1 iff |a| = 2^(W-1) too, else q = 0 and r = |a|
        Clear(q),
        Mov(r, n),
        Mov(t, n),
        Sub(t, const(int_min)),
        Jump("ne", t, lab["fix"]),
        Sub(q, const(-1)),
        Clear(r),
        Jmp(lab["fix"]),
        Label(lab["gen"]),
        *_restoring_division("divmod", w, q, r, d, i, lab["fix"], cell("divmod", "e")),
        Label(lab["fix"]),
        Jump("eq", sq, lab["fq"]),
        Neg(q, q),
        Label(lab["fq"]),
        Jump("eq", sr, lab["fr"]),
        Neg(r, r),
        Label(lab["fr"]),
    ]
    return _build("divmod", ("a", "b"), ("q", "r"), ("n", "d", "e", "i", "sq", "sr", "t"),
                  body)


def _restoring_division(name: str, w: int, q: str, r: str, d: str, i: str, done: str,
                        ne: str) -> list[Macro]:
    """The unsigned core of `divmod` and `udivmod`: q holds the dividend n (any W-bit
    pattern, read as unsigned), d the divisor with 0 < d < 2^(W-1), r = 0; leaves
    q = n / d and r = n % d (unsigned), or jumps to `done` with q = r = 0 when n = 0.
    r < d always fits, 2r + 1 fits unsigned. A failed trial subtraction is not undone:
    the loop goes on in its second copy, where r holds the remainder minus (d - 1) and the
    next trial adds d - 1 (`ne`) instead of subtracting it; the values tested are the
    same, so are the wrapped cases."""
    skip, top, loop, nobit, fail, loop_n, nobit_n, fail_n, end_n, end = (
        f"${name}.{x}" for x in ("skip", "top", "loop", "nobit", "fail", "loopn", "nobitn",
                                 "failn", "endn", "end"))

    block_test, block = f"${name}.blocktest", f"${name}.block"
    small = (1 << (w - 8)) - 1

    def body(start: str, no_bit: str, trial: str, failed: str) -> list[Macro]:
        return [
            Label(start),
            Add(r, r),
            Jump("ge", q, no_bit),
            Sub(r, const(-1)),
            Label(no_bit),
            Add(q, q),
            Subleq(trial, r, failed),  # r -= d - 1 (or += in the second copy): r < d?
            Sub(r, const(1)),
            Sub(q, const(-1)),
            Sub(i, const(1)),
            Jump("gt", i, loop),
            Jmp(end),
        ]

    return [
        Mov(i, const(w)),
        Sub(d, const(1)),  # d - 1 from here on
        Neg(ne, d),
        # the dividend's leading zeros add nothing: skip them, eight at a time while
        # 0 < q < 2^(W-8) (29 steps instead of 48), then one at a time
        Label(block_test),
        Jump("le", q, top),
        Subleq(const(small), q, block),
        Sub(q, const(-small)),
        Jmp(skip),
        Label(block),
        Sub(q, const(-small)),
        *[Add(q, q) for _ in range(8)],
        Sub(i, const(8)),
        Jmp(block_test),
        Label(skip),
        Jump("le", q, top),
        Add(q, q),
        Sub(i, const(1)),
        Jmp(skip),
        Label(top),
        Jump("eq", q, done),  # n = 0: q = r = 0
        *body(loop, nobit, d, fail),
        Label(fail),  # r = remainder - (d - 1) <= 0
        Sub(i, const(1)),
        Jump("le", i, end_n),
        *body(loop_n, nobit_n, ne, fail_n),
        Label(fail_n),
        Sub(i, const(1)),
        Jump("gt", i, loop_n),
        Label(end_n),
        Add(r, d),
        Label(end),
    ]


def _udivmod(w: int) -> Routine:
    """Unsigned division: q = a / b, r = a % b with a and b read as unsigned W-bit numbers
    (b != 0 is checked by the caller). A divisor of 2^(W-1) or more goes at most once: q is
    1 exactly when a >= b (both have the top bit set then, so a - b cannot overflow)."""
    a, b, q, r, d, i, t = (cell("udivmod", x) for x in "abqrdit")
    gen, done = "$udivmod.gen", "$udivmod.done"
    body: list[Macro] = [
        Clear(r),
        Mov(q, a),
        Mov(d, b),
        Jump("gt", d, gen),
        Clear(q),  # b >= 2^(W-1)
        Mov(r, a),
        Jump("ge", a, done),  # a < 2^(W-1) <= b
        Mov(t, a),
        Sub(t, b),
        Jump("lt", t, done),
        Mov(r, t),
        Sub(q, const(-1)),
        Jmp(done),
        Label(gen),
        *_restoring_division("udivmod", w, q, r, d, i, done, cell("udivmod", "e")),
        Label(done),
    ]
    return _build("udivmod", ("a", "b"), ("q", "r"), ("d", "e", "i", "t"), body)


def _shl(w: int) -> Routine:
    """Doubling k times, with k read as unsigned and clamped to W (at most W iterations)."""
    a, k, t = (cell("shl", x) for x in "akt")
    lp, big, ok, done = "$shl.loop", "$shl.big", "$shl.ok", "$shl.done"
    body: list[Macro] = [
        Jump("lt", k, big),  # a negative count is a huge unsigned one
        Mov(t, k),
        Sub(t, const(w)),
        Jump("le", t, ok),
        Label(big),
        Mov(k, const(w)),
        Label(ok),
        Jump("le", k, done),
        Label(lp),
        Add(a, a),
        Sub(k, const(1)),
        Jump("gt", k, lp),
        Label(done),
    ]
    return _build("shl", ("a", "k"), ("a",), ("t",), body)


def _sar(w: int) -> Routine:
    """Take the top W-k bits of a into r, starting from r = -1 (negative a) or 0. Leading
    bits equal to the sign leave r unchanged, so they are skipped first (7 steps each)."""
    a, k, r, i = (cell("sar", x) for x in "akri")
    lp, pos, neg, skip0, top, skip1, nob, done = (
        "$sar." + x for x in ("loop", "pos", "neg", "skip0", "top", "skip1", "nob", "done"))
    body: list[Macro] = [
        *_bits_kept(i, k, w, pos),
        Clear(r),
        Jump("lt", a, neg),
        Jump("le", i, done),
        *_skip_leading_zeros(a, i, skip0, top, done),  # a >= 0
        Label(top),
        Jump("lt", a, lp),  # a top bit, else a == 0 and r = 0
        Jmp(done),
        Label(neg),  # a < 0: r = -1, skip its leading ones
        Sub(r, const(1)),
        Jump("le", i, done),
        Label(skip1),
        Jump("ge", a, lp),
        Add(a, a),
        Sub(i, const(1)),
        Jump("gt", i, skip1),
        Jmp(done),
        *_take_top_bits(r, a, i, lp, nob),
        Label(done),
    ]
    return _build("sar", ("a", "k"), ("r",), ("i",), body)


def _shr(w: int) -> Routine:
    """Logical shift: the top W-k bits of a into r, starting from r = 0. Leading zero bits
    leave r unchanged, so they are skipped first (7 steps each)."""
    a, k, r, i = (cell("shr", x) for x in "akri")
    lp, pos, skip, top, nob, done = (
        "$shr." + x for x in ("loop", "pos", "skip", "top", "nob", "done"))
    body: list[Macro] = [
        *_bits_kept(i, k, w, pos),
        Clear(r),
        Jump("le", i, done),
        *_skip_leading_zeros(a, i, skip, top, done),
        Label(top),
        Jump("lt", a, lp),  # a top bit, else a == 0 and r = 0
        Jmp(done),
        *_take_top_bits(r, a, i, lp, nob),
        Label(done),
    ]
    return _build("shr", ("a", "k"), ("r",), ("i",), body)


def _bits_kept(i: str, k: str, w: int, pos: str) -> list[Macro]:
    """i = W - k, the bits a right shift by k keeps (0 when k < 0, a huge unsigned count;
    i <= 0 when k >= W: no bits), for sar and shr."""
    return [
        Clear(i),
        Jump("lt", k, pos),
        Mov(i, const(w)),
        Sub(i, k),
        Label(pos),
    ]


def _skip_leading_zeros(a: str, i: str, skip: str, top: str, done: str) -> list[Macro]:
    """For a >= 0: shift a left and count down i past its leading zeros (they leave r
    unchanged), then on to `top`; to `done` when i runs out first (sar and shr)."""
    return [
        Label(skip),
        Jump("le", a, top),
        Add(a, a),
        Sub(i, const(1)),
        Jump("gt", i, skip),
        Jmp(done),
    ]


def _take_top_bits(r: str, a: str, count: str, loop: str, no_bit: str
                   ) -> list[Macro]:
    """While `count` > 0: r = 2r + (top bit of a), a <<= 1, count -= 1 (sar and low)."""
    return [
        Label(loop),
        Add(r, r),
        Jump("ge", a, no_bit),
        Sub(r, const(-1)),
        Label(no_bit),
        Add(a, a),
        Sub(count, const(1)),
        Jump("gt", count, loop),
    ]


_BITWISE = ("and", "or", "xor")


def _bitwise(name: str, w: int) -> Routine:
    """From the top bit down: r = 2r + (bit_a op bit_b); a and b shift left each round. The
    bit tests form the smallest decision tree for the operator (`and` needs b's bit only
    when a's is 1, `or` only when it is 0)."""
    a, b, r, i = (cell(name, x) for x in "abri")
    lp, nxt, one, a1 = (f"${name}.{x}" for x in ("loop", "next", "one", "a1"))
    set_bit = Sub(r, const(-1))
    tree: list[Macro] = {
        "and": [Jump("ge", a, nxt), Jump("ge", b, nxt), set_bit],
        "or": [Jump("lt", a, one), Jump("ge", b, nxt), Label(one), set_bit],
        "xor": [Jump("lt", a, a1), Jump("ge", b, nxt), set_bit, Jmp(nxt), Label(a1),
                Jump("lt", b, nxt), set_bit],
    }[name]
    body: list[Macro] = [
        Clear(r),
        Mov(i, const(w)),
        Label(lp),
        Add(r, r),
        *tree,
        Label(nxt),
        Add(a, a),
        Add(b, b),
        Sub(i, const(1)),
        Jump("gt", i, lp),
    ]
    return _build(name, ("a", "b"), ("r",), ("i",), body)


def _low(w: int) -> Routine:
    """The low k bits of a: shift them to the top (s = W - k doublings), then take them
    into r from the top down."""
    a, s, k, r = (cell("low", x) for x in "askr")
    skip, take, lp, nob = ("$low." + x for x in ("skip", "take", "loop", "nob"))
    body: list[Macro] = [
        Jump("le", s, take),
        Label(skip),
        Add(a, a),
        Sub(s, const(1)),
        Jump("gt", s, skip),
        Label(take),
        Clear(r),
        *_take_top_bits(r, a, k, lp, nob),
    ]
    return _build("low", ("a", "s", "k"), ("r",), (), body)


def powers_of_ten(w: int) -> tuple[int, ...]:
    """10^k for k from the largest that fits W bits down to 10 (the table `print` walks)."""
    limit = (1 << (w - 1)) - 1
    out = []
    p = 10
    while p <= limit:
        out.append(p)
        p *= 10
    return tuple(reversed(out))


def _print(w: int) -> Routine:
    """Decimal text of a. Works on n = -|a| <= 0 so that INT_MIN needs no special case.
    Leading powers of ten larger than |a| cost one trial each; then each digit is counted
    in units of its power p, two steps a unit: `n += p; if n <= 0` (the table holds -p, so
    that is one SUBLEQ) and `ndg -= 1` (minus the digit's character, never positive, so the
    same SUBLEQ jumps back)."""
    a, p, k, npw, dg, ndg = (cell("print", x) for x in ("a", "p", "k", "npw", "dg", "ndg"))
    table = "$print.pow10"
    pows = powers_of_ten(w)
    lab = {x: f"$print.{x}" for x in ("neg", "go", "lead", "first", "dl", "next", "unit",
                                      "last")}
    body: list[Macro] = [
        Jump("lt", a, lab["neg"]),
        Neg(a, a),
        Jmp(lab["go"]),
        Label(lab["neg"]),
        Out(const(ord("-"))),
        Label(lab["go"]),
        *_print_start(pows, a, p, k, table, lab["lead"], lab["last"]),
        Mov(p, "&" + table),
        Mov(k, const(len(pows))),
        Label(lab["lead"]),  # skip the powers of ten above |a|
        Load(npw, p),
        Subleq(npw, a, lab["first"]),  # n += p <= 0: the first digit
        Add(a, npw),
        Sub(p, const(-1)),
        Sub(k, const(1)),
        Jump("gt", k, lab["lead"]),
        Jmp(lab["last"]),
        Label(lab["first"]),  # one unit of the first power already taken
        Mov(ndg, const(-ord("1"))),
        Jmp(lab["dl"]),
        Label(lab["next"]),
        Load(npw, p),
        Mov(ndg, const(-ord("0"))),
        Label(lab["dl"]),
        Subleq(npw, a, lab["unit"]),  # n += p <= 0: one more unit
        Add(a, npw),  # one too many: take it back
        Neg(dg, ndg),
        Out(dg),
        Sub(p, const(-1)),
        Sub(k, const(1)),
        Jump("gt", k, lab["next"]),
        Jmp(lab["last"]),
        Label(lab["unit"]),
        Subleq(const(1), ndg, lab["dl"]),  # ndg -= 1 stays negative: always jumps
        Label(lab["last"]),  # the units digit is -n
        Mov(dg, const(ord("0"))),
        Sub(dg, a),
        Out(dg),
    ]
    return _build("print", ("a",), (), ("p", "k", "npw", "dg", "ndg"), body,
                  (DataBlock(table, tuple(-x for x in pows)),))


def _print_start(pows: tuple[int, ...], a: str, p: str, k: str, table: str, lead: str,
                 last: str) -> list[Macro]:
    """Jump into the table near |a|'s magnitude: |a| < 10 goes straight to the last digit,
    |a| < 1000 starts at 100, |a| < 10^6 at 10^5 (3 steps per test instead of a table
    trial per power)."""
    out: list[Macro] = []
    for power in (10, 1000, 10**6):
        if power not in pows or power == pows[0]:
            continue
        big = f"$print.ge{power}"
        out += [Add(a, const(power)), Jump("le", a, big), Sub(a, const(power))]
        if power == 10:
            out.append(Jmp(last))
        else:
            index = pows.index(power // 10)
            out += [Mov(p, f"&{table}+{index}"), Mov(k, const(len(pows) - index)), Jmp(lead)]
        out += [Label(big), Sub(a, const(power))]
    return out


CONST_MODES = ("div", "mod", "sar", "shr", "mask")


def const_name(mode: str, d: int) -> str:
    """The name of the constant-divisor routine for `mode` (one of CONST_MODES) and d >= 2."""
    return f"c{mode}.{d}"


def _level(d: int, bits: int) -> int:
    """The largest j with d * 2^j <= 2^bits (-1 when there is none)."""
    j = -1
    while d << (j + 1) <= 1 << bits:
        j += 1
    return j


def _const_divisor(mode: str, d: int, w: int) -> Routine:
    """Division of a by the constant d >= 2 (d * 2^j <= 2^(W-1) for j >= 0), unrolled: one
    SUBLEQ per quotient bit, plus one per 1 bit of the quotient when it is recorded.

    The caller puts a in `r`. For a >= 0, R = a; for a < 0 the routine makes R >= 0 from it
    (-a for C99 `/` and `%`, entered as R - 1 = ~a so that INT_MIN fits; ~a for `>>`; a + 2^(W-1)
    for `>>>` and masks). From the top, bit j of R / d is R >= D = d * 2^j, tested in one step
    `r -= c; if r <= 0` with c chosen so that r = R - D + 1 after it: the node after a 1 bit
    holds r = R + 1 (c = D), the node after a 0 bit r = R - 2D + 1 (c = -D), so no step
    restores r. Results, by mode: `div` nq = -(a / d) truncated (C99); `sar` nq = -(a >> k),
    `shr` nq = -(a >>> k) for d = 2^k; `mod` r = a % d (C99); `mask` r = a & (d - 1) for
    d = 2^j. The quotient modes leave minus the result, which the caller negates into its
    destination in two steps (a copy takes four)."""
    name = const_name(mode, d)
    r, nq, flag, t = (cell(name, x) for x in ("r", "nq", "neg", "t"))
    quotient = mode in ("div", "sar", "shr")
    int_min = -(1 << (w - 1))
    top = 0
    while d << (top + 1) <= 1 << (w - 1):
        top += 1

    def node(j: int, state: str) -> str:
        return f"${name}.{state}{j}" if j >= 0 else f"${name}.x{state}"

    go, neg, end, done = (f"${name}.{x}" for x in ("go", "negative", "end", "done"))
    body: list[Macro] = [Clear(nq)] if quotient else []
    if mode == "mask":
        body += [Jump("ge", r, go), Sub(r, const(int_min))]  # a + 2^(W-1): same low bits
    elif mode == "shr":
        body += [Clear(flag), Jump("ge", r, go), Sub(r, const(int_min)), Mov(flag, const(1))]
    else:  # `div` and `mod` take a = 0 the negative way too (R = 0, entered as -1)
        body += [Clear(flag), Jump("lt" if mode == "sar" else "le", r, neg)]
    # small R: skip the leading quotient bits, jumping into the chain at D ~ 2^16 or 2^8
    levels = [j for j in (_level(d, 16), _level(d, 8)) if 0 <= j < top - 2]
    if len(levels) == 2 and levels[0] - levels[1] < 3:
        levels.pop()
    skip = f"${name}.skip"
    small: list[Macro] = []
    if levels:
        into = f"${name}.small" if len(levels) == 2 else node(levels[0] - 1, "0")
        c = (d << levels[0]) - 1  # r = R, or R - 1 when entered at `skip`
        body += [Label(go), Subleq(const(c), r, into), Sub(r, const(-c))]
        if mode in ("div", "mod"):
            small += [Label(skip), Subleq(const(c - 1), r, into), Sub(r, const(1 - c)),
                      Jmp(node(top, "m"))]
    if len(levels) == 2:
        high, low = (d << levels[0]), (d << levels[1])
        small += [Label(f"${name}.small"),
                  Subleq(const(low - high), r, node(levels[1] - 1, "0")),
                  Subleq(const(high - low), r, node(levels[0] - 1, "0"))]  # r <= 0 again
    start = go
    if levels:
        go = f"${name}.top"
    body.append(Label(go))
    for j in range(top, -1, -1):
        dj = d << j
        states = (("e", dj - 1), ("m", dj - 2)) if j == top else (("1", dj), ("0", -dj))
        if j == top and mode not in ("div", "mod"):
            states = states[:1]
        for state, c in states:
            if state != "e":
                body.append(Label(node(j, state)))
            body.append(Subleq(const(c), r, node(j - 1, "0")))
            if quotient:  # nq -= 2^j stays <= 0: always jumps
                body.append(Subleq(const(1 << j), nq, node(j - 1, "1")))
            else:
                body.append(Jmp(node(j - 1, "1")))
    if quotient:
        body += [Label(node(-1, "0")), Label(node(-1, "1"))]
    else:
        body += [Label(node(-1, "0")), Sub(r, const(-(d - 1))), Jmp(end),
                 Label(node(-1, "1")), Sub(r, const(1))]
    body.append(Label(end))
    if mode != "mask":
        body.append(Jump("le", flag, done))
        body += {
            "div": [Neg(nq, nq)],
            "sar": [Neg(nq, nq), Sub(nq, const(-1))],  # -(-1 - q) = 1 + q
            "shr": [Sub(nq, const(1 << (w - d.bit_length())))],  # q + 2^(W-1-k)
            "mod": [Neg(r, r)],
        }[mode]
    body += [Label(done), Ret(cell(name, "ra"))]
    body += small
    if mode in ("div", "mod", "sar"):
        # a < 0: r = ~a = -a - 1 (t = -a); `div` and `mod` enter as R - 1 with R = -a
        entry = (skip if levels else node(top, "m")) if mode in ("div", "mod") else start
        body += [Label(neg), Mov(flag, const(1)), Neg(t, r), Mov(r, t), Sub(r, const(1)),
                 Jmp(entry)]
    # a jump to the next instruction is no jump (the chain's "0" nodes fall into the next
    # bit's "1" node)
    body = [m for i, m in enumerate(body)
            if not (isinstance(m, Jmp) and i + 1 < len(body) and body[i + 1] == Label(m.target))]
    code = (Label(f"${name}"), *body)
    data = tuple(DataCell(cell(name, x)) for x in ("neg", "nq", "r", "ra", "t"))
    return Routine(name, f"${name}", (r,), (nq if quotient else r,), cell(name, "ra"), code,
                   data)

SHIFT_GROUP = 3  # quotient bits a constant shift records with one step


def _const_shift(mode: str, k: int, w: int) -> Routine:
    """`a >> k` (`sar`) or `a >>> k` (`shr`) for a constant 1 <= k <= W-2: the quotient of
    R / 2^k by the unrolled chain of `_const_divisor` (one test step per quotient bit, the
    same r bookkeeping), with the quotient recorded SHIFT_GROUP bits at a time: the chain
    is a tree within each group of levels, so the node after a group's last test knows all
    its bits and records their value with one step (none when they are all 0). At most
    ceil((W-1-k) / 3) record steps instead of one per 1 bit: `x >> 1` is at most 58 steps
    at W = 32, with the call and the copies around it.

    R < 2^(W-1): for a >= 0, R = a; for a < 0, R = a + 2^(W-1) (the top bit cleared), and
    with v = 2^(W-1-k), a >> k = (R >> k) - v and a >>> k = (R >> k) + v. The result cell
    `nq` holds minus the result (the caller negates it). Every record step must jump (its
    cell stays <= 0), so the sign's offset is folded into where `nq` starts: for sar at -v
    (a >= 0) or 0 (a < 0), adding v at the end; for shr at 0 (a >= 0) or -v (a < 0). a = 0
    and a = INT_MIN (after one sign test and R = a + 2^(W-1), both leave r <= 0) take a
    short way to their constant results.
    The leading zero bits of a small R are skipped as in `_const_divisor` (one test against
    2^16 or 2^8 and a jump into the chain)."""
    name = const_name(mode, 1 << k)
    r, nq = cell(name, "r"), cell(name, "nq")
    int_min = -(1 << (w - 1))
    v = 1 << (w - 1 - k)
    top = w - 2 - k  # the highest quotient bit of R < 2^(W-1)
    start_pos, start_neg = (-v, 0) if mode == "sar" else (0, -v)

    def lab(x: str) -> str:
        return f"${name}.{x}"

    go, nonpos, special, zero, end = (lab(x) for x in ("go", "nonpos", "special", "zero",
                                                       "end"))

    def start(value: int, then: str) -> list[Macro]:
        """nq = value (<= 0), then go to `then` (each step's result is <= 0: it jumps)."""
        if value == 0:
            return [Subleq(nq, nq, then)]
        return [Subleq(nq, nq), Subleq(const(-value), nq, then)]

    body: list[Macro] = [
        Subleq(Z, r, nonpos),  # a > 0 falls through
        *start(start_pos, go),
        Label(nonpos),  # a <= 0: R = a + 2^(W-1), which is <= 0 for a = 0 and INT_MIN
        Subleq(const(int_min), r, special),
        *start(start_neg, go),
        Label(special),  # r = INT_MIN (a = 0) or 0 (a = INT_MIN): q = 0 either way
        Subleq(const(-1), r, zero),
        *start(start_neg, end),
        Label(zero),
        *start(start_pos, end),
    ]

    def group_start(j: int) -> bool:
        return j == top or j % SHIFT_GROUP == SHIFT_GROUP - 1

    # Nodes: ("start", j, prev) a group's first level j after the quotient bit `prev`;
    # ("node", j, prev, bits) a later level of a group whose bits so far are `bits`;
    # ("rec", j, value, last) the step recording a group's bits (value << j) after its last
    # level j, whose bit was `last`. ("start", -1, ...) is the end.
    def after(j: int, bits: str) -> tuple:
        """Where the chain goes once level j decided the group's bits so far, `bits`."""
        if j % SHIFT_GROUP == 0:
            value = int(bits, 2)
            if value:
                return ("rec", j, value, bits[-1])
            return ("start", j - 1, "0")
        return ("node", j - 1, bits[-1], bits)

    def label_of(node: tuple) -> str:
        if node[0] == "start":
            j, prev = node[1], node[2]
            if j < 0:
                return end
            return lab(f"g{j}_{prev}")
        if node[0] == "node":
            return lab(f"n{node[1]}_{node[3]}")
        return lab(f"r{node[1]}_{node[2]:b}")

    def test_constant(j: int, prev: str) -> int:
        return (1 << (k + j)) if prev == "1" else -(1 << (k + j))

    # small R: skip its leading zero bits (as `_const_divisor` does)
    levels = [j for j in (_level(1 << k, 16), _level(1 << k, 8)) if 0 <= j < top - 2]
    if len(levels) == 2 and levels[0] - levels[1] < 3:
        levels.pop()

    def entry_at(j: int) -> tuple:
        """The node for level j when every quotient bit above it is 0."""
        if group_start(j):
            return ("start", j, "0")
        s = min(top, j - j % SHIFT_GROUP + SHIFT_GROUP - 1)
        return ("node", j, "0", "0" * (s - j))

    body.append(Label(go))
    top_constant = (1 << (k + top)) - 1  # r = R - 2^(k+top) + 1
    if levels:
        m = 1 << (k + levels[0])
        into = lab("small") if len(levels) == 2 else label_of(entry_at(levels[0] - 1))
        body.append(Subleq(const(m - 1), r, into))  # r = R - m + 1 > 0: on to the top
        top_constant -= m - 1
    placed: set[str] = set()
    pending: list[tuple] = []

    def emit(node: tuple, label: str | None, first_constant: int | None = None) -> None:
        """The code of `node` at `label` (None: a copy nobody jumps to), then its fall-
        through successor (bit 1) at once and the other (bit 0) later, by its label."""
        while True:
            if label is not None:
                body.append(Label(label))
                placed.add(label)
            if node[0] == "rec":
                _, j, value, last = node
                body.append(Subleq(const(value << j), nq, label_of(("start", j - 1, last))))
                pending.append(("start", j - 1, last))
                return
            if node[0] == "start":
                j, prev, bits = node[1], node[2], ""
            else:
                j, prev, bits = node[1], node[2], node[3]
            c = first_constant if first_constant is not None else test_constant(j, prev)
            first_constant = None
            zero_child, one_child = after(j, bits + "0"), after(j, bits + "1")
            if zero_child[0] == "start" and zero_child[1] < 0:
                zero_label = end
            else:
                zero_label = label_of(zero_child)
                pending.append(zero_child)
            body.append(Subleq(const(c), r, zero_label))
            node = one_child
            label = label_of(node)
            if label in placed:  # both starts of a group fall into it: the second gets a copy
                label = None

    emit(("start", top, "0"), lab("top"), top_constant)
    while pending:
        node = pending.pop()
        if node[0] == "start" and node[1] < 0:
            continue
        label = label_of(node)
        if label not in placed:
            emit(node, label)
    if len(levels) == 2:
        high, low = (1 << (k + levels[0])), (1 << (k + levels[1]))
        body += [Label(lab("small")),
                 Subleq(const(low - high), r, label_of(entry_at(levels[1] - 1))),
                 Subleq(const(high - low), r, label_of(entry_at(levels[0] - 1)))]
    for level in levels:  # the skip's entries exist in the chain (level 0: the end)
        assert label_of(entry_at(level - 1)) in placed | {end}
    body.append(Label(end))
    if mode == "sar":
        body.append(Sub(nq, const(-v)))
    body.append(Ret(cell(name, "ra")))
    code = (Label(f"${name}"), *body)
    data = tuple(DataCell(cell(name, x)) for x in ("nq", "r", "ra"))
    return Routine(name, f"${name}", (r,), (nq,), cell(name, "ra"), code, data)


@functools.cache
def routine(name: str, word_bits: int) -> Routine:
    """The routine `name` (one of ROUTINE_NAMES) for W = word_bits."""
    if name == "mul":
        return _mul(word_bits)
    if name == "divmod":
        return _divmod(word_bits)
    if name == "shl":
        return _shl(word_bits)
    if name == "sar":
        return _sar(word_bits)
    if name == "shr":
        return _shr(word_bits)
    if name == "udivmod":
        return _udivmod(word_bits)
    if name in _BITWISE:
        return _bitwise(name, word_bits)
    if name == "low":
        return _low(word_bits)
    if name == "print":
        return _print(word_bits)
    if name.startswith("c") and "." in name:
        mode, d = name[1:].split(".")
        if mode in ("sar", "shr"):
            return _const_shift(mode, int(d).bit_length() - 1, word_bits)
        return _const_divisor(mode, int(d), word_bits)
    raise KeyError(name)
