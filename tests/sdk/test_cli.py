"""The `sam3` command line on the tiny random checkpoint: every command on images, folders, globs and
videos; outputs read back with pycocotools, PIL and PyAV; bad files skipped; exit codes."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from cli_inputs import write_corrupt, write_images, write_video
from coco_files import load_youtube_vis
from PIL import Image
from pycocotools.coco import COCO
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import (
    EXIT_ERROR,
    EXIT_INPUT_FAILED,
    EXIT_NO_INPUTS,
    EXIT_OK,
    EXIT_USAGE,
)


def load_coco(out):
    """The run's COCO file through pycocotools, and each image's index mask checked against its RLEs."""
    coco = COCO(str(out / "annotations.json"))
    for image in coco.dataset["images"]:
        index = np.asarray(Image.open(out / image["mask_file"]))
        assert index.shape == (image["height"], image["width"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            assert mask.shape == index.shape and mask.sum() == ann["area"]
            assert ann["bbox"][2] >= 0 and 0 <= ann["score"] <= 1
            # the index mask holds the annotation where no later annotation covers it
            later = [a["mask_index"] for a in anns if a["mask_index"] > ann["mask_index"]]
            covered = np.isin(index, later)
            assert np.array_equal(index[mask & ~covered], np.full((mask & ~covered).sum(), ann["mask_index"]))
        assert set(np.unique(index)) <= {0} | {a["mask_index"] for a in anns}
    return coco


def test_concept_on_a_folder_skips_the_bad_file_and_writes_coco(tiny_checkpoint_dir, tmp_path, capsys):
    write_images(tmp_path / "in", 2)
    write_images(tmp_path / "in" / "sub", 1, start=2, suffix=".png")
    write_corrupt(tmp_path / "in" / "broken.jpg")
    out = tmp_path / "out"
    rc = main(["concept", str(tmp_path / "in"), "--text", "yellow bus", "--text", "dog", "--threshold", "0",
               "--model", str(tiny_checkpoint_dir), "--out", str(out), "--overlay", "--batch-size", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == EXIT_INPUT_FAILED
    assert "broken.jpg" in err and "not a readable image" in err
    assert "3 images done, 0 skipped (already done), 1 failed" in err
    coco = load_coco(out)
    assert [c["name"] for c in coco.dataset["categories"]] == ["yellow bus", "dog"]
    assert sorted(i["file_name"] for i in coco.dataset["images"]) == [
        "img00.jpg",
        "img01.jpg",
        "sub/img02.png",
    ]
    assert {a["category_id"] for a in coco.dataset["annotations"]} == {1, 2}  # threshold 0 keeps every query
    assert (out / "overlays" / "sub" / "img02.jpg").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["failed"]) == (3, 1)
    assert summary["failures"][0]["input"].endswith("broken.jpg")


def test_object_and_everything_on_files_and_globs(tiny_checkpoint_dir, tmp_path):
    paths = write_images(tmp_path / "in", 2)
    out = tmp_path / "object"
    rc = main(["object", str(paths[0]), "--point", "20,15", "--point", "5,5:neg", "--box", "2,2,40,30",
               "--model", str(tiny_checkpoint_dir), "--out", str(out), "-q"])  # fmt: skip
    assert rc == EXIT_OK
    coco = load_coco(out)
    assert len(coco.dataset["images"]) == 1 and len(coco.dataset["annotations"]) == 1
    assert coco.dataset["categories"] == [{"id": 1, "name": "object"}]

    out = tmp_path / "everything"
    rc = main(["everything", str(tmp_path / "in" / "*.jpg"), "--points-per-side", "4", "--threshold", "0",
               "--stability-threshold", "0", "--model", str(tiny_checkpoint_dir), "--out", str(out), "-q",
               "--prefetch", "0"])  # fmt: skip
    assert rc == EXIT_OK
    coco = load_coco(out)
    assert len(coco.dataset["images"]) == 2 and len(coco.dataset["annotations"]) >= 2
    assert {"stability_score", "point_coords"} <= set(coco.dataset["annotations"][0])


def test_track_videos_writes_per_frame_rle_and_an_mp4(tiny_checkpoint_dir, tmp_path, capsys):
    write_video(tmp_path / "in" / "clip.mp4", frames=6)
    write_corrupt(tmp_path / "in" / "broken.mp4")
    out = tmp_path / "out"
    rc = main(["track", str(tmp_path / "in"), "--obj", "1", "--point", "2:20,20", "--obj", "7",
               "--box", "2:5,5,30,25", "--direction", "both", "--model", str(tiny_checkpoint_dir),
               "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == EXIT_INPUT_FAILED and "broken.mp4" in err
    tracks = load_youtube_vis(out / "videos" / "clip.json")  # every frame's RLE decoded and checked
    assert [a["object_id"] for a in tracks["data"]["annotations"]] == [1, 7]
    video = tracks["data"]["videos"][0]
    assert (video["length"], video["height"], video["width"]) == (6, 48, 64)
    # Tracked both ways from frame 2: the boxed object is seen on every frame.
    assert all(m is not None for m in tracks["masks"][7])
    with av.open(str(out / "videos" / "clip.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    assert json.loads((out / "summary.json").read_text())["instances"] == 2


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["object", "IMG", "--point", "12;7"], EXIT_USAGE, "expected 2 numbers"),
        (["object", "IMG", "--box", "30,30,10,10"], EXIT_USAGE, "x1 < x2"),
        (["object", "IMG"], EXIT_USAGE, "object needs --point"),
        (["track", "IMG", "--text", "a dog", "--point", "0:1,1"], EXIT_USAGE, "not both"),
        (
            ["track", "IMG", "--point", "0:1,1", "--threshold", "0.5"],
            EXIT_USAGE,
            "--threshold applies to --text",
        ),
        (["track", "IMG", "--point", "0:1,1", "--point", "3:2,2"], EXIT_USAGE, "on one frame"),
        (["concept", "NOTHING/*.jpg", "--text", "cat"], EXIT_NO_INPUTS, "no input matched"),
        (["concept", "IMG", "--text", "cat", "--model", "MISSING"], EXIT_ERROR, "could not be loaded"),
    ],
)
def test_exit_codes_say_what_went_wrong(tmp_path, monkeypatch, capsys, argv, code, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = write_images(tmp_path, 1)[0]
    subst = {
        "IMG": str(image),
        "NOTHING/*.jpg": str(tmp_path / "nothing" / "*.jpg"),
        "MISSING": str(tmp_path / "no-model"),
    }
    argv = [subst.get(a, a) for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(argv) == code
    assert message in capsys.readouterr().err
