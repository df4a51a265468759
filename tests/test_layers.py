"""The shape the code promises in docs/ARCHITECTURE.md, checked on the source itself.

- The core (everything in culturesim/ but the CLI and the kinds' folders) never imports
  ``analysis``, ``app`` or a kind: it asks the registry.
- No kind's name appears in code outside its own folder: not as an identifier, an import
  or a string (docstrings and comments may explain; scenarios, tests, docs and the
  benchmarks of one kind's engine are not code the others run).
- A kind's folder never imports another kind's folder.

The walk reads every import statement, including those inside functions (the lazy ones),
so a lazy import of app in the runner would be found as surely as one at the top.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KINDS_DIR = ROOT / "culturesim" / "kinds"
BUILT_IN = sorted(p.name for p in KINDS_DIR.iterdir() if (p / "__init__.py").is_file())
# the core's own modules of culturesim.kinds (registry, description, contract): not kinds
KIND_INFRA = {"__init__.py", "spec.py", "registry.py", "contract.py"}


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def core_files() -> list[Path]:
    return [p for p in python_files(ROOT / "culturesim")
            if p.name != "cli.py" and not (p.parent != KINDS_DIR and KINDS_DIR in p.parents)
            and not (p.parent == KINDS_DIR and p.name not in KIND_INFRA)]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_the_built_in_kinds_are_found_where_the_walk_looks():
    assert {"culture", "exposure", "matechoice", "autotelic", "gard"} <= set(BUILT_IN)
    assert any(p.name == "runner.py" for p in core_files())
    assert not any("kinds" in p.relative_to(ROOT).parts[2:-1] for p in core_files())


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_neither_analysis_nor_app_nor_a_kind(path):
    bad = [(line, name) for line, name in imported_modules(path)
           if name.split(".")[0] in ("analysis", "app")
           or any(name == f"culturesim.kinds.{k}" or name.startswith(f"culturesim.kinds.{k}.") for k in BUILT_IN)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("kind", BUILT_IN)
def test_a_kind_imports_no_other_kind(kind):
    others = [k for k in BUILT_IN if k != kind]
    for path in python_files(KINDS_DIR / kind):
        bad = [(line, name) for line, name in imported_modules(path)
               if any(name == f"culturesim.kinds.{o}" or name.startswith(f"culturesim.kinds.{o}.") for o in others)]
        assert not bad, f"{path.relative_to(ROOT)} imports another kind: {bad}"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def kind_mentions(path: Path, names: list[str]) -> list[tuple[int, str]]:
    """Identifiers, imports and string literals (not docstrings) naming one of ``names``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    word = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    found = []
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            texts = [node.value]
        elif isinstance(node, ast.Name):
            texts = [node.id]
        elif isinstance(node, ast.Attribute):
            texts = [node.attr]
        elif isinstance(node, ast.alias):
            texts = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            texts = [node.module or ""]
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.arg | ast.keyword):
            texts = [getattr(node, "name", None) or getattr(node, "arg", None) or ""]
        found += [(getattr(node, "lineno", 0), t) for t in texts if word.search(t.replace("_", " "))]
    return found


def code_outside(kind: str) -> list[Path]:
    folders = [ROOT / "culturesim", ROOT / "analysis", ROOT / "app"]
    return [p for p in python_files(*folders) if KINDS_DIR / kind not in p.parents]


@pytest.mark.parametrize("kind", BUILT_IN)
def test_no_kind_is_named_in_code_outside_its_folder(kind):
    found = {str(p.relative_to(ROOT)): hits for p in code_outside(kind) if (hits := kind_mentions(p, [kind]))}
    assert not found, f"{kind!r} named outside culturesim/kinds/{kind}/: {found}"


def test_the_grep_finds_what_it_looks_for(tmp_path):
    """The check above must be able to fail: a lazy import, a string and a name are all found."""
    probe = tmp_path / "probe.py"
    probe.write_text('"""about the gard kind (a docstring: allowed)."""\n'
                     "def f():\n    from culturesim.kinds.gard import view\n    return 'gard', view\n"
                     "is_gard = {'kind': 'matechoice'}\n")
    found = [text for _, text in kind_mentions(probe, ["gard", "matechoice"])]
    assert "culturesim.kinds.gard" in found and "gard" in found and "matechoice" in found and "is_gard" in found
    assert not any("docstring" in t for t in found)
    assert imported_modules(probe)[0][1] == "culturesim.kinds.gard"
