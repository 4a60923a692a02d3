"""Lowering, arrays: where an array is, the address of an element, and a local array's
declaration.

Global arrays, arrays in blocks of the top-level code and local arrays of functions that
are not recursive are data blocks at fixed addresses: a constant index names the element's
cell. A recursive function keeps its local arrays on the stack, its cell `f.buf` holding the
array's address; an array parameter `a[]` is two cells, `f.a` (the address of the
argument's first word) and `f.a$n` (minus its length, rows for `g[][C]`). Elements whose
address is known only at run time are reached through `BOUND` (the index check against a
length operand) and `ADDRESS` (minus the element's address for `LOAD`/`STORE`); `g[i][j]`
checks i, then j, then addresses word i * C + j.

`ArrayLowering` is one part of `lowering._Lowerer`: it uses the expressions' `value`,
`constant` and `_into` (`lower_expr`) and the operators' `_apply` (`lowering`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpc.compiler import macros as mc
from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import ArraySymbol
from mlpc.compiler.lower_storage import TRAP_INDEX, Storage
from mlpc.compiler.macros import const


@dataclass(frozen=True)
class ArrayRef:
    """Where an array is, as operands: `base` holds its first word's address (`&label` for
    an array at a fixed address, else a cell), `nlen` minus its first index's bound (`#-n`,
    or an array parameter's length cell); `label` and `length` when known at compile time."""

    base: str
    nlen: str
    label: str | None
    length: int | None
    columns: int


@dataclass(frozen=True)
class Pointer:
    """An array element addressed at run time: `nptr` holds minus its address."""

    nptr: str


class ArrayLowering(Storage):
    """Array references, element addresses (checked against the bounds), declarations."""

    def _array(self, e: ast.Index) -> tuple[ArraySymbol, str]:
        sym = self.checked.symbols[e.pos]
        assert isinstance(sym, ArraySymbol)
        return sym, self.cells[sym.uid]

    def _ref(self, e: ast.Index | ast.Name) -> ArrayRef:
        sym, label = self._array(e)
        if sym.kind == "param":
            return ArrayRef(label, self.length_cells[sym.uid], None, None, sym.columns)
        nlen = const(-sym.length)
        if label in self.static_arrays:
            return ArrayRef(mc.addr(label), nlen, label, sym.length, sym.columns)
        return ArrayRef(label, nlen, None, sym.length, sym.columns)  # on the stack

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

    def _element(self, e: ast.Index) -> str | Pointer:
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
            return Pointer(nptr)
        i = self.value(e.index)
        if e.column is not None and ast.has_call(e.column) and not self.is_stable(i):
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
        return Pointer(nptr)

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
