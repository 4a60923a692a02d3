"""Lowering, expressions: constant folding, values into cells, and conditions as jumps.

Values. Expression results live in cells; variables are used in place. A global (or array
element, or `$rv`) used as a left operand is copied first when the right operand contains a
call, which might change it (left-to-right evaluation, as the source interpreter does). A
destination is written only after every operand has been read. Comparisons go through the
`COMPARE` macro (sign classes, never an overflowing subtraction); `ult`/`ule` compare with
the top bits flipped. `c ? x : y` is branch code around the two sides. The arithmetic,
shift and bitwise operators are `lowering._Lowerer._apply`'s.

Each kind of expression has its method, found by the node's type in a table (`_VALUE`,
`_BRANCH`, `_CONSTANT` at the end of the module).

`ExpressionLowering` is one part of `lowering._Lowerer`: it uses the operators' `_apply`
and `_routine` (`lowering`), the calls' `_call` (`lower_calls`), the arrays' `_ref`,
`_array` and `_index_load` (`lower_arrays`) and the statements' `branch_stmt`
(`lower_stmt`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlpc.compiler import macros as mc
from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import (
    ConstSymbol,
    DivisionByZero,
    VarSymbol,
    binary_op,
    builtin_op,
    literal_value,
    unary_op,
)
from mlpc.compiler.lower_storage import RV, TAPE_LEFT, TRAP_DIVISION, Storage
from mlpc.compiler.macros import const

_RELATIONAL = ("<", "<=", ">", ">=", "==", "!=")
# the jump condition on a cell x that says `x op 0`
_COND_OF = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
_SWAPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NOT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


class ExpressionLowering(Storage):
    """Expressions: their constant values, code computing them, code jumping on them."""

    # --- constants ---------------------------------------------------------------------

    def constant(self, e: ast.Expr) -> int | None:
        """The W-bit value of `e` if it is a constant expression (no side effects, no
        division by zero), else None."""
        fold = _CONSTANT.get(type(e))
        return None if fold is None else fold(self, e)

    def _constant_literal(self, e: ast.IntLit) -> int | None:
        return literal_value(e, self.w)

    def _constant_name(self, e: ast.Name) -> int | None:
        sym = self.checked.symbols[e.pos]
        return sym.value if isinstance(sym, ConstSymbol) else None

    def _constant_unary(self, e: ast.Unary) -> int | None:
        v = self.constant(e.operand)
        return None if v is None else unary_op(e.op, v, self.w)

    def _constant_conditional(self, e: ast.Conditional) -> int | None:
        c = self.constant(e.cond)
        return None if c is None else self.constant(e.then if c else e.orelse)

    def _constant_builtin(self, e: ast.Builtin) -> int | None:
        if e.name in ("putc", "eof"):
            return None
        args = [self.constant(a) for a in e.args]
        if any(a is None for a in args):
            return None
        try:
            return builtin_op(e.name, args, self.w)  # type: ignore[arg-type]
        except DivisionByZero:
            return None

    def _constant_binary(self, e: ast.Binary) -> int | None:
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

    # --- values ------------------------------------------------------------------------

    def value(self, e: ast.Expr, dst: str | None = None) -> str:
        """Code computing `e`; returns the cell holding the value (`dst` if given). Nothing
        is written to `dst` before every operand of `e` has been evaluated."""
        k = self.constant(e)
        if k is not None:
            return self._into(const(k), dst)
        return _VALUE[type(e)](self, e, dst)

    def _name_value(self, e: ast.Name, dst: str | None) -> str:
        return self._into(self.cell_of(e), dst)

    def _index_value(self, e: ast.Index, dst: str | None) -> str:
        return self._index_load(e, dst)

    def _call_value(self, e: ast.Call, dst: str | None) -> str:
        self._call(e)
        return self._into(RV, dst or self.temp())

    def _read_value(self, e: ast.Read, dst: str | None) -> str:
        out = dst or self.temp()
        self._read(out, e.pos.line)
        return out

    def _builtin_value(self, e: ast.Builtin, dst: str | None) -> str:
        if e.name in ("ult", "ule", "eof"):
            return self._boolean(e, dst)
        return self._unsigned_division(e, dst)

    def _binary_value(self, e: ast.Binary, dst: str | None) -> str:
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
        if ast.has_call(right_expr) and not self.is_stable(left):
            left = self._into(left, self.temp())
        return left, self.value(right_expr)

    def _arith(self, e: ast.Binary, dst: str | None) -> str:
        line = e.pos.line
        if e.op in ("*", "&", "|", "^") and self.constant(e.left) is not None:
            e = ast.Binary(e.op, e.right, e.left, e.pos)  # k op x == x op k (k: no effects)
        if (e.op in ("+", "-") and dst is not None and not ast.has_call(e.right)
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
        return any(self._mentions(c, cell) for c in ast.children(e))

    # --- conditions --------------------------------------------------------------------

    def branch(self, e: ast.Expr, target: str, when: bool) -> None:
        """Jump to `target` if the truth of `e` equals `when`, else fall through."""
        k = self.constant(e)
        if k is not None:
            if (k != 0) == when:
                self.emit(mc.Jmp(target, line=e.pos.line))
            return
        _BRANCH.get(type(e), ExpressionLowering._branch_on_value)(self, e, target, when)

    def _branch_on_value(self, e: ast.Expr, target: str, when: bool) -> None:
        v = self.value(e)
        self.emit(mc.Jump("ne" if when else "eq", v, target, line=e.pos.line))

    def _branch_unary(self, e: ast.Unary, target: str, when: bool) -> None:
        if e.op == "!":
            self.branch(e.operand, target, not when)
        else:
            self._branch_on_value(e, target, when)

    def _branch_binary(self, e: ast.Binary, target: str, when: bool) -> None:
        if e.op in ("&&", "||"):
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
        elif e.op in _RELATIONAL:
            mark = self.fn.temps_in_use
            self._compare(e, target, when)
            self.fn.temps_in_use = mark
        else:
            self._branch_on_value(e, target, when)

    def _branch_builtin(self, e: ast.Builtin, target: str, when: bool) -> None:
        if e.name == "eof":  # no words left: $tape_left <= 0
            self.emit(mc.Jump("le" if when else "gt", TAPE_LEFT, target, line=e.pos.line))
        elif e.name in ("ult", "ule"):
            mark = self.fn.temps_in_use
            self._unsigned_compare(e, target, when)
            self.fn.temps_in_use = mark
        else:
            self._branch_on_value(e, target, when)

    def _branch_conditional(self, e: ast.Conditional, target: str, when: bool) -> None:
        orelse, done = self.label("celse"), self.label("cdone")
        self.branch_stmt(e.cond, orelse, when=False)
        self.branch_stmt(e.then, target, when)
        self.emit(mc.Jmp(done, line=e.pos.line), mc.Label(orelse))
        self.branch_stmt(e.orelse, target, when)
        self.emit(mc.Label(done))

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


# The method for each kind of expression. An `IntLit` is always constant, so `value` and
# `branch` never look one up; `constant` has no entry for the kinds that are never constant.
_CONSTANT: dict[type, Callable[[Any, Any], int | None]] = {
    ast.IntLit: ExpressionLowering._constant_literal,
    ast.Name: ExpressionLowering._constant_name,
    ast.Unary: ExpressionLowering._constant_unary,
    ast.Conditional: ExpressionLowering._constant_conditional,
    ast.Builtin: ExpressionLowering._constant_builtin,
    ast.Binary: ExpressionLowering._constant_binary,
}
_VALUE: dict[type, Callable[[Any, Any, str | None], str]] = {
    ast.Name: ExpressionLowering._name_value,
    ast.Index: ExpressionLowering._index_value,
    ast.Call: ExpressionLowering._call_value,
    ast.Read: ExpressionLowering._read_value,
    ast.Unary: ExpressionLowering._unary,
    ast.Conditional: ExpressionLowering._conditional,
    ast.Builtin: ExpressionLowering._builtin_value,
    ast.Binary: ExpressionLowering._binary_value,
}
_BRANCH: dict[type, Callable[[Any, Any, str, bool], None]] = {
    ast.Unary: ExpressionLowering._branch_unary,
    ast.Binary: ExpressionLowering._branch_binary,
    ast.Builtin: ExpressionLowering._branch_builtin,
    ast.Conditional: ExpressionLowering._branch_conditional,
}
