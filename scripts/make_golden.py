"""Regenerate the golden outputs of the reference implementation (run with `make fixtures`).

Runs in the reference venv (`.ref`: transformers==5.23.0 + timm, see README). It rebuilds the tiny
random checkpoint from its seed, writes the key manifest from the reference model, then calls
`generate(ctx)` of every module in scripts/golden/ (or only those named on the command line).

    .ref/bin/python scripts/make_golden.py            # all areas
    .ref/bin/python scripts/make_golden.py vision     # one area
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402
from golden_io import save_golden  # noqa: E402
from tiny_checkpoint import TINY_DIR, write_tiny_checkpoint  # noqa: E402


@dataclass
class Context:
    checkpoint_dir: Path  # the tiny combined checkpoint, hub layout
    config_path: Path  # its config.json
    area: str = ""

    def save(self, name: str, tensors: dict | None = None, meta: dict | None = None) -> None:
        """Write golden case `name` of the current area (tensors → safetensors, meta → JSON)."""
        save_golden(self.area, name, tensors, meta)

    def reference_config(self):
        from transformers import Sam3VideoConfig

        return Sam3VideoConfig.from_dict(json.loads(self.config_path.read_text()))


def write_manifest(config_path: Path, out_path: Path) -> None:
    """key → shape of the reference's combined model (the hub layout)."""
    from transformers import Sam3VideoConfig, Sam3VideoModel

    config = Sam3VideoConfig.from_dict(json.loads(config_path.read_text()))
    state = Sam3VideoModel(config).state_dict()
    out_path.write_text(json.dumps({k: list(v.shape) for k, v in state.items()}, indent=0))


def main(areas: list[str]) -> None:
    torch.manual_seed(0)
    write_manifest(TINY_DIR / "config.json", TINY_DIR / "manifest.json")
    modules = sorted(p.stem for p in (ROOT / "scripts" / "golden").glob("*.py") if not p.stem.startswith("_"))
    chosen = areas or modules
    unknown = set(chosen) - set(modules)
    if unknown:
        raise SystemExit(f"unknown areas {sorted(unknown)}; expected some of {modules}")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_tiny_checkpoint(Path(tmp) / "tiny")
        for area in chosen:
            module = importlib.import_module(f"golden.{area}")
            print(f"[golden] {area}", flush=True)
            module.generate(Context(checkpoint_dir=ckpt, config_path=ckpt / "config.json", area=area))


if __name__ == "__main__":
    main(sys.argv[1:])
