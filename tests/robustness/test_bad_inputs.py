"""A corpus of bad inputs through the SDK: each gets a clear error naming the bad value and what was
expected, or, where the input is valid, a correct result. The files are made here, small."""

from __future__ import annotations

import io
import pickle
import re
import shutil

import av
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from sam3_core.checkpoint_files import CheckpointError
from sam3_core.config.base import ConfigError
from sam3_sdk import Sam3
from sam3_sdk.images import as_rgb_array, image_file_size
from sam3_sdk.video_io import open_video

H, W = 24, 32


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _png(path, image: Image.Image, **kwargs):
    image.save(path, **kwargs)
    return path


def _gradient() -> np.ndarray:
    ys, xs = np.mgrid[0:H, 0:W]
    return np.stack([xs * 8, ys * 10, (xs + ys) * 4], -1).astype(np.uint8)


# (name, writer of the file into tmp_path, expected error fragment)
BAD_FILES = {
    "zero_bytes": (lambda p: _write(p, b""), "is empty (0 bytes)"),
    "text_as_png": (lambda p: _write(p, b"hello, not an image"), "not a readable image"),
    "truncated_png": (
        lambda p: _write(p, _bytes(Image.fromarray(_gradient()), "PNG")[:60]),
        "not a readable image",
    ),
    "bomb_20000x20000": (lambda p: _png(p, Image.new("1", (20000, 20000))), "pixels are accepted"),
    "folder": (lambda p: p.mkdir() or p, "is a folder"),
}


def _bytes(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_image_files_are_refused_by_name(tmp_path, case):
    write, expected = BAD_FILES[case]
    path = write(tmp_path / f"{case}.png")
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        as_rgb_array(path)
    assert path.name in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        as_rgb_array(tmp_path / "nowhere.png")


def test_bomb_is_refused_from_the_header_without_decoding(tmp_path):
    path = _png(tmp_path / "bomb.png", Image.new("1", (20000, 20000)))
    assert path.stat().st_size < 200_000  # a few KB on disk, 1.2 GB as RGB
    with pytest.raises(ValueError, match="has 400,000,000 pixels; images up to 100,000,000 pixels"):
        image_file_size(path)


# Valid but unusual images: a correct (H, W, 3) uint8 result.
def test_cmyk_png_jpeg(tmp_path):
    rgb = _gradient()
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    out = as_rgb_array(path)
    assert out.shape == (H, W, 3) and np.abs(out.astype(int) - rgb).mean() < 6


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    values = (np.arange(H * W).reshape(H, W) * (65535 // (H * W))).astype(np.uint16)
    path = _png(tmp_path / "deep.png", Image.fromarray(values))
    out = as_rgb_array(path)
    assert out.shape == (H, W, 3) and np.array_equal(out[..., 0], out[..., 2])
    assert np.abs(out[..., 0].astype(int) - np.rint(values / 257)).max() <= 1  # not clipped at 255


def test_palette_png_with_transparency(tmp_path):
    image = Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    path = _png(tmp_path / "palette.png", image, transparency=0)
    out = as_rgb_array(path)
    assert out.shape == (H, W, 3)
    first = np.asarray(image) == 0
    assert (out[first] == 255).all()  # the transparent palette entry is white


def test_alpha_png_is_composited_on_white(tmp_path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, : W // 2, 3] = 255
    out = as_rgb_array(_png(tmp_path / "alpha.png", Image.fromarray(rgba)))
    assert (out[:, : W // 2] == (200, 0, 0)).all() and (out[:, W // 2 :] == 255).all()


def test_exif_rotation_is_applied(tmp_path):
    rgb = _gradient()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=100)
    assert image_file_size(path) == (W, H)
    out = as_rgb_array(path)
    assert out.shape == (W, H, 3)
    assert np.abs(out.astype(int) - np.rot90(rgb, k=-1)).mean() < 6


def test_one_pixel_image_segments(sam, tmp_path):
    path = _png(tmp_path / "dot.png", Image.new("RGB", (1, 1), (10, 200, 30)))
    result = sam.segment_object(path, points=[(0.5, 0.5)])
    assert result.masks.shape[1:] == (1, 1)


# ---------------------------------------------------------------------------------------------
# Prompts, phrases, object ids and frames: (name, call on (sam, image, session), error fragment)
# ---------------------------------------------------------------------------------------------

IMG = np.zeros((H, W, 3), np.uint8)
NAN, INF = float("nan"), float("inf")

BAD_CALLS = {
    "point_outside": (lambda s, v: s.segment_object(IMG, points=[(40, 5)]), "point [40.0, 5.0] is outside the image"),
    "point_negative": (lambda s, v: s.segment_object(IMG, points=[(-1, 5)]), "is outside the image"),
    "point_nan": (lambda s, v: s.segment_object(IMG, points=[(NAN, 5)]), "NaN or infinite"),
    "point_inf": (lambda s, v: s.segment_object(IMG, points=[(INF, 5)]), "NaN or infinite"),
    "point_three_numbers": (lambda s, v: s.segment_object(IMG, points=[(1, 2, 3)]), "(x, y) pairs, got shape (1, 3)"),
    "point_string": (lambda s, v: s.segment_object(IMG, points="abc"), "(x, y) pairs, got 'abc'"),
    "label_two": (lambda s, v: s.segment_object(IMG, points=[(1, 2)], labels=[2]), "got [2]"),
    "labels_count": (lambda s, v: s.segment_object(IMG, points=[(1, 2)], labels=[1, 0]), "1 points but 2 labels"),
    "box_inverted": (lambda s, v: s.segment_object(IMG, box=(10, 5, 2, 8)), "[10.0, 5.0, 2.0, 8.0] is empty or inverted"),
    "box_outside": (lambda s, v: s.segment_object(IMG, box=(0, 0, 50, 8)), "goes outside the image (width 32"),
    "box_nan": (lambda s, v: s.segment_object(IMG, box=(0, 0, NAN, 8)), "NaN or infinite"),
    "box_three_numbers": (lambda s, v: s.segment_object(IMG, box=(0, 0, 5)), "4 numbers"),
    "mask_wrong_size": (lambda s, v: s.segment_object(IMG, mask=np.zeros((5, 5))), "got (5, 5)"),
    "mask_not_binary": (lambda s, v: s.segment_object(IMG, mask=np.full((H, W), 0.5)), "boolean (or 0/1"),
    "no_prompt": (lambda s, v: s.segment_object(IMG), "at least one prompt"),
    "image_wrong_channels": (lambda s, v: s.segment_object(np.zeros((H, W, 5), np.uint8), points=[(1, 1)]), "got shape (24, 32, 5)"),
    "image_empty_array": (lambda s, v: s.segment_object(np.zeros((0, W, 3), np.uint8), points=[(1, 1)]), "empty"),
    "image_nan_array": (lambda s, v: s.segment_object(np.full((H, W, 3), NAN), points=[(1, 1)]), "NaN or infinite"),
    "image_wrong_type": (lambda s, v: s.segment_object(42, points=[(1, 1)]), "got int"),
    "phrase_empty": (lambda s, v: s.segment_concept(IMG, text=""), "text is empty"),
    "phrase_whitespace": (lambda s, v: s.segment_concept(IMG, text="  \t "), "text is empty"),
    "phrase_not_text": (lambda s, v: s.segment_concept(IMG, text=5), "text must be a string, got int"),
    "threshold_nan": (lambda s, v: s.segment_concept(IMG, text="bus", threshold=NAN), "threshold must be a number in [0, 1], got nan"),
    "threshold_above_one": (lambda s, v: s.segment_concept(IMG, text="bus", threshold=2), "got 2"),
    "frame_past_end": (lambda s, v: v.add_object(frame=5, points=[(1, 1)]), "frame 5 is past the end of the video; expected a frame in 0..2"),
    "frame_negative": (lambda s, v: v.add_object(frame=-9, points=[(1, 1)]), "frame -9"),
    "frame_float": (lambda s, v: v.add_object(frame=1.5, points=[(1, 1)]), "int frame index, got 1.5"),
    "object_id_reused": (lambda s, v: v.add_object(frame=0, points=[(1, 1)], obj_id=1), "object id 1 is already tracked"),
    "object_id_unknown_refine": (lambda s, v: v.refine(7, 0, points=[(1, 1)]), "unknown object id 7; this session tracks objects [1]"),
    "object_id_unknown_remove": (lambda s, v: v.remove_object(7), "unknown object id 7"),
    "object_id_string": (lambda s, v: v.add_object(frame=0, points=[(1, 1)], obj_id="a"), "obj_id must be an int, got 'a'"),
    "direction_unknown": (lambda s, v: list(v.propagate("sideways")), "got 'sideways'"),
    "video_no_frames": (lambda s, v: s.video_session(np.zeros((0, H, W, 3), np.uint8)), "the video has no frames"),
    "video_frames_of_two_sizes": (lambda s, v: s.video_session([IMG, np.zeros((20, W, 3), np.uint8)]).frame(1), "frame 1 is 20x32 but frame 0 is 24x32"),
}  # fmt: skip


@pytest.fixture(scope="module")
def session(sam):
    video = sam.video_session(np.zeros((3, H, W, 3), np.uint8))
    video.add_object(frame=0, points=[(1, 1)], obj_id=1)
    return video


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_calls_get_errors_naming_the_value(sam, session, case):
    call, expected = BAD_CALLS[case]
    with pytest.raises((ValueError, TypeError), match=re.escape(expected)):
        call(sam, session)


@pytest.mark.parametrize("phrase", ["自転車 vélo 🚲", "bus " * 2500])
def test_unusual_valid_phrases_give_results(sam, phrase):
    result = sam.segment_concept(IMG, text=phrase, threshold=0)
    assert result.masks.shape[1:] == (H, W) and len(result) == len(result.scores)


# ---------------------------------------------------------------------------------------------
# Video files and checkpoints
# ---------------------------------------------------------------------------------------------


def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


BAD_VIDEOS = {
    "audio_only": (_audio_only, "has no video stream (it holds audio)"),
    "corrupt": (lambda p: _write(p, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500), "cannot read"),
    "zero_bytes": (lambda p: _write(p, b""), "cannot read"),
    "missing": (lambda p: p, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_VIDEOS))
def test_bad_video_files_are_refused_by_name(tmp_path, case):
    write, expected = BAD_VIDEOS[case]
    path = write(tmp_path / f"{case}.mp4")
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        open_video(path)
    assert path.name in str(info.value)


def test_ten_bit_video_decodes_to_8_bit_rgb(tmp_path):
    path = tmp_path / "ten.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p10le"
        for value in (40, 200):
            rgb = av.VideoFrame.from_ndarray(np.full((H, W, 3), value, np.uint8), format="rgb24")
            for packet in stream.encode(rgb.reformat(format="yuv420p10le")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    video = open_video(path)
    assert len(video) == 2 and video[1].dtype == np.uint8 and video[1].shape == (H, W, 3)
    assert abs(float(video[0].mean()) - 40) < 4 and abs(float(video[1].mean()) - 200) < 4


def _checkpoint_case(tmp_path, source, case):
    folder = tmp_path / case
    shutil.copytree(source, folder)
    weights = folder / "model.safetensors"
    if case == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif case == "pickle_named_safetensors":
        weights.write_bytes(pickle.dumps({"tracker_model.weight": [0.0]}))
    elif case in ("missing_key", "extra_key"):
        tensors = load_file(weights)
        if case == "missing_key":
            tensors.pop(next(k for k in sorted(tensors) if k.startswith("tracker_model.mask_decoder.")))
        else:
            tensors["tracker_model.bogus.weight"] = torch.zeros(2)
        save_file(tensors, weights)
    elif case == "no_config":
        (folder / "config.json").unlink()
    elif case == "config_not_json":
        (folder / "config.json").write_text("{not json")
    return folder


BAD_CHECKPOINTS = {
    "truncated": "truncated or corrupt",
    "pickle_named_safetensors": "not a readable safetensors file",
    "missing_key": "missing",
    "extra_key": "1 unexpected: bogus.weight",
    "no_config": "has no config.json",
    "config_not_json": "is not valid JSON",
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_bad_checkpoints_are_refused(tmp_path, tiny_checkpoint_dir, case):
    folder = _checkpoint_case(tmp_path, tiny_checkpoint_dir, case)
    with pytest.raises((CheckpointError, ConfigError), match=re.escape(BAD_CHECKPOINTS[case])):
        Sam3.from_pretrained(folder, device="cpu")


def test_missing_checkpoint_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Sam3.from_pretrained(tmp_path / "nope", device="cpu")
