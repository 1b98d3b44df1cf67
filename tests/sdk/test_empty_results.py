"""Zero instances, zero masks and zero tracked objects: every result type and export handles them."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image
from sam3_sdk import Instances, ObjectMasks, VideoMasks
from sam3_sdk.video_results import VideoFrameMasks
from test_images import make_image
from test_video_io import write_video
from test_videos import make_video

H, W = 40, 56


def test_no_instances_export_valid_empty_files(tmp_path):
    image = np.asarray(make_image(H, W, seed=1))
    empty = Instances(masks=np.zeros((0, H, W), bool), scores=[], boxes=np.zeros((0, 4)), prompt="bus")
    assert len(empty) == 0 and empty.image_size == (H, W)
    assert empty.areas.shape == (0,) and empty.areas.dtype == np.int64
    assert empty.to_coco_rle() == []
    data = json.loads(empty.save_json(tmp_path / "empty.json").read_text())
    assert data == {"image_size": [H, W], "prompt": "bus", "annotations": []}
    index = np.array(Image.open(empty.save_png(tmp_path / "index.png")))
    assert index.shape == (H, W) and not index.any()
    assert np.array_equal(np.asarray(empty.overlay(image)), image)  # the image, no overlay


def test_zero_area_masks_are_kept_and_exported(tmp_path):
    blank = ObjectMasks(masks=np.zeros((1, H, W), bool), scores=[0.2], boxes=np.zeros((1, 4)))
    assert blank.areas.tolist() == [0] and blank.mask.shape == (H, W)
    record = blank.to_coco_rle()[0]
    assert record["area"] == 0 and record["bbox"] == [0.0, 0.0, 0.0, 0.0]
    assert not np.array(Image.open(blank.save_png(tmp_path / "m.png", index=0))).any()


def test_no_tracked_objects_export_valid_empty_files(tmp_path):
    frames = make_video(3, H, W, seed=2)
    clip = write_video(tmp_path / "clip.mp4", frames)
    nothing = VideoFrameMasks(frame_idx=1, object_ids=[], masks=np.zeros((0, H, W), bool), scores=[])
    assert len(nothing) == 0 and nothing.boxes.shape == (0, 4) and nothing.to_coco_rle() == []
    assert not nothing.index_mask().any()
    video = VideoMasks(size=(H, W), num_frames=3, fps=12.0)
    data = json.loads(video.save_coco_json(tmp_path / "none.json").read_text())
    assert data["annotations"] == [] and data["videos"][0]["length"] == 3
    video.add(nothing)  # a frame where every object is gone
    assert video.object_ids == [] and len(video[1]) == 0
    video.add(VideoFrameMasks(frame_idx=2, object_ids=[4], masks=np.zeros((1, H, W), bool), scores=[0.1]))
    assert video.object_ids == [4] and video.visible_object_ids == []  # tracked, never visible
    with zipfile.ZipFile(video.save_png_zip(tmp_path / "none.zip")) as zf:
        assert zf.namelist() == ["frame_000001.png", "frame_000002.png"]
        assert not np.array(Image.open(io.BytesIO(zf.read("frame_000001.png")))).any()
    mp4 = video.save_mp4(tmp_path / "none.mp4", clip)
    assert mp4.stat().st_size > 0


def test_a_phrase_that_matches_nothing(sam):
    image = np.asarray(make_image(H, W, seed=3))
    result = sam.segment_concept(image, text="yellow school bus", threshold=1.0)
    assert len(result) == 0 and result.masks.shape == (0, H, W) and result.boxes.shape == (0, 4)
    assert json.loads(result.to_json())["annotations"] == []
    assert np.array_equal(np.asarray(result.overlay(image)), image)
