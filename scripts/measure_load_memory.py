"""Peak memory of loading the SDK's models (tracker, then concept detector and video tracker, which
share the tracker's backbone), against the checkpoint's size on disk.

    python scripts/measure_load_memory.py --config real --dir /tmp/sam3-real-random
    python scripts/measure_load_memory.py --config medium --dir /tmp/sam3-medium --json
    python scripts/measure_load_memory.py --dir /tmp/sam3-real-random --src /tmp/old/packages
    python scripts/measure_load_memory.py --dir /tmp/sam3-real-random --dtype bfloat16

`--config real` is the full `facebook/sam3` size (860 M parameters, 3.4 GB in float32) with random
weights, written once, tensor by tensor. The loading runs in a fresh interpreter; its peak resident
memory (VmHWM, reset after the imports) minus its resident memory before loading is the figure.
`--src` loads with another copy of the packages (a folder holding sam3_core/src and sam3_sdk/src),
e.g. an older commit's, to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
TINY_CONFIG = PACKAGES / "sam3_sdk" / "src" / "sam3_sdk" / "testing" / "data" / "tiny_config.json"

# Runs in the child: load as the SDK does, report memory in bytes.
_LOAD = """
import json, sys
import torch
from sam3_sdk import Sam3

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)

# Initialising a module on the meta device imports torch's meta kernels (about 70 MB, once per
# interpreter): part of the baseline, like the other imports.
with torch.device("meta"):
    torch.nn.Embedding(2, 2)
try:  # start the peak afresh: the imports are not the loading
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = status("VmRSS")
sam = Sam3.from_pretrained(sys.argv[1], device="cpu", dtype=sys.argv[2])
detector, video = sam.detector, sam.video_model
trunk = sam.image_model.vision_encoder.backbone
assert detector.vision_encoder.backbone is trunk and video.vision_encoder.backbone is trunk
params = {id(p): p.numel() * p.element_size() for m in (sam.image_model, detector, video) for p in m.parameters()}
print(json.dumps({"before": before, "peak": status("VmHWM"), "after": status("VmRSS"),
                  "parameter_bytes": sum(params.values())}))
"""


def medium_config() -> dict:
    """The tiny combined config with a wider, deeper ViT and text encoder: about 40 M parameters
    (160 MB in float32), enough for the weights to dominate the interpreter's baseline."""
    config = json.loads(TINY_CONFIG.read_text())
    for part in ("detector_config", "tracker_config"):
        vit = config[part]["vision_config"]["backbone_config"]
        vit.update(hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_hidden_layers=8)
    text = config["detector_config"]["text_config"]
    text.update(hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_hidden_layers=4)
    return config


def real_config() -> dict:
    """The full `facebook/sam3` widths (the defaults of `Sam3VideoConfig`)."""
    from sam3_core import Sam3VideoConfig

    return Sam3VideoConfig().to_dict()


def write_checkpoint(folder: Path, config_name: str) -> Path:
    """A random checkpoint of `config_name` ("medium", "real" or a config.json path) in `folder`,
    unless one is there already."""
    from sam3_sdk.testing import write_random_checkpoint

    if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    if config_name == "medium":
        config = medium_config()
    elif config_name == "real":
        config = real_config()
    else:
        config = json.loads(Path(config_name).read_text())
    return write_random_checkpoint(folder, config=config)


def measure(folder: Path, src: Path = PACKAGES, dtype: str = "float32") -> dict:
    """Load tracker + detector + video tracker from `folder` in a fresh interpreter (packages from
    `src`) in `dtype`; returns file size, resident memory before, peak and increase (bytes), the
    increase over the file size (`ratio`) and over the bytes of the loaded parameters
    (`parameter_ratio`: the one to read when `dtype` is narrower than the file's)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(src / p / "src") for p in ("sam3_core", "sam3_sdk")),
        "OMP_NUM_THREADS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, str(folder), dtype],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"loading failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    increase = result["peak"] - result["before"]
    return {
        **result,
        "dtype": dtype,
        "file_bytes": size,
        "increase": increase,
        "ratio": increase / size,
        "parameter_ratio": increase / result["parameter_bytes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="real", help="medium, real, or a combined config.json path")
    parser.add_argument("--dir", type=Path, required=True, help="checkpoint folder (written when absent)")
    parser.add_argument("--src", type=Path, default=PACKAGES, help="packages folder to load with")
    parser.add_argument("--dtype", default="float32", help="float32 (default) or bfloat16")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    result = measure(write_checkpoint(args.dir, args.config), args.src, args.dtype)
    if args.json:
        print(json.dumps(result))
        return
    gb = 1e9
    print(f"checkpoint on disk      {result['file_bytes'] / gb:.2f} GB ({args.dir})")
    print(
        f"parameters in memory    {result['parameter_bytes'] / gb:.2f} GB (tracker + detector + video tracker)"
    )
    print(f"resident before loading {result['before'] / gb:.2f} GB")
    print(f"peak while loading      {result['peak'] / gb:.2f} GB")
    print(
        f"peak increase           {result['increase'] / gb:.2f} GB = {result['ratio']:.2f} x the file, "
        f"{result['parameter_ratio']:.2f} x the {args.dtype} parameters"
    )


if __name__ == "__main__":
    sys.path[:0] = [str(PACKAGES / "sam3_core" / "src"), str(PACKAGES / "sam3_sdk" / "src")]
    main()
