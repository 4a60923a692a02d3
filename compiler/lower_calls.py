"""Lowering, calls: arguments, the saves of recursive calls, and the callee's stack arrays.

Calling convention. Every function has fixed cells: `f.p` for each parameter and local,
`f.$t<k>` temporaries and `f.$ra` its return address; the result is returned in the global
cell `$rv`. A call evaluates the arguments left to right, copies them into the callee's
parameter cells and jumps (`CALL` stores the return address in `f.$ra`). Fixed cells are
only unsafe when an activation of the caller can be re-entered before the call returns,
i.e. when caller and callee are in the same strongly connected component of the call graph
(`lower_storage.call_graph`). Exactly those calls are wrapped in `SAVE`/`RESTORE`, which
push the caller's cells (parameters, locals, return address, temporaries in use) on the
stack and pop them after, checking first that they fit (else trap 3, stack overflow, at
the call's line). A recursive function's local arrays are placed on the stack by the
caller (`ALLOC`, after the `SAVE` that checked room for the saved cells and the arrays
together) and dropped after the call (`FREE`); a call into such a function from outside its
component gets a `SAVE` of no cells for the check. An array argument passes its address
and minus its length.

`CallLowering` is one part of `lowering._Lowerer`: it uses the expressions' `value`,
`constant` and `_mentions` (`lower_expr`) and the arrays' `_ref` and `_constant_cell`
(`lower_arrays`).
"""

from __future__ import annotations

from mlpc.compiler import macros as mc
from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import ArraySymbol, FunctionSymbol
from mlpc.compiler.lower_storage import TRAP_STACK, Storage
from mlpc.errors import SourcePos


class CallLowering(Storage):
    """Calls of user functions, the recursive ones wrapped in SAVE/RESTORE."""

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
        if not recursive and not any(ast.has_call(a) for a in e.args):
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
            later_call = any(not isinstance(b, str) and ast.has_call(b)
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
        return all(self._cannot_trap_or_call(c) for c in ast.children(e))
