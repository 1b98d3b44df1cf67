"""The SDK composes sam3_core's video classes; it does not subclass them or edit their state
(issue 22: the interactive session is the core's, with methods named by intent).

What is scanned, by reading the source (`ast`) of every module of packages/sam3_sdk/src:

(a) class statements whose bases include a sam3_core class: a name imported from a `sam3_core`
    module (`from sam3_core... import X [as Y]`), an attribute of an imported `sam3_core` module
    (`sam3_core.video.session.X`), or an SDK class that is itself such a subclass;
(b) writes to an attribute of another object whose name is one of the core video sessions' or
    video models' own attributes (`CORE_STATE_NAMES`: every `self.<name> = ...` in the methods of
    the classes of `CORE_STATE_FILES`): `x.attr = ...` (also in a tuple target), `x.attr[...] = ...`,
    `x.attr.sub = ...`, augmented assignments, `del x.attr[...]`, and in-place calls on it
    (`x.attr.add(...)`, `.pop`, `.update`, ...). `self.attr` is left out (an SDK class's own
    fields), as is anything written through a local alias of a core container (not traced).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "packages" / "sam3_sdk" / "src" / "sam3_sdk"
CORE = ROOT / "packages" / "sam3_core" / "src" / "sam3_core"
# the core's video sessions and video models: their attributes are their state
CORE_STATE_FILES = [
    "video/session.py",
    "video/concept_session.py",
    "video/edgetam_session.py",
    "models/sam3_video.py",
    "models/sam3_tracker_video.py",
]
MUTATORS = {
    "add", "append", "clear", "discard", "extend", "insert", "pop", "popitem", "remove",
    "setdefault", "update", "difference_update", "intersection_update", "symmetric_difference_update",
}  # fmt: skip


def _self_attributes(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return names


CORE_STATE_NAMES = frozenset().union(*(_self_attributes(CORE / f) for f in CORE_STATE_FILES))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def core_subclasses(tree: ast.Module) -> list[tuple[int, str, str]]:
    """(line, class, base) of each class statement with a sam3_core base (module doc, (a))."""
    core_names: set[str] = set()  # local names of sam3_core classes
    core_modules: set[str] = set()  # local names of sam3_core modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sam3_core":
            core_names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            core_modules |= {
                a.asname or "sam3_core" for a in node.names if a.name.split(".")[0] == "sam3_core"
            }
    found = []
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    changed = True
    while changed:  # an SDK class deriving from a flagged SDK class is flagged too
        changed = False
        for cls in classes:
            for base in map(_dotted, cls.bases):
                if base is None or (cls.lineno, cls.name, base) in found:
                    continue
                root = base.split(".")[0]
                if base in core_names or (root in core_modules and "." in base):
                    found.append((cls.lineno, cls.name, base))
                    core_names.add(cls.name)
                    changed = True
    return found


def _written_attribute(target: ast.AST) -> ast.Attribute | None:
    """The core-named `x.attr` that a store target (`x.attr`, `x.attr[...]`, `x.attr.sub`, ...)
    writes into, or None; `self.attr` (an SDK object's own field) does not count."""
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute) and node.attr in CORE_STATE_NAMES:
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                return node
        node = node.value
    return None


def core_state_writes(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, source) of each write into a core session's or model's attribute (module doc, (b))."""
    targets: list[tuple[int, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Delete)):
            for t in node.targets:
                targets += [(node.lineno, e) for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets.append((node.lineno, node.target))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and isinstance(node.func.value, (ast.Attribute, ast.Subscript))
        ):
            targets.append((node.lineno, node.func.value))
    writes = []
    for line, target in targets:
        attr = _written_attribute(target)
        if attr is not None:
            writes.append((line, ast.unparse(target)))
    return sorted(set(writes))


def _sdk_files() -> list[Path]:
    return sorted(SDK.rglob("*.py"))


def test_the_scan_knows_the_core_state_and_finds_what_it_looks_for():
    # the list of names comes from the core's sources: it holds the fields the SDK used to edit
    assert {
        "obj_ids",
        "point_inputs_per_obj",
        "frames_tracked_per_obj",
        "unmatched_frame_inds",
    } <= CORE_STATE_NAMES
    assert {"detector_model", "tracker_model", "obj_id_to_prompt_id"} <= CORE_STATE_NAMES
    # and the scan catches each form of write, and not an SDK object's own fields
    source = """
from sam3_core import Sam3VideoModel as Base
import sam3_core.video.session
class A(Base): ...
class B(sam3_core.video.session.Sam3TrackerVideoInferenceSession): ...
class C(A): ...
class D(dict): ...
def f(state, model, self):
    state.obj_ids = []
    state.video_height, state.video_width = 1, 2
    state.frames_tracked_per_obj[0].pop(3)
    state.unmatched_frame_inds.clear()
    session.max_obj_id += 1
    del state.point_inputs_per_obj[0]
    model.detector_model = None
    self.obj_ids = []
    state.add_clicked_object(3)
    x = state.obj_ids
"""
    tree = ast.parse(source)
    assert [c for _, c, _ in core_subclasses(tree)] == ["A", "B", "C"]
    assert [w for _, w in core_state_writes(tree)] == [
        "state.obj_ids",
        "state.video_height",
        "state.video_width",
        "state.frames_tracked_per_obj[0]",
        "state.unmatched_frame_inds",
        "session.max_obj_id",
        "state.point_inputs_per_obj[0]",
        "model.detector_model",
    ]


@pytest.mark.parametrize("path", _sdk_files(), ids=lambda p: str(p.relative_to(SDK)))
def test_sdk_module_composes_the_core(path):
    tree = ast.parse(path.read_text())
    subclasses = core_subclasses(tree)
    writes = core_state_writes(tree)
    assert not subclasses, f"{path.name} subclasses sam3_core classes: {subclasses}"
    assert not writes, f"{path.name} writes core session / model state (use the session's methods): {writes}"
