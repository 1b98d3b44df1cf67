"""Golden cases of SAM3-LiteText (`Sam3LiteTextModel`) on tiny random checkpoints, one per text
encoder variant (tests/fixtures/lite_text_checkpoint.py), in float32 and float64.

Per variant and dtype:
- `text_<variant>_<dtype>_L<n>`: the text encoder alone (`get_text_features` and the encoder's own
  pooled projection) on a batch of 3 hand-made phrases of n tokens (n = 1, 5, 16, 32), padding
  inside; token states whole in float32 and every 4th channel in float64, the detector-width
  features every 8th channel (a linear map of the token states);
- `forward_<variant>_<dtype>`: the whole model on 2 images with 2 phrases through the reference
  processor (mask logits and the semantic map every 8th and 4th pixel), and for float32 the score
  thresholds in a wide gap of each image's scores, at which the kept instances are compared;
- `boxes_<variant>_float32` (first variant only): a phrase with a negative exemplar box;
- `round_trip_<variant>` (the first two): ours → reference, the outputs of the reference's
  `AutoModel` / `AutoProcessor` on a folder our `save_pretrained` wrote (loaded with no missing or
  unexpected key), and reference → ours, the config.json the reference's `save_pretrained` writes.
Sizes: about 100 kB per variant.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from lite_text_checkpoint import LITE_TEXT_DIR, VARIANTS, lite_text_config, write_lite_text_checkpoint
from safetensors.torch import load_file

from golden.detector import _images, _reference_processor, _threshold_between_scores

LENGTHS = (1, 5, 16, 32)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PHRASES = ["ear", "yellow school bus"]


def _reference_config(variant: str):
    from transformers import Sam3LiteTextConfig

    return Sam3LiteTextConfig.from_dict(lite_text_config(variant))


def write_manifest() -> None:
    from transformers import Sam3LiteTextModel

    shared: dict = {}
    text: dict = {}
    for variant in VARIANTS:
        state = Sam3LiteTextModel(_reference_config(variant)).state_dict()
        own = {}
        for key, tensor in state.items():
            if key.startswith(("text_encoder.", "text_projection.")):
                own[key] = list(tensor.shape)
            elif shared.setdefault(key, list(tensor.shape)) != list(tensor.shape):
                raise ValueError(f"{key}: the variants' detectors differ")
        text[variant] = own
    LITE_TEXT_DIR.mkdir(exist_ok=True)
    (LITE_TEXT_DIR / "manifest.json").write_text(json.dumps({"shared": shared, "text": text}, indent=0))


def reference_model(checkpoint_dir: Path, variant: str, dtype: torch.dtype):
    from transformers import Sam3LiteTextModel

    model = Sam3LiteTextModel(_reference_config(variant)).eval()
    own = model.state_dict()
    # the random writer stores every tensor as float32; BatchNorm counters are int64 in the model
    state = {k: v.to(own[k].dtype) for k, v in load_file(str(checkpoint_dir / "model.safetensors")).items()}
    model.load_state_dict(state, strict=True)
    return model.to(dtype)


def phrase_ids(length: int, vocab: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """3 phrases of `length` tokens: start token, random words, end token (the largest id), then
    padding (the end id again, like CLIP's tokenizer), of 3 different real lengths."""
    generator = torch.Generator().manual_seed(length)
    ids = torch.randint(1, vocab - 2, (3, length), generator=generator)
    mask = torch.zeros(3, length, dtype=torch.long)
    for row, real in enumerate((length, max(1, (2 * length) // 3), max(1, length // 3))):
        ids[row, 0] = vocab - 2
        ids[row, real - 1] = vocab - 1
        ids[row, real:] = vocab - 1
        mask[row, :real] = 1
    return ids, mask


def _forward_outputs(out, stride: int) -> dict[str, torch.Tensor]:
    return {
        "pred_masks": out.pred_masks[:, :, ::stride, ::stride].contiguous(),
        "pred_boxes": out.pred_boxes,
        "pred_logits": out.pred_logits,
        "presence_logits": out.presence_logits,
        "semantic_seg": out.semantic_seg[:, :, ::4, ::4].contiguous(),
    }


def round_trip(ctx, checkpoint: Path, variant: str, folder: Path, images) -> None:
    import sam3_core
    from transformers import AutoModel, AutoProcessor

    sam3_core.Sam3LiteTextModel.from_pretrained(checkpoint).save_pretrained(folder / "ours")
    sam3_core.Sam3Processor.from_pretrained(checkpoint, size=224).save_pretrained(folder / "ours")
    model, info = AutoModel.from_pretrained(str(folder / "ours"), output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems or type(model).__name__ != "Sam3LiteTextModel":
        raise SystemExit(f"the reference did not load our {variant} folder cleanly: {type(model)} {problems}")
    processor = AutoProcessor.from_pretrained(str(folder / "ours"))
    inputs = processor(images=images[1], text="dial", return_tensors="pt")
    with torch.no_grad():
        out = model.eval()(**inputs)
    model.save_pretrained(folder / "reference")
    ctx.save(
        f"round_trip_{variant}",
        {"pred_logits": out.pred_logits, "pred_boxes": out.pred_boxes, "input_ids": inputs["input_ids"]},
        {
            "config.json": (folder / "reference" / "config.json").read_text(),
            "class": type(processor).__name__,
        },
    )


def generate(ctx) -> None:
    write_manifest()
    processor = _reference_processor(ctx)
    images = _images()
    inputs = processor(images=list(images), text=PHRASES, return_tensors="pt")
    box_inputs = processor(
        images=images[0], text="handle", input_boxes=[[[40.0, 60.0, 150.0, 90.0]]], input_boxes_labels=[[0]],
        return_tensors="pt",
    )  # fmt: skip
    ctx.save("inputs", {k: v for k, v in inputs.items() if k != "pixel_values"}, {"phrases": PHRASES})
    with tempfile.TemporaryDirectory() as tmp:
        for v_index, variant in enumerate(VARIANTS):
            ckpt = write_lite_text_checkpoint(Path(tmp) / variant, variant)
            if v_index < 2:
                round_trip(ctx, ckpt, variant, Path(tmp) / f"{variant}-saved", images)
            for dtype_name, dtype in DTYPES.items():
                model = reference_model(ckpt, variant, dtype)
                channel_stride = 1 if dtype == torch.float32 else 4
                with torch.no_grad():
                    for length in LENGTHS:
                        ids, mask = phrase_ids(length)
                        text = model.get_text_features(input_ids=ids, attention_mask=mask)
                        encoder = model.text_encoder(input_ids=ids, attention_mask=mask)
                        ctx.save(
                            f"text_{variant}_{dtype_name}_L{length}",
                            {
                                "input_ids": ids,
                                "attention_mask": mask,
                                "last_hidden_state": text.last_hidden_state[
                                    ..., ::channel_stride
                                ].contiguous(),
                                "pooler_output": text.pooler_output[..., ::8].contiguous(),
                                "text_embeds": encoder.pooler_output,
                            },
                        )
                    out = model(**{**inputs, "pixel_values": inputs["pixel_values"].to(dtype)})
                    stride = 8
                    tensors = _forward_outputs(out, stride)
                    meta = {"mask_stride": stride}
                    if dtype == torch.float32:
                        scores = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()
                        meta["thresholds"] = [_threshold_between_scores(s) for s in scores]
                    ctx.save(f"forward_{variant}_{dtype_name}", tensors, meta)
                    if v_index == 0 and dtype == torch.float32:
                        out = model(**box_inputs)
                        ctx.save(f"boxes_{variant}_float32", _forward_outputs(out, 8), {"mask_stride": 8})
