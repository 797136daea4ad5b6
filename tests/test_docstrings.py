"""The test modules' docstrings describe tests that exist: every ``test_...`` name a module's docstring
cites is a test function (or class) of that module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

MODULES = sorted(Path(__file__).resolve().parent.rglob("test_*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_a_module_docstring_names_only_tests_that_exist(path):
    tree = ast.parse(path.read_text())
    cited = set(re.findall(r"\b(test_\w+)\b", ast.get_docstring(tree) or ""))
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    modules = {p.stem for p in MODULES}
    missing = sorted(cited - defined - modules)
    assert not missing, f"{path.name}: its docstring cites {missing}, which it does not define: update the docstring"
