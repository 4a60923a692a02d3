"""The macro level between the checked AST and SUBLEQ words.

Why a separate level: the lowering of `.tl` thinks in terms of cells and jumps ("t = a + b",
"if x < 0 goto L", "load t from the address in p"), while SUBLEQ only knows
`M[b] -= M[a]; if M[b] <= 0 goto c`. Keeping a small macro IR in between lets the lowering
stay readable, lets the CFG clean-ups (`cfg_opt.py`) work on real control flow instead of on
words, and gives the listing a human-readable name for every group of SUBLEQ words.

Operands are *cell labels* (strings). Three kinds are resolved by `assemble`:

- ordinary labels: variables, arrays, temporaries, code labels (declared by `DataCell`,
  `DataBlock` or `Label`), and `label+k` for word k of an array; internal labels start with
  `$` or `.`, which `.tl` identifiers cannot;
- constant cells `#<int>` (see `const`): a read-only pool cell holding that value;
- address cells `&<label>` / `&<label>+<k>` (see `addr`): a pool cell holding an address,
  and `-&<label>` holding minus it.

Every expansion leaves the scratch cell `Z` at 0 and may clobber `T` and `T2`; nothing else
outside its operands is touched (LOAD/STORE/RET patch words of their own expansion).

Conventions that save steps: a constant source costs no copy through Z (`MOV x, #k` is
`x x; #-k x`); return-address cells and the stack pointer `$sp` hold *minus* the address,
so RET, PUSH and POP patch their operand words with one subtraction; `INDEX` leaves minus
the element's address for `LOAD`/`STORE` with `negated`. Step costs: MOV 4 (2 from a
constant), ADD 3 (1 with a constant), SUB/CLEAR/JLE 1, JGT 2, JLT/JGE/JEQ/JNE 2-5,
COMPARE 1-12, INDEX 4, BOUND 3, ADDRESS 3, LOAD 6-8, STORE 10-12, CALL 3, RET 3, PUSH 11,
POP 7, ALLOC 1 + 2-3 per array, FREE 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlpc.compiler.image import CodeSpan
from mlpc.errors import MlpcError

Z = "$Z"  # always 0 between macros
T = "$T"  # macro-internal scratch, clobbered by conditional jumps and copies
T2 = "$T2"  # a second scratch cell (comparisons)
SP = "$sp"  # minus the stack pointer (the address of the next free stack word)
TRAP_CODE = "$trap_code"
TRAP_LINE = "$trap_line"
STACK_BASE = "$stack_base"  # first word after the image: where the stack starts
STACK_END = "$stack_end"  # first word past the stack

HALT_ADDRESS = -1

CONDITIONS = ("le", "lt", "eq", "ne", "gt", "ge")
_NEGATED = {"le": "gt", "gt": "le", "lt": "ge", "ge": "lt", "eq": "ne", "ne": "eq"}


def const(value: int) -> str:
    """The label of a pool cell holding `value` (already wrapped to the word size)."""
    return f"#{value}"


def addr(label: str, offset: int = 0) -> str:
    """The label of a pool cell holding the address of `label` (+ `offset`)."""
    return f"&{label}" if offset == 0 else f"&{label}{offset:+d}"


def negated(operand: str) -> str | None:
    """The pool cell holding minus a constant or address operand (None for other cells):
    `MOV x, #k` is then `x x; #-k x`, two steps instead of four."""
    if operand.startswith("#"):
        return const(-int(operand[1:]))
    if operand.startswith("&"):
        return "-" + operand
    return None


def negate(cond: str) -> str:
    return _NEGATED[cond]


def _constant(label: str) -> int | None:
    """The value of a constant-pool operand `#v`, else None."""
    return int(label[1:]) if label.startswith("#") else None


# ----------------------------------------------------------------------------- the macro IR


@dataclass(frozen=True)
class Macro:
    """Base of all macro instructions; `line` is the source line (0 = compiler-generated)."""

    line: int = field(default=0, kw_only=True)

    def text(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def reads(self) -> tuple[str, ...]:
        """Cells whose value this macro uses (for the liveness analysis)."""
        return ()

    def writes(self) -> tuple[str, ...]:
        """Cells this macro overwrites completely (for dead-store removal)."""
        return ()

    def targets(self) -> tuple[str, ...]:
        """Code labels this macro may jump to (besides falling through)."""
        for name in ("target", "overflow", "fail"):
            label = getattr(self, name, None)
            if label is not None:
                return (label,)
        return ()


@dataclass(frozen=True)
class Label(Macro):
    name: str

    def text(self) -> str:
        return f"{self.name}:"


@dataclass(frozen=True)
class Mov(Macro):
    dst: str
    src: str

    def text(self) -> str:
        return f"MOV {self.dst}, {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.src,)

    def writes(self) -> tuple[str, ...]:
        return (self.dst,)


@dataclass(frozen=True)
class Add(Macro):
    """dst += src"""

    dst: str
    src: str

    def text(self) -> str:
        return f"ADD {self.dst}, {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.dst, self.src)


@dataclass(frozen=True)
class Sub(Macro):
    """dst -= src"""

    dst: str
    src: str

    def text(self) -> str:
        return f"SUB {self.dst}, {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.dst, self.src)


@dataclass(frozen=True)
class Neg(Macro):
    """dst = -src"""

    dst: str
    src: str

    def text(self) -> str:
        return f"NEG {self.dst}, {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.src,)

    def writes(self) -> tuple[str, ...]:
        return (self.dst,)


@dataclass(frozen=True)
class Clear(Macro):
    dst: str

    def text(self) -> str:
        return f"CLEAR {self.dst}"

    def writes(self) -> tuple[str, ...]:
        return (self.dst,)


@dataclass(frozen=True)
class Jmp(Macro):
    target: str

    def text(self) -> str:
        return f"JMP {self.target}"


@dataclass(frozen=True)
class Jump(Macro):
    """Conditional jump: `if cell <cond> 0 goto target` (signed, exact, no overflow)."""

    cond: str
    cell: str
    target: str

    def text(self) -> str:
        return f"J{self.cond.upper()} {self.cell}, {self.target}"

    def reads(self) -> tuple[str, ...]:
        return (self.cell,)


@dataclass(frozen=True)
class Compare(Macro):
    """Jump to `target` if `a op b` (op in < <= > >=, signed, exact), else fall through.

    Done by sign classes with one-step `x <= 0` tests, so that the subtraction deciding
    equal-class operands cannot overflow (see `_Expander._less`)."""

    op: str
    a: str
    b: str
    target: str

    def text(self) -> str:
        return f"JUMP IF {self.a} {self.op} {self.b}, {self.target}"

    def reads(self) -> tuple[str, ...]:
        return (self.a, self.b)


@dataclass(frozen=True)
class Load(Macro):
    """dst = M[M[ptr]] (self-modifying code patches the operand word); with `negated` the
    cell holds minus the address, which saves the negation (see `Index`)."""

    dst: str
    ptr: str
    negated: bool = False

    def text(self) -> str:
        return f"LOAD {self.dst}, [{'-' if self.negated else ''}{self.ptr}]"

    def reads(self) -> tuple[str, ...]:
        return (self.ptr,)

    def writes(self) -> tuple[str, ...]:
        return (self.dst,)


@dataclass(frozen=True)
class Store(Macro):
    """M[M[ptr]] = src (M[-M[ptr]] with `negated`)."""

    ptr: str
    src: str
    negated: bool = False

    def text(self) -> str:
        return f"STORE [{'-' if self.negated else ''}{self.ptr}], {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.ptr, self.src)


@dataclass(frozen=True)
class Index(Macro):
    """nptr = -(address of base[k]) for k = index + offset (wrapped) if 0 <= k < size, else
    goto `fail`: the bounds check and the address in four SUBLEQ steps (five with an
    offset, as in `a[i + 1]`), for `Load`/`Store` with `negated`."""

    nptr: str
    index: str
    base: str
    size: int
    fail: str
    offset: int = 0

    def text(self) -> str:
        k = self.index + (f"{self.offset:+d}" if self.offset else "")
        return f"INDEX {self.nptr}, {self.base}[{k}] (size {self.size})"

    def reads(self) -> tuple[str, ...]:
        return (self.index,)

    def writes(self) -> tuple[str, ...]:
        return (self.nptr,)


@dataclass(frozen=True)
class Bound(Macro):
    """Goto `fail` unless 0 <= index < n, where the cell (or `#-n` constant) `nlen` holds
    minus n: the check of an index into an array whose length is known only at run time (an
    array parameter) or whose address is (a local array on the stack). Three steps."""

    index: str
    nlen: str
    fail: str

    def text(self) -> str:
        return f"BOUND {self.index} < -{self.nlen}"

    def reads(self) -> tuple[str, ...]:
        return (self.index, self.nlen)


@dataclass(frozen=True)
class Address(Macro):
    """nptr = -(M[base] + M[index]): minus the address of word `index` of an array whose
    first word's address is in `base` (a cell, or an `&label` address constant), for
    `Load`/`Store` with `negated`. Three steps; the index is checked first (`Bound`)."""

    nptr: str
    index: str
    base: str

    def text(self) -> str:
        return f"ADDRESS {self.nptr}, {self.base}[{self.index}]"

    def reads(self) -> tuple[str, ...]:
        return (self.index, self.base)

    def writes(self) -> tuple[str, ...]:
        return (self.nptr,)


@dataclass(frozen=True)
class Alloc(Macro):
    """Before a call of a recursive function with local arrays (its `Save` checked the
    room): each cell of `bases` gets the address of its array on the stack (the stack
    pointer plus its offset) and the stack pointer moves past all `words` of them."""

    bases: tuple[tuple[str, int], ...]  # (cell, offset)
    words: int

    def text(self) -> str:
        listed = ", ".join(f"{cell}=sp+{offset}" for cell, offset in self.bases)
        return f"ALLOC {self.words} ({listed})"

    def reads(self) -> tuple[str, ...]:
        return (SP,)

    def writes(self) -> tuple[str, ...]:
        return tuple(cell for cell, _ in self.bases)


@dataclass(frozen=True)
class Free(Macro):
    """After that call: the stack pointer moves back over the callee's `words` of arrays."""

    words: int

    def text(self) -> str:
        return f"FREE {self.words}"

    def reads(self) -> tuple[str, ...]:
        return (SP,)


@dataclass(frozen=True)
class Call(Macro):
    """ra = minus the address of the next macro; goto target. The callee returns with
    `Ret(ra)`."""

    target: str
    ra: str

    def text(self) -> str:
        return f"CALL {self.target} (ra {self.ra})"


@dataclass(frozen=True)
class Ret(Macro):
    """goto -M[ra] (an indirect jump through a patched word)."""

    ra: str

    def text(self) -> str:
        return f"RET {self.ra}"

    def reads(self) -> tuple[str, ...]:
        return (self.ra,)


@dataclass(frozen=True)
class Push(Macro):
    """M[SP] = src; SP += 1 (the caller checked the room with StackCheck)."""

    src: str

    def text(self) -> str:
        return f"PUSH {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.src, SP)


@dataclass(frozen=True)
class Pop(Macro):
    """SP -= 1; dst = M[SP]"""

    dst: str

    def text(self) -> str:
        return f"POP {self.dst}"

    def reads(self) -> tuple[str, ...]:
        return (SP,)

    def writes(self) -> tuple[str, ...]:
        return (self.dst,)


@dataclass(frozen=True)
class StackCheck(Macro):
    """goto `overflow` unless `words` more words fit on the stack."""

    words: int
    overflow: str

    def text(self) -> str:
        return f"STACKCHECK {self.words}, {self.overflow}"

    def reads(self) -> tuple[str, ...]:
        return (SP,)


@dataclass(frozen=True)
class Save(Macro):
    """Before a recursive call: check that `cells` and `extra` words more (the callee's
    local arrays, which `Alloc` places after them) fit on the stack (else goto `overflow`)
    and push the cells. `group` pairs it with the `Restore` after the call, so that the CFG
    clean-ups can drop a cell from both when it is dead after the call."""

    cells: tuple[str, ...]
    group: int
    overflow: str
    extra: int = 0

    def text(self) -> str:
        more = f" (+{self.extra} words of arrays)" if self.extra else ""
        return f"SAVE#{self.group} {', '.join(self.cells) or '-'}{more}"

    def words(self) -> int:
        """The stack words this call takes: the saved cells and the callee's arrays."""
        return len(self.cells) + self.extra

    def reads(self) -> tuple[str, ...]:
        return (*self.cells, SP)


@dataclass(frozen=True)
class Restore(Macro):
    """After a recursive call: pop the cells its `Save` pushed (in reverse order)."""

    cells: tuple[str, ...]
    group: int

    def text(self) -> str:
        return f"RESTORE#{self.group} {', '.join(self.cells) or '-'}"

    def reads(self) -> tuple[str, ...]:
        return (SP,)

    def writes(self) -> tuple[str, ...]:
        return self.cells


@dataclass(frozen=True)
class In(Macro):
    dst: str

    def text(self) -> str:
        return f"IN {self.dst}"

    def writes(self) -> tuple[str, ...]:
        return (self.dst,)


@dataclass(frozen=True)
class Out(Macro):
    src: str

    def text(self) -> str:
        return f"OUT {self.src}"

    def reads(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True)
class Halt(Macro):
    def text(self) -> str:
        return "HALT"


@dataclass(frozen=True)
class Trap(Macro):
    """Store the trap code and `line` (the source line) and halt."""

    code: int

    def text(self) -> str:
        return f"TRAP {self.code} (line {self.line})"


@dataclass(frozen=True)
class Subleq(Macro):
    """A raw SUBLEQ instruction, for hand-tuned runtime routines; c=None means next."""

    a: str
    b: str
    c: str | None = None

    def text(self) -> str:
        return f"SUBLEQ {self.a}, {self.b}" + (f", {self.c}" if self.c else "")

    def targets(self) -> tuple[str, ...]:
        return (self.c,) if self.c else ()

    def reads(self) -> tuple[str, ...]:
        return (self.a, self.b)


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataCell:
    """One named data word (a variable, temporary or scratch cell)."""

    label: str
    value: int = 0


@dataclass(frozen=True)
class DataBlock:
    """A named run of data words (an array)."""

    label: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class MacroProgram:
    """What the lowering produces: code (entry = first macro), data, and what it means."""

    code: tuple[Macro, ...]
    data: tuple[DataCell | DataBlock, ...]
    stack_words: int = 0  # words of stack after the image
    stack_frames: int = 0  # if > 0: room for this many of the largest SAVE, at least
    inputs: tuple[tuple[str, str], ...] = ()  # input name -> cell label
    outputs: tuple[tuple[str, str], ...] = ()  # output name -> cell label
    symbols: tuple[tuple[str, str], ...] = ()  # user-visible name -> cell label
    local_cells: frozenset[str] = frozenset()  # cells only their own function reads
    # the cell every engine writes with the run's tape length (programs that use eof())
    tape_left: str | None = None


# ----------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class Ref:
    """An operand word: a label plus offset, or a plain integer when `label` is None."""

    label: str | None
    offset: int = 0
    sign: int = 1  # -1: minus the address (negated address pool cells)


NEXT = Ref("?", 0)  # the address of the next instruction


def _r(x: str | int | Ref) -> Ref:
    """An operand: `Ref`, integer, label, or `label+k` (a word inside an array)."""
    if isinstance(x, Ref):
        return x
    if isinstance(x, int):
        return Ref(None, x)
    base, plus, offset = x.rpartition("+")
    if plus and base and x[0] not in "#&-" and offset.isdigit():
        return Ref(base, int(offset))
    return Ref(x)


@dataclass(frozen=True)
class Instr:
    a: Ref
    b: Ref
    c: Ref


@dataclass(frozen=True)
class Piece:
    """An item of an expansion: a SUBLEQ instruction or a local label."""

    instr: Instr | None = None
    label: str | None = None


class _Expander:
    """Turns one macro into pieces; local labels get a program-wide unique suffix."""

    def __init__(self, word_bits: int = 32) -> None:
        self.counter = 0
        self.out: list[Piece] = []
        self.int_min = -(1 << (word_bits - 1))

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f".{stem}{self.counter}"

    def op(self, a: str | int | Ref, b: str | int | Ref, c: str | int | Ref | None = None):
        if isinstance(b, str) and b.startswith(("#", "&", "-&")):
            # a constant's pool word is never written (`lowering.written_words`): a
            # specialised network holds it read-only and would fault
            raise AssertionError(f"an instruction would write the constant {b}")
        self.out.append(Piece(instr=Instr(_r(a), _r(b), NEXT if c is None else _r(c))))

    def label(self, name: str) -> None:
        self.out.append(Piece(label=name))

    def expand(self, m: Macro) -> list[Piece]:
        self.out = []
        getattr(self, "_" + type(m).__name__.lower())(m)
        return self.out

    def _label(self, m: Label) -> None:
        self.label(m.name)

    def _mov(self, m: Mov) -> None:
        if m.dst == m.src:
            return
        minus = negated(m.src)
        if minus is not None:
            self.op(m.dst, m.dst)
            self.op(minus, m.dst)
            return
        self.op(m.dst, m.dst)
        self.op(m.src, Z)
        self.op(Z, m.dst)
        self.op(Z, Z)

    def _add(self, m: Add) -> None:
        minus = negated(m.src)
        if minus is not None:
            self.op(minus, m.dst)
            return
        self.op(m.src, Z)
        self.op(Z, m.dst)
        self.op(Z, Z)

    def _sub(self, m: Sub) -> None:
        self.op(m.src, m.dst)

    def _neg(self, m: Neg) -> None:
        if m.dst == m.src:
            self.op(T, T)
            self.op(m.src, T)  # T = -x
            self.op(m.dst, m.dst)
            self.op(T, Z)  # Z = x
            self.op(Z, m.dst)  # dst = -x
            self.op(Z, Z)
            return
        self.op(m.dst, m.dst)
        self.op(m.src, m.dst)

    def _clear(self, m: Clear) -> None:
        self.op(m.dst, m.dst)

    def _jmp(self, m: Jmp) -> None:
        self.op(Z, Z, m.target)

    def _jump(self, m: Jump) -> None:
        x, target, cond = m.cell, m.target, m.cond
        k = _constant(x)
        if k is not None:  # decided here: testing a constant in place would write it
            if {"le": k <= 0, "gt": k > 0, "lt": k < 0, "ge": k >= 0, "eq": k == 0,
                    "ne": k != 0}[cond]:
                self.op(Z, Z, target)
            return
        if cond == "le":
            self.op(Z, x, target)
            return
        if cond == "gt":
            skip = self.fresh("gt")
            self.op(Z, x, skip)
            self.op(Z, Z, target)
            self.label(skip)
            return
        # x <= 0 first; then T = -x tells 0/INT_MIN (T <= 0) from the other negatives, and
        # T - 1 tells 0 (-1) from INT_MIN (INT_MAX).
        le, maybe, no = self.fresh("le"), self.fresh("mb"), self.fresh("no")
        yes_pos = target if cond in ("ne", "ge") else no  # where x > 0 goes
        yes_zero = target if cond in ("eq", "ge") else no  # where x == 0 goes
        yes_neg = target if cond in ("lt", "ne") else no  # where x < 0 goes
        self.op(Z, x, le)
        self.op(Z, Z, yes_pos)
        self.label(le)
        self.op(T, T)
        self.op(x, T, maybe)
        self.op(Z, Z, yes_neg)  # -INT_MIN < x < 0
        self.label(maybe)
        self.op(const(1), T, yes_zero)  # x == 0
        if yes_neg != no:
            self.op(Z, Z, yes_neg)  # x == INT_MIN
        self.label(no)

    def _compare(self, m: Compare) -> None:
        end = self.fresh("cmp")
        a, b, yes, no = {
            "<": (m.a, m.b, m.target, end),
            ">": (m.b, m.a, m.target, end),
            "<=": (m.b, m.a, end, m.target),
            ">=": (m.a, m.b, end, m.target),
        }[m.op]
        self._less(a, b, yes, no)
        self.label(end)

    def _less(self, a: str, b: str, yes: str, no: str) -> None:
        """Goto `yes` if a < b else `no`. Classes: x > 0 or x <= 0 (one step each). In a
        class, b - a cannot overflow except for (a, b) = (INT_MIN, 0), whose wrapped
        difference INT_MIN it shares with (0, INT_MIN) only: those two are told apart by a."""
        ka, kb = _constant(a), _constant(b)
        d, t = T, T2
        if ka is not None and kb is not None:  # decided here (a test in place writes a constant)
            self.op(Z, Z, yes if ka < kb else no)
            return
        if kb is not None and kb != 0:
            if kb > 0:
                self.op(Z, a, yes)  # a <= 0 < b
            else:
                le = self.fresh("le")
                self.op(Z, a, le)
                self.op(Z, Z, no)  # a > 0 > b
                self.label(le)
            self.op(d, d)
            self.op(a, d)
            self.op(const(-kb), d, no)  # b - a <= 0 (same class, no overflow)
            self.op(Z, Z, yes)
            return
        if ka is not None and ka not in (0, self.int_min):  # -INT_MIN would overflow
            if ka > 0:
                self.op(Z, b, no)  # b <= 0 < a
            else:
                gt = self.fresh("gt")
                self.op(Z, b, gt)
                self.op(Z, Z, yes)  # a < 0 < b
                self.label(gt)
            zno = self.fresh("zno")
            self.op(d, d)
            self.op(const(ka), d)  # d = -a
            self.op(b, Z)
            self.op(Z, d, zno)  # d = b - a <= 0 (same class, no overflow)
            self.op(Z, Z, yes)
            self.label(zno)
            self.op(Z, Z, no)
            return
        ale, ble, dle, zno = (self.fresh(x) for x in ("ale", "ble", "dle", "zno"))
        self._if_le_zero(a, ale)
        self._if_le_zero(b, no)  # b <= 0 < a
        self.op(d, d)
        self.op(a, d)
        self.op(b, Z)
        self.op(Z, d, zno)  # both > 0: d = b - a
        self.op(Z, Z, yes)
        self.label(zno)
        self.op(Z, Z, no)
        self.label(ale)
        self._if_le_zero(b, ble)
        self.op(Z, Z, yes)  # a <= 0 < b
        self.label(ble)
        self.op(d, d)
        self.op(a, d)
        self.op(b, Z)
        self.op(Z, d, dle)  # both <= 0: d = b - a > 0 means a < b (an overflow gives <= 0)
        self.op(Z, Z, yes)
        self.label(dle)
        self.op(Z, Z)
        self.op(const(1), d, no)  # d in (INT_MIN, 0]: a >= b
        self.op(t, t)  # d == INT_MIN: (a, b) is (0, INT_MIN) or (INT_MIN, 0)
        self.op(a, t)
        self.op(const(1), t, no)  # -a - 1 <= 0: a == 0
        self.op(Z, Z, yes)

    def _if_le_zero(self, x: str, target: str) -> None:
        """Goto `target` if x <= 0 (a constant is decided by `_jump`: testing it in place
        would write its pool word, which a specialised network holds read-only)."""
        self._jump(Jump("le", x, target))

    def _load(self, m: Load) -> None:
        site = self.fresh("ld")
        self.op(Ref(site), Ref(site))  # clear the patched a-word
        if m.negated:
            self.op(m.ptr, Ref(site))
        else:
            self.op(m.ptr, Z)
            self.op(Z, Ref(site))
            self.op(Z, Z)
        self.op(m.dst, m.dst)
        self.label(site)
        self.op(0, Z)  # Z = -M[ptr]   (a patched)
        self.op(Z, m.dst)
        self.op(Z, Z)

    def _store(self, m: Store) -> None:
        site = self.fresh("st")
        patched = (Ref(site), Ref(site, 1), Ref(site, 4))
        for word in patched:
            self.op(word, word)
        if m.negated:
            for word in patched:
                self.op(m.ptr, word)
        else:
            self.op(m.ptr, Z)
            for word in patched:
                self.op(Z, word)
            self.op(Z, Z)
        self.op(m.src, Z)  # Z = -src
        self.label(site)
        self.op(0, 0)  # M[p] = 0   (a and b patched)
        self.op(Z, 0)  # M[p] = src (b patched)
        self.op(Z, Z)

    def _index(self, m: Index) -> None:
        ok = self.fresh("ix")
        self.op(m.nptr, m.nptr)
        if m.offset:
            self.op(m.index, m.nptr)
            self.op(const(m.offset), m.nptr, ok)  # -k <= 0: k >= 0 (or INT_MIN)
        else:
            self.op(m.index, m.nptr, ok)  # -k <= 0: k >= 0 (or k = INT_MIN, caught next)
        self.op(Z, Z, m.fail)
        self.label(ok)
        self.op(const(-m.size), m.nptr, m.fail)  # size - k <= 0: k >= size or INT_MIN
        self.op(addr(m.base, m.size), m.nptr)  # -(base + k)

    def _call(self, m: Call) -> None:
        # the return-address cell holds minus the address: RET patches it in two steps
        back = self.fresh("ret")
        self.op(m.ra, m.ra)
        self.op(addr(back), m.ra)
        self.op(Z, Z, m.target)
        self.label(back)

    def _ret(self, m: Ret) -> None:
        site = self.fresh("rt")
        target = Ref(site, 2)
        self.op(target, target)
        self.op(m.ra, target)
        self.label(site)
        self.op(Z, Z, 0)  # c patched with the return address

    def _push(self, m: Push) -> None:
        self._store(Store(SP, m.src, negated=True))
        self.op(const(1), SP)  # -sp - 1

    def _pop(self, m: Pop) -> None:
        self.op(const(-1), SP)  # -sp + 1
        self._load(Load(m.dst, SP, negated=True))

    def _stackcheck(self, m: StackCheck) -> None:
        # overflow iff sp + words > STACK_END, i.e. T = sp - (STACK_END - words) > 0
        ok = self.fresh("ok")
        self.op(T, T)
        self.op(SP, T)  # T = sp
        self.op(addr(STACK_END, -m.words), T, ok)
        self.op(Z, Z, m.overflow)
        self.label(ok)

    def _save(self, m: Save) -> None:
        if not m.words():
            return
        self._stackcheck(StackCheck(m.words(), m.overflow))
        for c in m.cells:
            self._push(Push(c))

    def _bound(self, m: Bound) -> None:
        ok = self.fresh("bd")
        self.op(T, T)
        self.op(m.index, T, ok)  # -k <= 0: k >= 0 (or k = INT_MIN, caught next)
        self.op(Z, Z, m.fail)
        self.label(ok)
        self.op(m.nlen, T, m.fail)  # n - k <= 0: k >= n (or INT_MIN)

    def _address(self, m: Address) -> None:
        self.op(m.nptr, m.nptr)
        self.op(m.index, m.nptr)
        self.op(m.base, m.nptr)  # -(base + k)

    def _alloc(self, m: Alloc) -> None:
        for cell, offset in m.bases:  # SP holds minus the stack pointer
            self.op(cell, cell)
            self.op(SP, cell)
            if offset:
                self.op(const(-offset), cell)
        self.op(const(m.words), SP)

    def _free(self, m: Free) -> None:
        self.op(const(-m.words), SP)

    def _restore(self, m: Restore) -> None:
        for c in reversed(m.cells):
            self._pop(Pop(c))

    def _in(self, m: In) -> None:
        self.op(-1, m.dst)

    def _out(self, m: Out) -> None:
        self.op(m.src, -1)

    def _halt(self, m: Halt) -> None:
        self.op(Z, Z, HALT_ADDRESS)

    def _trap(self, m: Trap) -> None:
        # the trap cells are 0 until the one trap of a run: no need to clear them first
        self.op(const(-m.code), TRAP_CODE)
        self.op(const(-m.line), TRAP_LINE)
        self.op(Z, Z, HALT_ADDRESS)

    def _subleq(self, m: Subleq) -> None:
        self.op(m.a, m.b, m.c)


# ----------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class MacroSpan:
    """Words [start, end) implement macro number `index` of the program."""

    start: int
    end: int
    index: int


@dataclass(frozen=True)
class Assembled:
    """The resolved image of a macro program, before it becomes a `SubleqImage`."""

    words: tuple[int, ...]
    labels: tuple[tuple[str, int], ...]
    spans: tuple[MacroSpan, ...]
    code_words: int
    stack_base: int
    stack_end: int

    def label_map(self) -> dict[str, int]:
        return dict(self.labels)


def wrap(value: int, word_bits: int) -> int:
    half = 1 << (word_bits - 1)
    return ((value + half) & ((1 << word_bits) - 1)) - half


def _pool_labels(code: Sequence[Macro], pieces: Iterable[Piece]) -> list[str]:
    found: dict[str, None] = {}
    for p in pieces:
        if p.instr is not None:
            for ref in (p.instr.a, p.instr.b, p.instr.c):
                if ref.label and (ref.label[0] in "#&" or ref.label.startswith("-&")):
                    found.setdefault(ref.label)
    return list(found)


def stack_size(program: MacroProgram) -> int:
    """The stack words of a program: `stack_words`, or with `stack_frames` room for that
    many nested saves of the largest `SAVE` (sized after the CFG clean-ups pruned them)."""
    words = program.stack_words
    if program.stack_frames:
        largest = max((m.words() for m in program.code if isinstance(m, Save)), default=0)
        words = max(words, program.stack_frames * largest)
    return words


def assemble(program: MacroProgram, word_bits: int) -> Assembled:
    """Expand every macro, lay out code, scratch cells, pool and data, resolve labels.

    Layout: code from address 0, then Z, T, SP, the trap cells, the constant/address pool,
    the program's data, and the stack right after the image (STACK_BASE..STACK_END).
    """
    ex = _Expander(word_bits)
    per_macro: list[list[Piece]] = []
    for m in program.code:
        per_macro.append(ex.expand(m))
    labels: dict[str, int] = {}
    spans: list[MacroSpan] = []
    address = 0
    for index, pieces in enumerate(per_macro):
        start = address
        for p in pieces:
            if p.label is not None:
                if p.label in labels:
                    raise ValueError(f"label {p.label!r} defined twice")
                labels[p.label] = address
            else:
                address += 3
        spans.append(MacroSpan(start, address, index))
    code_words = address
    all_pieces = [p for pieces in per_macro for p in pieces]
    data: list[tuple[str, tuple[int | Ref, ...]]] = [
        (Z, (0,)),
        (T, (0,)),
        (T2, (0,)),
        (SP, (Ref(STACK_BASE, 0, -1),)),
        (TRAP_CODE, (0,)),
        (TRAP_LINE, (0,)),
    ]
    for item in program.data:
        if isinstance(item, DataCell):
            data.append((item.label, (wrap(item.value, word_bits),)))
        else:
            data.append((item.label, tuple(wrap(v, word_bits) for v in item.values)))
    declared = {name for name, _ in data}
    for pool in _pool_labels(program.code, all_pieces):
        if pool in declared:
            continue
        if pool[0] == "#":
            data.append((pool, (wrap(int(pool[1:]), word_bits),)))
        else:
            sign = -1 if pool[0] == "-" else 1
            body = pool[2:] if sign < 0 else pool[1:]
            cut = max(body.rfind("+"), body.rfind("-"))
            if cut > 0 and body[cut + 1 :].isdigit():
                data.append((pool, (Ref(body[:cut], int(body[cut:]), sign),)))
            else:
                data.append((pool, (Ref(body, 0, sign),)))
        declared.add(pool)
    flat: list[int | Ref] = []
    for name, values in data:
        if name in labels:
            raise ValueError(f"label {name!r} defined twice")
        labels[name] = address
        flat.extend(values)
        address += len(values)
    labels[STACK_BASE] = address
    labels[STACK_END] = address + stack_size(program)

    def resolve(ref: Ref, next_address: int) -> int:
        if ref.label is None:
            return ref.offset
        if ref.label == "?":
            return next_address
        try:
            return ref.sign * (labels[ref.label] + ref.offset)
        except KeyError:
            raise ValueError(f"undefined label {ref.label!r}") from None

    words: list[int] = []
    for p in all_pieces:
        if p.instr is not None:
            nxt = len(words) + 3
            words.extend(resolve(r, nxt) for r in (p.instr.a, p.instr.b, p.instr.c))
    for v in flat:
        words.append(v if isinstance(v, int) else resolve(v, 0))
    limit = 1 << (word_bits - 1)
    if labels[STACK_END] >= limit:
        raise MlpcError(f"the program needs {labels[STACK_END]} words of memory, more than "
                        f"{word_bits}-bit addresses reach")
    return Assembled(
        words=tuple(words),
        labels=tuple(sorted(labels.items(), key=lambda kv: (kv[1], kv[0]))),
        spans=tuple(spans),
        code_words=code_words,
        stack_base=labels[STACK_BASE],
        stack_end=labels[STACK_END],
    )


def code_spans(program: MacroProgram, assembled: Assembled) -> tuple[CodeSpan, ...]:
    """One `CodeSpan` per macro that produced words: its source line and macro text."""
    out = []
    for span in assembled.spans:
        if span.end > span.start:
            m = program.code[span.index]
            out.append(CodeSpan(span.start, span.end, m.line, m.text()))
    return tuple(out)


def listing(program: MacroProgram, assembled: Assembled, source_text: str) -> str:
    """The annotated listing: address, the 3 words, the macro, and the source line (its
    text where a new line starts); then the data words by name."""
    lines_of_source = source_text.splitlines()
    names: dict[int, list[str]] = {}
    code_labels = {m.name for m in program.code if isinstance(m, Label)}
    for name, address in assembled.labels:
        if name in code_labels or not name.startswith((".", "#", "&", "-&")):
            names.setdefault(address, []).append(name)
    out: list[str] = ["; address: a b c   macro   ; line: source"]
    words = assembled.words
    last_line = -1
    for span in assembled.spans:
        m = program.code[span.index]
        if isinstance(m, Label):
            continue
        for pc in range(span.start, span.end, 3):
            label = ",".join(names.get(pc, []))
            head = f"{label}:" if label else ""
            triple = " ".join(f"{w:>6}" for w in words[pc : pc + 3])
            note = ""
            if pc == span.start:
                note = f"{m.text():<34}"
                if m.line:
                    text = ""
                    if m.line != last_line and 1 <= m.line <= len(lines_of_source):
                        text = " " + lines_of_source[m.line - 1].strip()
                    note += f" ; {m.line}:{text}"
                    last_line = m.line
            out.append(f"{head:<14}{pc:>6}: {triple}   {note}".rstrip())
    out.append("; data")
    for name, address in assembled.labels:
        if address >= assembled.code_words and not name.startswith("."):
            value = words[address] if address < len(words) else "(stack)"
            out.append(f"{name + ':':<14}{address:>6}: {value}")
    return "\n".join(out)
