"""A notebook as a dataflow: which names each code cell defines and reads, and the patcher's name contract.

``cell_names(source) -> CellNames`` parses one code cell (IPython magics and shell lines blanked):

* ``defines``: names bound at the cell's top level (assignments, imports, ``def``, ``class``, ``for``/``with``
  targets, ``global`` declarations inside its functions);
* ``reads``: names the top level loads before the cell itself binds them, in order of first use;
* ``deferred``: global names read inside the functions, lambdas and classes the cell defines — they must
  exist by the time those run, i.e. be defined by some cell of the notebook, earlier or later.

``check_contract(cells) -> Contract`` walks an adapted notebook's code cells in order. Each cell is a
``FlowCell(source, origin, label, base_reads_undefined)``: ``origin`` is ``"kit"`` for a cell the patcher
inserted, ``"base"`` for a kept (or repaired) base cell; ``base_reads_undefined`` holds the names that cell
already read before any definition in the *original* notebook (its own defect, not the patch's). A base cell
that reads a name no earlier output cell defines, where the original did define it, has lost that name to a
removed or replaced cell: the contract reports it. A name a base cell reads whose latest definer is a kit
cell, where the original defined it in a base cell, is *provided* by the kit.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

# Names an IPython kernel defines in every notebook.
IPYTHON_NAMES = frozenset({"display", "get_ipython", "In", "Out", "exit", "quit", "_", "__", "___", "_ih", "_oh"})
BUILTIN_NAMES = frozenset(dir(builtins)) | IPYTHON_NAMES
# Cell magics whose body is Python and runs in the kernel's namespace.
PYTHON_CELL_MAGICS = ("%%capture", "%%time", "%%timeit", "%%prun")


@dataclass(frozen=True)
class CellNames:
    """What one code cell binds at top level, reads at top level, and reads later from its functions."""

    defines: frozenset[str]
    reads: tuple[str, ...]
    deferred: frozenset[str]
    star_import: bool = False


def python_source(source: str) -> str:
    """The cell as parseable Python: shell (``!``) and magic (``%``) lines become ``pass``; a cell magic
    whose body is not Python (``%%bash``, ``%%writefile`` …) gives an empty string."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("%%"):
            if not stripped.startswith(PYTHON_CELL_MAGICS):
                return ""
            lines.append(line[: len(line) - len(stripped)] + "pass")
        elif stripped.startswith(("!", "%")):
            lines.append(line[: len(line) - len(stripped)] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines)


def _bound_in(node: ast.AST) -> set[str]:
    """Names a target expression binds (``a, (b, c)`` -> {a, b, c}; attributes/subscripts bind nothing)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, (ast.Tuple, ast.List)):
        return set().union(*(_bound_in(e) for e in node.elts)) if node.elts else set()
    if isinstance(node, ast.Starred):
        return _bound_in(node.value)
    return set()


class _Scope(ast.NodeVisitor):
    """Free names of a function/lambda/class body or comprehension (what it reads from outer scopes)."""

    def __init__(self, bound: set[str]):
        self.bound = set(bound)
        self.free: set[str] = set()
        self.globals: set[str] = set()

    def _local_bindings(self, body: list[ast.stmt]) -> None:
        # Python decides locals per function: any binding anywhere in the body makes the name local.
        for node in ast.walk(ast.Module(body=body, type_ignores=[])):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.bound.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.bound.add(node.name)
            elif isinstance(node, ast.Global):
                self.globals.update(node.names)
            elif isinstance(node, ast.arg):
                pass
        self.bound -= self.globals

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id not in self.bound:
            self.free.add(node.id)

    def _nested(self, args: ast.arguments | None, body: list[ast.stmt], extra: list[ast.AST] = (),
                defaults: bool = True) -> None:
        for expr in extra:
            self.visit(expr)
        params = set()
        if args is not None:
            for default in (args.defaults + [d for d in args.kw_defaults if d is not None]) if defaults else ():
                self.visit(default)
            for arg in args.posonlyargs + args.args + args.kwonlyargs:
                params.add(arg.arg)
            if args.vararg:
                params.add(args.vararg.arg)
            if args.kwarg:
                params.add(args.kwarg.arg)
        inner = _Scope(self.bound | params)
        inner._local_bindings(body)
        inner.bound |= params
        for stmt in body:
            inner.visit(stmt)
        self.free |= inner.free - self.bound
        self.globals |= inner.globals

    def visit_FunctionDef(self, node) -> None:
        self._nested(node.args, node.body, node.decorator_list)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._nested(node.args, [ast.Expr(node.body)])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.bases + node.decorator_list + [k.value for k in node.keywords]:
            self.visit(expr)
        self._nested(None, node.body)

    def _comprehension(self, node, elements: list[ast.AST]) -> None:
        targets: set[str] = set()
        for index, generator in enumerate(node.generators):
            if index == 0:
                self.visit(generator.iter)  # evaluated in the enclosing scope
            targets |= _bound_in(generator.target)
        inner = _Scope(self.bound | targets)
        for index, generator in enumerate(node.generators):
            if index:
                inner.visit(generator.iter)
            for cond in generator.ifs:
                inner.visit(cond)
        for element in elements:
            inner.visit(element)
        self.free |= inner.free - self.bound

    def visit_ListComp(self, node) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node) -> None:
        self._comprehension(node, [node.key, node.value])


class _TopLevel(ast.NodeVisitor):
    """Walks a cell's top-level statements in order: what it binds, what it reads first."""

    def __init__(self):
        self.defines: set[str] = set()
        self.reads: list[str] = []
        self.deferred: set[str] = set()
        self.star = False

    def _read(self, name: str) -> None:
        if name not in self.defines and name not in self.reads:
            self.reads.append(name)

    def _bind(self, target: ast.AST) -> None:
        # Attribute and subscript targets read their base (``df["x"] = …`` reads ``df``).
        for node in ast.walk(target):
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                self.visit(node)
        self.defines |= _bound_in(target)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
        else:
            self.defines.add(node.id)

    def _scoped(self, visit) -> None:
        scope = _Scope(set())
        visit(scope)
        for name in sorted(scope.free):
            if name in self.defines:
                continue
            self.deferred.add(name)
        self.defines |= scope.globals

    def visit_FunctionDef(self, node) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(default)
        self._scoped(lambda s: s._nested(node.args, node.body, defaults=False))
        self.defines.add(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.bases + node.decorator_list + [k.value for k in node.keywords]:
            self.visit(expr)
        self._scoped(lambda s: s._nested(None, node.body))
        self.defines.add(node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scoped(lambda s: s.visit_Lambda(node))

    def _comprehension(self, node) -> None:
        scope = _Scope(set())
        scope.visit(node)
        for name in sorted(scope.free):
            self._read(name)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.defines.add((alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star = True
            else:
                self.defines.add(alias.asname or alias.name)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._bind(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self._bind(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._read(node.target.id)
        self._bind(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.defines.add(node.target.id)

    def visit_For(self, node) -> None:
        self.visit(node.iter)
        self._bind(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_Try(self, node) -> None:
        for stmt in node.body:
            self.visit(stmt)
        for handler in node.handlers:
            if handler.type is not None:
                self.visit(handler.type)
            if handler.name:
                self.defines.add(handler.name)
            for stmt in handler.body:
                self.visit(stmt)
        for stmt in node.orelse + node.finalbody:
            self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_Global(self, node: ast.Global) -> None:
        self.defines.update(node.names)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if not isinstance(target, ast.Name):
                self.visit(target)


def cell_names(source: str) -> CellNames:
    """Names one code cell defines, reads at top level, and reads from its functions (see module doc).
    A cell that does not parse defines and reads nothing (the patcher reports unparsable cells itself)."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return CellNames(frozenset(), (), frozenset())
    walker = _TopLevel()
    for stmt in tree.body:
        walker.visit(stmt)
    reads = tuple(name for name in walker.reads if name not in BUILTIN_NAMES)
    deferred = frozenset(walker.deferred - BUILTIN_NAMES)
    return CellNames(frozenset(walker.defines), reads, deferred, walker.star)


def undefined_reads(sources: list[str]) -> list[set[str]]:
    """Per cell of a notebook (code cell sources in order): names it reads before any cell defines them."""
    defined: set[str] = set()
    star = False
    result = []
    for source in sources:
        names = cell_names(source)
        result.append(set() if star else {n for n in names.reads if n not in defined})
        defined |= names.defines
        star = star or names.star_import
    return result


@dataclass(frozen=True)
class FlowCell:
    """One code cell of an adapted notebook, for :func:`check_contract`."""

    source: str
    origin: str  # "kit" | "base"
    label: str
    base_reads_undefined: frozenset[str] = frozenset()  # already undefined in the original notebook


@dataclass
class Contract:
    """What :func:`check_contract` found. Indices are positions in the list of cells it was given.

    ``lost``: (cell index, name, "read" | "deferred") a base cell reads and only a dropped cell defined;
    ``provided``: name -> (kit cell label, first base cell index reading it);
    ``inherited``: (cell index, name) the original notebook already read before defining;
    ``introduced``: (cell index, name) a repaired base cell reads, that neither the base nor an earlier kit
    cell defines (a recipe defect).
    """

    lost: list[tuple[int, str, str]] = field(default_factory=list)
    provided: dict[str, tuple[str, int]] = field(default_factory=dict)
    inherited: list[tuple[int, str]] = field(default_factory=list)
    introduced: list[tuple[int, str]] = field(default_factory=list)

    def lost_by_cell(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for index, name, _kind in self.lost:
            out.setdefault(index, []).append(name)
        return out


def check_contract(cells: list[FlowCell], base_defined: set[str]) -> Contract:
    """Walk ``cells`` in order (see the module doc). ``base_defined``: every name the original notebook
    defines anywhere; a missing name outside it is the base's own, not a loss."""
    contract = Contract()
    names = [cell_names(cell.source) for cell in cells]
    everywhere = set().union(*(n.defines for n in names)) if names else set()
    star_anywhere = any(n.star_import for n in names)
    definer: dict[str, int] = {}
    kept_defined: set[str] = set()  # names a kept base cell defined earlier: the kit re-defining one provides nothing
    star = False
    for index, (cell, cell_name) in enumerate(zip(cells, names)):
        if cell.origin == "base" and not star:
            for name in cell_name.reads:
                if name in definer:
                    owner = cells[definer[name]]
                    if (owner.origin == "kit" and name in base_defined and name not in contract.provided
                            and name not in kept_defined):
                        contract.provided[name] = (owner.label, index)
                elif name in cell.base_reads_undefined:
                    contract.inherited.append((index, name))
                elif name in base_defined:
                    contract.lost.append((index, name, "read"))
                else:  # a repair made the cell read a kit name that no earlier cell defines
                    contract.introduced.append((index, name))
            if not star_anywhere:
                for name in sorted(cell_name.deferred):
                    if name not in everywhere and name in base_defined:
                        contract.lost.append((index, name, "deferred"))
        for name in cell_name.defines:
            definer[name] = index
        if cell.origin == "base":
            kept_defined |= cell_name.defines
        star = star or cell_name.star_import
    return contract


def removable(cells: list[FlowCell], index: int) -> bool:
    """Whether nothing after cell ``index`` reads (now or from its functions) a name that cell defines."""
    defines = cell_names(cells[index].source).defines
    if not defines:
        return True
    for later in cells[index + 1 :]:
        later_names = cell_names(later.source)
        if defines & (set(later_names.reads) | later_names.deferred):
            return False
    # Functions defined earlier may read it at call time too.
    for earlier in cells[:index]:
        if defines & cell_names(earlier.source).deferred:
            return False
    return True
