"""The SDK's video tracking modules call the core tracker session's methods; they never edit its
fields (issue 22): no `x.field = ...`, no `x.field[...] = ...`, no `x.field.pop(...)` on a field
of `Sam3TrackerVideoInferenceSession`, and no subclass of a core class."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sam3_core
import sam3_sdk
from sam3_core import Sam3TrackerVideoInferenceSession

PACKAGE_DIR = Path(sam3_sdk.__file__).parent
MODULES = ["video.py", "video_objects.py", "tracking.py", "video_tracker.py", "propagation_guard.py"]
MUTATORS = {"add", "append", "clear", "discard", "extend", "insert", "pop", "popitem", "remove", "update"}


def _core_session_fields() -> set[str]:
    fields = {name for name in vars(Sam3TrackerVideoInferenceSession()) if not name.startswith("__")}
    assert {"point_inputs_per_obj", "frames_tracked_per_obj", "obj_with_new_inputs", "video_height"} <= fields
    return fields


def _field_of(node: ast.AST) -> str | None:
    """`x.field` or `x.field[...]` -> "field"."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.attr if isinstance(node, ast.Attribute) and not isinstance(node.value, ast.Call) else None


def _edits(tree: ast.AST, fields: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS
        ):
            targets = [node.func.value]
        for target in targets:
            name = _field_of(target)
            is_self = (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            )
            if name in fields and not is_self:
                found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


@pytest.mark.parametrize("module", MODULES)
def test_sdk_video_modules_do_not_edit_the_core_session(module):
    tree = ast.parse((PACKAGE_DIR / module).read_text())
    assert _edits(tree, _core_session_fields()) == []


def test_the_scan_finds_edits():
    """The scan is not vacuous: the edits the issue names are found."""
    code = (
        "state.point_inputs_per_obj[0][3] = x\n"
        "s.frames_tracked_per_obj[i].pop(f, None)\n"
        "s.obj_with_new_inputs = [1]\n"
        "state.video_height, state.video_width = size\n"
        "self.results = 1\n"
    )
    assert len(_edits(ast.parse(code), _core_session_fields())) == 5


@pytest.mark.parametrize("module", MODULES)
def test_sdk_video_modules_subclass_no_core_class(module):
    tree = ast.parse((PACKAGE_DIR / module).read_text())
    core_names = set(sam3_core.__all__)
    bases = [ast.unparse(b) for n in ast.walk(tree) if isinstance(n, ast.ClassDef) for b in n.bases]
    assert [b for b in bases if b.split(".")[-1] in core_names] == []
