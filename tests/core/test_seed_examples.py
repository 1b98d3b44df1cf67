"""Every example of the four seed documents (SAM3 Tracker Video, SAM3 Tracker, SAM3, EdgeTAM
Video), run with `from sam3_core import ...` and compared with what the same transcription gave
with the reference (`scripts/golden/seeds.py`, golden area `seeds`).

The transcriptions are in tests/fixtures/seed_examples_*.py, one function per document section
(test id "<document>/<section>"); tests/fixtures/seed_env.py makes the local checkpoints, images and
video that stand in for the documents' hub ids and URLs. A test fails when its example no longer
runs, prints something else, or computes other numbers than the reference.
"""

from __future__ import annotations

import pytest
import sam3_core
import sam3_core.video_utils  # noqa: F401 (the examples call lib.video_utils.load_video)
import seed_examples
import seed_examples_tracker
import torch
import torch.nn.functional as F
from golden_io import load_golden, max_abs_diff
from sam3_core.mask_generation import Sam3TrackerMaskGenerator, build_point_grid
from seed_env import MASK_STRIDE, SeedEnv
from seed_float64 import f64_examples, in_float64

FP32_TOL = 1e-4  # logits, scores, boxes and resized float masks
# The video documents run their sessions in bf16: both sides round every layer to 8 bits of
# mantissa, in different orders, and the rounding grows along the propagated frames. A bf16 value
# may differ from the reference's by twice the reference's own bf16 error (its distance from its
# float32 result, golden "bf16_error"), and by at least BF16_FLOOR (two bf16 steps at |x| ~ 1).
BF16_FACTOR = 3  # ours and the reference each round about as much: 1.5 times the reference's error each
BF16_FLOOR = 2 / 128
# Masks at full resolution are thresholded logits: where a logit is within the tolerance of the
# threshold the pixel may flip (the tiny random model's masks have ragged edges with many such
# pixels): at most this fraction of the image's pixels, in the stored samples and in the areas
MASK_MISMATCH = 1e-3
# In bf16 the two sides' logits may differ by BF16_FLOOR or more, and the tiny random model's ragged
# masks have many pixels that close to 0: a mask's area may move by this fraction of the image's
# pixels (kernels, and so rounding orders, differ between CPUs).
BF16_AREA_FLOOR = 5e-3

# The float32 examples replayed in float64 (`<example>_f64`, tests/fixtures/seed_float64.py): both
# implementations round at ~1e-12, so anything above 1e-9 is a difference in what is computed, not
# rounding (FP32_TOL's 1e-4 can hide a 1 % error on the tiny model's small logits); masks, areas,
# kept instances and printed lines must be identical.
TOL_F64 = 1e-9

# Steps that fail in sam3_core on purpose; the reference fails them too (golden "errors").
EXPECTED_ERRORS = {
    # the docstring's clicks have 3 levels of nesting where 4 are needed: a ValueError naming them
    "sam3_tracker/model_forward": {"processor": "ValueError"},
}

# Values where sam3_core deliberately differs from the reference, with why (still computed).
KNOWN_DIFFERENCES = {
    "edgetam_video/config": {
        # the reference's EdgeTamVideoConfig() defaults to a SAM 2 Hiera backbone (27.2 M parameters),
        # ours to EdgeTAM's RepViT m1 (4.9 M), as its checkpoints have it; every other part is equal
        "model.num_parameters",
    },
    # our pipeline clicks all over the image, the reference's only on its top 149 of 375 rows
    # (README); test_pipeline_with_the_reference_clicks compares these with the reference's clicks
    "sam3_tracker/automatic_mask_generation_with_pipeline": {"scores", "masks.sampled", "masks.area"},
}
PIPELINE = "sam3_tracker/automatic_mask_generation_with_pipeline"
PIPELINE_POINTS_PER_CROP = 8  # the transcription's
# a pixel of a thresholded mask may flip only where its logit is this close to the threshold
MASK_LOGIT_TOL = 1e-4


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> SeedEnv:
    env = SeedEnv.build(tmp_path_factory.mktemp("seeds"))
    env.save_sub_models()
    return env


def _compare(
    key: str, ours: torch.Tensor, expected: torch.Tensor, bf16_error: float | None, pixels: int
) -> float:
    """Largest difference of one recorded value (a fraction of the image's `pixels` for masks);
    `bf16_error`: the reference's own bf16 error on it, when the example runs in bf16."""
    assert tuple(ours.shape) == tuple(expected.shape), (
        f"{key}: shape {tuple(ours.shape)} != {tuple(expected.shape)}"
    )
    if expected.dtype == torch.bool:
        wrong = (ours != expected).float().mean().item() if expected.numel() else 0.0
        assert wrong <= MASK_MISMATCH, f"{key}: {wrong:.2%} of the pixels differ"
        return wrong
    if key.endswith(".area"):
        diff = (ours - expected).abs().max().item() if expected.numel() else 0
        floor = MASK_MISMATCH if bf16_error is None else BF16_AREA_FLOOR
        slack = max(floor * pixels, BF16_FACTOR * (bf16_error or 0.0))
        assert diff <= slack, f"{key}: areas differ by {diff} pixels (allowed {slack:.0f})"
        return diff / pixels
    if not expected.is_floating_point():
        assert torch.equal(ours, expected), f"{key}: {ours} != {expected}"
        return 0.0
    assert ours.dtype == expected.dtype, f"{key}: dtype {ours.dtype} != {expected.dtype}"
    tol = FP32_TOL if bf16_error is None else max(BF16_FLOOR, BF16_FACTOR * bf16_error)
    if key.endswith(".boxes"):  # post-processed boxes are in pixels: the tolerance of [0, 1] boxes, scaled
        tol *= max(1.0, expected.abs().max().item())
    diff = max_abs_diff(ours, expected)
    assert diff <= tol, f"{key}: max abs diff {diff:.2e} > {tol:.2e}"
    return diff


@pytest.mark.parametrize("name", list(seed_examples.EXAMPLES))
def test_seed_example(name, env):
    record = seed_examples.run(seed_examples.EXAMPLES[name], sam3_core, env)
    expected, meta = load_golden("seeds", seed_examples.golden_name(name))

    failed = {step: error.split(":")[0] for step, error in record.errors.items()}
    assert failed == EXPECTED_ERRORS.get(name, {}), f"steps failed: {record.errors}"
    assert record.printed == meta["printed"]
    for key, value in meta.items():
        if key not in ("printed", "errors", "bf16_error"):
            assert record.meta.get(key) == value, f"{key}: {record.meta.get(key)!r} != {value!r}"

    # what the reference computed, ours computed too; ours computes more only in the steps the
    # reference failed (its golden "errors")
    missing = set(expected) - set(record.tensors)
    assert not missing, f"not computed: {sorted(missing)}"
    assert meta["errors"] or set(record.tensors) == set(expected)
    failures, worst = [], {}
    for key in sorted(set(expected) - KNOWN_DIFFERENCES.get(name, set())):
        try:
            bf16_error = meta["bf16_error"].get(key, 0.0) if "bf16_error" in meta else None
            sampled = expected.get(key.removesuffix(".area") + ".sampled")
            pixels = sampled.shape[-2] * sampled.shape[-1] * MASK_STRIDE**2 if sampled is not None else 1
            diff = _compare(key, record.tensors[key], expected[key], bf16_error, pixels)
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
            continue
        kind = (
            "masks"
            if key.endswith((".sampled", ".area"))
            else str(expected[key].dtype).removeprefix("torch.")
        )
        worst[kind] = max(worst.get(kind, 0.0), diff)
    print(f"\n{name}: worst {worst}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", f64_examples(seed_examples.EXAMPLES))
def test_seed_example_f64(name, env):
    fp32_cache, env.cache = env.cache, {}  # the examples' shared models, loaded again in float64
    try:
        with in_float64(sam3_core):
            record = seed_examples.run(seed_examples.EXAMPLES[name], sam3_core, env)
    finally:
        env.cache = fp32_cache
    expected, meta = load_golden("seeds", seed_examples.golden_name(name) + "_f64")

    failed = {step: error.split(":")[0] for step, error in record.errors.items()}
    assert failed == EXPECTED_ERRORS.get(name, {}), f"steps failed: {record.errors}"
    assert record.printed == meta["printed"]
    for key, value in meta.items():
        if key not in ("printed", "errors"):
            assert record.meta.get(key) == value, f"{key}: {record.meta.get(key)!r} != {value!r}"
    assert set(record.tensors) == set(expected)
    failures, worst = [], 0.0
    for key in sorted(expected):
        ours, theirs = record.tensors[key], expected[key]
        if tuple(ours.shape) != tuple(theirs.shape) or ours.dtype != theirs.dtype:
            failures.append(
                f"{key}: {ours.dtype} {tuple(ours.shape)} != {theirs.dtype} {tuple(theirs.shape)}"
            )
        elif not theirs.is_floating_point():  # masks, areas, labels: decisions, identical
            if not torch.equal(ours, theirs):
                failures.append(f"{key}: {int((ours != theirs).sum())} of {ours.numel()} values differ")
        else:
            diff = max_abs_diff(ours, theirs)
            worst = max(worst, diff)
            if diff > TOL_F64:
                failures.append(f"{key}: max abs diff {diff:.2e} > {TOL_F64:.0e}")
    print(f"\n{name} (float64): worst {worst:.1e}")
    assert not failures, "\n".join(failures)


def reference_pipeline_clicks(points_per_side: int, height: int, width: int, size: int) -> torch.Tensor:
    """(P, 2) the reference pipeline's clicks as fractions of the image's width and height: its
    grid is scaled for a longest-side resize to `size` (SAM 1's preprocessing), while SAM 3's
    processor resizes to a size x size square, so the clicks cover the longer side and only
    round(size * short / long) / size of the shorter one."""
    scale = size / max(height, width)
    covered = torch.tensor([int(width * scale + 0.5), int(height * scale + 0.5)]) / size
    return build_point_grid(points_per_side) * covered


def test_pipeline_with_the_reference_clicks(env):
    """Given the reference pipeline's clicks, our mask generation (upsampling to the non-square
    image, filters, NMS, scores) gives the reference pipeline's masks: a pixel differs only where
    our logit is within MASK_LOGIT_TOL of the threshold."""
    expected, meta = load_golden("seeds", seed_examples.golden_name(PIPELINE))
    image = env.images["truck_small"]
    model, processor = seed_examples_tracker.model_and_processor(sam3_core, env)  # the examples' own
    with torch.no_grad():
        embeddings = model.get_image_embeddings(processor(images=image)["pixel_values"])
    clicks = reference_pipeline_clicks(
        PIPELINE_POINTS_PER_CROP, image.height, image.width, processor.target_size
    )
    assert clicks[:, 1].max() < 0.7  # the shorter side is covered only partly: the difference is real
    generator = Sam3TrackerMaskGenerator(
        model,
        processor,
        points_per_batch=64,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        point_grid=clicks,
    )
    records = generator.generate(image, image_embeddings=embeddings)
    assert [str(len(records))] == meta["printed"]
    scores = torch.tensor([r["predicted_iou"] for r in records])
    assert max_abs_diff(scores, expected["scores"]) <= FP32_TOL

    # each mask's logits, from a direct model call on its click (the best-matching of its 3 masks)
    logits = []
    for rec in records:
        inputs = processor(images=image, input_points=[[rec["point_coords"]]])
        with torch.no_grad():
            out = model(
                input_points=inputs["input_points"],
                input_labels=inputs["input_labels"],
                image_embeddings=embeddings,
            )
        k = int(torch.argmin((out.iou_scores[0, 0] - rec["predicted_iou"]).abs()))
        full = F.interpolate(
            out.pred_masks[0, :, k : k + 1], size=(image.height, image.width), mode="bilinear"
        )
        # the generator decoded 64 clicks a batch, this call one: another GEMM shape, which another
        # CPU may serve with another kernel, so a pixel may flip where the logit is that close to 0
        decided = full[0, 0].abs() >= MASK_LOGIT_TOL
        assert torch.equal((full[0, 0] > 0)[decided], torch.from_numpy(rec["segmentation"])[decided])
        logits.append(full[0, 0])
    logits = torch.stack(logits)  # (N, H, W)
    masks = logits > 0
    near = logits.abs() < MASK_LOGIT_TOL
    sampled = (slice(None), slice(None, None, MASK_STRIDE), slice(None, None, MASK_STRIDE))
    wrong = (masks[sampled] != expected["masks.sampled"]) & ~near[sampled]
    assert not wrong.any(), f"{int(wrong.sum())} sampled pixels differ away from the threshold"
    area_diff = (masks.sum(dim=(-2, -1)) - expected["masks.area"]).abs()
    assert (area_diff <= near.sum(dim=(-2, -1))).all(), f"areas differ by {area_diff.tolist()} pixels"
    print(
        f"\nreference clicks: scores {max_abs_diff(scores, expected['scores']):.1e}, areas {area_diff.tolist()}"
    )
