"""Lowering, storage and frames: where the values of a `.tl` program live.

`Storage` is the state every part of the lowering shares (`lowering._Lowerer` is built on
it): the code being appended to, a cell for every variable (a data block for every array
at a fixed address), the temporaries of the function being lowered, labels and trap stubs,
and which cells make up a function's frame (what a recursive call saves and restores).
Which functions are recursive comes from the call graph (`call_graph`): a call is
recursive exactly when caller and callee share a strongly connected component.

Cell names: a global is named as in the source, a local `f.x` (`<main>.x` in blocks of the
top-level code), a temporary `f.$t<k>`, a return address `f.$ra`; a name taken twice (two
block-scoped locals that shadow each other) gets `#2`, `#3`, ... The `symbols` list pairs
each user-visible name with its cell, for the image's symbol table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mlpc.compiler import macros as mc
from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import ArraySymbol, CheckedProgram, FunctionSymbol, VarSymbol
from mlpc.compiler.digraph import strongly_connected_components
from mlpc.errors import SourcePos

RV = "$rv"  # the return value of the last call
TAPE_LEFT = "$tape_left"  # tape words not read yet (programs that use eof() only)
MAIN = "<main>"  # the name of the top-level code in the call graph and in cell names

TRAP_DIVISION = 1
TRAP_INDEX = 2
TRAP_STACK = 3
TRAP_ASSERT = 4


@dataclass
class FunctionState:
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


def call_graph(checked: CheckedProgram) -> tuple[dict[str, int], frozenset[str]]:
    """Component number of every function (and of main) in the call graph: a call is
    recursive exactly when caller and callee share a component; and the functions on a
    cycle (recursive ones: their local arrays live on the stack)."""
    top = [s for s in checked.program.items if not isinstance(s, ast.FuncDef)]
    graph = {MAIN: list(dict.fromkeys(ast.calls_in(top)))}
    for fn in checked.functions:
        graph[fn.name] = list(dict.fromkeys(ast.calls_in(fn.definition.body.body)))
    comp: dict[str, int] = {}
    cyclic: set[str] = set()
    for number, members in enumerate(strongly_connected_components(graph)):
        for name in members:
            comp[name] = number
            if len(members) > 1 or name in graph[name]:
                cyclic.add(name)
    return comp, frozenset(cyclic)


class Storage:
    """The lowering's shared state, and the cells, labels and frames it hands out."""

    def __init__(self, checked: CheckedProgram, word_bits: int) -> None:
        self.checked = checked
        self.w = word_bits
        self.code: list[mc.Macro] = []
        self.cells: dict[int, str] = {}  # symbol uid -> cell label
        self.cell_names: set[str] = set()
        self.symbol_names: list[tuple[str, str]] = []  # user-visible name -> label
        self.routines: set[str] = set()
        self.trap_stubs: dict[tuple[int, int], str] = {}
        self.uses_eof = ast.uses_eof(checked.program.items)
        # (stub, back, line) of each read() that counts the tape down: the stub clamps
        # $tape_left to 0 and jumps back
        self.tape_end_stubs: list[tuple[str, str, int]] = []
        self.label_count = 0
        self.line = 0  # the line of the statement being lowered
        self.fn = FunctionState(MAIN, None, MAIN)
        self.functions_done: list[FunctionState] = []
        self.scc, self.cyclic = call_graph(checked)
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

    # --- code, labels, temporaries -----------------------------------------------------

    def label(self, stem: str) -> str:
        self.label_count += 1
        return f".{stem}{self.label_count}"

    def emit(self, *items: mc.Macro) -> None:
        """Append macros; those without a line get the current statement's."""
        for m in items:
            if m.line == 0 and self.line and not isinstance(m, mc.Label):
                m = replace(m, line=self.line)
            self.code.append(m)

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

    # --- frames ------------------------------------------------------------------------

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
