"""The COCO and YouTube-VIS files of the SDK, read back with pycocotools; the CLI writes the same
layout as `Instances.to_coco` (one code path)."""

from __future__ import annotations

import json

import numpy as np
from cli_inputs import write_images
from coco_files import coco_masks, load_coco, load_youtube_vis
from PIL import Image
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import EXIT_OK
from sam3_sdk.results import Instances, ObjectMasks
from sam3_sdk.video_results import VideoFrameMasks, VideoMasks

H, W = 37, 53


def random_masks(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, H, W), bool)
    for i in range(n):
        x, y = rng.integers(0, W - 10), rng.integers(0, H - 10)
        masks[i, y : y + rng.integers(2, 10), x : x + rng.integers(2, 10)] = True
        masks[i] &= rng.random((H, W)) > 0.2  # ragged, holes
    return masks


def test_instances_load_in_pycocotools_with_the_masks_boxes_and_scores(tmp_path):
    masks = random_masks(4)
    masks[0, :, 0] = True  # touches the left edge
    # The detector's boxes reach past the image; the file's boxes are the masks' own.
    boxes = np.array([[-67.4, 2, 20, 30], [1, 1, 60, 40], [0, 0, 5, 5], [3, 3, 9, 9]], np.float32)
    found = Instances(masks=masks, scores=[0.9, 0.7, 0.5, 0.2], boxes=boxes, prompt={"text": "red ball"},
                      extra={"stability_score": [1.0, 0.5, 0.25, 0.0]})  # fmt: skip
    coco = load_coco(found.save_coco_json(tmp_path / "found.json", file_name="scene.jpg"))
    assert coco.dataset["images"] == [{"id": 1, "file_name": "scene.jpg", "height": H, "width": W}]
    assert coco.dataset["categories"] == [{"id": 1, "name": "red ball"}]
    np.testing.assert_array_equal(coco_masks(coco), masks)
    anns = coco.dataset["annotations"]
    assert [a["score"] for a in anns] == [float(np.float32(s)) for s in (0.9, 0.7, 0.5, 0.2)]
    assert [a["stability_score"] for a in anns] == [1.0, 0.5, 0.25, 0.0]
    assert anns[0]["bbox"][0] == 0.0  # not -67.4
    assert anns[0]["bbox"] == found.to_coco_rle()[0]["bbox"]  # one box for the table and the file


def test_an_empty_result_is_a_valid_coco_file(tmp_path):
    nothing = Instances(masks=np.zeros((0, H, W), bool), scores=[], boxes=np.zeros((0, 4)), prompt="bus")
    coco = load_coco(nothing.save_coco_json(tmp_path / "none.json"))
    assert coco.dataset["annotations"] == [] and coco.dataset["categories"] == [{"id": 1, "name": "bus"}]
    assert coco.getAnnIds() == [] and coco.imgs[1]["height"] == H
    clicked = ObjectMasks(masks=np.zeros((1, H, W), bool), scores=[0.3], boxes=np.zeros((1, 4)))
    coco = load_coco(clicked.save_coco_json(tmp_path / "blank.json"))
    assert coco.dataset["categories"] == [{"id": 1, "name": "object"}]
    assert coco.dataset["annotations"][0]["area"] == 0 and coco.dataset["annotations"][0]["bbox"] == [
        0,
        0,
        0,
        0,
    ]


def test_video_results_are_youtube_vis_with_one_rle_or_null_per_frame(tmp_path):
    n = 5
    video = VideoMasks(size=(H, W), num_frames=n, fps=10.0)
    truth = {1: [None] * n, 300: [None] * n}
    for t in (0, 1, 3):  # frames 2 and 4 are not tracked
        masks = random_masks(2, seed=t)
        if t == 1:
            masks[1] = False  # object 300 is gone on frame 1
        video.add(VideoFrameMasks(frame_idx=t, object_ids=[1, 300], masks=masks, scores=[0.8, 0.6],
                                  phrases={300: "dog"}))  # fmt: skip
        truth[1][t] = masks[0]
        truth[300][t] = masks[1] if masks[1].any() else None
    out = load_youtube_vis(video.save_coco_json(tmp_path / "clip.json", name="clip"))
    data = out["data"]
    assert data["videos"][0]["file_names"][3] == "clip/00003.jpg" and data["videos"][0]["length"] == n
    assert {c["name"] for c in data["categories"]} == {"object", "dog"}
    assert [a["object_id"] for a in data["annotations"]] == [1, 300]
    for obj_id, frames in truth.items():
        for want, got in zip(frames, out["masks"][obj_id], strict=True):
            assert (want is None and got is None) or np.array_equal(want, got)
    empty = load_youtube_vis(VideoMasks(size=(H, W), num_frames=2).save_coco_json(tmp_path / "none.json"))
    assert empty["data"]["annotations"] == [] and empty["masks"] == {}


def test_the_cli_writes_the_layout_of_to_coco(sam, tiny_checkpoint_dir, tmp_path):
    (path,) = write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    argv = ["concept", str(path), "--text", "red ball", "--threshold", "0", "--model", str(tiny_checkpoint_dir),
            "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == EXIT_OK
    cli = load_coco(out / "annotations.json").dataset
    sdk = sam.segment_concept(np.asarray(Image.open(path).convert("RGB")), text="red ball", threshold=0.0)
    ours = json.loads(json.dumps(sdk.to_coco(file_name=path.name)))
    assert cli["categories"] == ours["categories"] and len(cli["annotations"]) == len(ours["annotations"]) > 0
    assert {k: v for k, v in cli["images"][0].items() if k != "mask_file"} == ours["images"][0]
    for a, b in zip(cli["annotations"], ours["annotations"], strict=True):
        assert a.pop("mask_index") == a["id"]  # the CLI's link to its index PNG
        assert abs(a.pop("score") - b.pop("score")) < 1e-5  # batched in the CLI: float rounding only
        assert a == b
