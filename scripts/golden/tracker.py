"""Golden cases of the image tracker: processor outputs, model outputs and mask post-processing.

Everything runs the reference `Sam3TrackerModel` / `Sam3TrackerProcessor` on the tiny combined
checkpoint (224 px input, 16x16 embedding grid, 64x64 low-resolution masks).

Hole filling and sprinkle removal: the reference's `post_process_masks` accepts `max_hole_area` /
`max_sprinkle_area` but ignores them (a TODO in transformers 5.23). Their golden outputs follow the
original SAM 2 predictor instead: on the low-resolution logits, 8-connected background components
of at most `max_hole_area` pixels are set to threshold + 10, then foreground components of at most
`max_sprinkle_area` pixels to threshold - 10, before the reference upsampling. The components are
found here with a plain breadth-first search, independent of our vectorised implementation.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from test_images import make_image

SIZE = 224

# name -> (image seeds, prompts, multimask_output)
IMAGES = {"a": (150, 200, 1), "b": (240, 180, 5)}

CASES: dict[str, dict] = {
    "single_click": {
        "images": ["a"],
        "input_points": [[[[80, 60]]]],
        "input_labels": [[[1]]],
        "multimask": True,
    },
    "single_click_one_mask": {
        "images": ["a"],
        "input_points": [[[[80, 60]]]],
        "input_labels": [[[1]]],
        "multimask": False,
    },
    "pos_neg_clicks": {
        "images": ["a"],
        "input_points": [[[[80, 60], [150, 100]]]],
        "input_labels": [[[1, 0]]],
        "multimask": False,
    },
    "box": {"images": ["a"], "input_boxes": [[[30, 20, 150, 120]]], "multimask": False},
    "box_multimask": {"images": ["b"], "input_boxes": [[[20, 40, 160, 200]]], "multimask": True},
    "box_and_clicks": {
        "images": ["a"],
        "input_boxes": [[[30, 20, 150, 120]]],
        "input_points": [[[[80, 60], [40, 110]]]],
        "input_labels": [[[1, 0]]],
        "multimask": False,
    },
    "objects_ragged": {
        "images": ["a"],
        "input_points": [[[[80, 60]], [[20, 30], [120, 90]], [[10, 140], [190, 10], [100, 75]]]],
        "input_labels": [[[1], [1, 0], [1, 1, 0]]],
        "multimask": False,
    },
    "two_images": {
        "images": ["a", "b"],
        "input_points": [[[[80, 60]], [[150, 30], [170, 20]]], [[[90, 200]]]],
        "input_labels": [[[1], [1, 1]], [[1]]],
        "multimask": False,
    },
    "two_images_boxes": {
        "images": ["a", "b"],
        "input_boxes": [[[30, 20, 150, 120], [0, 0, 60, 60]], [[20, 40, 160, 200], [100, 10, 170, 90]]],
        "multimask": True,
    },
    "points_no_labels": {"images": ["b"], "input_points": [[[[60, 120], [100, 60]]]], "multimask": True},
}

# Post-processing options, applied to the `two_images` masks (2 objects on image a, 1 on image b).
POST = {
    "pp_default": {},
    "pp_threshold": {"mask_threshold": 1.5},
    "pp_logits": {"binarize": False},
    "pp_non_overlapping": {"apply_non_overlapping_constraints": True},
    "pp_non_overlapping_logits": {"apply_non_overlapping_constraints": True, "binarize": False},
    "pp_holes": {"max_hole_area": 40.0},
    "pp_sprinkles": {"max_sprinkle_area": 40.0},
    "pp_holes_sprinkles_threshold": {"max_hole_area": 25.0, "max_sprinkle_area": 25.0, "mask_threshold": 0.5},
}
LOGIT_STRIDE = 3  # upsampled logits are stored every 3rd pixel (full maps would be ~0.4 MB each)


def images_for(names: list[str]):
    return [make_image(*IMAGES[n][:2], seed=IMAGES[n][2]) for n in names]


def _components_bfs(mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel 8-connected component size of a 2D bool mask (0 off the mask)."""
    h, w = mask.shape
    m = mask.tolist()
    area = [[0] * w for _ in range(h)]
    seen = [[False] * w for _ in range(h)]
    for y0 in range(h):
        for x0 in range(w):
            if not m[y0][x0] or seen[y0][x0]:
                continue
            queue, comp = deque([(y0, x0)]), []
            seen[y0][x0] = True
            while queue:
                y, x = queue.popleft()
                comp.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = y + dy, x + dx
                        if 0 <= ny < h and 0 <= nx < w and m[ny][nx] and not seen[ny][nx]:
                            seen[ny][nx] = True
                            queue.append((ny, nx))
            for y, x in comp:
                area[y][x] = len(comp)
    return torch.tensor(area)


def sam2_cleanup(
    logits: torch.Tensor, threshold: float, max_hole: float, max_sprinkle: float
) -> torch.Tensor:
    """The SAM 2 predictor's hole filling / sprinkle removal on (..., h, w) low-res logits, by a
    plain breadth-first search. As in SAM 2, both the holes and the sprinkles are components of the
    given mask (the sprinkle search does not see the filled holes)."""
    original = logits.reshape(-1, *logits.shape[-2:])
    flat = original.clone()
    for i in range(flat.shape[0]):
        if max_hole > 0:
            area = _components_bfs(original[i] <= threshold)
            flat[i] = torch.where((area > 0) & (area <= max_hole), threshold + 10.0, flat[i])
        if max_sprinkle > 0:
            area = _components_bfs(original[i] > threshold)
            flat[i] = torch.where((area > 0) & (area <= max_sprinkle), threshold - 10.0, flat[i])
    return flat.reshape(logits.shape)


def _inputs_meta(case: dict) -> dict:
    return {k: v for k, v in case.items() if k in ("images", "input_points", "input_labels", "input_boxes")}


# float64 cases (suffix `_f64`): the reference and ours in float64, compared at 1e-9. Mask logits
# every 2nd pixel.
F64_CASES = (
    "single_click",
    "pos_neg_clicks",
    "box",
    "box_multimask",
    "box_and_clicks",
    "objects_ragged",
    "two_images_boxes",
    "points_no_labels",
)
F64_STRIDE = 2


def generate_f64(ctx) -> None:
    """The `_f64` cases: prompts of every kind, multimask, and a mask input resized by the model."""
    from transformers import Sam3ImageProcessor, Sam3TrackerModel, Sam3TrackerProcessor

    from golden._float64 import float_keeps_float64

    model = Sam3TrackerModel.from_pretrained(str(ctx.checkpoint_dir)).eval().double()
    processor = Sam3TrackerProcessor(Sam3ImageProcessor(size={"height": SIZE, "width": SIZE}))

    def save(name, out, meta):
        tensors = {
            "pred_masks": out.pred_masks[..., ::F64_STRIDE, ::F64_STRIDE].contiguous(),
            "iou_scores": out.iou_scores,
            "object_score_logits": out.object_score_logits,
        }
        assert all(t.dtype == torch.float64 for t in tensors.values())
        ctx.save(name + "_f64", tensors, {**meta, "stride": F64_STRIDE})

    for name in F64_CASES:
        case = CASES[name]
        prompts = {k: case[k] for k in ("input_points", "input_labels", "input_boxes") if k in case}
        inputs = processor(images=images_for(case["images"]), return_tensors="pt", **prompts)
        inputs["pixel_values"] = inputs["pixel_values"].double()
        with torch.no_grad():
            out = model(**inputs, multimask_output=case["multimask"])
        save(name, out, {**_inputs_meta(case), "multimask_output": case["multimask"]})
        if name == "single_click":
            # the best mask at another size as a mask input (antialiased resize in the model)
            best = out.pred_masks[:, :, torch.argmax(out.iou_scores.squeeze())]
            mask_input = F.interpolate(best, size=(100, 100), mode="bilinear", align_corners=False)
            refine_points = {"input_points": [[[[80, 60], [120, 40]]]], "input_labels": [[[1, 1]]]}
            refine = processor(original_sizes=inputs["original_sizes"], return_tensors="pt", **refine_points)
            with torch.no_grad(), float_keeps_float64():  # the mask input's resize in float64
                refined = model(
                    **refine,
                    input_masks=mask_input,
                    image_embeddings=out.image_embeddings,
                    multimask_output=False,
                )
            save(
                "mask_refine_resized",
                refined,
                {**refine_points, "source_case": name, "mask_input_size": [100, 100]},
            )


def generate(ctx) -> None:
    from transformers import Sam3ImageProcessor, Sam3TrackerModel, Sam3TrackerProcessor

    model = Sam3TrackerModel.from_pretrained(str(ctx.checkpoint_dir)).eval()
    processor = Sam3TrackerProcessor(Sam3ImageProcessor(size={"height": SIZE, "width": SIZE}))

    outputs = {}
    for name, case in CASES.items():
        prompts = {k: case[k] for k in ("input_points", "input_labels", "input_boxes") if k in case}
        inputs = processor(images=images_for(case["images"]), return_tensors="pt", **prompts)
        with torch.no_grad():
            out = model(**inputs, multimask_output=case["multimask"])
        outputs[name] = (inputs, out)
        tensors = {
            "pred_masks": out.pred_masks,
            "iou_scores": out.iou_scores,
            "object_score_logits": out.object_score_logits,
        }
        tensors.update({k: inputs[k] for k in ("input_points", "input_labels", "input_boxes") if k in inputs})
        ctx.save(name, tensors, {**_inputs_meta(case), "multimask_output": case["multimask"]})

    # Mask-input refinement with reused image embeddings (the seed's "previous masks" example).
    inputs, out = outputs["single_click"]
    best = out.pred_masks[:, :, torch.argmax(out.iou_scores.squeeze())]  # (1, 1, 64, 64)
    refine_points = {"input_points": [[[[80, 60], [120, 40]]]], "input_labels": [[[1, 1]]]}
    refine_inputs = processor(original_sizes=inputs["original_sizes"], return_tensors="pt", **refine_points)
    for name, mask_input in (
        ("mask_refine", best),
        # A mask input at another size goes through the model's antialiased resize.
        ("mask_refine_resized", F.interpolate(best, size=(100, 100), mode="bilinear", align_corners=False)),
    ):
        with torch.no_grad():
            refined = model(
                **refine_inputs,
                input_masks=mask_input,
                image_embeddings=out.image_embeddings,
                multimask_output=False,
            )
        ctx.save(
            name,
            {
                "pred_masks": refined.pred_masks,
                "iou_scores": refined.iou_scores,
                "object_score_logits": refined.object_score_logits,
                "input_points": refine_inputs["input_points"],
            },
            {**refine_points, "source_case": "single_click", "mask_input_size": list(mask_input.shape[-2:])},
        )

    # Post-processing options on the two-image outputs.
    inputs, out = outputs["two_images"]
    sizes = inputs["original_sizes"]
    for name, options in POST.items():
        masks = out.pred_masks
        threshold = options.get("mask_threshold", 0.0)
        hole, sprinkle = options.get("max_hole_area", 0.0), options.get("max_sprinkle_area", 0.0)
        if hole > 0 or sprinkle > 0:
            masks = sam2_cleanup(masks, threshold, hole, sprinkle)
            changed = int(((masks > threshold) != (out.pred_masks > threshold)).sum())
            assert changed > 0, f"{name}: the cleanup changed nothing; pick other areas"
        ref_options = {k: v for k, v in options.items() if k not in ("max_hole_area", "max_sprinkle_area")}
        result = processor.post_process_masks(list(masks), sizes, **ref_options)
        tensors, shapes = {}, {}
        for i, r in enumerate(result):
            shapes[f"masks_{i}"] = list(r.shape)
            if r.dtype == torch.bool:  # full-resolution booleans, packed 8 per byte
                tensors[f"masks_{i}"] = torch.from_numpy(np.packbits(r.numpy().reshape(-1)))
            else:
                tensors[f"masks_{i}"] = r[..., ::LOGIT_STRIDE, ::LOGIT_STRIDE].contiguous()
        meta = {
            "options": options,
            "source_case": "two_images",
            "logit_stride": LOGIT_STRIDE,
            "shapes": shapes,
        }
        if hole > 0 or sprinkle > 0:
            meta["low_res_pixels_changed"] = changed
        ctx.save(name, tensors, meta)

    generate_f64(ctx)
