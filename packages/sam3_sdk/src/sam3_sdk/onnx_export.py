"""`export_onnx`: our models as ONNX graphs, with a `manifest.json` that says what each one takes.

    from sam3_sdk import export_onnx
    manifest = export_onnx("facebook/sam3", "onnx/sam3")          # or `sam3 export onnx --model ...`

Graphs (each as `NAME.onnx` and, with fp16, `NAME_fp16.onnx`; see `onnx_graphs` for their tensors):

    image_encoder          pixel_values -> the tracker's 3 maps (+ SAM 3's detector FPN levels)
    click_decoder          prompt encoder + mask decoder, 3 candidate masks (multimask)
    click_decoder_single   the same, the one mask of `multimask_output=False`
    text_encoder           phrases' token ids -> text features (SAM 3), dynamic number of phrases
    concept_heads          detector heads on cached FPN features + P phrases (SAM 3), P dynamic

SAM 3 checkpoints give all five; EdgeTAM's the image encoder and the click decoders (it has no text
encoder or concept detector). Every graph runs in onnxruntime (CPU) and is checked against the
PyTorch model in tests/export/. A part that cannot be exported raises `OnnxExportRefused` naming the
part and the reason when it was asked for by name; with the default (every part) it is skipped and
listed under "refused" in the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .onnx_graphs import (
    CLICK_INPUTS,
    CLICK_OUTPUTS,
    CONCEPT_INPUTS,
    CONCEPT_OUTPUTS,
    ClickDecoder,
    ConceptHeads,
    ImageEncoder,
    TextEncoder,
)
from .onnx_io import OPSET, describe, export_graph, fp16_weights
from .onnx_manifest import (
    base_manifest,
    concept_postprocessing,
    text_preprocessing,
    tracker_postprocessing,
    tracker_preprocessing,
    write_manifest,
)

__all__ = ["PARTS", "OnnxExportRefused", "click_decoder_example", "export_onnx"]

PARTS = ("image_encoder", "click_decoder", "text_encoder", "concept_heads")  # in export order
CLICK_DYNAMIC = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
PHRASES = {0: "num_phrases"}
EXAMPLE_PHRASES = ["a cat", "yellow school bus"]


class OnnxExportRefused(RuntimeError):
    """A part of the model that cannot be exported to ONNX (the message names it and says why)."""


def click_decoder_example(tracker: nn.Module, num_points: int = 2) -> tuple[torch.Tensor, ...]:
    """Example inputs of the click decoder of `tracker` (random values of the right shapes)."""
    grid = tracker.prompt_encoder.image_embedding_size
    hidden = tracker.config.vision_config.fpn_hidden_size
    size = tracker.prompt_encoder.input_image_size
    gen = torch.Generator().manual_seed(0)
    embeddings = (
        torch.randn(1, hidden // 8, 4 * grid[0], 4 * grid[1], generator=gen),
        torch.randn(1, hidden // 4, 2 * grid[0], 2 * grid[1], generator=gen),
        torch.randn(1, hidden, *grid, generator=gen),
    )
    coords = torch.rand(1, num_points, 2, generator=gen) * size
    labels = torch.ones(1, num_points)
    mask = torch.zeros(1, 1, *tracker.prompt_encoder.mask_input_size)
    return (*embeddings, coords, labels, mask, torch.zeros(1))


def _export_part(
    name: str,
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]] | None,
    out_dir: Path,
    fp16: bool,
    output_dynamic: dict[str, dict[int, str]] | None = None,
) -> dict[str, Any]:
    """Export one graph (+ its fp16 variant); its manifest entry. `output_dynamic` names the
    outputs' dynamic axes for the manifest (the graph's own follow from the inputs')."""
    _check_fp32(module, name)
    try:
        path = export_graph(module, example, out_dir / f"{name}.onnx", inputs, outputs, dynamic)
    except RuntimeError as exc:
        raise OnnxExportRefused(f"{name}: {exc}") from exc
    with torch.no_grad():
        results = module(*example)
    entry: dict[str, Any] = {
        "file": path.name,
        "inputs": describe(inputs, example, dynamic),
        "outputs": describe(outputs, results, output_dynamic),
    }
    if fp16:
        entry["fp16_file"] = fp16_weights(path, out_dir / f"{name}_fp16.onnx").name
    return entry


def export_click_decoders(tracker: nn.Module, out_dir: Path, fp16: bool = True) -> dict[str, dict[str, Any]]:
    """`click_decoder` (3 masks) and `click_decoder_single` (1 mask) of `tracker` (a `TrackerBase`)."""
    example = click_decoder_example(tracker)
    entries = {}
    for name, multimask in (("click_decoder", True), ("click_decoder_single", False)):
        module = ClickDecoder(tracker, multimask)
        entry = _export_part(name, module, example, CLICK_INPUTS, CLICK_OUTPUTS, CLICK_DYNAMIC, out_dir, fp16)
        entry["multimask"] = multimask
        entry["point_labels"] = {
            "1": "positive click",
            "0": "negative click",
            "2": "box top-left corner (x1, y1)",
            "3": "box bottom-right corner (x2, y2)",
            "-1": "not a point (a learnt token; do NOT add one as padding: the graph appends it)",
            "-10": "padding (a zero token)",
        }
        entry["notes"] = (
            "One object on one image. A box is two points labelled 2 and 3 (after the clicks); the graph "
            "appends the 'not a point' token itself, as the PyTorch prompt encoder does, so the result "
            "equals model(input_points=clicks, input_boxes=box). A mask alone: one point (0, 0) labelled "
            "-1 (the model's own empty prompt). mask_input is read only where has_mask_input is 1."
        )
        entries[name] = entry
    return entries


def export_image_encoder(
    tracker: nn.Module,
    size: int,
    out_dir: Path,
    detector_vision: nn.Module | None = None,
    add_no_memory: bool = False,
    fp16: bool = True,
) -> dict[str, Any]:
    module = ImageEncoder(tracker, detector_vision, add_no_memory)
    example = (torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)),)
    outputs = ("image_embeddings_0", "image_embeddings_1", "image_embeddings_2")
    if detector_vision is not None:
        outputs += ("detector_fpn_0", "detector_fpn_1", "detector_fpn_2")
    entry = _export_part("image_encoder", module, example, ("pixel_values",), outputs, None, out_dir, fp16)
    entry["notes"] = (
        "image_embeddings_* feed the click decoder (finest first)"
        + ("; detector_fpn_* feed the concept heads" if detector_vision is not None else "")
        + (
            "; image_embeddings_2 includes no_memory_embedding (EdgeTAM's first-prompt path)"
            if add_no_memory
            else ""
        )
    )
    return entry


def export_text_encoder(
    detector: nn.Module, tokenizer: Any, max_length: int, out_dir: Path, fp16: bool
) -> dict:
    tokens = tokenizer(EXAMPLE_PHRASES, max_length=max_length)
    example = (tokens["input_ids"], tokens["attention_mask"])
    dynamic = {"input_ids": PHRASES, "attention_mask": PHRASES}
    return _export_part(
        "text_encoder",
        TextEncoder(detector),
        example,
        ("input_ids", "attention_mask"),
        ("text_features", "text_embeds"),
        dynamic,
        out_dir,
        fp16,
        output_dynamic={"text_features": PHRASES, "text_embeds": PHRASES},
    )


def export_concept_heads(
    detector: nn.Module, tokenizer: Any, max_length: int, size: int, out_dir: Path, fp16: bool
) -> dict[str, Any]:
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    tokens = tokenizer(EXAMPLE_PHRASES, max_length=max_length)
    with torch.no_grad():
        vision = detector.get_vision_features(pixels)
        text = detector.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
    module = ConceptHeads(detector, list(vision.fpn_position_encoding[:3]))
    example = (*vision.fpn_hidden_states[:3], text, tokens["attention_mask"])
    dynamic = {"text_features": PHRASES, "attention_mask": PHRASES}
    entry = _export_part(
        "concept_heads",
        module,
        example,
        CONCEPT_INPUTS,
        CONCEPT_OUTPUTS,
        dynamic,
        out_dir,
        fp16,
        output_dynamic={name: PHRASES for name in CONCEPT_OUTPUTS},
    )
    entry["notes"] = (
        "Text prompts only: the exemplar-box path (geometry encoder) is not in the graph. P phrases on "
        "one image; each phrase's outputs equal the PyTorch forward with that phrase alone."
    )
    return entry


def export_onnx(
    model: str | os.PathLike,
    out: str | os.PathLike,
    parts: Sequence[str] | None = None,
    fp16: bool = True,
) -> dict[str, Any]:
    """Export the graphs of `model` (a hub id, a folder, or a random checkpoint's name such as
    `tiny-random`) into the folder `out`, with `manifest.json`; returns the manifest.

    parts: a subset of `PARTS` (default: every part the model has). fp16: also write `*_fp16.onnx`
    (fp16 weights, fp32 arithmetic). Raises `OnnxExportRefused` for a part asked for by name that
    cannot be exported (named, with the reason).
    """
    unknown = sorted(set(parts or ()) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown parts {unknown}; expected some of {list(PARTS)}")
    wanted = [p for p in PARTS if p in parts] if parts else list(PARTS)
    loaded = _load(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = base_manifest(str(model), loaded["model_type"], OPSET)
    processor = loaded["tracker_processor"]
    if processor is not None:
        manifest["preprocessing"] = tracker_preprocessing(processor)
        manifest["postprocessing"] = tracker_postprocessing(processor)
    tracker, detector = loaded["tracker"], loaded["detector"]
    for part in wanted:
        reason = loaded["refused"].get(part)
        if reason is not None:
            if parts:
                raise OnnxExportRefused(f"{part}: {reason}")
            manifest["refused"].append({"part": part, "reason": reason})
            continue
        if part == "image_encoder":
            manifest["graphs"]["image_encoder"] = export_image_encoder(
                tracker,
                processor.size,
                out,
                detector_vision=None if detector is None else detector.vision_encoder,
                add_no_memory=loaded["model_type"] == "edgetam_video",
                fp16=fp16,
            )
        elif part == "click_decoder":
            manifest["graphs"].update(export_click_decoders(tracker, out, fp16=fp16))
        elif part == "text_encoder":
            text = loaded["detector_processor"]
            manifest["graphs"]["text_encoder"] = export_text_encoder(
                detector, text.tokenizer, text.text_max_length, out, fp16
            )
            manifest["text_preprocessing"] = text_preprocessing(text)
        elif part == "concept_heads":
            text = loaded["detector_processor"]
            manifest["graphs"]["concept_heads"] = export_concept_heads(
                detector, text.tokenizer, text.text_max_length, text.size, out, fp16
            )
            manifest["concept_postprocessing"] = concept_postprocessing(text)
        write_manifest(out, manifest)  # after each part: a later failure leaves the earlier ones described
    write_manifest(out, manifest)
    return manifest


def _load(model: str | os.PathLike) -> dict[str, Any]:
    """The models of a checkpoint in fp32 on the CPU, and the parts it cannot give (with reasons)."""
    from sam3_core import EdgeTamVideoModel, Sam2VideoProcessor
    from sam3_core.checkpoint_files import read_config, resolve_checkpoint_dir

    from .model import Sam3

    folder = model  # a hub id or a folder (the CLI resolves random checkpoints' names at its edge)
    model_type = read_config(resolve_checkpoint_dir(folder, allow_patterns=("*.json",))).get("model_type", "")
    if model_type == "edgetam_video":
        no_text = "EdgeTAM is a point/box tracker: it has no text encoder or concept detector"
        return {
            "model_type": model_type,
            "tracker": EdgeTamVideoModel.from_pretrained(folder, device="cpu").eval(),
            "tracker_processor": Sam2VideoProcessor.from_pretrained(folder),
            "detector": None,
            "detector_processor": None,
            "refused": {"text_encoder": no_text, "concept_heads": no_text},
        }
    if model_type not in ("sam3_video", "sam3_lite_text"):
        raise OnnxExportRefused(
            f"{model}: model_type {model_type!r} is not exported; expected a SAM 3 checkpoint "
            "('sam3_video', e.g. facebook/sam3) or EdgeTAM's ('edgetam_video')"
        )
    sam = Sam3.from_pretrained(folder, device="cpu")
    refused = {}
    if sam.image_model is None:
        refused = {p: "the checkpoint has no point/box tracker" for p in ("image_encoder", "click_decoder")}
    return {
        "model_type": model_type,
        "tracker": None if sam.image_model is None else sam.image_model.eval(),
        "tracker_processor": sam.image_processor,
        "detector": sam.detector.eval(),
        "detector_processor": sam.detector_processor,
        "refused": refused,
    }


def _check_fp32(model: nn.Module, part: str) -> None:
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes - {torch.float32}:
        raise OnnxExportRefused(
            f"{part}: the model must be loaded in float32 for export, got {sorted(map(str, dtypes))} "
            "(the fp16 variants are made from the fp32 graphs)"
        )
