"""Golden cases of the API surface: the documented output fields and what the reference loads
from folders our `save_pretrained` wrote (ours → reference round trip).

Runs in the reference venv with our packages importable (PYTHONPATH, see README): our models load
the tiny checkpoint and save themselves; the reference's `AutoModel` / `AutoProcessor` load those
folders (no missing or unexpected keys allowed) and their outputs are stored.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from test_images import make_image

IMAGE_SEED = (150, 200, 1)
TEXT = ["ear", "a dial"]
POINTS, LABELS = [[[[80, 60]]]], [[[1]]]


def _load_reference(folder: Path):
    from transformers import AutoModel, AutoProcessor

    model, info = AutoModel.from_pretrained(str(folder), output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"the reference did not load {folder} cleanly: {problems}")
    return model.eval(), AutoProcessor.from_pretrained(str(folder))


def generate(ctx) -> None:
    import sam3_core

    image = make_image(*IMAGE_SEED[:2], seed=IMAGE_SEED[2])
    with tempfile.TemporaryDirectory() as tmp:
        saved = {}
        for name, model_cls, processor_cls in (
            ("detector", sam3_core.Sam3Model, sam3_core.Sam3Processor),
            ("tracker", sam3_core.Sam3TrackerModel, sam3_core.Sam3TrackerProcessor),
            ("video", sam3_core.Sam3TrackerVideoModel, sam3_core.Sam3TrackerVideoProcessor),
        ):
            folder = Path(tmp) / name
            model_cls.from_pretrained(ctx.checkpoint_dir).save_pretrained(folder)
            processor_cls.from_pretrained(ctx.checkpoint_dir, size=224).save_pretrained(folder)
            saved[name] = folder

        model, processor = _load_reference(saved["detector"])
        text_inputs = processor(text=TEXT, return_tensors="pt")
        inputs = processor(images=[image, image], text=TEXT, return_tensors="pt")
        with torch.no_grad():
            text = model.get_text_features(**text_inputs)
            out = model(**inputs)
        ctx.save(
            "detector_fields",
            {
                "input_ids": text_inputs["input_ids"],
                "attention_mask": text_inputs["attention_mask"],
                "text_embeds": text.text_embeds,
                "last_hidden_state": text.last_hidden_state,
                "pooler_output": text.pooler_output,
                "pred_logits": out.pred_logits,
                "pred_boxes": out.pred_boxes,
                "decoder_reference_boxes": out.decoder_reference_boxes,
            },
            {"text": TEXT, "image": IMAGE_SEED, "class": type(model).__name__},
        )

        model, processor = _load_reference(saved["tracker"])
        inputs = processor(images=image, input_points=POINTS, input_labels=LABELS, return_tensors="pt")
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True)
            as_tuple = model(**inputs, return_dict=False)
        masks = processor.post_process_masks(
            out.pred_masks.to(torch.bfloat16), inputs["original_sizes"], binarize=False
        )[0]
        ctx.save(
            "tracker_fields",
            {
                "iou_scores": out.iou_scores,
                "pred_masks": out.pred_masks,
                **{f"vision_hidden_states.{i}": h for i, h in enumerate(out.vision_hidden_states)},
                "bf16_masks": masks[:, :, ::3, ::3].contiguous(),
            },
            {
                "points": POINTS,
                "labels": LABELS,
                "image": IMAGE_SEED,
                "class": type(model).__name__,
                "tuple_length": len(as_tuple),
                "bf16_masks_dtype": str(masks.dtype),
                "keys": list(out.keys()),
            },
        )

        model, processor = _load_reference(saved["video"])
        session = processor.init_video_session(video=[image] * 3, inference_device="cpu")
        processor.add_inputs_to_inference_session(
            inference_session=session, frame_idx=0, obj_ids=1, input_points=POINTS, input_labels=LABELS
        )
        frames = {}
        with torch.no_grad():
            model(inference_session=session, frame_idx=0)
            for output in model.propagate_in_video_iterator(session):
                frames[f"frame.{output.frame_idx}"] = output.pred_masks
        ctx.save("video_round_trip", frames, {"class": type(model).__name__, "points": POINTS})
