"""The installed `sam3` command, run as a user runs it: `--model tiny-random` offline, and a run
interrupted with Ctrl-C (SIGINT) that `--resume` finishes without redoing or repeating anything."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_inputs import write_images
from pycocotools.coco import COCO
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

SAM3 = shutil.which("sam3", path=str(Path(sys.executable).parent)) or shutil.which("sam3")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of the subprocesses: this interpreter's imports, a private tiny-random cache."""
    if SAM3 is None:
        pytest.fail(
            "the `sam3` command is not installed: run `make install` (pip install -e packages/sam3_sdk)"
        )
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "SAM3_CACHE": str(tmp_path_factory.mktemp("cache")),
    }


def test_sam3_help_lists_the_commands_and_exit_codes(env):
    run = subprocess.run([SAM3, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0
    for word in ("concept", "object", "everything", "track", "exit codes", "interrupted"):
        assert word in run.stdout


IMAGES = 40  # enough work (a few seconds with the tiny model) that Ctrl-C lands mid-run


def test_interrupted_run_resumes_without_repeats(env, tmp_path):
    write_images(tmp_path / "in", IMAGES)
    out = tmp_path / "out"
    argv = [SAM3, "object", str(tmp_path / "in"), "--point", "10,10", "--model", "tiny-random",
            "--out", str(out), "--batch-size", "1"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = out / ".sam3" / "done"
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if done.is_dir() and len(list(done.glob("*.json"))) >= 2:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert "--resume" in err
    finished = len(list(done.glob("*.json")))
    assert 2 <= finished < IMAGES
    partial = json.loads((out / "annotations.json").read_text())
    assert len(partial["images"]) == finished  # what was done is usable already

    # a resumed run must use the same settings
    other = ["object", str(tmp_path / "in"), "--point", "11,10", "--model", "tiny-random", "--out", str(out)]
    assert main([*other, "--resume", "-q"]) == EXIT_USAGE

    run = subprocess.run(argv + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == EXIT_OK, run.stderr[-2000:]
    assert f"{IMAGES - finished} images done, {finished} skipped (already done), 0 failed" in run.stderr
    coco = COCO(str(out / "annotations.json"))
    assert sorted(i["id"] for i in coco.dataset["images"]) == list(range(1, IMAGES + 1))
    assert len(coco.dataset["annotations"]) == IMAGES
    assert len({a["id"] for a in coco.dataset["annotations"]}) == IMAGES
    assert sorted(a["image_id"] for a in coco.dataset["annotations"]) == list(range(1, IMAGES + 1))
