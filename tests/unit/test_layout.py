"""The building plan, read from the code's own imports (README "Architecture"): every
package stands on a lower floor than everything it imports, no import runs back up,
no module imports itself round a loop, and Faust and the environment stay where they
belong."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vizita", "producers", "streams", "sinks", "dashboards")

#: part of the house -> its floor; a part may import only parts on lower floors
FLOORS = {
    "vizita": 0,  # the package's face: imports nothing
    "vizita.contract": 1,
    "vizita.kafka": 2,
    "streams": 3,
    "producers": 3,
    "sinks": 3,
    "streams.runtime": 4,
    "dashboards": 4,
    "vizita.app": 5,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _part(module: str) -> str:
    """The part of the house a module belongs to."""
    for prefix in ("vizita.contract", "vizita.kafka", "vizita.app", "streams.runtime"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    if module == "vizita.__main__":
        return "vizita.app"
    return module.split(".", 1)[0]


def _modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = ast.parse(path.read_text(encoding="utf-8"))
    return found


MODULES = _modules()


def _imports(tree: ast.Module) -> Iterator[str]:
    """Every module of the project this module imports, at the top or inside a function."""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in MODULES:
                yield name


GRAPH = {module: sorted(set(_imports(tree)) - {module}) for module, tree in MODULES.items()}


def test_every_part_has_a_floor() -> None:
    assert {_part(module) for module in MODULES} <= set(FLOORS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_back_up(module: str) -> None:
    floor = FLOORS[_part(module)]
    upward = [
        target
        for target in GRAPH[module]
        if _part(target) != _part(module) and FLOORS[_part(target)] >= floor
    ]
    assert upward == [], f"{module} (floor {floor}) imports from its floor or above"


def test_no_module_imports_itself_round_a_loop() -> None:
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(" -> ".join((*path[path.index(module) :], module)))
        if module in done:
            return
        for target in GRAPH[module]:
            visit(target, (*path, module))
        done.add(module)

    for module in GRAPH:
        visit(module, ())


def _third_party(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_faust_is_spoken_in_one_place() -> None:
    speaking = {m for m, tree in MODULES.items() if _third_party(tree) & {"faust", "mode"}}
    assert {_part(module) for module in speaking} == {"streams.runtime"}


def test_no_part_reads_the_environment_but_the_settings() -> None:
    reading = sorted(
        module
        for module, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
    )
    assert reading == []


def test_the_pure_maths_counts_nothing() -> None:
    # streams/ outside runtime/ is maths on plain values: the runtime counts around it.
    counting = sorted(
        module
        for module, tree in MODULES.items()
        if _part(module) == "streams"
        and (
            "vizita.contract.metrics" in GRAPH[module] or "prometheus_client" in _third_party(tree)
        )
    )
    assert counting == []
    runtime = {m for m in MODULES if _part(m) == "streams.runtime"}
    assert any("vizita.contract.metrics" in GRAPH[m] for m in runtime)  # the check can see one
