"""Lowering, statements: each kind of statement, loops, assignments, the whole program.

`lower` lowers the top-level code (then HALT), then each function's body (then a return of
0). Each kind of statement has its method, found by the node's type in `_STATEMENT` at the
end of the module. The temporaries a statement takes are free again after it.

`StatementLowering` is one part of `lowering._Lowerer`: it uses the expressions' `value`,
`constant`, `branch` and `_read` (`lower_expr`), the calls' `_call` (`lower_calls`), the
arrays' `_element` and `_fill` (`lower_arrays`) and the operators' `_apply` (`lowering`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlpc.compiler import macros as mc
from mlpc.compiler import runtime_lib
from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import ArraySymbol
from mlpc.compiler.lower_storage import RV, TRAP_ASSERT, FunctionState, Storage
from mlpc.compiler.macros import const


class StatementLowering(Storage):
    """Statements, and the order of the whole program's code."""

    def statements(self, body: tuple[ast.Stmt, ...]) -> None:
        for s in body:
            mark = self.fn.temps_in_use
            self.statement(s)
            self.fn.temps_in_use = mark

    def statement(self, s: ast.Stmt) -> None:
        self.line = s.pos.line
        _STATEMENT[type(s)](self, s)

    def _nothing(self, s: ast.Stmt) -> None:
        """Declarations of inputs, outputs, constants and functions have no code."""

    def _var_decl(self, s: ast.VarDecl) -> None:
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

    def _if(self, s: ast.If) -> None:
        line = s.pos.line
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

    def _while(self, s: ast.While) -> None:
        self.loop(s.cond, None, s.body, s.pos.line)

    def _for(self, s: ast.For) -> None:
        if s.init is not None:
            self.statement(s.init)
        self.loop(s.cond, s.step, s.body, s.pos.line)

    def _break(self, s: ast.Break) -> None:
        self.emit(mc.Jmp(self.fn.loops[-1][1], line=s.pos.line))

    def _continue(self, s: ast.Continue) -> None:
        self.emit(mc.Jmp(self.fn.loops[-1][0], line=s.pos.line))

    def _return(self, s: ast.Return) -> None:
        line = s.pos.line
        if s.value is None:
            self.emit(mc.Clear(RV, line=line))
        else:
            self.value(s.value, RV)
        self.emit(mc.Jmp(self.fn.exit, line=line))

    def _print(self, s: ast.Print) -> None:
        line = s.pos.line
        for arg in s.args:
            if isinstance(arg, ast.StrLit):
                for ch in arg.value:
                    self.emit(mc.Out(const(ord(ch)), line=line))
                continue
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

    def _write(self, s: ast.Write) -> None:
        self.emit(mc.Out(self.value(s.value), line=s.pos.line))

    def _halt(self, s: ast.Halt) -> None:
        self.emit(mc.Halt(line=s.pos.line))

    def _assert(self, s: ast.Assert) -> None:
        self.branch_stmt(s.cond, self.trap_stub(TRAP_ASSERT, s.pos.line), when=False)

    def _expr_stmt(self, s: ast.ExprStmt) -> None:
        line = s.pos.line
        if isinstance(s.expr, ast.Call):
            self._call(s.expr)
        elif isinstance(s.expr, ast.Builtin) and s.expr.name == "putc":
            self.emit(mc.Out(self.value(s.expr.args[0]), line=line))
        elif isinstance(s.expr, ast.Builtin):
            self.value(s.expr)  # no effect but a trap (udiv, umod by zero)
        else:
            self._read(self.temp(), line)

    def _block(self, s: ast.Block) -> None:
        self.statements(s.body)

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

    # --- the whole program -------------------------------------------------------------

    def lower(self) -> None:
        top = tuple(s for s in self.checked.program.items if not isinstance(s, ast.FuncDef))
        self.statements(top)
        self.line = 0
        self.emit(mc.Halt(line=0))
        self.functions_done.append(self.fn)
        for sym in self.checked.functions:
            self.fn = FunctionState(sym.name, sym, sym.name)
            self.emit(mc.Label(f"{sym.name}()", line=sym.pos.line))
            self.statements(sym.definition.body.body)
            self.line = 0
            self.emit(mc.Clear(RV, line=0), mc.Label(self.fn.exit),
                      mc.Ret(self.fn.ra, line=0))
            self.functions_done.append(self.fn)


# The method for each kind of statement (`If`'s `else if` is an `If` in `orelse`).
_STATEMENT: dict[type, Callable[[Any, Any], None]] = {
    ast.InputDecl: StatementLowering._nothing,
    ast.OutputDecl: StatementLowering._nothing,
    ast.ConstDecl: StatementLowering._nothing,
    ast.FuncDef: StatementLowering._nothing,
    ast.VarDecl: StatementLowering._var_decl,
    ast.Assign: StatementLowering.assign,
    ast.If: StatementLowering._if,
    ast.While: StatementLowering._while,
    ast.For: StatementLowering._for,
    ast.Break: StatementLowering._break,
    ast.Continue: StatementLowering._continue,
    ast.Return: StatementLowering._return,
    ast.Print: StatementLowering._print,
    ast.Write: StatementLowering._write,
    ast.Halt: StatementLowering._halt,
    ast.Assert: StatementLowering._assert,
    ast.ExprStmt: StatementLowering._expr_stmt,
    ast.Block: StatementLowering._block,
}
