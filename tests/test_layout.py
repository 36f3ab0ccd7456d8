"""The package's rooms and the one-way flow of imports between them (README, Layout).

Every import of a galcolor module, at module level or inside a function, counts: a function-level
import still makes the importing room depend on the imported one."""

from __future__ import annotations

import ast
from pathlib import Path

import galcolor

PACKAGE = Path(galcolor.__file__).parent
# Each room and the rooms it may import. errors and version are ground that every room stands on.
ALLOWED = {
    "errors": set(),
    "version": set(),
    "io": {"errors"},
    "color": {"errors"},
    "models": {"color", "io", "errors"},
    "inference": {"models", "color", "io", "errors", "version"},
    "evaluation": {"inference", "models", "color", "io", "errors"},
    "training": {"evaluation", "inference", "models", "color", "io", "errors", "version"},
    "app": {"training", "evaluation", "inference", "models", "color", "io", "errors", "version"},
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """galcolor modules (dotted, without 'galcolor.') that the file imports, however it spells it."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif node.module and (node.module == "galcolor" or node.module.startswith("galcolor.")):
                base = []
                node = ast.ImportFrom(module=node.module.removeprefix("galcolor").lstrip(".") or None, names=node.names, level=0)
            else:
                continue
            target = base + (node.module.split(".") if node.module else [])
            for alias in node.names:  # `from . import distributed` imports a module by name
                candidate = ".".join(target + [alias.name])
                found.add(candidate if module_path(candidate) else ".".join(target))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("galcolor.") for a in node.names if a.name.startswith("galcolor."))
    found.discard("")
    return found


def module_path(name: str) -> Path | None:
    for candidate in (PACKAGE / (name.replace(".", "/") + ".py"), PACKAGE / name.replace(".", "/") / "__init__.py"):
        if name and candidate.exists():
            return candidate
    return None


def room(name: str) -> str:
    return name.split(".")[0]


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "__init__.py" and p.name != "__main__.py")


def test_every_module_lives_in_a_known_room():
    rooms = {room(module_name(p)) for p in package_files()}
    assert rooms <= set(ALLOWED), f"modules outside the rooms of the layout: {sorted(rooms - set(ALLOWED))}"


def test_imports_flow_one_way_between_rooms():
    wrong = []
    for path in package_files():
        here = room(module_name(path))
        for target in imported_modules(path):
            there = room(target)
            if there != here and there not in ALLOWED[here]:
                wrong.append(f"{module_name(path)} imports {target} ({here} may not import {there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle_between_modules():
    graph = {module_name(p): imported_modules(p) for p in package_files()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return path + [name, target]
            if target in graph and state.get(target) is None and (circle := visit(target, path + [name])):
                return circle
        state[name] = 2
        return None

    for start in sorted(graph):
        if state.get(start) is None:
            circle = visit(start, [])
            assert circle is None, "import circle: " + " -> ".join(circle[circle.index(circle[-1]):])


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The two checks above must be able to fail: a fake room with a circle and an upward import."""
    fake = tmp_path / "galcolor"
    (fake / "color").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "color" / "__init__.py").write_text("")
    (fake / "color" / "a.py").write_text("from .b import x\nfrom ..app.cli import main\n")
    (fake / "color" / "b.py").write_text("def f():\n    from galcolor.color.a import y\n")
    (fake / "app").mkdir()
    (fake / "app" / "__init__.py").write_text("")
    (fake / "app" / "cli.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imported_modules(fake / "color" / "a.py") == {"color.b", "app.cli"}
    assert imported_modules(fake / "color" / "b.py") == {"color.a"}
    for check in (test_imports_flow_one_way_between_rooms, test_no_import_circle_between_modules):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} passed on a package that breaks it")


def test_modules_stay_small_enough_to_read():
    long = [f"{module_name(p)}: {n} lines" for p in package_files() if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "split these along their seams:\n" + "\n".join(long)
