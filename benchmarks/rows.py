"""The benchmark's workloads, written once against the API that sam3_core and the reference share
(the same class and method names), so both run the same calls on the same inputs.

Each row is a function `(env, dtype) -> step`; `step()` returns `(outputs, seconds)`: a dict of
tensors to compare across implementations, and the time to report (None: the wall time of the
call). Inputs are made with NumPy's seeded generator, so they are identical in both interpreters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:  # ours only (the reference's interpreter imports this file too)
    from sam3_core.modeling.fast_modes import quantize_linear_int8
except ImportError:
    quantize_linear_int8 = None

IMAGE_HW = (720, 1280)  # a 720p photo or frame
PHRASE_IDS = [49406, 320, 1929, 49407]  # a short CLIP-tokenised phrase, padded to 32 tokens


@dataclass
class Env:
    """What a worker knows: the library (`sam3_core` or `transformers`), its checkpoints, a cache
    of loaded models and embeddings shared between rows."""

    lib: Any
    impl: str  # "ours" or "reference"
    sam3: Path
    edgetam: Path
    video_frames: int
    auto_points: int
    text_video: bool = False  # sam3_core has Sam3VideoModel
    device: str = "cpu"  # where models, inputs and sessions live ("cuda" on a GPU)
    lite: dict = field(default_factory=dict)  # SAM3-LiteText size ("s0", ...) → checkpoint folder
    # the "int8" rows: ours with int8 dynamically quantised linear layers, the reference in float32
    quantize: bool = False
    cache: dict = field(default_factory=dict)

    def model(self, name: str, dtype: torch.dtype):
        quantize = self.quantize and self.impl == "ours"
        key = (name, dtype, quantize)
        if any(k[1:] != key[1:] for k in self.cache if len(k) == 3):  # one mode's models at a time
            self.cache.clear()
        if key not in self.cache:
            folder = self.edgetam if name == "EdgeTamVideoModel" else self.sam3
            if ":" in name:  # "Sam3LiteTextModel:s0": a LiteText size's own checkpoint
                name, size = name.split(":")
                folder = self.lite[size]
            model = getattr(self.lib, name).from_pretrained(str(folder)).eval().to(self.device, dtype)
            if quantize:
                model = quantize_linear_int8(model)
            self.cache[key] = model
        return self.cache[key]

    def sync(self) -> None:
        """Wait for the GPU's queued work, so a timer measures it (nothing to do on the CPU)."""
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def image(seed: int = 0, hw: tuple[int, int] = IMAGE_HW) -> np.ndarray:
    """(H, W, 3) uint8 smooth random image (noise upsampled, so masks have some structure)."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, size=(hw[0] // 40 + 1, hw[1] // 40 + 1, 3)).astype(np.uint8)
    return np.repeat(np.repeat(small, 40, 0), 40, 1)[: hw[0], : hw[1]].copy()


def pixels(size: int, dtype: torch.dtype, device: str = "cpu") -> torch.Tensor:
    rng = np.random.RandomState(1)
    return torch.from_numpy(rng.standard_normal((1, 3, size, size)).astype(np.float32)).to(device, dtype)


def _sub(x: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """A strided sample of a large map (enough to compare, small to ship between processes)."""
    return x[..., ::stride, ::stride].float().contiguous()


def _image_processor(env: Env):
    if env.impl == "ours":
        return env.lib.Sam3TrackerProcessor()
    return env.lib.Sam3TrackerProcessor(image_processor=env.lib.Sam3ImageProcessor())


def _video_processor(env: Env, edgetam: bool = False):
    lib = env.lib
    if env.impl == "ours":
        return lib.Sam2VideoProcessor() if edgetam else lib.Sam3TrackerVideoProcessor()
    if edgetam:
        return lib.Sam2VideoProcessor(
            image_processor=lib.Sam2ImageProcessor(), video_processor=lib.Sam2VideoVideoProcessor()
        )
    size = {"height": 1008, "width": 1008}
    return lib.Sam3TrackerVideoProcessor(
        image_processor=lib.Sam3ImageProcessor(size=size),
        video_processor=lib.Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
    )


def _embeddings(env: Env, dtype: torch.dtype):
    key = ("embeddings", dtype)
    if key not in env.cache:
        model = env.model("Sam3TrackerModel", dtype)
        with torch.inference_mode():
            env.cache[key] = model.get_image_embeddings(pixels(1008, dtype, env.device))
    return env.cache[key]


def backbone(env: Env, dtype: torch.dtype) -> Callable:
    """Image backbone + the tracker's FPN neck on one 1008 px image."""
    model = env.model("Sam3TrackerModel", dtype)
    px = pixels(1008, dtype, env.device)

    def step():
        emb = model.get_image_embeddings(px)
        return {f"level{i}": _sub(e) for i, e in enumerate(emb)}, None

    return step


def click(env: Env, dtype: torch.dtype) -> Callable:
    """One click on an embedded image: prompt encoder, mask decoder, masks to the 720p original."""
    model = env.model("Sam3TrackerModel", dtype)
    processor = _image_processor(env)
    emb = _embeddings(env, dtype)
    points = torch.tensor([[[[400.0, 300.0]]]], device=env.device)  # model-input pixels
    labels = torch.ones(1, 1, 1, dtype=torch.long, device=env.device)

    def step():
        out = model(image_embeddings=emb, input_points=points, input_labels=labels, multimask_output=True)
        masks = processor.post_process_masks(out.pred_masks, [list(IMAGE_HW)], binarize=False)[0]
        return {
            "pred_masks": out.pred_masks.float(),
            "iou": out.iou_scores.float(),
            "full": _sub(masks, 8),
        }, None

    return step


def auto_masks(env: Env, dtype: torch.dtype) -> Callable:
    """The decoder over a grid of single-point prompts (automatic masks), 64 points per batch."""
    model = env.model("Sam3TrackerModel", dtype)
    emb = _embeddings(env, dtype)
    n = env.auto_points
    grid = (np.arange(n) + 0.5) / n * 1008
    pts = torch.tensor(
        np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2), dtype=torch.float32, device=env.device
    )

    def step():
        ious = []
        for chunk in pts.split(64):
            out = model(
                image_embeddings=emb,
                input_points=chunk[None, :, None, :],
                input_labels=torch.ones(1, len(chunk), 1, dtype=torch.long, device=env.device),
                multimask_output=True,
            )
            ious.append(out.iou_scores.float())
        return {"iou": torch.cat(ious, dim=1)}, None

    return step


def _text(env: Env):
    ids = torch.zeros(1, 32, dtype=torch.long)
    ids[0, : len(PHRASE_IDS)] = torch.tensor(PHRASE_IDS)
    mask = torch.zeros(1, 32, dtype=torch.long)
    mask[0, : len(PHRASE_IDS)] = 1
    return ids.to(env.device), mask.to(env.device)


def _concept_outputs(out) -> dict:
    return {
        "pred_logits": out.pred_logits.float(),
        "pred_boxes": out.pred_boxes.float(),
        "pred_masks": _sub(out.pred_masks, 8),
    }


def concept_heads(env: Env, dtype: torch.dtype) -> Callable:
    """A new phrase on a cached image: text encoder, DETR encoder/decoder, mask head."""
    model = env.model("Sam3Model", dtype)
    key = ("vision", dtype)
    if key not in env.cache:
        with torch.inference_mode():
            env.cache[key] = model.get_vision_features(pixel_values=pixels(1008, dtype, env.device))
    vision = env.cache[key]
    ids, mask = _text(env)

    def step():
        return _concept_outputs(model(vision_embeds=vision, input_ids=ids, attention_mask=mask)), None

    return step


def concept_e2e(env: Env, dtype: torch.dtype) -> Callable:
    """Concept segmentation end to end: backbone, detector FPN, text, heads, instance masks at 720p."""
    model = env.model("Sam3Model", dtype)
    ids, mask = _text(env)
    px = pixels(1008, dtype, env.device)
    if env.impl == "ours":
        processor = env.lib.Sam3Processor(tokenizer=None)
    else:
        processor = env.lib.Sam3Processor(
            image_processor=env.lib.Sam3ImageProcessor(),
            tokenizer=env.lib.CLIPTokenizer.from_pretrained(str(env.sam3)),
        )

    def step():
        out = model(pixel_values=px, input_ids=ids, attention_mask=mask)
        result = processor.post_process_instance_segmentation(
            out, threshold=0.0, mask_threshold=0.5, target_sizes=[list(IMAGE_HW)]
        )[0]
        return {**_concept_outputs(out), "scores": result["scores"].float()}, None

    return step


class _CachedFeatures:
    """Memoises a model's `get_image_features` per frame content, so that timed propagations
    measure the tracking step only (the backbone ran once, in the warm-up)."""

    def __init__(self, model):
        self.model, self.original, self.store = model, model.get_image_features, {}
        model.get_image_features = self

    def __call__(self, pixel_values, *args, **kwargs):
        key = (tuple(pixel_values.shape), float(pixel_values.float().sum()))
        if key not in self.store:
            self.store[key] = self.original(pixel_values, *args, **kwargs)
        return self.store[key]


def _track(
    env: Env, dtype: torch.dtype, objects: int, model_name: str, edgetam: bool, cached: bool
) -> Callable:
    model = env.model(model_name, dtype)
    if cached and not isinstance(model.get_image_features, _CachedFeatures):
        _CachedFeatures(model)
    if not cached and isinstance(model.get_image_features, _CachedFeatures):
        model.get_image_features = model.get_image_features.original
    processor = _video_processor(env, edgetam)
    frames = [image(seed) for seed in range(env.video_frames)]
    rng = np.random.RandomState(2)
    clicks = rng.randint(100, 600, size=(objects, 2)).tolist()

    def step():
        session = processor.init_video_session(video=frames, inference_device=env.device, dtype=dtype)
        processor.add_inputs_to_inference_session(
            session,
            0,
            list(range(1, objects + 1)),
            input_points=[[[c] for c in clicks]],
            input_labels=[[[1]] * objects],
        )
        first = model(inference_session=session, frame_idx=0)
        outs, scores = [first.pred_masks], [first.object_score_logits]
        times = []
        env.sync()
        t = time.perf_counter()
        for out in model.propagate_in_video_iterator(session, start_frame_idx=1):
            env.sync()
            times.append(time.perf_counter() - t)
            outs.append(out.pred_masks)
            scores.append(out.object_score_logits)
            t = time.perf_counter()
        # With random weights the objects are often judged absent (masks all NO_OBJ_SCORE), so
        # the presence logits are compared too.
        return {
            "masks": torch.stack([_sub(m, 8) for m in outs]),
            "object_scores": torch.stack([s.float().flatten() for s in scores]),
        }, float(np.median(times))

    return step


def _video(objects: int, cached: bool, model_name: str = "Sam3TrackerVideoModel", edgetam: bool = False):
    def row(env: Env, dtype: torch.dtype) -> Callable:
        return _track(env, dtype, objects, model_name, edgetam, cached)

    return row


def text_video(env: Env, dtype: torch.dtype) -> Callable | None:
    """Text-prompted video per frame (`Sam3VideoModel`): skipped until sam3_core has it (the driver
    says so with --text-video, so the reference is not timed alone)."""
    if not env.text_video:
        return None
    model = env.model("Sam3VideoModel", dtype)
    processor = env.lib.Sam3VideoProcessor.from_pretrained(str(env.sam3))
    frames = [image(seed) for seed in range(env.video_frames)]

    def step():
        session = processor.init_video_session(video=frames, inference_device=env.device, dtype=dtype)
        processor.add_text_prompt(session, "person")
        # Mean over the whole propagation: the iterator may do work before its first yield.
        env.sync()
        t = time.perf_counter()
        frames_done = sum(1 for _ in model.propagate_in_video_iterator(session))
        env.sync()
        return {}, (time.perf_counter() - t) / max(frames_done, 1)

    return step


# Rows a CPU run leaves out unless asked for by name (minutes per frame there); a GPU run times them.
GPU_ROWS = ("track_16", "track_64")

# name → (description, row function); the order of the report.
ROWS: dict[str, tuple[str, Callable]] = {
    "click": ("click on an embedded image (decoder + masks to 720p)", click),
    "backbone": ("image backbone + FPN, 1008 px", backbone),
    "track_1": ("video tracking step, 1 object (backbone cached)", _video(1, cached=True)),
    "track_3": ("video tracking step, 3 objects (backbone cached)", _video(3, cached=True)),
    "track_8": ("video tracking step, 8 objects (backbone cached)", _video(8, cached=True)),
    "track_16": ("video tracking step, 16 objects (backbone cached)", _video(16, cached=True)),
    "track_64": ("video tracking step, 64 objects (backbone cached)", _video(64, cached=True)),
    "edgetam_1": (
        "EdgeTAM per frame, 1 object, 1024 px",
        _video(1, False, "EdgeTamVideoModel", edgetam=True),
    ),
    "concept_heads": ("concept heads, new phrase on a cached image", concept_heads),
    "auto_masks": ("automatic masks: decoder over an N×N point grid", auto_masks),
    "video_frame_1": ("video per frame, 1 object (with backbone)", _video(1, cached=False)),
    "concept_e2e": ("concept segmentation end to end", concept_e2e),
    "text_video": ("text-prompted video per frame (Sam3VideoModel)", text_video),
}
