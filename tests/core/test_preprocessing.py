"""Image preprocessing against the reference's pixel values, and its input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden_io import load_golden
from PIL import Image
from sam3_core import post_process_masks, preprocess_images
from test_images import make_image


def golden_pixels(name: str) -> tuple[torch.Tensor, list]:
    tensors, meta = load_golden("vision", f"preprocess_{name}")
    return (tensors["pixels_u8"].float() - 127.5) / 127.5, meta["original_sizes"]


RGB, GRAY, RGBA = (
    make_image(150, 200, seed=1),
    make_image(90, 60, seed=2, mode="L"),
    make_image(64, 96, seed=3, mode="RGBA"),
)
ARR = np.asarray(make_image(300, 120, seed=4))

CASES = {
    "pil_rgb": [RGB],
    "pil_gray": [GRAY],
    "pil_rgba": [RGBA],
    "numpy_hwc": [ARR],
    "numpy_rgba": [np.asarray(RGBA)],
    "torch_chw": [torch.from_numpy(ARR.copy()).permute(2, 0, 1)],
    "batch_mixed": [RGB, ARR, GRAY],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pixel_values_equal_reference(name):
    expected, sizes = golden_pixels(name)
    pixel_values, original_sizes = preprocess_images(CASES[name], size=96)
    assert pixel_values.dtype == torch.float32
    assert [list(s) for s in original_sizes] == sizes
    # The resize is done on uint8 exactly as the reference does; allow one grey level of rounding.
    assert (pixel_values - expected).abs().max().item() <= 1 / 127.5 + 1e-6
    assert (pixel_values != expected).float().mean().item() < 0.01


def test_single_image_and_2d_gray_array():
    single, sizes = preprocess_images(GRAY, size=96)
    from_array, _ = preprocess_images(np.asarray(GRAY), size=96)
    assert sizes == [(90, 60)] and single.shape == (1, 3, 96, 96)
    assert torch.equal(single, from_array)


def test_file_paths(tmp_path):
    path = tmp_path / "img.png"
    RGB.save(path)
    from_path, _ = preprocess_images(str(path), size=96)
    expected, _ = golden_pixels("pil_rgb")
    assert torch.equal(from_path, preprocess_images(RGB, size=96)[0])
    assert (from_path - expected).abs().max() <= 1 / 127.5 + 1e-6


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 5, 6, 3), np.uint8), "2 .* or 3"),
        (np.zeros((10, 10, 7), np.uint8), "channel axis"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
        (np.array([["a"]]), "numeric"),
        ("/no/such/image.png", "does not exist"),
        (12, "expected a PIL image"),
        ([], "no images"),
    ],
)
def test_bad_images_get_clear_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        preprocess_images(bad, size=32)


def test_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "broken.jpg"
    buf = tmp_path / "ok.jpg"
    RGB.save(buf)
    path.write_bytes(buf.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable image"):
        preprocess_images(str(path), size=32)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ValueError, match="not a readable image"):
        preprocess_images(str(tmp_path / "text.png"), size=32)


def test_palette_image_with_transparency():
    pal = RGB.convert("P")
    pal.info["transparency"] = 0
    out, sizes = preprocess_images(pal, size=32)
    assert out.shape == (1, 3, 32, 32) and sizes == [(150, 200)]


def test_post_process_masks_upsamples_and_thresholds():
    low = torch.tensor([[[[-1.0, 2.0], [3.0, -4.0]]]])  # (objects=1, C=1, 2, 2)
    binary = post_process_masks([low], [(4, 6)])[0]
    logits = post_process_masks([low], [(4, 6)], binarize=False)[0]
    assert binary.dtype == torch.bool and binary.shape == (1, 1, 4, 6)
    assert torch.equal(binary, logits > 0)
    assert logits[0, 0, 0, 0] == -1.0 and logits[0, 0, -1, -1] == -4.0  # corners keep the corner values
    assert not post_process_masks([low], [(4, 6)], mask_threshold=5.0)[0].any()


def test_post_process_masks_non_overlapping():
    two = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 2.0)])
    out = post_process_masks([two], [(2, 2)], apply_non_overlapping=True)[0]
    assert not out[0].any() and out[1].all()
    with pytest.raises(ValueError, match="original sizes"):
        post_process_masks([two, two], [(2, 2)])


def test_pil_modes_all_convert():
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "F"):
        image = Image.new(mode, (20, 10))
        out, sizes = preprocess_images(image, size=16)
        assert out.shape == (1, 3, 16, 16) and sizes == [(10, 20)], mode
