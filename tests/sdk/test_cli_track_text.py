"""`sam3 track --text`: every instance of phrases through videos, with the click-prompted track's
outputs (per-video RLE JSON carrying each object's phrase, PNG index masks, annotated MP4), and
`--video-model` for clicks tracked by EdgeTAM."""

from __future__ import annotations

import io
import json
import zipfile

import av
import numpy as np
import pytest
from cli_inputs import write_video
from coco_files import load_youtube_vis
from concept_videos import make_concept_video, write_concept_checkpoint
from PIL import Image
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import EXIT_OK
from sam3_sdk.testing import TINY_RANDOM_EDGETAM

FRAMES = 4


def _write_frames(path, frames, fps=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_track_text_writes_phrases_in_rle_png_and_mp4(tmp_path, capsys):
    checkpoint = write_concept_checkpoint(tmp_path / "ckpt")
    _write_frames(tmp_path / "in" / "clip.mp4", make_concept_video(FRAMES))
    out = tmp_path / "out"
    rc = main(["track", str(tmp_path / "in"), "--text", "red ball", "--text", "blue  disc", "--threshold", "0.35",
               "--model", str(checkpoint), "--out", str(out)])  # fmt: skip
    assert rc == EXIT_OK, capsys.readouterr().err
    tracks = load_youtube_vis(out / "videos" / "clip.json")  # every frame's RLE decoded and checked
    data = tracks["data"]
    names = {c["id"]: c["name"] for c in data["categories"]}
    assert data["annotations"] and set(names.values()) <= {"red ball", "blue disc"}
    with zipfile.ZipFile(out / "videos" / "clip.masks.zip") as z:
        assert len(z.namelist()) == FRAMES
        pngs = [np.array(Image.open(io.BytesIO(z.read(name)))) for name in sorted(z.namelist())]
    for t, index in enumerate(pngs):
        seen = {obj_id for obj_id, masks in tracks["masks"].items() if masks[t] is not None}
        assert set(np.unique(index).tolist()) - {0} <= seen
        for obj_id in seen:
            assert tracks["masks"][obj_id][t][index == obj_id].all()
    with av.open(str(out / "videos" / "clip.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES
    assert json.loads((out / "summary.json").read_text())["instances"] == len(data["annotations"])


def test_track_clicks_with_edgetam(tiny_checkpoint_dir, tmp_path):
    write_video(tmp_path / "in" / "clip.mp4", frames=3)
    out = tmp_path / "out"
    rc = main(["track", str(tmp_path / "in"), "--point", "0:20,20", "--video-model", TINY_RANDOM_EDGETAM,
               "--model", str(tiny_checkpoint_dir), "--out", str(out), "--no-mp4"])  # fmt: skip
    assert rc == EXIT_OK
    data = load_youtube_vis(out / "videos" / "clip.json")["data"]
    assert [a["object_id"] for a in data["annotations"]] == [1] and data["videos"][0]["length"] == 3
    assert data["categories"] == [{"id": 1, "name": "object"}]
    assert json.loads((out / ".sam3" / "job.json").read_text())["video_model"] == TINY_RANDOM_EDGETAM


def test_track_text_on_ray_writes_what_the_local_run_writes(tmp_path):
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "sam3-sdk[ray]"')
    checkpoint = write_concept_checkpoint(tmp_path / "ckpt")
    _write_frames(tmp_path / "in" / "clip.mp4", make_concept_video(3))
    argv = ["track", str(tmp_path / "in"), "--text", "red ball", "--threshold", "0.35", "--model", str(checkpoint),
            "--no-mp4", "-q"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "local")]) == EXIT_OK
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main([*argv, "--out", str(tmp_path / "ray"), "--ray"]) == EXIT_OK
    finally:
        ray.shutdown()
    local, on_ray = (
        json.loads((tmp_path / d / "videos" / "clip.json").read_text()) for d in ("local", "ray")
    )
    assert on_ray["categories"] == local["categories"] and on_ray["videos"] == local["videos"]
    for a, b in zip(on_ray["annotations"], local["annotations"], strict=True):
        assert a.pop("score") == pytest.approx(b.pop("score"), abs=1e-5)
        assert a == b
