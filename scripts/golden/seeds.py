"""Golden cases of the seed documents' examples: every example of seeds/000-003 (transcribed in
tests/fixtures/seed_examples_*.py) run by the reference, `from transformers import ...`.

Also writes the processor files of the local stand-ins for the documents' hub repos, as the
reference's `save_pretrained` writes them (golden seeds/processor_files.json): the tests load the
same files with sam3_core.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import seed_examples
from seed_env import PROCESSOR_FILES, SeedEnv

F64_ONLY = bool(os.environ.get("GOLDEN_F64_ONLY"))  # regenerate only the float64 cases

SIZE = 224  # the tiny SAM 3 checkpoint's image size
EDGETAM_SIZE, EDGETAM_MASK_SIZE = 128, 32  # the tiny EdgeTAM's


def processor_files() -> dict[str, dict[str, str]]:
    """{repo: {file: text}}: the processor_config.json of the combined SAM 3 repo (the concept
    processor's image settings plus the video processor's, as facebook/sam3 has them) and of the
    EdgeTAM repo."""
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
        Sam3ImageProcessor,
        Sam3TrackerVideoProcessor,
    )

    size = {"height": SIZE, "width": SIZE}
    sam3 = Sam3TrackerVideoProcessor(
        image_processor=Sam3ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
    )
    edgetam = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(
            size={"height": EDGETAM_SIZE, "width": EDGETAM_SIZE},
            mask_size={"height": EDGETAM_MASK_SIZE, "width": EDGETAM_MASK_SIZE},
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": EDGETAM_SIZE, "width": EDGETAM_SIZE}),
    )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repo, processor in (("sam3", sam3), ("edgetam", edgetam)):
            processor.save_pretrained(Path(tmp) / repo)
            out[repo] = {p.name: p.read_text() for p in sorted((Path(tmp) / repo).iterdir())}
    config = json.loads(out["sam3"]["processor_config.json"])
    config["processor_class"] = "Sam3Processor"  # AutoProcessor on facebook/sam3 gives the concept processor
    out["sam3"]["processor_config.json"] = json.dumps(config, indent=2, sort_keys=True) + "\n"
    return out


def bf16_error(bf16, fp32) -> dict[str, float]:
    """Per recorded value of a bf16 example: how far the reference's bf16 result is from its
    float32 one (masks: area in pixels, other values: max abs difference)."""
    out = {}
    for key, value in bf16.tensors.items():
        other = fp32.tensors[key]
        if value.is_floating_point() or key.endswith(".area"):
            out[key] = (value.double() - other.double()).abs().max().item() if value.numel() else 0.0
    return out


def _keep_float64_without_backbone(model) -> None:
    """The reference's tracker resizes a mask input with `.float()` first (for bf16): as in the
    trackers' float64 goldens, keep it in float64 (golden/_float64.py), in the calls that run no
    backbone (given image embeddings: the ViT's RoPE stays float32 in both)."""
    from golden._float64 import float_keeps_float64

    if type(model).__name__ != "Sam3TrackerModel":
        return
    forward = model.forward

    @functools.wraps(forward)
    def patched(*args, **kwargs):
        if kwargs.get("pixel_values") is not None or args:
            return forward(*args, **kwargs)
        with float_keeps_float64():
            return forward(*args, **kwargs)

    model.forward = patched


def generate_f64(ctx, env) -> None:
    """The `_f64` cases: the float32 examples with the reference in float64 (tests compare at 1e-9)."""
    import torch
    import transformers
    from seed_float64 import f64_examples, in_float64

    env.cache.clear()
    with in_float64(transformers, after_load=_keep_float64_without_backbone):
        for name in f64_examples(seed_examples.EXAMPLES):
            print(f"  {name} (float64)", flush=True)
            record = seed_examples.run(seed_examples.EXAMPLES[name], transformers, env)
            floats = [v.dtype for v in record.tensors.values() if v.is_floating_point()]
            assert all(d == torch.float64 for d in floats), f"{name}: not all float64: {set(floats)}"
            ctx.save(seed_examples.golden_name(name) + "_f64", record.tensors, record.golden_meta())
    env.cache.clear()


def generate(ctx) -> None:
    import seed_examples_video
    import torch
    import transformers

    if F64_ONLY:
        with tempfile.TemporaryDirectory() as tmp:
            env = SeedEnv.build(Path(tmp))  # the committed processor files
            env.save_sub_models()
            generate_f64(ctx, env)
        return
    files = processor_files()
    PROCESSOR_FILES.parent.mkdir(parents=True, exist_ok=True)
    PROCESSOR_FILES.write_text(json.dumps(files, indent=1, sort_keys=True))
    with tempfile.TemporaryDirectory() as tmp:
        env = SeedEnv.build(Path(tmp), files)
        env.save_sub_models()
        records = {}
        for name, example in seed_examples.EXAMPLES.items():
            print(f"  {name}", flush=True)
            records[name] = seed_examples.run(example, transformers, env)
        # the video documents run in bf16: their float32 twins bound the rounding the tests allow
        env.cache.clear()
        seed_examples_video.bfloat16 = torch.float32
        try:
            for name, example in seed_examples.EXAMPLES.items():
                if any(v.dtype == torch.bfloat16 for v in records[name].tensors.values()):
                    print(f"  {name} (float32)", flush=True)
                    fp32 = seed_examples.run(example, transformers, env)
                    records[name].meta["bf16_error"] = bf16_error(records[name], fp32)
        finally:
            seed_examples_video.bfloat16 = torch.bfloat16
        for name, record in records.items():
            ctx.save(seed_examples.golden_name(name), record.tensors, record.golden_meta())
        generate_f64(ctx, env)
