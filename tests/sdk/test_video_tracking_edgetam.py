"""Video tracking through the SDK with EdgeTAM: the same calls as with SAM 3 (`track_object`,
`VideoSession`, exports), each result equal to what sam3_core's `EdgeTamVideoModel` and
`Sam2VideoProcessor` give on the same checkpoint (the tiny EdgeTAM of the goldens)."""

from __future__ import annotations

import io
import json
import zipfile

import av
import numpy as np
import pytest
import torch
from coco_files import load_youtube_vis
from PIL import Image
from safetensors import safe_open
from sam3_core import (
    EdgeTamVideoInferenceSession,
    EdgeTamVideoModel,
    Sam2VideoProcessor,
    Sam3TrackerVideoModel,
)
from sam3_core.processing.image import IMAGENET_MEAN, IMAGENET_STD
from sam3_sdk import Sam3, VideoSession, VideoTracker, track_object
from sam3_sdk.rle import rle_to_mask
from sam3_sdk.testing import TINY_RANDOM_EDGETAM, resolve_name, tiny_random_edgetam_checkpoint
from sam3_sdk.video_io import open_video
from test_video_io import write_video
from test_videos import ellipse_mask, make_video
from tiny_checkpoint import HERE, write_tiny_checkpoint

H, W, N = 48, 64, 6
TINY_EDGETAM_DIR = HERE / "tiny_edgetam"  # config + the reference's key manifest


@pytest.fixture(scope="module")
def edgetam_dir(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("edgetam") / "tiny", source_dir=TINY_EDGETAM_DIR)


@pytest.fixture(scope="module")
def tracker(edgetam_dir):
    return VideoTracker.from_pretrained(edgetam_dir, device="cpu")


@pytest.fixture(scope="module")
def core(edgetam_dir):
    """The core model and processor, loaded on their own from the same checkpoint."""
    return EdgeTamVideoModel.from_pretrained(edgetam_dir), Sam2VideoProcessor.from_pretrained(edgetam_dir)


@pytest.fixture(scope="module")
def frames():
    return make_video(N, H, W, seed=5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames)


def core_track(core, frames, prompts, direction="forward"):
    """The SDK's sequence of calls straight through sam3_core, all frames in memory.

    prompts: [(obj_id, frame, dict of add_inputs_to_inference_session arguments)], applied in order,
    each followed by a segmentation of its frame as the SDK does. Returns {frame: (masks, scores)}
    of the propagation (forward from the earliest prompted frame, then backwards for "both")."""
    model, processor = core
    session = processor.init_video_session(video=frames)
    assert isinstance(session, EdgeTamVideoInferenceSession)
    for obj_id, frame, inputs in prompts:
        processor.add_inputs_to_inference_session(session, frame, obj_id, **inputs)
        model(inference_session=session, frame_idx=frame)
    start = min(frame for _, frame, _ in prompts)
    passes = [False, True] if direction == "both" else [direction == "backward"]
    outs = []
    for reverse in passes:
        outs += list(model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse))
    sizes = [[H, W]]
    return [
        (
            int(o.frame_idx),
            processor.post_process_masks([o.pred_masks], original_sizes=sizes)[0][:, 0].numpy(),
            torch.sigmoid(o.object_score_logits.float()).reshape(-1).numpy(),
        )
        for o in outs
    ]


def assert_same(results, expected, object_ids):
    assert [r.frame_idx for r in results] == [t for t, _, _ in expected]
    for r, (_, masks, scores) in zip(results, expected, strict=True):
        assert r.object_ids == object_ids and r.masks.shape == (len(object_ids), H, W)
        np.testing.assert_array_equal(r.masks, masks)
        np.testing.assert_allclose(r.scores, scores, atol=1e-6)


def test_from_pretrained_picks_edgetam_from_the_checkpoint(tracker, tiny_checkpoint_dir, tmp_path):
    assert isinstance(tracker.model, EdgeTamVideoModel) and tracker.name == "EdgeTAM"
    processor = tracker.processor
    assert isinstance(processor, Sam2VideoProcessor)
    assert (processor.size, processor.mask_size) == (128, 32)  # from config.json's image_size / patch size
    assert processor.frame_normalization == (IMAGENET_MEAN, IMAGENET_STD, 1 / 255)

    sam3 = VideoTracker.from_pretrained(tiny_checkpoint_dir, device="cpu")  # the combined SAM 3 checkpoint
    assert type(sam3.model) is Sam3TrackerVideoModel and sam3.name == "SAM 3"

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "sam3_tracker"}))
    with pytest.raises(ValueError, match="model_type 'sam3_tracker'.*expected one of"):
        VideoTracker.from_pretrained(tmp_path, device="cpu")


def test_track_object_equals_the_core_with_several_objects(tracker, core, frames):
    prompts = {
        2: dict(frame=0, points=[(20, 18), (50, 40)], labels=[1, 0]),
        5: dict(frame=1, box=(30, 20, 60, 44)),  # added on another frame
    }
    seen = []
    results = list(track_object(tracker, frames, prompts, progress=lambda d, t: seen.append((d, t))))
    expected = core_track(
        core,
        frames,
        [
            (2, 0, dict(input_points=[[[[20, 18], [50, 40]]]], input_labels=[[[1, 0]]])),
            (5, 1, dict(input_boxes=[[[30, 20, 60, 44]]])),
        ],
    )
    assert seen == [(i, N) for i in range(1, N + 1)]
    assert_same(results, expected, [2, 5])
    assert any(0 < r.masks[0].sum() < H * W for r in results)  # real masks, not all / nothing


def test_video_file_mask_prompt_and_reverse(tracker, core, clip):
    decoded = list(open_video(clip))
    mask = ellipse_mask(H, W, 24, 30, 12, 16)
    results = list(track_object(tracker, str(clip), {1: dict(frame=5, mask=mask)}, direction="backward"))
    expected = core_track(core, decoded, [(1, 5, dict(input_masks=mask.astype(np.float32)))], "backward")
    assert [r.frame_idx for r in results] == [5, 4, 3, 2, 1, 0]
    assert_same(results, expected, [1])


def test_session_refine_and_propagate_both_ways(tracker, core, frames):
    session = VideoSession(tracker, frames)
    session.add_object(frame=3, points=[(20, 18)])
    session.add_object(frame=3, box=(30, 20, 60, 44), obj_id=7)
    session.refine(1, frame=3, points=[(30, 30)], labels=[0], replace=False)  # clicks added to the first
    results = list(session.propagate("both"))
    expected = core_track(
        core,
        frames,
        [
            (1, 3, dict(input_points=[[[[20, 18]]]], input_labels=[[[1]]])),
            (7, 3, dict(input_boxes=[[[30, 20, 60, 44]]])),
            (1, 3, dict(input_points=[[[[30, 30]]]], input_labels=[[[0]]], clear_old_inputs=False)),
        ],
        "both",
    )
    assert [r.frame_idx for r in results] == [3, 4, 5, 3, 2, 1, 0]
    assert_same(results, expected, [1, 7])
    assert session.results.frames == list(range(N)) and session.results.object_ids == [1, 7]


def test_exports_are_those_of_sam3(tracker, clip, tmp_path):
    session = VideoSession(tracker, clip)
    session.add_object(frame=0, points=[(20, 18)])
    session.add_object(frame=0, points=[(45, 35)], obj_id=300)  # an id above 255: 16-bit PNGs
    results = session.track("forward")
    assert len(results) == N

    with av.open(str(results.save_mp4(tmp_path / "annotated.mp4", clip))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (W, H)
        assert sum(1 for _ in container.decode(stream)) == N

    r4 = results[4]
    with zipfile.ZipFile(results.save_png_zip(tmp_path / "masks.zip")) as zf:
        assert zf.namelist() == [f"frame_{i:06d}.png" for i in range(N)]
        index = np.array(Image.open(io.BytesIO(zf.read("frame_000004.png"))))
    np.testing.assert_array_equal(index == 300, r4.mask(300))
    np.testing.assert_array_equal(index == 1, r4.mask(1) & ~r4.mask(300))  # later ids drawn on top

    data = json.loads(results.to_json())
    assert data["object_ids"] == [1, 300] and len(data["frames"]) == N
    annotation = data["frames"][4]["annotations"][1]
    assert annotation["object_id"] == 300
    np.testing.assert_array_equal(rle_to_mask(annotation["segmentation"]), r4.mask(300))
    vis = load_youtube_vis(results.save_coco_json(tmp_path / "masks.json"))
    assert [a["object_id"] for a in vis["data"]["annotations"]] == [1, 300]
    for t in range(N):
        for obj_id, masks in vis["masks"].items():
            want = results[t].mask(obj_id)
            np.testing.assert_array_equal(masks[t] if masks[t] is not None else np.zeros_like(want), want)


def test_bf16_tracker_equals_the_core_in_bf16(edgetam_dir, frames):
    tracker = VideoTracker.from_pretrained(edgetam_dir, device="cpu", dtype=torch.bfloat16)
    results = list(track_object(tracker, frames[:4], {1: dict(frame=0, box=(8, 6, 40, 30))}))
    model = EdgeTamVideoModel.from_pretrained(edgetam_dir, dtype=torch.bfloat16)
    processor = Sam2VideoProcessor.from_pretrained(edgetam_dir)
    session = processor.init_video_session(video=frames[:4], dtype=torch.bfloat16)
    processor.add_inputs_to_inference_session(session, 0, 1, input_boxes=[[[8, 6, 40, 30]]])
    model(inference_session=session, frame_idx=0)
    for r, out in zip(results, model.propagate_in_video_iterator(session, start_frame_idx=0), strict=True):
        assert out.pred_masks.dtype == torch.bfloat16
        expected = processor.post_process_masks([out.pred_masks], original_sizes=[[H, W]])[0][:, 0].numpy()
        np.testing.assert_array_equal(r.masks, expected)


def test_sam3_facade_tracks_with_edgetam(tiny_checkpoint_dir, edgetam_dir, tracker, frames):
    sam = Sam3.from_pretrained(tiny_checkpoint_dir, device="cpu", video_model=edgetam_dir)
    assert isinstance(sam.video_model, EdgeTamVideoModel)
    prompts = {1: dict(frame=0, points=[(20, 18)])}
    ours = list(sam.track_object(frames, prompts))
    alone = list(track_object(tracker, frames, prompts))
    for a, b in zip(ours, alone, strict=True):
        np.testing.assert_array_equal(a.masks, b.masks)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_tiny_random_edgetam_has_the_reference_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("SAM3_CACHE", str(tmp_path))
    folder = resolve_name(TINY_RANDOM_EDGETAM)
    assert folder == tiny_random_edgetam_checkpoint() == tmp_path / TINY_RANDOM_EDGETAM
    assert "RANDOM weights" in (folder / "README.txt").read_text()
    reference = json.loads((TINY_EDGETAM_DIR / "manifest.json").read_text())  # the reference's keys
    with safe_open(folder / "model.safetensors", "pt") as f:
        assert {k: list(f.get_slice(k).get_shape()) for k in f.keys()} == reference
    tracker = VideoTracker.from_pretrained(folder, device="cpu")
    assert isinstance(tracker.model, EdgeTamVideoModel) and tracker.model.name_or_path == str(folder)
