"""The floors of lib/ (docs/DESIGN.md §1) read from the code: no import runs up a floor, no circle between floors,
and only scripts/, lib/ops/ and lib/cli.py print."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"

#: Bottom to top, as docs/DESIGN.md §1 lists them; "ground" is every module directly in lib/ but cli.py.
FLOORS = ("ground", "adapters", "archives", "store", "quality", "agents", "insight", "evolution", "backup", "hooks",
          "health", "cli", "ops")

#: The one module below ops that writes to a stream: the logger, through which every floor tells the operator.
LOGGER = "lib.log"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "ground"
    if (LIB / parts[1]).is_dir():
        return parts[1]
    return "cli" if parts[1] == "cli" else "ground"


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT / relative).with_suffix(".py").exists() or (ROOT / relative / "__init__.py").exists()


def imported_modules(path: Path) -> set[str]:
    """Every lib module the file imports, at the top or late inside a function; `from lib import x` is lib.x
    when x is a module (the package itself when a name is not)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            modules = {f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}")}
            found |= modules if len(modules) == len(node.names) else {*modules, base}
    return {name for name in found if name.startswith("lib.") and name != module}


def lib_files() -> list[Path]:
    return sorted(LIB.rglob("*.py"))


def edges() -> set[tuple[str, str]]:
    return {(module_name(path), target) for path in lib_files() for target in imported_modules(path)}


def test_the_floors_named_here_are_the_packages_of_lib():
    packages = {path.name for path in LIB.iterdir() if (path / "__init__.py").exists()}
    assert packages == set(FLOORS) - {"ground", "cli"}


def test_no_import_runs_up_a_floor():
    rank = {floor: number for number, floor in enumerate(FLOORS)}
    upward = sorted((source, target) for source, target in edges()
                    if rank[floor_of(target)] > rank[floor_of(source)])
    assert not upward, f"imports that run up a floor (docs/DESIGN.md §1): {upward}"


def test_no_circle_between_floors():
    graph: dict[str, set[str]] = {floor: set() for floor in FLOORS}
    for source, target in edges():
        if floor_of(source) != floor_of(target):
            graph[floor_of(source)].add(floor_of(target))
    done: set[str] = set()

    def visit(floor: str, trail: tuple[str, ...]) -> None:
        assert floor not in trail, f"floors import each other in a circle: {' -> '.join((*trail, floor))}"
        if floor not in done:
            for below in sorted(graph[floor]):
                visit(below, (*trail, floor))
            done.add(floor)

    for floor in FLOORS:
        visit(floor, ())


def writes_to_a_stream(tree: ast.AST) -> list[int]:
    """Lines that call print(), click.echo / click.secho, sys.stdout.write or sys.stderr.write."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("print", "echo", "secho"):
            lines.append(node.lineno)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id == "click" and func.attr in ("echo", "secho"):
                lines.append(node.lineno)
        elif (isinstance(func, ast.Attribute) and func.attr == "write" and isinstance(func.value, ast.Attribute)
              and isinstance(func.value.value, ast.Name) and func.value.value.id == "sys"
              and func.value.attr in ("stdout", "stderr")):
            lines.append(node.lineno)
    return lines


def test_the_detector_sees_every_way_of_printing():
    code = "import sys, click\nprint(1)\nclick.echo(2)\nsys.stderr.write('3')\nsys.stdout.write('4')\nx.write(5)\n"
    assert writes_to_a_stream(ast.parse(code)) == [2, 3, 4, 5]


def test_only_scripts_ops_and_cli_print():
    printing = {}
    for path in lib_files():
        module = module_name(path)
        if floor_of(module) in ("ops", "cli") or module == LOGGER:
            continue
        lines = writes_to_a_stream(ast.parse(path.read_text(), str(path)))
        if lines:
            printing[str(path.relative_to(ROOT))] = lines
    assert not printing, f"library code below ops that prints (return a value, raise, or lib.log.note): {printing}"
