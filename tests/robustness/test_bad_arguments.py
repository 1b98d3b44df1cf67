"""Arguments that were accepted wrongly or refused wrongly: object ids the index masks cannot hold,
complex images, numpy scalars where numbers are asked for."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image
from sam3_sdk.video_io import open_video

H, W = 24, 32
IMG = np.zeros((H, W, 3), np.uint8)
CLIP = np.zeros((3, H, W, 3), np.uint8)


@pytest.mark.parametrize("obj_id", [0, -1, -300, 65536, np.int64(0)])
def test_object_ids_the_index_masks_cannot_hold_are_refused_where_added(sam, obj_id):
    """0 is the index masks' background, negatives failed late in the export (uint8 overflow), and
    ids are PNG pixel values (16-bit at most)."""
    expected = f"object id {int(obj_id)} is out of range; expected an int in 1..65535"
    with sam.video_session(CLIP) as session:
        with pytest.raises(ValueError, match=re.escape(expected)):
            session.add_object(frame=0, points=[(5, 5)], obj_id=obj_id)
        assert session.object_ids == []
    with pytest.raises(ValueError, match=re.escape(expected)):
        sam.track_object(CLIP, {obj_id: dict(frame=0, points=[(5, 5)])})


def test_ids_above_255_are_written_as_16_bit_pngs(sam, tmp_path):
    with sam.video_session(CLIP) as session:
        session.add_object(frame=0, box=(2, 2, 30, 22), obj_id=300)
        session.add_object(frame=0, box=(0, 0, 4, 4), obj_id=65535)
        results = session.track()
        index = results[0].index_mask()
        assert index.dtype == np.uint16
        path = results.save_png_zip(tmp_path / "masks.zip")
    with zipfile.ZipFile(path) as zf:
        png = Image.open(io.BytesIO(zf.read("frame_000000.png")))
        values = np.asarray(png)
    assert png.mode.startswith("I;16") or png.mode == "I", png.mode
    assert np.array_equal(values, index)  # the ids survive the round trip, none wrapped around 256
    assert set(np.unique(values)) <= {0, 300, 65535}


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_image_is_refused(sam, dtype):
    image = np.full((H, W, 3), 0.5 + 0.5j, dtype)
    with pytest.raises(ValueError, match=f"got complex dtype {np.dtype(dtype)}"):
        sam.segment_object(image, points=[(5, 5)])
    with pytest.raises(ValueError, match="complex dtype"):
        sam.video_session(image[None].repeat(2, 0))


def test_numpy_scalars_are_numbers(sam, tmp_path):
    """np.float32(0.5) was refused as "must be a number in [0, 1]"; numpy integers likewise."""
    base = sam.segment_concept(IMG, text="bus", threshold=0.5, mask_threshold=0.5)
    found = sam.segment_concept(IMG, text="bus", threshold=np.float32(0.5), mask_threshold=np.float64(0.5))
    assert np.array_equal(found.masks, base.masks) and np.array_equal(found.scores, base.scores)
    everything = sam.generate_masks(
        IMG, points_per_side=np.int64(2), points_per_batch=np.int32(4), pred_iou_thresh=np.float32(0),
        stability_score_thresh=np.float16(0), box_nms_thresh=np.float32(0.7), min_mask_region_area=np.uint8(0),
    )  # fmt: skip
    assert everything.prompt["points_per_side"] == 2 and type(everything.prompt["points_per_side"]) is int
    assert open_video(CLIP, fps=np.float32(12.5)).fps == 12.5
    with sam.video_session(CLIP) as session:
        session.add_object(frame=np.int64(0), points=[(5, 5)], obj_id=np.int32(2))
        frames = [r.frame_idx for r in session.propagate(max_frames=np.int64(1))]
    assert frames == [0, 1]


@pytest.mark.parametrize(
    "value, message",
    [(True, "got True"), (np.bool_(True), "got np.True_"), (np.complex64(0.5), "got np.complex64"), ("0.5", "got '0.5'")],
)  # fmt: skip
def test_non_numbers_stay_refused(sam, value, message):
    with pytest.raises(ValueError, match=re.escape("threshold must be a number in [0, 1], " + message)):
        sam.segment_concept(IMG, text="bus", threshold=value)
