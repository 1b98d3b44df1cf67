"""The bad-input corpus through the third entry point, the `sam3` command line: each bad file is
reported by name with its reason and skipped, the valid ones (unusual as they are) are processed,
the exit code says some inputs failed, and nothing half-written is left in the output folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import EXIT_INPUT_FAILED
from test_bad_inputs import BAD_FILES, _audio_only, _gradient, _png
from test_bad_videos import _clip, _zero_frames

UNUSUAL_IMAGES = {  # valid: each gets a result
    "cmyk.jpg": lambda p: Image.fromarray(_gradient()).convert("CMYK").save(p),
    "deep16.png": lambda p: _png(
        p, Image.fromarray((np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16))
    ),
    "alpha.png": lambda p: _png(p, Image.fromarray(np.full((24, 32, 4), 128, np.uint8))),
    "dot.png": lambda p: _png(p, Image.new("RGB", (1, 1), (10, 200, 30))),
}


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_bad_images_are_reported_and_skipped(tiny_checkpoint_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    bad = {}
    for case, (write, expected) in BAD_FILES.items():
        if case != "folder":  # a folder is searched for images, not read as one
            bad[write(folder / f"{case}.png").name] = expected
    for name, write in UNUSUAL_IMAGES.items():
        write(folder / name)
    out = tmp_path / "out"
    rc = main(["concept", str(folder), "--text", "thing", "--threshold", "0", "--model", str(tiny_checkpoint_dir),
               "-q", "--out", str(out)])  # fmt: skip
    assert rc == EXIT_INPUT_FAILED
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["failed"]) == (len(UNUSUAL_IMAGES), len(bad))
    reasons = {Path(f["input"]).name: f["reason"] for f in summary["failures"]}
    assert set(reasons) == set(bad)
    for name, expected in bad.items():
        assert expected in reasons[name], (name, reasons[name])
        assert name in err
    coco = json.loads((out / "annotations.json").read_text())
    assert sorted(i["file_name"] for i in coco["images"]) == sorted(UNUSUAL_IMAGES)
    assert {i["file_name"]: (i["height"], i["width"]) for i in coco["images"]}["dot.png"] == (1, 1)
    masks = {p for p in _files(out) if p.startswith("masks/")}
    assert masks == {f"masks/{Path(n).stem}.png" for n in UNUSUAL_IMAGES}  # none for a bad file
    assert not [p for p in _files(out) if re.search(r"\.tmp|~$|\.part", p)]


def test_bad_videos_are_reported_and_skipped(tiny_checkpoint_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _clip(folder / "good.mp4", frames=3)
    _audio_only(folder / "audio_only.mp4")
    _zero_frames(folder / "zero_frames.mp4")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    first = _clip(tmp_path / "a.ts", frames=2, fmt="mpegts")
    second = _clip(tmp_path / "b.ts", frames=2, h=48, w=64, fmt="mpegts", start=2)
    (folder / "resized.ts").write_bytes(first.read_bytes() + second.read_bytes())
    out = tmp_path / "out"
    rc = main(["track", str(folder), "--obj", "1", "--point", "0:10,10", "--model", str(tiny_checkpoint_dir),
               "-q", "--out", str(out)])  # fmt: skip
    assert rc == EXIT_INPUT_FAILED
    summary = json.loads((out / "summary.json").read_text())
    reasons = {Path(f["input"]).name: f["reason"] for f in summary["failures"]}
    assert summary["done"] == 1 and set(reasons) == {
        "audio_only.mp4",
        "zero_frames.mp4",
        "corrupt.mp4",
        "resized.ts",
    }
    assert "has no video stream (it holds audio)" in reasons["audio_only.mp4"]
    assert "has no video stream (it holds nothing)" in reasons["zero_frames.mp4"]
    assert "cannot read" in reasons["corrupt.mp4"]
    assert "frame 2 of" in reasons["resized.ts"] and "is 48x64 but frame 0 is 24x32" in reasons["resized.ts"]
    videos = {p for p in _files(out) if p.startswith("videos/")}
    assert videos == {
        "videos/good.json",
        "videos/good.mp4",
        "videos/good.masks.zip",
    }  # nothing for resized.ts
    assert json.loads((out / "videos" / "good.json").read_text())["videos"][0]["length"] == 3  # YouTube-VIS
