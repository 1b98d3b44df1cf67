"""Checkpoint loading: resolve a hub id or folder, read safetensors (sharded too), map the hub key
layout onto a model, and load strictly.

Weights are read with `safetensors` only; pickle files are never opened.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .config import ConfigError, _Config, load_config_dict

__all__ = [
    "CheckpointError",
    "resolve_checkpoint_dir",
    "read_safetensors",
    "load_state_dict_strict",
    "PreTrainedModel",
    "build_and_load",
    "tracker_key_from_hub",
]

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
CONFIG_NAME = "config.json"
_PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")

_HOW_TO_GET = (
    "The SAM 3 weights are gated: accept the licence on https://huggingface.co/facebook/sam3, then log in "
    "(`hf auth login`) or set HF_TOKEN, and run once with network access (HF_HUB_OFFLINE unset) so the "
    "files reach the local cache. Or pass the path of a folder holding config.json and model.safetensors."
)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be found, read, or does not fit the model."""


# ---------------------------------------------------------------------------------------------
# Finding the files
# ---------------------------------------------------------------------------------------------


def resolve_checkpoint_dir(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    allow_patterns: Iterable[str] = ("*.json", "*.safetensors", "*.txt", "*.model"),
) -> Path:
    """The local folder of a checkpoint: `name_or_path` itself when it is a folder, else the
    Hugging Face hub snapshot of that repo id (downloaded, or taken from the cache when offline).

    Honours `HF_HUB_OFFLINE`, `HF_TOKEN` and `HF_HOME` through `huggingface_hub`.
    """
    path = Path(os.path.expanduser(str(name_or_path)))
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists():
        raise CheckpointError(f"{name!r} is a file; expected a checkpoint folder or a hub repo id")
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or not re.fullmatch(r"[\w.\-/]+", name):
        raise CheckpointError(
            f"checkpoint folder {name!r} does not exist (and it is not a hub repo id like 'facebook/sam3')"
        )

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        local = snapshot_download(
            name,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=bool(local_files_only),
            allow_patterns=list(allow_patterns),
        )
    except GatedRepoError as e:
        raise CheckpointError(
            f"access to {name!r} is gated and this machine is not allowed yet. {_HOW_TO_GET}"
        ) from e
    except RepositoryNotFoundError as e:
        raise CheckpointError(
            f"no hub repo {name!r} (or it is private and no token was given). {_HOW_TO_GET}"
        ) from e
    except RevisionNotFoundError as e:
        raise CheckpointError(f"{name!r} has no revision {revision!r}") from e
    except LocalEntryNotFoundError as e:
        raise CheckpointError(
            f"the weights of {name!r} are not in the local Hugging Face cache "
            f"({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}) "
            f"and cannot be downloaded now (offline, or no network). {_HOW_TO_GET}"
        ) from e
    except OSError as e:  # connection problems surface as OSError subclasses
        raise CheckpointError(f"could not fetch {name!r} from the hub: {e}. {_HOW_TO_GET}") from e
    return Path(local)


def read_config(checkpoint_dir: Path) -> dict[str, Any]:
    """The `config.json` of a checkpoint folder, as a dict."""
    path = checkpoint_dir / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{checkpoint_dir} has no {CONFIG_NAME}; expected a SAM 3 checkpoint folder")
    return load_config_dict(path)


# ---------------------------------------------------------------------------------------------
# Reading tensors
# ---------------------------------------------------------------------------------------------


def _read_one_file(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        size = path.stat().st_size if path.exists() else 0
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({size} bytes; truncated or corrupt?): {e}"
        ) from e


def read_safetensors(checkpoint_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder: `model.safetensors`, or the shards listed in
    `model.safetensors.index.json`. Tensors are on the CPU in their stored dtype."""
    checkpoint_dir = Path(checkpoint_dir)
    single = checkpoint_dir / WEIGHTS_NAME
    index = checkpoint_dir / WEIGHTS_INDEX_NAME
    if single.is_file():
        return _read_one_file(single)
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"{index} is not a valid safetensors index (needs a 'weight_map'): {e}"
            ) from e
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = checkpoint_dir / shard
            if not shard_path.is_file():
                raise CheckpointError(
                    f"{index} lists shard {shard!r}, which is missing from {checkpoint_dir}"
                )
            state.update(_read_one_file(shard_path))
        missing = sorted(set(weight_map) - set(state))
        if missing:
            raise CheckpointError(
                f"{index} lists {len(missing)} tensors that its shards lack, e.g. {missing[:3]}"
            )
        return state
    pickled = [n for n in _PICKLE_NAMES if (checkpoint_dir / n).exists()]
    if pickled:
        raise CheckpointError(
            f"{checkpoint_dir} holds only pickle weights ({', '.join(pickled)}); sam3_core loads safetensors "
            "only and never unpickles. Convert them with safetensors.torch.save_file."
        )
    raise CheckpointError(f"{checkpoint_dir} has neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX_NAME}")


# ---------------------------------------------------------------------------------------------
# Loading into a model
# ---------------------------------------------------------------------------------------------


def load_state_dict_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Copy `state` into `model`: every parameter and buffer filled, no tensor left over, equal shapes.

    Values are cast to each parameter's dtype. Raises `CheckpointError` naming what is wrong.
    """
    own = model.state_dict(keep_vars=True)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
        )
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected: {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}"
        )
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {'; '.join(mismatched[:8])}")
    if problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + " | ".join(problems))
    with torch.no_grad():
        for key, target in own.items():
            target.copy_(state[key])


def build_and_load(
    factory,
    config: _Config,
    state: dict[str, torch.Tensor],
    *,
    device=None,
    dtype=None,
    source: str = "checkpoint",
) -> nn.Module:
    """`factory(config)` built on the meta device (no wasted random init), then filled strictly from
    `state` on `device` in `dtype` (float32 by default), in eval mode."""
    with torch.device("meta"):
        model = factory(config)
    model = model.to(dtype=_as_dtype(dtype)).to_empty(device=device or "cpu")
    load_state_dict_strict(model, state, source=source)
    return model.eval()


def tracker_key_from_hub(key: str) -> str | None:
    """The hub layout as the trackers see it: the detector's backbone and the tracker neck become
    `vision_encoder.*`, `tracker_model.X` becomes X, the rest of the detector is not theirs (None).
    Keys without a hub prefix (a single-model layout) are returned unchanged."""
    if key.startswith("detector_model."):
        rest = key[len("detector_model.") :]
        return rest if rest.startswith("vision_encoder.backbone.") else None
    if key.startswith("tracker_neck."):
        return "vision_encoder.neck." + key[len("tracker_neck.") :]
    if key.startswith("tracker_model."):
        return key[len("tracker_model.") :]
    return key


class PreTrainedModel(nn.Module):
    """Mixin giving a model `from_pretrained`.

    A subclass sets `config_class`, `config_key` (its sub-config in the combined `sam3_video` config)
    and `map_checkpoint_key`, which maps a checkpoint key to a key of the model's `state_dict()` or
    to None for tensors that belong to other models of the family and are deliberately ignored.

    Subclasses must not register non-persistent buffers: the model is built on the meta device and
    then filled from the checkpoint alone.
    """

    config_class: ClassVar[type[_Config]]
    config_key: ClassVar[str | None] = None  # e.g. "detector_config" inside a sam3_video config

    @classmethod
    def map_checkpoint_key(cls, key: str) -> str | None:
        return key

    @classmethod
    def config_from_checkpoint_dict(cls, data: dict[str, Any]) -> _Config:
        """This model's config from a `config.json` dict, combined (`sam3_video`) or single-model."""
        model_type = data.get("model_type")
        if cls.config_key and cls.config_key in data and isinstance(data[cls.config_key], dict):
            return cls.config_class.from_dict(data[cls.config_key])
        if model_type not in (None, cls.config_class.model_type) and not cls._accepts_model_type(model_type):
            raise ConfigError(
                f"{cls.__name__} cannot be built from a {model_type!r} config; expected "
                f"{cls.config_class.model_type!r} or a combined 'sam3_video' config"
            )
        return cls.config_class.from_dict(data)

    @classmethod
    def _accepts_model_type(cls, model_type: str) -> bool:
        return False

    @classmethod
    def remap_state_dict(cls, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            new = cls.map_checkpoint_key(key)
            if new is None:
                continue
            if new in out:
                raise CheckpointError(f"checkpoint keys collide on {new!r} after mapping (from {key!r})")
            out[new] = value
        return out

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        device_map: Any = None,
        **config_overrides: Any,
    ):
        """Load the model from a hub repo id (e.g. "facebook/sam3") or a local checkpoint folder.

        device: where the weights go ("cpu", "cuda", ...); `device_map="auto"` picks CUDA when present.
        dtype: torch.float32 (default), torch.bfloat16 or torch.float16; names like "bfloat16" work too.
        """
        if device is None and device_map is not None:
            device = (
                "cuda"
                if device_map == "auto" and torch.cuda.is_available()
                else ("cpu" if device_map == "auto" else device_map)
            )
        dtype = _as_dtype(dtype)
        folder = resolve_checkpoint_dir(
            name_or_path,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
        config = cls.config_from_checkpoint_dict({**read_config(folder), **config_overrides})
        state = cls.remap_state_dict(read_safetensors(folder))
        model = build_and_load(cls, config, state, device=device, dtype=dtype, source=str(folder))
        model.name_or_path = str(name_or_path)
        return model

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


def _as_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    named = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in named:
        raise ValueError(
            f"dtype {dtype!r} is not supported; expected one of {sorted(named)} or a torch.dtype"
        )
    return named[dtype]
