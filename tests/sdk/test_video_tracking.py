"""Video tracking through the SDK: the core's numbers, sessions, exports, errors, bounded memory."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import av
import numpy as np
import pytest
import torch
from coco_files import load_youtube_vis
from PIL import Image
from sam3_sdk import VideoMasks
from sam3_sdk.rle import rle_to_mask
from sam3_sdk.testing import held_nbytes, held_tensors
from sam3_sdk.video_io import open_video
from test_video_io import write_video
from test_videos import make_video

H, W = 48, 64


@pytest.fixture(scope="module")
def frames():
    return make_video(8, H, W, seed=5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames)


def _core_track(sam, frames, obj_id, frame, points, labels, reverse=False):
    """The same tracking straight through sam3_core (all frames in memory)."""
    model, processor = sam.video_model, sam.video_processor
    session = processor.init_video_session(video=frames)
    processor.add_inputs_to_inference_session(
        session, frame, obj_id, input_points=[[points]], input_labels=[[labels]]
    )
    first = model(inference_session=session, frame_idx=frame)
    outs = {}
    for out in model.propagate_in_video_iterator(session, start_frame_idx=frame, reverse=reverse):
        outs[out.frame_idx] = out
    outs.setdefault(frame, first)
    sizes = [[session.video_height, session.video_width]]
    return {
        t: (
            processor.post_process_masks([o.pred_masks], original_sizes=sizes)[0][:, 0].numpy(),
            torch.sigmoid(o.object_score_logits.float()).reshape(-1).numpy(),
        )
        for t, o in outs.items()
    }


def test_track_object_equals_the_core(sam, frames):
    seen = []
    results = list(
        sam.track_object(frames, {3: dict(frame=0, points=[(20, 18), (50, 40)], labels=[1, 0])},
                         progress=lambda done, total: seen.append((done, total)))
    )  # fmt: skip
    assert [r.frame_idx for r in results] == list(range(8))
    assert seen == [(i, 8) for i in range(1, 9)]
    expected = _core_track(sam, frames, 3, 0, [[20, 18], [50, 40]], [1, 0])
    for r in results:
        masks, scores = expected[r.frame_idx]
        assert r.object_ids == [3] and r.masks.shape == (1, H, W) and r.masks.dtype == bool
        np.testing.assert_array_equal(r.masks, masks)
        np.testing.assert_allclose(r.scores, scores, atol=1e-6)
    assert 0 < results[0].masks.sum() < H * W  # a real mask, not all / nothing


def test_video_file_is_read_lazily_and_tracked_like_its_frames(sam, clip):
    decoded = list(open_video(clip))
    results = list(sam.track_object(str(clip), {1: dict(frame=2, box=(8, 6, 40, 30))}, direction="backward"))
    assert [r.frame_idx for r in results] == [2, 1, 0]
    model, processor = sam.video_model, sam.video_processor
    session = processor.init_video_session(video=decoded)
    processor.add_inputs_to_inference_session(session, 2, 1, input_boxes=[[[8, 6, 40, 30]]])
    model(inference_session=session, frame_idx=2)
    for r, out in zip(results, model.propagate_in_video_iterator(session, start_frame_idx=2, reverse=True)):
        expected = processor.post_process_masks([out.pred_masks], original_sizes=[[H, W]])[0][:, 0].numpy()
        assert r.frame_idx == out.frame_idx
        np.testing.assert_array_equal(r.masks, expected)


def test_session_add_refine_remove_and_propagate_both_ways(sam, frames):
    session = sam.video_session(frames)
    first = session.add_object(frame=3, points=[(20, 18)])
    assert first.frame_idx == 3 and first.object_ids == [1] and first.masks.shape == (1, H, W)
    second = session.add_object(frame=3, box=(30, 20, 60, 44), obj_id=7)
    assert second.object_ids == [1, 7]
    np.testing.assert_array_equal(second.mask(1), first.mask(1))  # a new object leaves object 1 as it was
    done = [r.frame_idx for r in session.propagate("both")]
    assert done == [3, 4, 5, 6, 7, 3, 2, 1, 0]
    assert session.results.frames == list(range(8)) and session.results.object_ids == [1, 7]
    before = session.results[5].mask(1).copy()
    refined = session.refine(1, frame=5, points=[(20, 18), (30, 30)], labels=[1, 0])
    assert refined.frame_idx == 5 and session.prompted_frames(1) == [3, 5] and session.stale
    assert not np.array_equal(refined.mask(1), before) or refined.scores[0] != pytest.approx(0)
    session.remove_object(7)
    assert session.object_ids == [1] and session.results.object_ids == [1]
    assert session.results[0].object_ids == [1]
    forward = list(session.propagate("forward"))
    assert [r.frame_idx for r in forward] == [3, 4, 5, 6, 7] and not session.stale
    session.reset()
    assert session.object_ids == [] and len(session.results) == 0


def test_exports(sam, frames, clip, tmp_path):
    session = sam.video_session(clip)
    session.add_object(frame=0, points=[(20, 18)])
    session.add_object(frame=0, points=[(45, 35)], obj_id=300)  # an id above 255: 16-bit PNGs
    results = session.track("forward")
    assert isinstance(results, VideoMasks) and len(results) == 8

    mp4 = results.save_mp4(tmp_path / "out" / "annotated.mp4", clip)
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (W, H) and stream.average_rate == 10
        shown = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(shown) == 8
    assert not np.allclose(shown[0], open_video(clip)[0], atol=8)  # the masks are drawn in

    odd = open_video([f[:47, :63] for f in frames])  # odd sizes are padded to even ones
    odd_masks = VideoMasks(size=(47, 63), num_frames=8)
    path = odd_masks.save_mp4(tmp_path / "odd.mp4", odd, fps=12.5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 48) and float(stream.average_rate) == 12.5

    with zipfile.ZipFile(results.save_png_zip(tmp_path / "masks.zip")) as zf:
        names = zf.namelist()
        assert names == [f"frame_{i:06d}.png" for i in range(8)]
        index = np.array(Image.open(io.BytesIO(zf.read("frame_000004.png"))))
    r4 = results[4]
    assert index.shape == (H, W) and set(np.unique(index)) <= {0, 1, 300}
    np.testing.assert_array_equal(index == 300, r4.mask(300))

    data = json.loads(results.to_json())  # the stored records, as the CLI sends them between processes
    assert data["video"] == {"height": H, "width": W, "num_frames": 8, "fps": 10.0}
    assert data["object_ids"] == [1, 300]
    frame4 = data["frames"][4]
    assert frame4["frame_idx"] == 4 and [a["object_id"] for a in frame4["annotations"]] == [1, 300]
    np.testing.assert_array_equal(rle_to_mask(frame4["annotations"][0]["segmentation"]), r4.mask(1))
    assert frame4["annotations"][0]["area"] == int(r4.mask(1).sum())
    vis = load_youtube_vis(results.save_coco_json(tmp_path / "masks.json"))  # YouTube-VIS, decoded
    for obj_id in (1, 300):
        got = vis["masks"][obj_id][4]
        np.testing.assert_array_equal(got if got is not None else False, r4.mask(obj_id))


def test_failed_export_leaves_nothing(sam, frames, tmp_path):
    masks = VideoMasks(size=(H, W), num_frames=8)
    broken = [*frames[:4], np.zeros((5, 5, 3), np.uint8), *frames[5:]]  # frame 4 has the wrong size
    target = tmp_path / "annotated.mp4"
    with pytest.raises(ValueError, match="frame 4 is 5x5"):
        masks.save_mp4(target, broken)
    assert list(tmp_path.iterdir()) == []


def test_errors_name_the_bad_value(sam, frames):
    session = sam.video_session(frames)
    with pytest.raises(ValueError, match="frame 8 is past the end of the video; expected a frame in 0..7"):
        session.add_object(frame=8, points=[(5, 5)])
    with pytest.raises(ValueError, match="point .* is outside the image"):
        session.add_object(frame=0, points=[(500, 5)])
    with pytest.raises(ValueError, match="give points, a box or a mask"):
        session.add_object(frame=0)
    with pytest.raises(ValueError, match="no objects to track"):
        next(session.propagate())
    session.add_object(frame=0, points=[(5, 5)])
    with pytest.raises(ValueError, match="already tracked"):
        session.add_object(frame=1, points=[(5, 5)], obj_id=1)
    with pytest.raises(ValueError, match=r"unknown object id 9; this session tracks objects \[1\]"):
        session.refine(9, frame=0, points=[(5, 5)])
    with pytest.raises(ValueError, match="unknown object id 9"):
        session.remove_object(9)
    with pytest.raises(ValueError, match="direction must be one of"):
        next(session.propagate("sideways"))
    with pytest.raises(ValueError, match="frame -9 is out of range; the video has frames 0..7"):
        session.frame(-9)
    with pytest.raises(ValueError, match="mask prompt cannot be combined"):
        session.refine(1, 0, points=[(5, 5)], mask=np.ones((H, W), bool))
    with pytest.raises(ValueError, match="unknown prompt keys \\['point'\\]"):
        sam.track_object(frames, {1: dict(frame=0, point=(5, 5))})
    with pytest.raises(ValueError, match="frame 20 is past the end"):
        sam.track_object(frames, {1: dict(frame=20, points=[(5, 5)])})


def test_mask_prompt(sam, frames):
    mask = np.zeros((H, W), bool)
    mask[10:30, 12:40] = True
    results = list(sam.track_object(frames[:3], {2: dict(frame=0, mask=mask)}))
    assert [r.object_ids for r in results] == [[2]] * 3
    assert results[0].masks.shape == (1, H, W)


def _tiny_frame(t: int) -> np.ndarray:
    frame = np.full((24, 32, 3), 40, dtype=np.uint8)
    x = 2 + (t // 30) % 20
    frame[8:16, x : x + 8] = (200, 120, 60)
    return frame


def test_long_video_memory_stays_bounded(sam, tmp_path):
    """An mp4 through the SDK, streamed well past the tracker's memory window: the tracker's state,
    the decoder's cache and the Python / numpy heap stop growing once the window is full."""
    config = sam.video_model.config
    window = max(config.num_maskmem, config.max_object_pointers_in_encoder) - 1
    num_frames = window + 40  # the window fills, then 40 more frames must not grow anything
    path = write_video(tmp_path / "long.mp4", [_tiny_frame(t) for t in range(num_frames)], fps=30)
    session = sam.video_session(path)
    session.results = VideoMasks(size=session.size, num_frames=num_frames)
    session.keep_results = False  # as track_object: results are yielded, not kept
    session.add_object(frame=0, points=[(6, 12)])
    state_bytes, tensors, heap = [], [], []
    tracemalloc.start()
    try:
        for r in session.propagate():
            assert r.masks.shape == (1, 24, 32)
            state_bytes.append(held_nbytes(session.state))
            tensors.append(len(held_tensors(session.state)))
            heap.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(state_bytes) == num_frames
    assert session.state.memory_window == window
    settled = window + session.state.max_vision_features_cache_size + 2
    assert max(state_bytes[settled:]) == state_bytes[settled]
    assert max(tensors[settled:]) == tensors[settled]
    assert len(session.reader._source._cache) <= session.reader._source._cache_frames
    # Python + numpy allocations: no growth over the last 30 frames (allow 256 KiB of noise)
    assert heap[-1] - heap[-30] < 256 * 1024, (heap[-30], heap[-1])
