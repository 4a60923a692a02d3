"""Lowering: the checked `.tl` AST -> a macro program (`macros.MacroProgram`) -> SUBLEQ image.

`lower_macros` is the pass proper (checked AST -> macro IR); `lower_program` is what the
driver calls: it runs `lower_macros`, the CFG clean-ups (`cfg_opt.optimize`) and the
assembler (`macros.assemble`), and packages the result as a `SubleqImage`.

Memory layout (addresses grow down the list)::

    code: main (top-level statements, then HALT), functions, runtime routines, trap stubs
    data: Z, T, T2, SP, trap code, trap line, $rv, routine cells, globals, arrays,
          function and main locals, temporaries, return addresses, constant pool
                                                         <- the image ends here
    stack: `stack` words (only when the program has recursive calls)

Calling convention. Every function has fixed cells: `f.p` for each parameter and local,
`f.$t<k>` temporaries and `f.$ra` its return address; the result is returned in the global
cell `$rv`. A call evaluates the arguments left to right, copies them into the callee's
parameter cells and jumps (`CALL` stores the return address in `f.$ra`). Fixed cells are
only unsafe when an activation of the caller can be re-entered before the call returns,
i.e. when caller and callee are in the same strongly connected component of the call graph
(`digraph`). Exactly those calls are wrapped in `SAVE`/`RESTORE`, which push the caller's
cells (parameters, locals, return address, temporaries in use) on the stack and pop them
after, checking first that they fit (else trap 3, stack overflow, at the call's line); the
CFG clean-ups drop the cells that are dead after the call. Non-recursive programs need no
stack at all.

The input tape's end. The machine cannot tell how long its tape is, so a program that uses
`eof()` has a hidden cell `$tape_left` that every engine writes with the run's tape length
before the first step (like a named input: `SubleqImage.tape_length_address`). Each `read()`
of such a program counts it down with one step (`SUBLEQ #1, $tape_left`); when that leaves
it at 0 or below, an out-of-line step sets it back to 0 (so reading past the end never makes
it wrap round to positive). `eof()` is `$tape_left <= 0`. Programs without `eof()` have
neither the cell nor the count.

Stack size: `options.stack` words, or by default room for 256 nested saves of the largest
`SAVE` left after the CFG clean-ups, the callee's arrays included (so recursion depth 256
at least for every function, e.g. 512 words for a recursive sum that saves its parameter
and return address), and no stack at all without recursive calls.

Values. Expression results live in cells; variables are used in place. A global (or array
element, or `$rv`) used as a left operand is copied first when the right operand contains a
call, which might change it (left-to-right evaluation, as the source interpreter does). A
destination is written only after every operand has been read. Comparisons go through the
`COMPARE` macro (sign classes, never an overflowing subtraction); `ult`/`ule` compare with
the top bits flipped. `c ? x : y` is branch code around the two sides. `*`, `/`, `%`, shifts
(`>>>` too), `udiv`, `umod` and bitwise operators call the O(W) routines of `runtime_lib`;
multiplication by a small or sparse constant and left shifts by constants up to 8 are
inlined; division, modulo and right shifts by a constant and low masks `& (2^j - 1)` call
the unrolled constant-divisor routines (one step per quotient bit, `runtime_lib.const_name`).

Arrays. Global arrays, arrays in blocks of the top-level code and local arrays of functions
that are not recursive are data blocks at fixed addresses (no two activations of such a
function overlap); a constant index names the element's cell. A recursive function (one on
a cycle of the call graph) keeps its local arrays on the stack, one copy per activation:
its cell `f.buf` holds the array's address, which the caller sets (`ALLOC`, after the
`SAVE` that checked room for the saved cells and the arrays together) and the stack pointer
moves back over after the call (`FREE`); a call into such a function from outside its
component gets a `SAVE` of no cells for the check. An array parameter `a[]` is two cells,
`f.a` (the address of the argument's first word) and `f.a$n` (minus its length, rows for
`g[][C]`). Elements whose address is known only at run time are reached through `BOUND`
(the index check against a length operand) and `ADDRESS` (minus the element's address for
`LOAD`/`STORE`); `g[i][j]` checks i, then j, then addresses word i * C + j. A local
array's declaration stores every word (a loop clears a long run of zeros on the stack).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from mlpc.compiler import macros as mc
from mlpc.compiler import runtime_lib
from mlpc.compiler import tl_ast as ast
from mlpc.compiler.cfg_opt import optimize as cfg_optimize
from mlpc.compiler.checker import (
    ArraySymbol,
    CheckedProgram,
    ConstSymbol,
    DivisionByZero,
    FunctionSymbol,
    VarSymbol,
    binary_op,
    builtin_op,
    literal_value,
    unary_op,
)
from mlpc.compiler.digraph import strongly_connected_components
from mlpc.compiler.image import SubleqImage, TrapInfo, merge_ranges
from mlpc.compiler.macros import const
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.stack import DEFAULT_STACK_FRAMES, StackPlan
from mlpc.errors import SourcePos

RV = "$rv"  # the return value of the last call
TAPE_LEFT = "$tape_left"  # tape words not read yet (programs that use eof() only)
MAIN = "<main>"  # the name of the top-level code in the call graph and in cell names

TRAP_DIVISION = 1
TRAP_INDEX = 2
TRAP_STACK = 3
TRAP_ASSERT = 4

_RELATIONAL = ("<", "<=", ">", ">=", "==", "!=")
# the jump condition on a cell x that says `x op 0`
_COND_OF = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
_SWAPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NOT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class LoweringOptions:
    """What this pass needs of the driver's `CompileOptions`."""

    word_bits: int = 32
    stack: int | None = None  # stack words (None: sized for 256 nested saves)


@dataclass
class _Function:
    """Per-function state while lowering one body (main included, `symbol` None)."""

    name: str
    symbol: FunctionSymbol | None
    prefix: str
    temps_in_use: int = 0
    temps_max: int = 0
    loops: list[tuple[str, str]] = field(default_factory=list)  # (continue, break)

    @property
    def ra(self) -> str:
        return f"{self.prefix}.$ra"

    @property
    def exit(self) -> str:
        return f"{self.prefix}.$exit"

    def temp(self, index: int) -> str:
        return f"{self.prefix}.$t{index}"


class _Lowerer:
    """The pass: walks the checked AST once, appending macros to `self.code`."""

    def __init__(self, checked: CheckedProgram, word_bits: int) -> None:
        self.checked = checked
        self.w = word_bits
        self.code: list[mc.Macro] = []
        self.cells: dict[int, str] = {}  # symbol uid -> cell label
        self.cell_names: set[str] = set()
        self.symbol_names: list[tuple[str, str]] = []  # user-visible name -> label
        self.routines: set[str] = set()
        self.trap_stubs: dict[tuple[int, int], str] = {}
        self.uses_eof = uses_eof(checked.program.items)
        # (stub, back, line) of each read() that counts the tape down: the stub clamps
        # $tape_left to 0 and jumps back
        self.tape_end_stubs: list[tuple[str, str, int]] = []
        self.label_count = 0
        self.line = 0  # the line of the statement being lowered
        self.fn = _Function(MAIN, None, MAIN)
        self.functions_done: list[_Function] = []
        self.scc, self.cyclic = self._call_graph_components()
        self.length_cells: dict[int, str] = {}  # array parameter uid -> its length cell
        self.static_arrays: dict[str, ArraySymbol] = {}  # label -> array at a fixed address
        self.save_groups = 0
        self.save_sites: dict[SourcePos, int] = {}  # recursive call -> its SAVE group
        self._assign_cells()
        self.output_cells = {self.cells[s.uid] for s in checked.outputs}

    # --- names and cells ---------------------------------------------------------------

    def _assign_cells(self) -> None:
        for sym in self.checked.globals:
            self._name_cell(sym.uid, sym.name, sym.name)
        for arr in self.checked.arrays:
            self._name_cell(arr.uid, arr.name, arr.name)
            self.static_arrays[self.cells[arr.uid]] = arr
        for sym in self.checked.main_locals:
            self._name_cell(sym.uid, f"{MAIN}.{sym.name}", f"{MAIN}.{sym.name}")
        for arr in self.checked.main_arrays:
            self._name_cell(arr.uid, f"{MAIN}.{arr.name}", f"{MAIN}.{arr.name}")
            self.static_arrays[self.cells[arr.uid]] = arr
        for fn in self.checked.functions:
            for sym in (*fn.params, *fn.locals, *fn.arrays):
                self._name_cell(sym.uid, f"{fn.name}.{sym.name}", f"{fn.name}.{sym.name}")
                if isinstance(sym, ArraySymbol) and sym.kind == "param":
                    length = f"{self.cells[sym.uid]}$n"
                    self.length_cells[sym.uid] = length
                    self.cell_names.add(length)
                    self.symbol_names.append((length, length))
                elif isinstance(sym, ArraySymbol) and fn.name not in self.cyclic:
                    self.static_arrays[self.cells[sym.uid]] = sym

    def _name_cell(self, uid: int, label: str, shown: str) -> None:
        base, n = label, 1
        while label in self.cell_names:
            n += 1
            label = f"{base}#{n}"
            shown = label
        self.cells[uid] = label
        self.cell_names.add(label)
        self.symbol_names.append((shown, label))

    def cell_of(self, node: ast.Name | ast.ScalarDeclarator) -> str:
        sym = self.checked.symbols[node.pos]
        assert isinstance(sym, VarSymbol)
        return self.cells[sym.uid]

    def label(self, stem: str) -> str:
        self.label_count += 1
        return f".{stem}{self.label_count}"

    def emit(self, *items: mc.Macro) -> None:
        """Append macros; those without a line get the current statement's."""
        for m in items:
            if m.line == 0 and self.line and not isinstance(m, mc.Label):
                m = replace(m, line=self.line)
            self.code.append(m)

    # --- the call graph ----------------------------------------------------------------

    def _call_graph_components(self) -> tuple[dict[str, int], frozenset[str]]:
        """Component number of every function (and of main) in the call graph: a call is
        recursive exactly when caller and callee share a component; and the functions on a
        cycle (recursive ones: their local arrays live on the stack)."""
        top = [s for s in self.checked.program.items if not isinstance(s, ast.FuncDef)]
        graph = {MAIN: list(dict.fromkeys(_calls_in(top)))}
        for fn in self.checked.functions:
            graph[fn.name] = list(dict.fromkeys(_calls_in(fn.definition.body.body)))
        comp: dict[str, int] = {}
        cyclic: set[str] = set()
        for number, members in enumerate(strongly_connected_components(graph)):
            for name in members:
                comp[name] = number
                if len(members) > 1 or name in graph[name]:
                    cyclic.add(name)
        return comp, frozenset(cyclic)

    # --- temporaries -------------------------------------------------------------------

    def temp(self) -> str:
        fn = self.fn
        name = fn.temp(fn.temps_in_use)
        fn.temps_in_use += 1
        fn.temps_max = max(fn.temps_max, fn.temps_in_use)
        return name

    def trap_stub(self, code: int, line: int) -> str:
        key = (code, line)
        if key not in self.trap_stubs:
            self.trap_stubs[key] = f".trap{code}_{line}"
        return self.trap_stubs[key]

    # --- constants ---------------------------------------------------------------------

    def constant(self, e: ast.Expr) -> int | None:
        """The W-bit value of `e` if it is a constant expression (no side effects, no
        division by zero), else None."""
        if isinstance(e, ast.IntLit):
            return literal_value(e, self.w)
        if isinstance(e, ast.Name):
            sym = self.checked.symbols[e.pos]
            return sym.value if isinstance(sym, ConstSymbol) else None
        if isinstance(e, ast.Unary):
            v = self.constant(e.operand)
            return None if v is None else unary_op(e.op, v, self.w)
        if isinstance(e, ast.Conditional):
            c = self.constant(e.cond)
            return None if c is None else self.constant(e.then if c else e.orelse)
        if isinstance(e, ast.Builtin) and e.name not in ("putc", "eof"):
            args = [self.constant(a) for a in e.args]
            if any(a is None for a in args):
                return None
            try:
                return builtin_op(e.name, args, self.w)  # type: ignore[arg-type]
            except DivisionByZero:
                return None
        if isinstance(e, ast.Binary):
            left = self.constant(e.left)
            if left is not None and e.op in ("&&", "||"):
                if (e.op == "&&") == (left == 0):
                    return 0 if e.op == "&&" else 1
            right = self.constant(e.right)
            if left is None or right is None:
                return None
            try:
                return binary_op(e.op, left, right, self.w)
            except DivisionByZero:
                return None
        return None

    # --- expressions -------------------------------------------------------------------

    def is_stable(self, cell: str) -> bool:
        """Whether a call cannot change this cell before the caller uses it (constants,
        temporaries, and the current function's own cells, which recursive calls save)."""
        if cell.startswith(("#", "&")) or ".$t" in cell:
            return True
        if cell.split("+")[0] in self.static_arrays:  # a callee may write it by reference
            return False
        if self.fn.symbol is None:
            return cell.startswith(f"{MAIN}.")
        return cell.startswith(f"{self.fn.name}.")

    def value(self, e: ast.Expr, dst: str | None = None) -> str:
        """Code computing `e`; returns the cell holding the value (`dst` if given). Nothing
        is written to `dst` before every operand of `e` has been evaluated."""
        k = self.constant(e)
        if k is not None:
            return self._into(const(k), dst)
        if isinstance(e, ast.Name):
            return self._into(self.cell_of(e), dst)
        if isinstance(e, ast.Index):
            return self._index_load(e, dst)
        if isinstance(e, ast.Call):
            self._call(e)
            return self._into(RV, dst or self.temp())
        if isinstance(e, ast.Read):
            out = dst or self.temp()
            self._read(out, e.pos.line)
            return out
        if isinstance(e, ast.Unary):
            return self._unary(e, dst)
        if isinstance(e, ast.Conditional):
            return self._conditional(e, dst)
        if isinstance(e, ast.Builtin):
            if e.name in ("ult", "ule", "eof"):
                return self._boolean(e, dst)
            return self._unsigned_division(e, dst)
        assert isinstance(e, ast.Binary)
        if e.op in _RELATIONAL or e.op in ("&&", "||"):
            return self._boolean(e, dst)
        return self._arith(e, dst)

    def _read(self, dst: str, line: int) -> None:
        """`dst = read()`; in a program that uses eof(), also one off `$tape_left`."""
        self.emit(mc.In(dst, line=line))
        if self.uses_eof:
            stub, back = self.label("tape_end"), self.label("tape_read")
            self.emit(mc.Subleq(const(1), TAPE_LEFT, stub, line=line), mc.Label(back))
            self.tape_end_stubs.append((stub, back, line))

    def _into(self, cell: str, dst: str | None) -> str:
        if dst is None or dst == cell:
            return cell
        self.emit(mc.Mov(dst, cell))
        return dst

    def _unary(self, e: ast.Unary, dst: str | None) -> str:
        line = e.pos.line
        if e.op == "!":
            return self._boolean(e, dst)
        v = self.value(e.operand)
        out = dst or self.temp()
        if e.op == "-":
            self.emit(mc.Neg(out, v, line=line))
        else:  # "~": -1 - v
            if out == v:
                self.emit(mc.Neg(out, v, line=line), mc.Sub(out, const(1), line=line))
            else:
                self.emit(mc.Mov(out, const(-1), line=line), mc.Sub(out, v, line=line))
        return out

    def _conditional(self, e: ast.Conditional, dst: str | None) -> str:
        """`c ? x : y`: the branch code for c, then only the chosen side, computed straight
        into the result (each side writes it only after reading its own operands)."""
        line = e.pos.line
        out = dst or self.temp()
        orelse, done = self.label("celse"), self.label("cdone")
        self.branch_stmt(e.cond, orelse, when=False)
        mark = self.fn.temps_in_use
        self.value(e.then, out)
        self.fn.temps_in_use = mark
        self.emit(mc.Jmp(done, line=line), mc.Label(orelse))
        self.value(e.orelse, out)
        self.fn.temps_in_use = mark
        self.emit(mc.Label(done))
        return out

    def _unsigned_division(self, e: ast.Builtin, dst: str | None) -> str:
        """`udiv(a, b)` / `umod(a, b)`: the `udivmod` routine after the same zero check as
        `/` (trap 1 at the built-in's line)."""
        line = e.pos.line
        left, right = self._pair(e.args[0], e.args[1])
        rk = self.constant(e.args[1])
        if rk == 0:
            self.emit(mc.Jmp(self.trap_stub(TRAP_DIVISION, line), line=line))
            return self._into(const(0), dst)
        if rk is None:
            self.emit(mc.Jump("eq", right, self.trap_stub(TRAP_DIVISION, line), line=line))
        result = "q" if e.name == "udiv" else "r"
        return self._routine("udivmod", (left, right), result, dst, line)

    def _boolean(self, e: ast.Expr, dst: str | None) -> str:
        """0/1 value of a condition, through the branch code."""
        line = e.pos.line
        out = dst or self.temp()
        false, done = self.label("f"), self.label("d")
        self.branch(e, false, when=False)
        self.emit(mc.Mov(out, const(1), line=line), mc.Jmp(done, line=line),
                  mc.Label(false), mc.Clear(out, line=line), mc.Label(done))
        return out

    def _operands(self, e: ast.Binary) -> tuple[str, str]:
        return self._pair(e.left, e.right)

    def _pair(self, left_expr: ast.Expr, right_expr: ast.Expr) -> tuple[str, str]:
        """Evaluate two operands left to right; a left operand that a call in the right
        one might change is copied into a temporary first."""
        left = self.value(left_expr)
        if _has_call(right_expr) and not self.is_stable(left):
            left = self._into(left, self.temp())
        return left, self.value(right_expr)

    def _arith(self, e: ast.Binary, dst: str | None) -> str:
        line = e.pos.line
        if e.op in ("*", "&", "|", "^") and self.constant(e.left) is not None:
            e = ast.Binary(e.op, e.right, e.left, e.pos)  # k op x == x op k (k: no effects)
        if (e.op in ("+", "-") and dst is not None and not _has_call(e.right)
                and not self._mentions(e.right, dst)
                and (dst not in self.output_cells or self._cannot_trap_or_call(e.right))):
            # straight into the destination: the right operand cannot see or change it,
            # and an output (reported after a trap) is not written before a trap
            self.value(e.left, dst)
            right = self.value(e.right)
            self.emit((mc.Add if e.op == "+" else mc.Sub)(dst, right, line=line))
            return dst
        left, right = self._operands(e)
        return self._apply(e.op, left, right, self.constant(e.right), dst, line)

    def _mentions(self, e: ast.Expr, cell: str) -> bool:
        """Whether evaluating `e` may read `cell` (a variable, or an element of an array)."""
        if isinstance(e, ast.Name):
            sym = self.checked.symbols[e.pos]
            return isinstance(sym, VarSymbol) and self.cells[sym.uid] == cell
        if isinstance(e, ast.Index):
            ref = self._ref(e)
            if ref.label == cell.split("+")[0]:
                return True
            if self._array(e)[0].kind == "param":  # the argument may be any array
                return True
        return any(self._mentions(c, cell) for c in _children(e))  # type: ignore[arg-type]

    def _apply(self, op: str, left: str, right: str, rk: int | None, dst: str | None,
               line: int) -> str:
        """dst = left op right for an arithmetic, shift or bitwise operator."""
        if op in ("+", "-"):
            out = dst or self.temp()
            if out == right and op == "+":
                self.emit(mc.Add(out, left, line=line))
                return out
            if out == right:  # dst aliases the right operand: go through a temporary
                out = self.temp()
            self.emit(mc.Mov(out, left, line=line))
            self.emit((mc.Add if op == "+" else mc.Sub)(out, right, line=line))
            return self._into(out, dst)
        if op == "<<" and rk is not None and 0 <= rk <= 8:
            out = dst or self.temp()
            self.emit(mc.Mov(out, left, line=line))
            for _ in range(rk):
                self.emit(mc.Add(out, out, line=line))
            return out
        if op == "*" and rk is not None:
            cheap = self._mul_const(left, rk, dst, line)
            if cheap is not None:
                return cheap
        if op in ("&", "|", "^") and rk is not None:
            cheap = self._bitwise_const(op, left, rk, dst, line)
            if cheap is not None:
                return cheap
        cheap = self._const_division(op, left, rk, dst, line) if rk is not None else None
        if cheap is not None:
            return cheap
        if op in ("/", "%") and rk is None:
            self.emit(mc.Jump("eq", right, self.trap_stub(TRAP_DIVISION, line), line=line))
        if op in ("/", "%") and rk == 0:
            self.emit(mc.Jmp(self.trap_stub(TRAP_DIVISION, line), line=line))
            return self._into(const(0), dst)
        name, result = {
            "*": ("mul", "r"),
            "/": ("divmod", "q"),
            "%": ("divmod", "r"),
            "<<": ("shl", "a"),
            ">>": ("sar", "r"),
            ">>>": ("shr", "r"),
            "&": ("and", "r"),
            "|": ("or", "r"),
            "^": ("xor", "r"),
        }[op]
        return self._routine(name, (left, right), result, dst, line)

    def _const_division(self, op: str, v: str, k: int, dst: str | None, line: int
                        ) -> str | None:
        """v / k, v % k (2 <= |k| < 2^(W-1)), v >> k and v >>> k (0 <= k <= W-2) by the
        unrolled constant-divisor routines of `runtime_lib` (one step per quotient bit
        instead of a loop over all W bits). None when the general routine is needed."""
        if op in (">>", ">>>") and k == 0:
            return self._into(v, dst or self.temp())
        if op in (">>", ">>>") and 1 <= k <= self.w - 2:
            mode, d, negate = ("sar" if op == ">>" else "shr"), 1 << k, True
        elif op in ("/", "%") and 2 <= abs(k) < 1 << (self.w - 1):
            mode, d, negate = ("div" if op == "/" else "mod"), abs(k), k > 0
        else:
            return None
        return self._const_routine(mode, d, v, dst, line, negate)

    def _const_routine(self, mode: str, d: int, v: str, dst: str | None, line: int,
                       negate: bool = True) -> str:
        """Call the constant-divisor routine `mode` for d on v. The quotient modes leave
        minus the result: negated into the destination (two steps), or copied when the
        divisor was negative (x / -d = -(x / d))."""
        name = runtime_lib.const_name(mode, d)
        self.routines.add(name)
        r = runtime_lib.routine(name, self.w)
        self.emit(mc.Mov(r.args[0], v, line=line), mc.Call(r.entry, r.ra, line=line))
        out = dst or self.temp()
        if mode in ("mod", "mask") or not negate:
            self.emit(mc.Mov(out, r.results[0], line=line))
        else:
            self.emit(mc.Neg(out, r.results[0], line=line))
        return out

    def _bitwise_const(self, op: str, v: str, k: int, dst: str | None, line: int
                       ) -> str | None:
        """v op k without the bit-by-bit routine where k allows: identities (0, -1), the
        top bit (x ^ INT_MIN and x & INT_MAX flip or clear it by an addition), and low
        masks 2^j - 1 (the `low` routine). None when the routine is needed."""
        int_min = -(1 << (self.w - 1))
        if (op, k) in (("&", -1), ("|", 0), ("^", 0)):
            return self._into(v, dst)
        if (op, k) in (("&", 0), ("|", -1)):
            return self._into(const(k), dst)
        if op == "^" and k in (-1, int_min):
            out = dst or self.temp()
            if k == -1:  # ~v = -1 - v
                if out == v:
                    self.emit(mc.Neg(out, v, line=line), mc.Sub(out, const(1), line=line))
                else:
                    self.emit(mc.Mov(out, const(-1), line=line), mc.Sub(out, v, line=line))
            else:
                self.emit(mc.Mov(out, v, line=line), mc.Add(out, const(int_min), line=line))
            return out
        if op == "&" and k == -int_min - 1:  # clear the top bit: v < 0 -> v + INT_MIN
            out = dst or self.temp()
            done = self.label("pos")
            self.emit(mc.Mov(out, v, line=line), mc.Jump("ge", out, done, line=line),
                      mc.Add(out, const(int_min), line=line), mc.Label(done))
            return out
        if op == "&" and k > 0 and (k + 1) & k == 0:  # 2^j - 1: v mod 2^j
            return self._const_routine("mask", k + 1, v, dst, line)
        return None

    def _mul_const(self, v: str, k: int, dst: str | None, line: int) -> str | None:
        """v * k by doublings and additions (Horner on the bits of |k|) when k is small or
        sparse: a few steps instead of a routine call. None when the routine is better."""
        if k == 0:
            return self._into(const(0), dst)
        if k == 1:
            return self._into(v, dst or self.temp())
        m = abs(k)
        additions = m.bit_length() - 1 + bin(m).count("1") - 1
        if additions > 12 or k == -(1 << (self.w - 1)):
            return None
        out = dst or self.temp()
        if out == v:  # v is needed through the whole chain
            out = self.temp()
        self.emit(mc.Mov(out, v, line=line))
        for bit in bin(m)[3:]:
            self.emit(mc.Add(out, out, line=line))
            if bit == "1":
                self.emit(mc.Add(out, v, line=line))
        if k < 0:
            self.emit(mc.Neg(out, out, line=line))
        return self._into(out, dst)

    def _routine(self, name: str, args: tuple[str, ...], result: str, dst: str | None,
                 line: int) -> str:
        self.routines.add(name)
        for arg, value in zip(runtime_lib.routine(name, self.w).args, args, strict=True):
            self.emit(mc.Mov(arg, value, line=line))
        self.emit(mc.Call(f"${name}", runtime_lib.cell(name, "ra"), line=line))
        return self._into(runtime_lib.cell(name, result), dst or self.temp())

    # --- arrays ------------------------------------------------------------------------

    def _array(self, e: ast.Index) -> tuple[ArraySymbol, str]:
        sym = self.checked.symbols[e.pos]
        assert isinstance(sym, ArraySymbol)
        return sym, self.cells[sym.uid]

    def _ref(self, e: ast.Index | ast.Name) -> _ArrayRef:
        sym, label = self._array(e)
        if sym.kind == "param":
            return _ArrayRef(label, self.length_cells[sym.uid], None, None, sym.columns)
        nlen = const(-sym.length)
        if label in self.static_arrays:
            return _ArrayRef(mc.addr(label), nlen, label, sym.length, sym.columns)
        return _ArrayRef(label, nlen, None, sym.length, sym.columns)  # on the stack

    def _constant_cell(self, e: ast.Index) -> str | None:
        """The cell of an element of a fixed-address array at constant, in-range indices."""
        ref = self._ref(e)
        i = self.constant(e.index)
        j = self.constant(e.column) if e.column is not None else 0
        if ref.label is None or ref.length is None or i is None or j is None:
            return None
        if not (0 <= i < ref.length and 0 <= j < max(ref.columns, 1)):
            return None
        k = i * max(ref.columns, 1) + j
        return f"{ref.label}+{k}" if k else ref.label

    def _element(self, e: ast.Index) -> str | _Pointer:
        """The element's cell when the array is at a fixed address and the indices are
        constant, else a pointer checked against the bounds (out of range: trap 2 at the
        indexed name's line). `g[i][j]`: i is computed and checked, then j."""
        sym, base = self._array(e)
        ref = self._ref(e)
        line = e.pos.line
        fail = self.trap_stub(TRAP_INDEX, line)
        cell = self._constant_cell(e)
        if cell is not None:
            return cell
        if ref.label is not None and not sym.columns:  # a fixed one-dimensional array
            k = self.constant(e.index)
            if k is not None:  # out of range: _constant_cell took those in range
                self.emit(mc.Jmp(fail, line=line))
                return base
            index, offset = e.index, 0
            if isinstance(index, ast.Binary) and index.op in ("+", "-"):
                k = self.constant(index.right)
                if k is not None and abs(k) < 1 << 16:  # a[i + k]: the offset goes into INDEX
                    index, offset = index.left, (k if index.op == "+" else -k)
            i = self.value(index)
            nptr = self.temp()
            self.emit(mc.Index(nptr, i, base, sym.size, fail, offset, line=line))
            return _Pointer(nptr)
        i = self.value(e.index)
        if e.column is not None and _has_call(e.column) and not self.is_stable(i):
            i = self._into(i, self.temp())
        self._bound(i, self.constant(e.index), ref.nlen, ref.length, fail, line)
        flat = i
        if e.column is not None:
            j = self.value(e.column)
            self._bound(j, self.constant(e.column), const(-sym.columns), sym.columns, fail,
                        line)
            flat = self._apply("*", i, const(sym.columns), sym.columns, self.temp(), line)
            self.emit(mc.Add(flat, j, line=line))
        nptr = self.temp()
        self.emit(mc.Address(nptr, flat, ref.base, line=line))
        return _Pointer(nptr)

    def _bound(self, index: str, k: int | None, nlen: str, length: int | None, fail: str,
               line: int) -> None:
        """Trap unless 0 <= index < length (decided now when both are known)."""
        if k is not None and length is not None:
            if not 0 <= k < length:
                self.emit(mc.Jmp(fail, line=line))
            return
        self.emit(mc.Bound(index, nlen, fail, line=line))

    def _fill(self, array: ArraySymbol, inits: tuple[ast.Expr, ...], line: int) -> None:
        """A local array's declaration: every word gets its initialiser's value (`inits`,
        computed left to right, or a string's characters in `array.initial`) or 0. On the
        stack: a pointer walks the words; a run of zeros at the end is a loop."""
        ref = self._ref(ast.Name(array.name, array.pos))
        sources: list[ast.Expr | int] = [*inits, *array.initial[len(inits):]]
        if ref.label is not None:
            for k, source in enumerate(sources):
                cell = f"{ref.label}+{k}" if k else ref.label
                mark = self.fn.temps_in_use
                if isinstance(source, int):
                    self.emit(mc.Mov(cell, const(source), line=line) if source
                              else mc.Clear(cell, line=line))
                else:
                    self.value(source, cell)
                self.fn.temps_in_use = mark
            return
        while sources and sources[-1] == 0:
            sources.pop()
        zeros = array.size - len(sources)
        nptr = self.temp()
        self.emit(mc.Neg(nptr, ref.base, line=line))
        for k, source in enumerate(sources):
            mark = self.fn.temps_in_use
            value = const(source) if isinstance(source, int) else self.value(source)
            self.emit(mc.Store(nptr, value, negated=True, line=line))
            self.fn.temps_in_use = mark
            if k + 1 < array.size:
                self.emit(mc.Sub(nptr, const(1), line=line))
        if zeros <= 4:
            for k in range(zeros):
                self.emit(mc.Store(nptr, const(0), negated=True, line=line))
                if k + 1 < zeros:
                    self.emit(mc.Sub(nptr, const(1), line=line))
            return
        count, top = self.temp(), self.label("fill")
        self.emit(mc.Mov(count, const(zeros), line=line), mc.Label(top),
                  mc.Store(nptr, const(0), negated=True, line=line),
                  mc.Sub(nptr, const(1), line=line), mc.Sub(count, const(1), line=line),
                  mc.Jump("gt", count, top, line=line))

    def _index_load(self, e: ast.Index, dst: str | None) -> str:
        where = self._element(e)
        if isinstance(where, str):
            return self._into(where, dst)
        out = dst or self.temp()
        self.emit(mc.Load(out, where.nptr, negated=True, line=e.pos.line))
        return out

    # --- calls -------------------------------------------------------------------------

    def _call(self, e: ast.Call) -> None:
        """Evaluate the arguments, save the caller's cells if the call is recursive, place
        the callee's local arrays on the stack if it keeps them there, call; the result is
        in `$rv`. An array argument passes its address and length."""
        callee = self.checked.symbols[e.pos]
        assert isinstance(callee, FunctionSymbol)
        line = e.pos.line
        moves = self._argument_moves(callee, e.args)
        recursive = self.scc[self.fn.name] == self.scc[callee.name]
        in_use = self.fn.temps_in_use
        if not recursive and not any(_has_call(a) for a in e.args):
            for p, source in moves:
                self._move(p, source)
            self._enter(callee, e.pos, line, ())
            return
        if recursive and self._direct_arguments(moves):
            # save first, then compute each argument straight into its parameter: no
            # argument can trap or call (so the order against the stack check is not
            # observable) or read a parameter already overwritten
            saved = (*self.frame_cells(), *(self.fn.temp(i) for i in range(in_use)))
            group = self._save(callee, e.pos, line, saved)
            for p, source in moves:
                self._move(p, source)
            self._enter(callee, e.pos, line, saved, group)
            self.fn.temps_in_use = in_use
            return
        args = []
        for number, (_p, source) in enumerate(moves):
            v = source if isinstance(source, str) else self.value(source)
            later_call = any(not isinstance(b, str) and _has_call(b)
                             for _q, b in moves[number + 1:])
            # recursive: arguments may name the caller's own parameters, which are the
            # callee's too; copy them so the parameter moves below cannot clobber them
            if (recursive and not v.startswith(("#", "&")) and ".$t" not in v) or (
                    later_call and not self.is_stable(v)):
                v = self._into(v, self.temp())
            args.append(v)
        saved: tuple[str, ...] = ()
        group = None
        if recursive:
            saved = (*self.frame_cells(), *(self.fn.temp(i) for i in range(in_use)))
            group = self._save(callee, e.pos, line, saved)
        for (p, _source), v in zip(moves, args, strict=True):
            self.emit(mc.Mov(p, v, line=line))
        self._enter(callee, e.pos, line, saved, group)
        self.fn.temps_in_use = in_use  # the argument temporaries are consumed

    def _argument_moves(self, callee: FunctionSymbol, args: tuple[ast.Expr, ...]
                        ) -> list[tuple[str, ast.Expr | str]]:
        """What goes into each parameter cell: a scalar argument's expression, an array
        argument's address and length operands."""
        moves: list[tuple[str, ast.Expr | str]] = []
        for param, arg in zip(callee.params, args, strict=True):
            if isinstance(param, ArraySymbol):
                assert isinstance(arg, ast.Name)
                ref = self._ref(arg)
                moves.append((self.cells[param.uid], ref.base))
                moves.append((self.length_cells[param.uid], ref.nlen))
            else:
                moves.append((self.cells[param.uid], arg))
        return moves

    def _move(self, param: str, source: ast.Expr | str) -> None:
        if isinstance(source, str):
            self.emit(mc.Mov(param, source))
        else:
            self.value(source, param)

    def _save(self, callee: FunctionSymbol, pos: SourcePos, line: int,
              saved: tuple[str, ...]) -> int:
        """SAVE the caller's cells, checking room for them and the callee's arrays."""
        self.save_groups += 1
        self.save_sites[pos] = self.save_groups
        extra = sum(a.size for a in self.stack_arrays(callee))
        self.emit(mc.Save(saved, self.save_groups, self.trap_stub(TRAP_STACK, line), extra,
                          line=line))
        return self.save_groups

    def _enter(self, callee: FunctionSymbol, pos: SourcePos, line: int,
               saved: tuple[str, ...], group: int | None = None) -> None:
        """ALLOC the callee's stack arrays (after the SAVE that checked their room: a call
        that is not recursive gets a SAVE of no cells here), CALL, FREE them, RESTORE what
        was saved."""
        arrays = self.stack_arrays(callee)
        words = sum(a.size for a in arrays)
        if arrays and group is None:
            group = self._save(callee, pos, line, ())
        if arrays:
            bases, offset = [], 0
            for a in arrays:
                bases.append((self.cells[a.uid], offset))
                offset += a.size
            self.emit(mc.Alloc(tuple(bases), words, line=line))
        self.emit(mc.Call(f"{callee.name}()", f"{callee.name}.$ra", line=line))
        if arrays:
            self.emit(mc.Free(words, line=line))
        if group is not None and self.scc[self.fn.name] == self.scc[callee.name]:
            self.emit(mc.Restore(saved, group, line=line))

    def _direct_arguments(self, moves: list[tuple[str, ast.Expr | str]]) -> bool:
        def reads(source: ast.Expr | str, cell: str) -> bool:
            return source == cell if isinstance(source, str) else self._mentions(source, cell)

        return all(isinstance(s, str) or self._cannot_trap_or_call(s) for _p, s in moves) and (
            not any(reads(later, moves[i][0])
                    for i in range(len(moves)) for _q, later in moves[i + 1:]))

    def _cannot_trap_or_call(self, e: ast.Expr) -> bool:
        if isinstance(e, ast.Call):
            return False
        if isinstance(e, ast.Index):
            return self._constant_cell(e) is not None
        if isinstance(e, ast.Binary) and e.op in ("/", "%") and not self.constant(e.right):
            return False
        if isinstance(e, ast.Builtin) and e.name in ("udiv", "umod", "putc") and not (
                e.name != "putc" and self.constant(e.args[1])):
            return False
        return all(self._cannot_trap_or_call(c) for c in _children(e))  # type: ignore[arg-type]

    def frame_cells(self) -> list[str]:
        sym = self.fn.symbol
        if sym is None:
            return []
        return self.own_cells(sym) + [self.fn.ra]

    def own_cells(self, fsym: FunctionSymbol) -> list[str]:
        """The cells of a function's parameters (an array parameter's address and length)
        and locals (a local array on the stack: its address)."""
        cells = []
        for p in fsym.params:
            cells.append(self.cells[p.uid])
            if isinstance(p, ArraySymbol):
                cells.append(self.length_cells[p.uid])
        cells += [self.cells[s.uid] for s in fsym.locals]
        cells += [self.cells[a.uid] for a in self.stack_arrays(fsym)]
        return cells

    def stack_arrays(self, fsym: FunctionSymbol) -> tuple[ArraySymbol, ...]:
        """The local arrays a function keeps on the stack (a recursive one's: each
        activation needs its own); a non-recursive function's are at fixed addresses."""
        return fsym.arrays if fsym.name in self.cyclic else ()

    # --- conditions --------------------------------------------------------------------

    def branch(self, e: ast.Expr, target: str, when: bool) -> None:
        """Jump to `target` if the truth of `e` equals `when`, else fall through."""
        line = e.pos.line
        k = self.constant(e)
        if k is not None:
            if (k != 0) == when:
                self.emit(mc.Jmp(target, line=line))
            return
        if isinstance(e, ast.Unary) and e.op == "!":
            self.branch(e.operand, target, not when)
            return
        if isinstance(e, ast.Binary) and e.op in ("&&", "||"):
            # && jumps on false as soon as one side is false; || on true likewise
            short = (e.op == "||")
            if when == short:
                self.branch(e.left, target, when)
                self.branch(e.right, target, when)
            else:
                skip = self.label("sc")
                self.branch(e.left, skip, not when)
                self.branch(e.right, target, when)
                self.emit(mc.Label(skip))
            return
        if isinstance(e, ast.Binary) and e.op in _RELATIONAL:
            mark = self.fn.temps_in_use
            self._compare(e, target, when)
            self.fn.temps_in_use = mark
            return
        if isinstance(e, ast.Builtin) and e.name == "eof":  # no words left: $tape_left <= 0
            self.emit(mc.Jump("le" if when else "gt", TAPE_LEFT, target, line=line))
            return
        if isinstance(e, ast.Builtin) and e.name in ("ult", "ule"):
            mark = self.fn.temps_in_use
            self._unsigned_compare(e, target, when)
            self.fn.temps_in_use = mark
            return
        if isinstance(e, ast.Conditional):
            orelse, done = self.label("celse"), self.label("cdone")
            self.branch_stmt(e.cond, orelse, when=False)
            self.branch_stmt(e.then, target, when)
            self.emit(mc.Jmp(done, line=line), mc.Label(orelse))
            self.branch_stmt(e.orelse, target, when)
            self.emit(mc.Label(done))
            return
        v = self.value(e)
        self.emit(mc.Jump("ne" if when else "eq", v, target, line=line))

    def _unsigned_compare(self, e: ast.Builtin, target: str, when: bool) -> None:
        """`ult`/`ule`: adding INT_MIN flips the top bit, which turns the unsigned order
        into the signed one, so the signed COMPARE decides (constants flip at compile
        time)."""
        line = e.pos.line
        op = "<" if e.name == "ult" else "<="
        if not when:
            op = _NOT[op]
        left, right = self._pair(e.args[0], e.args[1])
        int_min = -(1 << (self.w - 1))
        flipped = []
        for expr, cell in zip(e.args, (left, right), strict=True):
            k = self.constant(expr)
            if k is not None:
                flipped.append(const(mc.wrap(k + int_min, self.w)))
                continue
            t = self.temp()
            self.emit(mc.Mov(t, cell, line=line), mc.Add(t, const(int_min), line=line))
            flipped.append(t)
        self.emit(mc.Compare(op, flipped[0], flipped[1], target, line=line))

    def _compare(self, e: ast.Binary, target: str, when: bool) -> None:
        line = e.pos.line
        op = e.op if when else _NOT[e.op]
        if self.constant(e.left) is not None:  # k op b == b swapped(op) k (k has no effects)
            e = ast.Binary(_SWAPPED[e.op], e.right, e.left, e.pos)
            op = _SWAPPED[op]
        rk = self.constant(e.right)
        left, right = self._operands(e)
        if rk == 0:
            self.emit(mc.Jump(_COND_OF[op], left, target, line=line))
            return
        if op in ("==", "!="):  # the wrapped difference is 0 exactly when equal
            d = self.temp()
            if rk is not None:  # d = k - a: NEG (2 steps) and ADD #k (1 step)
                self.emit(mc.Neg(d, left, line=line), mc.Add(d, right, line=line))
            else:
                self.emit(mc.Mov(d, left, line=line), mc.Sub(d, right, line=line))
            self.emit(mc.Jump(_COND_OF[op], d, target, line=line))
            return
        self.emit(mc.Compare(op, left, right, target, line=line))

    # --- statements --------------------------------------------------------------------

    def statements(self, body: tuple[ast.Stmt, ...]) -> None:
        for s in body:
            mark = self.fn.temps_in_use
            self.statement(s)
            self.fn.temps_in_use = mark

    def statement(self, s: ast.Stmt) -> None:
        line = self.line = s.pos.line
        if isinstance(s, (ast.InputDecl, ast.OutputDecl, ast.ConstDecl, ast.FuncDef)):
            return
        if isinstance(s, ast.VarDecl):
            for d in s.declarators:
                if isinstance(d, ast.ArrayDeclarator):
                    array = self.checked.symbols[d.pos]
                    assert isinstance(array, ArraySymbol)
                    if array.kind == "local":
                        inits = d.init if isinstance(d.init, tuple) else ()
                        self._fill(array, inits, d.pos.line)
                elif isinstance(d, ast.ScalarDeclarator):
                    cell = self.cell_of(d)
                    if d.init is None:
                        self.emit(mc.Clear(cell, line=d.pos.line))
                    else:
                        self.assign_value(cell, d.init)
            return
        if isinstance(s, ast.Assign):
            self.assign(s)
        elif isinstance(s, ast.If):
            orelse, end = self.label("else"), self.label("endif")
            self.branch_stmt(s.cond, orelse if s.orelse else end, when=False)
            self.statements(s.then.body)
            if s.orelse is not None:
                self.emit(mc.Jmp(end, line=line), mc.Label(orelse))
                if isinstance(s.orelse, ast.Block):
                    self.statements(s.orelse.body)
                else:
                    self.statement(s.orelse)
            self.emit(mc.Label(end))
        elif isinstance(s, ast.While):
            self.loop(s.cond, None, s.body, line)
        elif isinstance(s, ast.For):
            if s.init is not None:
                self.statement(s.init)
            self.loop(s.cond, s.step, s.body, line)
        elif isinstance(s, ast.Break):
            self.emit(mc.Jmp(self.fn.loops[-1][1], line=line))
        elif isinstance(s, ast.Continue):
            self.emit(mc.Jmp(self.fn.loops[-1][0], line=line))
        elif isinstance(s, ast.Return):
            if s.value is None:
                self.emit(mc.Clear(RV, line=line))
            else:
                self.value(s.value, RV)
            self.emit(mc.Jmp(self.fn.exit, line=line))
        elif isinstance(s, ast.Print):
            for arg in s.args:
                if isinstance(arg, ast.StrLit):
                    for ch in arg.value:
                        self.emit(mc.Out(const(ord(ch)), line=line))
                else:
                    k = self.constant(arg)
                    if k is not None:
                        for ch in str(k):
                            self.emit(mc.Out(const(ord(ch)), line=line))
                        continue
                    mark = self.fn.temps_in_use
                    self.value(arg, runtime_lib.cell("print", "a"))
                    self.routines.add("print")
                    self.emit(mc.Call("$print", runtime_lib.cell("print", "ra"), line=line))
                    self.fn.temps_in_use = mark
        elif isinstance(s, ast.Write):
            self.emit(mc.Out(self.value(s.value), line=line))
        elif isinstance(s, ast.Halt):
            self.emit(mc.Halt(line=line))
        elif isinstance(s, ast.Assert):
            self.branch_stmt(s.cond, self.trap_stub(TRAP_ASSERT, line), when=False)
        elif isinstance(s, ast.ExprStmt):
            if isinstance(s.expr, ast.Call):
                self._call(s.expr)
            elif isinstance(s.expr, ast.Builtin) and s.expr.name == "putc":
                self.emit(mc.Out(self.value(s.expr.args[0]), line=line))
            elif isinstance(s.expr, ast.Builtin):
                self.value(s.expr)  # no effect but a trap (udiv, umod by zero)
            else:
                self._read(self.temp(), line)
        elif isinstance(s, ast.Block):
            self.statements(s.body)
        else:  # pragma: no cover - the checker lets no other statement through
            raise TypeError(f"unknown statement {s!r}")

    def branch_stmt(self, cond: ast.Expr, target: str, when: bool) -> None:
        mark = self.fn.temps_in_use
        self.branch(cond, target, when)
        self.fn.temps_in_use = mark

    def loop(self, cond: ast.Expr | None, step: ast.Stmt | None, body: ast.Block,
             line: int) -> None:
        """Rotated loop: the condition sits at the bottom, entered once by a jump."""
        top, cont, test, end = (self.label(x) for x in ("body", "cont", "test", "end"))
        self.emit(mc.Jmp(test, line=line), mc.Label(top))
        self.fn.loops.append((cont, end))
        self.statements(body.body)
        self.fn.loops.pop()
        self.emit(mc.Label(cont))
        if step is not None:
            mark = self.fn.temps_in_use
            self.statement(step)
            self.fn.temps_in_use = mark
        self.emit(mc.Label(test))
        if cond is None:
            self.emit(mc.Jmp(top, line=line))
        else:
            self.branch_stmt(cond, top, when=True)
        self.emit(mc.Label(end))

    def assign_value(self, cell: str, e: ast.Expr) -> None:
        """cell = e, computed straight into `cell`: `value` writes its destination only
        after every operand has been read (or goes through a temporary when an operand is
        the destination itself)."""
        self.value(e, cell)

    def assign(self, s: ast.Assign) -> None:
        """`x op= e` evaluates e, then reads x; `a[i] op= e` evaluates the index, checks it,
        evaluates e, then reads the old element (the source interpreter's order)."""
        line = s.pos.line
        op = s.op[:-1]  # "" for plain "="
        target = s.target
        if isinstance(target, ast.Name):
            cell = self.cell_of(target)
            if not op:
                self.assign_value(cell, s.value)
                return
            v = self.value(s.value)
            self._apply(op, cell, v, self.constant(s.value), cell, line)
            return
        where = self._element(target)
        if isinstance(where, str):
            if not op:
                self.assign_value(where, s.value)
            else:
                v = self.value(s.value)
                self._apply(op, where, v, self.constant(s.value), where, line)
            return
        v = self.value(s.value)
        if op:
            old = self.temp()
            self.emit(mc.Load(old, where.nptr, negated=True, line=line))
            v = self._apply(op, old, v, self.constant(s.value), old, line)
        self.emit(mc.Store(where.nptr, v, negated=True, line=line))

    # --- whole program -----------------------------------------------------------------

    def lower(self) -> None:
        top = tuple(s for s in self.checked.program.items if not isinstance(s, ast.FuncDef))
        self.statements(top)
        self.line = 0
        self.emit(mc.Halt(line=0))
        self.functions_done.append(self.fn)
        for sym in self.checked.functions:
            self.fn = _Function(sym.name, sym, sym.name)
            self.emit(mc.Label(f"{sym.name}()", line=sym.pos.line))
            self.statements(sym.definition.body.body)
            self.line = 0
            self.emit(mc.Clear(RV, line=0), mc.Label(self.fn.exit),
                      mc.Ret(self.fn.ra, line=0))
            self.functions_done.append(self.fn)

    def macro_program(self, stack: int | None) -> mc.MacroProgram:
        code = list(self.code)
        data: list[mc.DataCell | mc.DataBlock] = [mc.DataCell(RV)]
        for name in sorted(self.routines):
            r = runtime_lib.routine(name, self.w)
            code.extend(r.code)
            data.extend(r.data)
        for (code_no, line), stub in sorted(self.trap_stubs.items(), key=lambda kv: kv[1]):
            code.extend([mc.Label(stub), mc.Trap(code_no, line=line)])
        for stub, back, line in self.tape_end_stubs:  # 0 - 0 = 0 <= 0: always jumps back
            code.extend([mc.Label(stub), mc.Subleq(TAPE_LEFT, TAPE_LEFT, back, line=line)])
        if self.uses_eof:
            data.append(mc.DataCell(TAPE_LEFT))
        # cells only their own function reads: temporaries, parameters and locals (the
        # CFG clean-ups may drop stores to them that nothing reads, and their saves); not
        # arrays, which callees read and write by reference
        local: set[str] = {self.cells[s.uid] for s in self.checked.main_locals}
        for fsym in self.checked.functions:
            local.update(self.own_cells(fsym))
        for _shown, label in self.symbol_names:
            if label in self.static_arrays:
                data.append(mc.DataBlock(label, self.static_arrays[label].initial))
            else:
                data.append(mc.DataCell(label))
        for fn in self.functions_done:
            for i in range(fn.temps_max):
                data.append(mc.DataCell(fn.temp(i)))
                local.add(fn.temp(i))
            if fn.symbol is not None:
                data.append(mc.DataCell(fn.ra))
        words, frames = (stack, 0) if stack is not None else (0, DEFAULT_STACK_FRAMES)
        inputs = tuple((s.name, self.cells[s.uid]) for s in self.checked.inputs)
        outputs = tuple((s.name, self.cells[s.uid]) for s in self.checked.outputs)
        return mc.MacroProgram(
            code=tuple(code),
            data=tuple(data),
            stack_words=words,
            stack_frames=frames,
            inputs=inputs,
            outputs=outputs,
            symbols=tuple(self.symbol_names),
            local_cells=frozenset(local),
            tape_left=TAPE_LEFT if self.uses_eof else None,
        )


@dataclass(frozen=True)
class _ArrayRef:
    """Where an array is, as operands: `base` holds its first word's address (`&label` for
    an array at a fixed address, else a cell), `nlen` minus its first index's bound (`#-n`,
    or an array parameter's length cell); `label` and `length` when known at compile time."""

    base: str
    nlen: str
    label: str | None
    length: int | None
    columns: int


@dataclass(frozen=True)
class _Pointer:
    """An array element addressed at run time: `nptr` holds minus its address."""

    nptr: str


def _children(node: object) -> Iterator[object]:
    if isinstance(node, (ast.Index,)):
        yield node.index
    elif isinstance(node, (ast.Call, ast.Builtin)):
        yield from node.args
    elif isinstance(node, ast.Conditional):
        yield node.cond
        yield node.then
        yield node.orelse
    elif isinstance(node, ast.Unary):
        yield node.operand
    elif isinstance(node, ast.Binary):
        yield node.left
        yield node.right


def uses_eof(items: tuple[ast.Stmt, ...]) -> bool:
    """Whether the program calls `eof()` anywhere (functions included)."""
    stack: list[object] = list(items)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Builtin) and node.name == "eof":
            return True
        if isinstance(node, (tuple, list)):
            stack.extend(node)
        elif hasattr(node, "__dataclass_fields__"):
            stack.extend(getattr(node, f) for f in node.__dataclass_fields__ if f != "pos")
    return False


def _has_call(e: object) -> bool:
    if isinstance(e, ast.Call):
        return True
    return any(_has_call(c) for c in _children(e))


def _calls_in(stmts: tuple[ast.Stmt, ...] | list[ast.Stmt]) -> Iterator[str]:
    """Names of the functions called anywhere in these statements."""
    stack: list[object] = list(stmts)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            yield node.name
        if isinstance(node, (tuple, list)):
            stack.extend(node)
        elif hasattr(node, "__dataclass_fields__") and not isinstance(node, ast.FuncDef):
            stack.extend(getattr(node, f) for f in node.__dataclass_fields__ if f != "pos")


def lower_macros(checked: CheckedProgram, options: LoweringOptions) -> mc.MacroProgram:
    """The pass: checked AST -> macro program."""
    low = _Lowerer(checked, options.word_bits)
    low.lower()
    return low.macro_program(options.stack)


def stack_plan(checked: CheckedProgram, options: LoweringOptions) -> StackPlan:
    """The stack of the program `lower_program` compiles (CFG clean-ups included: they decide
    which cells each SAVE keeps)."""
    low = _Lowerer(checked, options.word_bits)
    low.lower()
    program = cfg_optimize(low.macro_program(options.stack)).program
    kept = {m.group: m.words() for m in program.code if isinstance(m, mc.Save)}
    pushes = {pos: kept[group] for pos, group in low.save_sites.items() if kept.get(group)}
    return StackPlan(mc.stack_size(program), pushes)


def lower_program(checked: CheckedProgram, options: CompileOptions,
                  optimize: bool = True) -> SubleqImage:
    """What the driver calls: lowering, CFG clean-ups, assembly, packaged as an image.
    `optimize=False` skips the CFG clean-ups (the benchmark measures what they save)."""
    program = lower_macros(checked, LoweringOptions(options.word_bits, options.stack))
    if optimize:
        program = cfg_optimize(program).program
    return image_of(program, checked, options.word_bits)


def image_of(program: mc.MacroProgram, checked: CheckedProgram, word_bits: int) -> SubleqImage:
    """Assemble a macro program and describe it: symbols, spans, inputs, outputs, trap cells,
    memory need and the annotated listing."""
    assembled = mc.assemble(program, word_bits)
    labels = assembled.label_map()
    symbols = sorted(((name, labels[label]) for name, label in program.symbols),
                     key=lambda kv: (kv[1], kv[0]))
    return SubleqImage(
        words=assembled.words,
        source_path=checked.path,
        symbols=tuple(symbols),
        spans=mc.code_spans(program, assembled),
        inputs=tuple((name, labels[label]) for name, label in program.inputs),
        outputs=tuple((name, labels[label]) for name, label in program.outputs),
        tape_length_address=None if program.tape_left is None else labels[program.tape_left],
        min_memory=assembled.stack_end,
        trap=TrapInfo(labels[mc.TRAP_CODE], labels[mc.TRAP_LINE]),
        source_text=checked.program.text,
        listing=mc.listing(program, assembled, checked.program.text),
        writable=written_words(program, assembled),
        direct_reads=True,
    )


def written_words(program: mc.MacroProgram, assembled: mc.Assembled) -> tuple[tuple[int, int], ...]:
    """Every word the program can write, as sorted [start, end) ranges: the b operand of
    every instruction as assembled (the cells a macro writes, and the operand words that
    LOAD, STORE and RET patch), the scratch cells and the program's data (variables and
    arrays, which a patched STORE reaches), and the stack. Not written: the code's other
    words and the constant pool. A specialised network faults on any other write, so a
    mistake here shows as a fault, never as a wrong result."""
    labels = assembled.label_map()
    words = assembled.words
    targets = {words[i + 1] for i in range(0, assembled.code_words, 3) if words[i + 1] >= 0}
    data_end = labels[mc.TRAP_LINE] + 1
    for item in program.data:
        size = 1 if isinstance(item, mc.DataCell) else len(item.values)
        data_end = max(data_end, labels[item.label] + size)
    spans = [(t, t + 1) for t in targets if t < assembled.code_words]
    spans += [(assembled.code_words, data_end), (assembled.stack_base, assembled.stack_end)]
    return merge_ranges(spans)
