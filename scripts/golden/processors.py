"""Golden cases of the processors under several `processor_config.json` files (tests/fixtures/
processor_cases.py): the reference's processors are loaded from each file with their own
`from_pretrained`, as a user would, and run on the same images, prompts and video.

Per config: the image path (pixel values every 4th pixel, original sizes, padded and scaled
prompts, segmentation labels), for the trackers `post_process_masks` of fixed logits, for the
video processors the session's normalised frames and the video processor's reshaped input sizes,
and, for one non-default config per processor, the model's outputs end to end on the tiny
checkpoints.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import processor_cases as pc
import torch
import video_scenarios as vs
from tiny_checkpoint import write_tiny_checkpoint

from golden.edgetam import TINY_EDGETAM_DIR
from golden.edgetam import reference_model as edgetam_reference_model
from golden.video import reference_model as video_reference_model


def _reference_processor(cls_name: str, config: dict, checkpoint_dir: Path, folder: Path):
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    if cls_name == "Sam3Processor":  # the tokenizer files sit beside processor_config.json
        for path in checkpoint_dir.iterdir():
            if path.suffix in (".json", ".txt") and path.name != "config.json":
                shutil.copyfile(path, folder / path.name)
    (folder / "processor_config.json").write_text(json.dumps(config, indent=2))
    return getattr(transformers, cls_name).from_pretrained(str(folder))


def _image_path(cls_name: str, processor) -> dict[str, torch.Tensor]:
    if cls_name == "Sam3Processor":
        prompts = pc.DETECTOR_PROMPTS
    else:
        prompts = pc.TRACKER_PROMPTS
    out = processor(
        images=pc.images(), segmentation_maps=pc.segmentation_maps(), return_tensors="pt", **prompts
    )
    return pc.record_image_inputs(out)


def _video_path(processor) -> tuple[dict[str, torch.Tensor], dict]:
    frames = vs.video(pc.NUM_FRAMES)
    session = processor.init_video_session(video=frames)
    pixels = torch.stack([session.processed_frames[i] for i in range(pc.NUM_FRAMES)])
    reshaped = processor.video_processor(videos=frames, return_tensors="pt").reshaped_input_sizes
    tensors = {"video_pixel_values": pixels[:, :, :: pc.STRIDE, :: pc.STRIDE].contiguous()}
    meta = {
        "video_original_size": [int(session.video_height), int(session.video_width)],
        "video_reshaped_input_sizes": torch.as_tensor(reshaped).tolist(),
    }
    return tensors, meta


def _end_to_end(name: str, processor, ctx, edgetam_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors.torch import load_file
    from transformers import Sam3Model, Sam3TrackerModel

    if name.startswith("sam3_"):
        state = load_file(str(ctx.checkpoint_dir / "model.safetensors"))
        model = Sam3Model(ctx.reference_config()).eval()
        model.load_state_dict(
            {k[len("detector_model.") :]: v for k, v in state.items() if k.startswith("detector_model.")}
        )
        inputs = processor(images=pc.images()[0], text="a red ellipse", return_tensors="pt")
        with torch.no_grad():
            out = model(**inputs)
        tensors = {
            "pred_logits": out.pred_logits,
            "pred_boxes": out.pred_boxes,
            "presence_logits": out.presence_logits,
            "pred_masks": out.pred_masks[..., ::2, ::2].contiguous(),
            "semantic_seg": out.semantic_seg[..., ::2, ::2].contiguous(),
        }
        return {f"model_{k}": v for k, v in tensors.items()}, {}
    if name.startswith("tracker_video_") or name.startswith("sam2_video_"):
        model = (
            video_reference_model(ctx)
            if name.startswith("tracker_video_")
            else edgetam_reference_model(edgetam_dir)
        )
        tensors, meta = vs.record(vs.one_object(model, processor, vs.video(4)))
        return {f"model_{k}": v for k, v in tensors.items()}, {f"model_{k}": v for k, v in meta.items()}
    model = Sam3TrackerModel.from_pretrained(str(ctx.checkpoint_dir)).eval()
    inputs = processor(
        images=[pc.images()[0]], input_points=[[[vs.ELLIPSE]]], input_labels=[[[1]]], return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**inputs, multimask_output=True)
    tensors = {
        "pred_masks": out.pred_masks,
        "iou_scores": out.iou_scores,
        "object_score_logits": out.object_score_logits,
    }
    return {f"model_{k}": v for k, v in tensors.items()}, {}


def generate(ctx) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        edgetam_dir = write_tiny_checkpoint(tmp / "tiny_edgetam", source_dir=TINY_EDGETAM_DIR)
        for name, (cls_name, config, end_to_end) in pc.CONFIGS.items():
            processor = _reference_processor(cls_name, config, ctx.checkpoint_dir, tmp / name)
            tensors = _image_path(cls_name, processor)
            meta: dict = {"processor_config.json": json.dumps(config, indent=2), "class": cls_name}
            if cls_name != "Sam3Processor":
                mask_size = config["image_processor"]["mask_size"]["height"]
                sizes = tensors["original_sizes"]
                binary = processor.post_process_masks(pc.low_res_masks(mask_size), sizes)
                logits = processor.post_process_masks(pc.low_res_masks(mask_size), sizes, binarize=False)
                tensors.update(pc.record_post_processed(binary, logits))
            if cls_name in pc.VIDEO_PROCESSORS:
                video_tensors, video_meta = _video_path(processor)
                tensors.update(video_tensors)
                meta.update(video_meta)
            if end_to_end:
                model_tensors, model_meta = _end_to_end(name, processor, ctx, edgetam_dir)
                tensors.update(model_tensors)
                meta.update(model_meta)
            ctx.save(name, tensors, meta)
            print(f"  {name}: {sorted(tensors)}", flush=True)
