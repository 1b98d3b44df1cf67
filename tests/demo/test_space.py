"""The Hugging Face Space, as the Space builder makes it: `make space`'s folder, its requirements.txt
installed into a fresh venv with nothing else present (the builder installs it before copying the
app in), then `python app.py` from that folder alone, driven through all three tabs in Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import free_port, serve  # noqa: E402
from tab_flows import concept_flow, point_flow, video_flow, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"  # the Space's pin; a local CPU wheel here


def _pip(python: Path, *args: str, cwd: Path) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", *args], cwd=cwd, check=True)


def test_space_folder_installs_alone_and_serves_all_three_tabs(browser, tmp_path):
    space = tmp_path / "space"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_space.py"), str(space)], check=True)
    front = (space / "README.md").read_text().split("---")[1]
    import gradio

    assert f"sdk_version: {gradio.__version__}" in front and "sdk: gradio" in front
    assert re.search(r"python_version: \"3\.\d+\"", front) and "suggested_hardware:" in front
    requirements = (space / "requirements.txt").read_text()
    assert "sam3" not in requirements.replace("sam3_", "")  # registry packages only
    assert not list(space.rglob("__pycache__"))
    ort = space / "sam3_demo" / "static" / "vendor" / "onnxruntime-web"  # the browser's click decoder
    assert {p.name for p in ort.iterdir()} >= {
        "ort.wasm.min.js",
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
    }
    assert "*.wasm filter=lfs" in (space / ".gitattributes").read_text()  # 15 MB: pushed by git LFS

    # The builder: the requirements file alone, in a fresh environment; the pinned CPU torch first.
    builder = tmp_path / "builder"
    builder.mkdir()
    shutil.copy(space / "requirements.txt", builder / "requirements.txt")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _pip(python, TORCH, cwd=builder)
    _pip(python, "-r", str(builder / "requirements.txt"), cwd=builder)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(SAM3_MODEL="tiny-random", SAM3_CACHE=str(tmp_path / "cache"), GRADIO_ANALYTICS_ENABLED="False")
    where = subprocess.run(
        [str(python), "-c", "import sam3_core, sam3_sdk, gradio; print(sam3_sdk.__file__, gradio.__version__)"],
        cwd=space, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert Path(where[0]).is_relative_to(space) and where[1] == gradio.__version__

    port = free_port()
    env["GRADIO_SERVER_PORT"] = str(port)
    with serve([str(python), "app.py"], port, env, tmp_path / "space.log", cwd=space):
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{port}/")
        served = page.request.get(
            f"http://127.0.0.1:{port}/gradio_api/file={ort / 'ort-wasm-simd-threaded.wasm'}"
        )
        assert served.ok and served.body()[:4] == b"\0asm"  # served by the Space itself, not a CDN
        page.get_by_text("Smoke-test mode").wait_for()
        assert concept_flow(page, "red ball")["images"][0]["height"] == 360
        assert point_flow(page, 0.3, 0.4)["annotations"][0]["area"] >= 0
        clip = write_clip(tmp_path / "clip.mp4", frames=3)
        assert [a["object_id"] for a in video_flow(page, clip, [(0.3, 0.5)])["annotations"]] == [1]
        context.close()
