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
    "coco",
    "images",
    "prompts",
    "results",
    "video_io",
    "video_export",
    "video_results",
    "onnx_decode",
    # the shared image features
    "features",
    # predictors over the shared models
    "image_predictor",
    "mask_generator",
    "concept_predictor",
    "video_tracker",
    "concept_video",
    # sessions
    "sessions",
    "propagation_guard",
    "video_objects",
    "video",
    "tracking",
    # the facade, the ONNX export (over the models), the package
    "model",
    "onnx_io",
    "onnx_manifest",
    "onnx_graphs",
    "onnx_export",
    "__init__",
    # test tooling (random checkpoints, the tiny tokenizer, accounting): above the runtime, which
    # never imports it; the CLI resolves random checkpoints' names with it at its edge
    "testing.accounting",
    "testing.tiny_tokenizer",
    "testing.random_checkpoint",
    "testing",
    # the command line (sam3_sdk/cli/): arguments, inputs, progress, outputs, jobs, local and Ray
    # runners, the entry point; the subpackage's __init__ re-exports `main`
    "cli.arguments",
    "cli.export_command",
    "cli.inputs",
    "cli.progress",
    "cli.outputs",
    "cli.jobs",
    "cli.runners",
    "cli.on_ray",
    "cli.main",
    "cli",
]


RESOURCE_PACKAGES = {"testing.data"}  # packages of data files (the tiny configs), without code


def module_name(path: Path) -> str:
    """The `LAYERS` name of a source file: "results", "cli.outputs", "__init__", "cli"."""
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def module_file(name: str) -> Path:
    path = PACKAGE_DIR.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def layer_of(dotted: str) -> str:
    """The `LAYERS` entry that holds module `dotted` (relative to sam3_sdk; "" is the package)."""
    if not dotted:
        return "__init__"
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    return dotted


def sdk_imports(name: str) -> set[str]:
    """`LAYERS` names of the SDK modules that module `name` imports anywhere in its source."""
    path = module_file(name)
    package = name.split(".") if path.name == "__init__.py" and name != "__init__" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([module] if module else []))
            elif module.split(".")[0] == "sam3_sdk":
                target = module.removeprefix("sam3_sdk").lstrip(".")
            else:
                continue
            if node.level and not module:  # `from . import x`: a submodule, or a name of the package
                for alias in node.names:
                    sub = ".".join(p for p in (target, alias.name) if p)
                    found.add(layer_of(sub) if layer_of(sub) in LAYERS else layer_of(target))
            else:
                found.add(layer_of(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sam3_sdk":
                    found.add(layer_of(alias.name.removeprefix("sam3_sdk").lstrip(".")))
    return found


def test_every_module_has_a_layer():
    modules = {module_name(p) for p in PACKAGE_DIR.rglob("*.py")} - RESOURCE_PACKAGES
    assert modules == set(LAYERS), f"modules without a layer: {sorted(modules - set(LAYERS))}"


def test_imports_point_downward():
    upward = []
    for i, name in enumerate(LAYERS):
        if name == "__init__":
            continue  # the package imports everything it re-exports
        for target in sdk_imports(name):
            if target not in LAYERS[:i]:
                upward.append(f"{name} -> {target}")
    assert not upward, f"imports that do not point downward: {upward}"


def test_the_runtime_does_not_import_the_test_tooling():
    """Only the command line (and tests, scripts, the demo) use `sam3_sdk.testing`: the package
    and every module below it load checkpoints by hub id or folder, never writing weights."""
    runtime = LAYERS[: LAYERS.index("__init__") + 1]
    users = sorted(name for name in runtime if "testing" in sdk_imports(name))
    assert not users, f"runtime modules that import sam3_sdk.testing: {users}"


IMPORT_BOTTOM_UP = """
import importlib, importlib.util, sys, types
layers = sys.argv[1:]

def stub(name):  # a package without its __init__, which imports everything in it
    spec = importlib.util.find_spec(name)
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__, package.__package__ = spec, name
    sys.modules[name] = package
    return package, spec

sdk, sdk_spec = stub("sam3_sdk")
stub("sam3_sdk.cli")
testing, testing_spec = stub("sam3_sdk.testing")
for i, name in enumerate(layers):
    if name == "__init__":
        sdk_spec.loader.exec_module(sdk)  # the package itself, for the layers above it
    elif name == "testing":
        testing_spec.loader.exec_module(testing)
    else:
        importlib.import_module("sam3_sdk." + name)
    loaded = {m.removeprefix("sam3_sdk.") for m in sys.modules if m.startswith("sam3_sdk.")}
    loaded = {m for m in loaded if m not in ("cli", "testing")}  # the stubbed subpackages
    above = loaded - set(layers[: i + 1])
    if above:
        sys.exit(f"importing sam3_sdk.{name} loaded modules above it: {sorted(above)}")
print("ok")
"""


def test_each_module_imports_in_a_fresh_interpreter_bottom_up():
    modules = LAYERS[: LAYERS.index("cli")]  # the subpackage's __init__ imports all of it
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_BOTTOM_UP, *modules], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
