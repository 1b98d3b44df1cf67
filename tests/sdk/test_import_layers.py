"""The SDK's imports point downward only: each module imports only modules below it in `LAYERS`
(checked in the source, function-level imports included) and, imported alone in a fresh
interpreter, loads nothing above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sam3_sdk

PACKAGE_DIR = Path(sam3_sdk.__file__).parent

# Bottom to top. A module may import only modules listed before it.
LAYERS = [
    # results, I/O, exports, small building blocks
    "atomic",
    "cache",
    "rle",
    "images",
    "prompts",
    "results",
    "video_io",
    "video_export",
    "video_results",
    "tiny_tokenizer",
    "random_checkpoint",
    # the shared image features
    "features",
    # predictors over the shared models
    "image_predictor",
    "mask_generator",
    "concept_predictor",
    "video_tracker",
    # sessions
    "sessions",
    "video",
    # the facade, the package, the command line
    "model",
    "__init__",
    "cli",
]


def sdk_imports(path: Path) -> set[str]:
    """Names (in `LAYERS` terms) of the SDK modules that `path` imports anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == "sam3_sdk"):
                module = node.module or ""
                if node.level == 0:
                    module = module.removeprefix("sam3_sdk").lstrip(".")
                if not module:  # `from . import x`: a submodule, or a name of the package itself
                    names = [a.name for a in node.names]
                    found |= {n if (PACKAGE_DIR / f"{n}.py").exists() else "__init__" for n in names}
                else:
                    found.add(module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sam3_sdk":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE_DIR.glob("*.py")}
    assert modules == set(LAYERS), f"modules without a layer: {sorted(modules - set(LAYERS))}"


def test_imports_point_downward():
    upward = []
    for i, name in enumerate(LAYERS):
        if name == "__init__":
            continue  # the package imports everything it re-exports
        for target in sdk_imports(PACKAGE_DIR / f"{name}.py"):
            if target not in LAYERS[:i]:
                upward.append(f"{name} -> {target}")
    assert not upward, f"imports that do not point downward: {upward}"


IMPORT_BOTTOM_UP = """
import importlib, importlib.util, sys, types
layers = sys.argv[1:]
spec = importlib.util.find_spec("sam3_sdk")
package = types.ModuleType("sam3_sdk")  # the package without its __init__, which imports everything
package.__path__ = list(spec.submodule_search_locations)
sys.modules["sam3_sdk"] = package
for i, name in enumerate(layers):
    importlib.import_module("sam3_sdk." + name)
    loaded = {m.split(".")[1] for m in sys.modules if m.startswith("sam3_sdk.")}
    above = loaded - set(layers[: i + 1])
    if above:
        sys.exit(f"importing sam3_sdk.{name} loaded modules above it: {sorted(above)}")
print("ok")
"""


def test_each_module_imports_in_a_fresh_interpreter_bottom_up():
    modules = LAYERS[: LAYERS.index("__init__")]
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_BOTTOM_UP, *modules], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
