"""The package's architecture holds: a lower group never imports a higher one, and no two modules
import each other.  Read from the source (ast), so it fails on the import that breaks the rule."""

import ast
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent
# lowest first; a module may import its own group and the groups before it
GROUPS = ["base", "data", "core", "method", "beyond", "studies", "show", "teach", "top"]


def group_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in GROUPS else "top"


def imports() -> dict[str, set[str]]:
    """module -> the workbench modules it imports (relative imports resolved)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                if stem.startswith("workbench"):
                    for alias in node.names:  # `from . import figures` imports a module
                        candidate = f"{stem}.{alias.name}"
                        is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() or (
                            PACKAGE.parent / candidate.replace(".", "/")
                        ).is_dir()
                        targets.add(candidate if is_module else stem)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("workbench")}
        found[module] = targets - {module}
    return found


def test_no_lower_group_imports_a_higher_one():
    wrong = []
    for module, targets in imports().items():
        if module == "workbench":
            continue  # the face names everything (lazily)
        mine = GROUPS.index(group_of(module))
        for target in targets:
            if target != "workbench" and GROUPS.index(group_of(target)) > mine:
                wrong.append(f"{module} ({group_of(module)}) imports {target} ({group_of(target)})")
    assert not wrong, "lower groups import higher ones:\n" + "\n".join(sorted(wrong))


def test_no_two_modules_import_each_other():
    graph = imports()
    cycles = sorted(
        {tuple(sorted((a, b))) for a, ts in graph.items() for b in ts if a in graph.get(b, set())}
    )
    assert not cycles, f"modules importing each other: {cycles}"


def test_the_rule_is_checked_on_real_imports():
    graph = imports()
    assert "workbench.core.model" in graph["workbench.core.hooks"]
    assert "workbench.method.result" in graph["workbench.studies.paper"]
    assert group_of("workbench.show.figures") == "show" and group_of("workbench.cli") == "top"
