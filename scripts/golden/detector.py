"""Golden cases of the concept detector (`Sam3Model`, `Sam3Processor`, the CLIP tokenizer).

Every case runs the reference processor (224 px, the tiny tokenizer) and the reference model on
the tiny combined checkpoint, and stores the processor's prompt tensors next to the outputs.

Sizes: the tiny model predicts (B, 20, 64, 64) mask logits, 330 kB per image in float32. Masks are
stored on a strided grid (every 2nd pixel for the single-image text case, every 4th elsewhere),
which still covers the whole map and every query; the (B, 1, 64, 64) semantic map is stored whole.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from test_images import make_image

# Phrases whose ids must match the reference tokenizer: punctuation, upper case, accents,
# contractions, digits, repeated whitespace, and one longer than the 32-token context.
TOKENIZER_PHRASES = [
    "yellow school bus",
    "A Photo of a CAT!!",
    "  it's   the dog's  ball.\n",
    "ÉCOLE café naïve",
    "3.14 apples, 12 pears",
    "Hello,World?!",
    "visual",
    "the quick brown fox jumps over the lazy dog " * 4,
]

MASK_STRIDE = {"text": 2}  # other cases: 4


def _images():
    return make_image(150, 200, seed=1), make_image(240, 180, seed=5)


# name -> (images index list, processor kwargs)
CASES = {
    "text": ([0], {"text": "yellow school bus"}),
    "boxes": (
        [1],
        {
            "input_boxes": [[[20.0, 30.0, 90.0, 110.0], [100.0, 50.0, 170.0, 200.0]]],
            "input_boxes_labels": [[1, 0]],
        },
    ),
    "text_negative_box": (
        [0],
        {"text": "handle", "input_boxes": [[[40.0, 60.0, 150.0, 90.0]]], "input_boxes_labels": [[0]]},
    ),
    "batch_text": ([0, 1], {"text": ["ear", "dial"]}),
    "batch_mixed": (
        [0, 1],
        {
            "text": ["laptop", None],
            "input_boxes": [None, [[59.0, 44.0, 76.0, 63.0]]],
            "input_boxes_labels": [None, [1]],
        },
    ),
}


def _reference_model(ctx):
    from safetensors.torch import load_file
    from transformers import Sam3Model

    state = load_file(str(ctx.checkpoint_dir / "model.safetensors"))
    detector = {k[len("detector_model.") :]: v for k, v in state.items() if k.startswith("detector_model.")}
    model = Sam3Model(ctx.reference_config()).eval()
    model.load_state_dict(detector, strict=True)
    return model


def _reference_processor(ctx):
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Processor

    tokenizer = CLIPTokenizer.from_pretrained(str(ctx.checkpoint_dir))
    return Sam3Processor(
        image_processor=Sam3ImageProcessor(size={"height": 224, "width": 224}), tokenizer=tokenizer
    )


def _outputs(out, stride: int) -> dict[str, torch.Tensor]:
    return {
        "pred_masks": out.pred_masks[:, :, ::stride, ::stride].contiguous(),
        "pred_boxes": out.pred_boxes,
        "pred_logits": out.pred_logits,
        "presence_logits": out.presence_logits,
        "semantic_seg": out.semantic_seg,
    }


def _threshold_between_scores(scores: torch.Tensor) -> float:
    """A score threshold in the widest gap among the top ~8 scores, so that tiny numeric
    differences cannot flip which instances are kept."""
    top = scores.flatten().sort(descending=True).values[:9]
    gaps = top[1:-1] - top[2:]  # keep at least 2 instances
    k = int(gaps.argmax()) + 1
    return float((top[k] + top[k + 1]) / 2)


def generate(ctx) -> None:
    model = _reference_model(ctx)
    processor = _reference_processor(ctx)
    tokenizer = processor.tokenizer
    images = _images()

    # Tokenizer ids (truncated to the 32-token context like our tokenizer does).
    enc = tokenizer(TOKENIZER_PHRASES, padding="max_length", max_length=32, truncation=True)
    ctx.save(
        "tokenizer",
        None,
        {
            "phrases": TOKENIZER_PHRASES,
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
        },
    )

    # The text encoder alone, on a padded batch (causal + padding masks).
    text_inputs = tokenizer(TOKENIZER_PHRASES[:4], padding="max_length", max_length=32, return_tensors="pt")
    with torch.no_grad():
        text_out = model.get_text_features(**text_inputs)
    ctx.save(
        "text_features",
        {
            "input_ids": text_inputs["input_ids"],
            "attention_mask": text_inputs["attention_mask"],
            "last_hidden_state": text_out.last_hidden_state,
            "pooler_output": text_out.pooler_output,
        },
    )

    with tempfile.TemporaryDirectory() as tmp:
        processor.save_pretrained(tmp)
        processor_config = (Path(tmp) / "processor_config.json").read_text()

    for name, (indices, kwargs) in CASES.items():
        inputs = processor(images=[images[i] for i in indices], return_tensors="pt", **kwargs)
        with torch.no_grad():
            out = model(**inputs)
        stride = MASK_STRIDE.get(name, 4)
        prompt = {
            k: inputs[k]
            for k in ("input_ids", "attention_mask", "input_boxes", "input_boxes_labels")
            if k in inputs
        }
        tensors = {
            **_outputs(out, stride),
            **prompt,
            # pixel values are checked by the vision goldens; a strided copy localises a mismatch.
            "pixel_values_strided": inputs["pixel_values"][:, :, ::8, ::8].contiguous(),
        }
        meta = {
            "images": indices,
            "kwargs": kwargs,
            "mask_stride": stride,
            "original_sizes": inputs["original_sizes"].tolist(),
        }
        ctx.save(name, tensors, meta)

        if name == "text":
            threshold = _threshold_between_scores(out.pred_logits.sigmoid() * out.presence_logits.sigmoid())
            sizes = inputs["original_sizes"].tolist()
            (inst,) = processor.post_process_instance_segmentation(
                out, threshold=threshold, mask_threshold=0.5, target_sizes=sizes
            )
            (semantic,) = processor.post_process_semantic_segmentation(out, target_sizes=sizes)
            ctx.save(
                "post_process",
                {
                    "scores": inst["scores"],
                    "boxes": inst["boxes"],
                    "masks": inst["masks"].to(torch.uint8),
                    "semantic": semantic.to(torch.uint8),
                },
                {"threshold": threshold, "mask_threshold": 0.5, "target_sizes": sizes},
            )

    ctx.save("processor_config", None, {"processor_config.json": processor_config})
    _generate_float64(ctx, model, processor, images)


def _float64_inputs(inputs) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in inputs.items() if hasattr(v, "dtype")}


def _generate_float64(ctx, model, processor, images) -> None:
    """The same cases with the model and its floating inputs in float64 (`<case>_f64`): rounding
    differences there are ~1e-12, so the tests can tell logic from rounding at 1e-9. Masks on a
    4-pixel grid keep the files small."""
    model = model.double()
    for name, (indices, kwargs) in CASES.items():
        inputs = processor(images=[images[i] for i in indices], return_tensors="pt", **kwargs)
        with torch.no_grad():
            out = model(**_float64_inputs(inputs))
        meta = {"images": indices, "kwargs": kwargs, "mask_stride": 4, "dtype": "float64"}
        ctx.save(f"{name}_f64", _outputs(out, 4), meta)
        if name in ("text", "batch_text"):
            # kept instances at a threshold crossed by no score: every decision must agree
            probs = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()
            threshold = _threshold_between_scores(probs)
            sizes = inputs["original_sizes"].tolist()
            results = processor.post_process_instance_segmentation(
                out, threshold=threshold, mask_threshold=0.5, target_sizes=sizes
            )
            tensors = {}
            for i, inst in enumerate(results):
                tensors.update(
                    {
                        f"scores_{i}": inst["scores"],
                        f"boxes_{i}": inst["boxes"],
                        f"masks_{i}": torch.from_numpy(np.packbits(inst["masks"].numpy().reshape(-1))),
                        f"mask_shape_{i}": torch.tensor(inst["masks"].shape),
                    }
                )
            ctx.save(
                f"post_process_{name}_f64",
                tensors,
                {"threshold": threshold, "mask_threshold": 0.5, "target_sizes": sizes, "images": indices},
            )
