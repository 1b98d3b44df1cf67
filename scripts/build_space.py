"""Assemble the Hugging Face Space: one folder that builds and runs on its own.

    python scripts/build_space.py [OUT]        (default build/space; `make space`)

The folder holds app.py and the sam3_demo package (with the vendored onnxruntime-web files), the sources of sam3_core and sam3_sdk as
top-level packages beside them, a requirements.txt with their third-party dependencies, and
README.md whose front matter configures the Space. The Space builder installs requirements.txt
before it copies the repository in (only that file is there at install time), so the requirements
name registry packages only; our two packages are importable from the app's folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vendor_onnxruntime_web import vendor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "apps" / "demo"
PACKAGES = {"sam3_core": ROOT / "packages" / "sam3_core", "sam3_sdk": ROOT / "packages" / "sam3_sdk"}
OUR_DISTRIBUTIONS = {"sam3-core", "sam3-sdk"}
TORCH = "torch==2.13.0"  # the version `make install` pins and the tests run
PYTHON_VERSION = "3.11"
HARDWARE = "a10g-small"  # or ZeroGPU (chosen in the Space settings); CPU runs, slowly
MODEL = "facebook/sam3"
VIDEO_MODEL = (
    "yonigozlan/edgetam-video-1"  # the Video tracking tab's EdgeTAM (apps/demo/sam3_demo/video_models.py)
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _gradio_pin() -> str:
    """The exact Gradio version the demo pins (apps/demo/requirements.txt)."""
    text = (DEMO / "requirements.txt").read_text()
    match = re.search(r"^gradio==([\w.]+)\s*$", text, flags=re.M)
    if match is None:
        raise SystemExit("apps/demo/requirements.txt must pin gradio exactly (gradio==X.Y.Z)")
    return match.group(1)


def _demo_requirements() -> list[str]:
    """apps/demo/requirements.txt's lines other than gradio's pin (the demo's own needs)."""
    lines = [line.strip() for line in (DEMO / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#") and not line.startswith("gradio==")]


def _dependencies() -> list[str]:
    """Third-party requirements of our packages, in order, without duplicates; torch pinned."""
    out: dict[str, str] = {}
    for folder in PACKAGES.values():
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        for req in project["dependencies"]:
            name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")
            if name not in OUR_DISTRIBUTIONS:
                out.setdefault(name, req)
    out["torch"] = TORCH
    return list(out.values())


def _front_matter(gradio: str) -> str:
    body = (DEMO / "README.md").read_text()
    match = re.match(r"^---\n(.*?)\n---\n", body, flags=re.S)
    if match is None:
        raise SystemExit("apps/demo/README.md must start with the Space's front matter (--- ... ---)")
    keep = [line for line in match.group(1).splitlines() if not re.match(r"(sdk_version|python_version|suggested_hardware|models|app_file):", line)]  # fmt: skip
    fields = [
        *keep,
        f"sdk_version: {gradio}",
        f'python_version: "{PYTHON_VERSION}"',
        "app_file: app.py",
        f"suggested_hardware: {HARDWARE}",
        "models:",
        f"  - {MODEL}",
        f"  - {VIDEO_MODEL}",
    ]
    return "---\n" + "\n".join(fields) + "\n---\n" + body[match.end() :]


def build(out: Path) -> Path:
    """Write the Space folder `out` (replaced if it exists); returns it."""
    gradio = _gradio_pin()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(DEMO / "app.py", out / "app.py")
    vendor()  # onnxruntime-web, served by the Space itself (the Point tab decodes clicks in the browser)
    shutil.copytree(DEMO / "sam3_demo", out / "sam3_demo", ignore=IGNORED)
    for name, folder in PACKAGES.items():
        shutil.copytree(folder / "src" / name, out / name, ignore=IGNORED)
    requirements = [
        "# Installed by the Space builder before the app's files are copied in: registry packages only.",
        f"gradio=={gradio}",
        *_dependencies(),
        *_demo_requirements(),
    ]
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (out / "README.md").write_text(_front_matter(gradio))
    # The hub refuses files over 10 MB in a plain git push: onnxruntime-web's .wasm (15 MB) goes by LFS.
    (out / ".gitattributes").write_text("*.wasm filter=lfs diff=lfs merge=lfs -text\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(ROOT / "build" / "space"))
    out = build(Path(parser.parse_args(argv).out).resolve())
    print(f"Space folder: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
