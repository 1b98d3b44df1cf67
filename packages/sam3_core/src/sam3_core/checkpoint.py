"""Loading a model from a checkpoint: build it on the meta device, map the hub key layout onto it
(`checkpoint_keys`), and fill it strictly, one tensor at a time.

Each tensor is read from disk straight into the model's own memory (`checkpoint_files`), so loading
never holds a second copy of the weights, and only the tensors the model needs are read.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .allocator import tune_on_first_load
from .checkpoint_files import (
    WEIGHTS_NAME,
    CheckpointError,
    SafetensorsCheckpoint,
    read_config,
    read_safetensors,
    resolve_checkpoint_dir,
    write_safetensors,
)
from .checkpoint_keys import KeyLayout
from .config import BaseConfig, ConfigError
from .dtypes import as_dtype

__all__ = [
    "CheckpointError",
    "resolve_checkpoint_dir",
    "read_config",
    "read_safetensors",
    "SafetensorsCheckpoint",
    "load_state_dict_strict",
    "PreTrainedModel",
    "build_and_load",
    "build_from_checkpoint",
]


class _StateDictSource:
    """An in-memory state dict with the reading interface of `SafetensorsCheckpoint`."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self.state = state

    def keys(self) -> list[str]:
        return list(self.state)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.state[key].shape)

    def read_into(self, key: str, out: torch.Tensor) -> None:
        with torch.no_grad():
            out.copy_(self.state[key])


_TensorSource = SafetensorsCheckpoint | _StateDictSource


def _plan_loading(
    model: nn.Module,
    source: _TensorSource,
    map_key: Callable[[str], str | None],
    fill: Iterable[str],
    name: str,
) -> dict[str, str]:
    """model key → checkpoint key for each key in `fill`, after checking that the checkpoint fits the
    model exactly: `fill` keys all present, no checkpoint key left without a place (once mapped; None
    means deliberately ignored), equal shapes (also for tensors the model shares and does not read).
    Only names and shapes are looked at; no tensor is read."""
    own = model.state_dict(keep_vars=True)
    found: dict[str, str] = {}
    for checkpoint_key in source.keys():
        key = map_key(checkpoint_key)
        if key is None:
            continue
        if key in found:
            raise CheckpointError(
                f"checkpoint keys collide on {key!r} after mapping (from {found[key]!r} and {checkpoint_key!r})"
            )
        found[key] = checkpoint_key
    fill = set(fill)
    missing = sorted(fill - set(found))
    unexpected = sorted(set(found) - set(own))
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
        f"{k}: checkpoint {source.shape(found[k])} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(found))
        if source.shape(found[k]) != tuple(own[k].shape)
    ]
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {'; '.join(mismatched[:8])}")
    if problems:
        raise CheckpointError(f"{name} does not fit {type(model).__name__}: " + " | ".join(problems))
    return {key: found[key] for key in own if key in fill}


def load_state_dict_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Copy `state` into `model`: every parameter and buffer filled, no tensor left over, equal shapes.

    Values are cast to each parameter's dtype. Raises `CheckpointError` naming what is wrong.
    """
    tensors = _StateDictSource(state)
    own = model.state_dict(keep_vars=True)
    plan = _plan_loading(model, tensors, lambda key: key, own, source)
    for key, checkpoint_key in plan.items():
        tensors.read_into(checkpoint_key, own[key])


def _materialise_from(
    model: nn.Module,
    tensors: _TensorSource,
    map_key: Callable[[str], str | None],
    *,
    device: str | torch.device | None,
    dtype: torch.dtype | str | None,
    name: str,
) -> nn.Module:
    """Give every meta-device tensor of `model` its checkpoint value on `device` (floating tensors in
    `dtype`), one tensor at a time. Tensors already materialised (a shared backbone) are left
    untouched and their checkpoint keys are not read."""
    device = torch.device(device or "cpu")
    dtype = as_dtype(dtype)
    own = model.state_dict(keep_vars=True)
    plan = _plan_loading(model, tensors, map_key, [k for k, t in own.items() if t.is_meta], name)
    done: dict[int, torch.Tensor] = {}  # tied tensors stay tied
    for key, checkpoint_key in plan.items():
        meta = own[key]
        module_name, _, attr = key.rpartition(".")
        module = model.get_submodule(module_name)
        if id(meta) not in done:
            value = torch.empty(
                meta.shape, dtype=dtype if meta.is_floating_point() else meta.dtype, device=device
            )
            tensors.read_into(checkpoint_key, value)
            if isinstance(meta, nn.Parameter):
                value = nn.Parameter(value, requires_grad=meta.requires_grad)
            done[id(meta)] = value
        setattr(module, attr, done[id(meta)])
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise CheckpointError(
            f"{type(model).__name__} has tensors that no checkpoint fills (non-persistent buffers?): {left[:8]}"
        )
    return model.eval()


def build_and_load(
    factory: Callable[[BaseConfig], nn.Module],
    config: BaseConfig,
    state: Mapping[str, torch.Tensor],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    source: str = "checkpoint",
) -> nn.Module:
    """`factory(config)` built on the meta device (no wasted random init), then filled strictly from
    the in-memory `state` on `device` in `dtype` (float32 by default), in eval mode."""
    with torch.device("meta"):
        model = factory(config)
    return _materialise_from(
        model, _StateDictSource(state), lambda key: key, device=device, dtype=dtype, name=source
    )


def build_from_checkpoint(
    factory: Callable[[], nn.Module],
    checkpoint_dir: str | os.PathLike,
    map_key: Callable[[str], str | None],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    backbone: nn.Module | None = None,
) -> nn.Module:
    """`factory()` built on the meta device, then filled strictly from the safetensors files of
    `checkpoint_dir`, reading only the tensors it needs, each straight into its parameter.

    map_key: checkpoint key → model key, or None for tensors deliberately not this model's
        (see `checkpoint_keys`).
    backbone: an existing, loaded module that `factory` builds the model around (a shared ViT
        trunk). It must sit on `device` in `dtype`; it is left untouched and its keys are not read.
    """
    tune_on_first_load()  # every loader comes here: the process is about to run a model
    with torch.device("meta"):
        model = factory()
    if backbone is not None:
        _check_shared(model, backbone, device, dtype)
    with SafetensorsCheckpoint(checkpoint_dir) as checkpoint:
        return _materialise_from(
            model, checkpoint, map_key, device=device, dtype=dtype, name=str(checkpoint_dir)
        )


def _check_shared(
    model: nn.Module, backbone: nn.Module, device: str | torch.device | None, dtype: torch.dtype | str | None
) -> None:
    if not any(module is backbone for module in model.modules()):
        raise ValueError(f"{type(model).__name__} was given a backbone but did not build around it")
    for name, tensor in [*backbone.named_parameters(), *backbone.named_buffers()]:
        if tensor.is_meta:
            raise ValueError(f"the shared backbone is not loaded ({name} is on the meta device)")
        if tensor.device.type != torch.device(device or "cpu").type:
            raise ValueError(
                f"the shared backbone is on {tensor.device}; the model is asked for {device or 'cpu'}"
            )
        if tensor.is_floating_point() and tensor.dtype != as_dtype(dtype):
            raise ValueError(
                f"the shared backbone is in {tensor.dtype}; the model is asked for {as_dtype(dtype)}"
            )


class PreTrainedModel(nn.Module):
    """Mixin giving a model `from_pretrained`.

    A subclass sets `config_class`, `config_key` (its sub-config in the combined `sam3_video` config)
    and `checkpoint_layout` (its row of the key table in `checkpoint_keys`), or overrides
    `map_checkpoint_key`, which maps a checkpoint key to a key of the model's `state_dict()` or to
    None for tensors that belong to other models of the family and are deliberately ignored.

    Subclasses must not register non-persistent buffers: the model is built on the meta device and
    then filled from the checkpoint alone.
    """

    config_class: ClassVar[type[BaseConfig]]
    config_key: ClassVar[str | None] = None  # e.g. "detector_config" inside a sam3_video config
    checkpoint_layout: ClassVar[KeyLayout | None] = None  # None: checkpoint keys are the model's keys

    @classmethod
    def map_checkpoint_key(cls, key: str) -> str | None:
        """The model key of checkpoint key `key`, or None when the tensor is not this model's."""
        return key if cls.checkpoint_layout is None else cls.checkpoint_layout.to_model(key)

    @classmethod
    def config_from_checkpoint_dict(cls, data: dict[str, Any]) -> BaseConfig:
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
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        backbone: nn.Module | None = None,
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
        backbone: a loaded ViT trunk (e.g. another model's `vision_encoder.backbone`, on `device` in
            `dtype`) to build this model around: the two models then share it, and only this model's
            own tensors are read from the checkpoint.

        The first load in a process keeps large tensors in glibc's heap between calls (see
        `sam3_core.allocator`; SAM3_MALLOC_TUNING=0 keeps glibc's defaults).
        """
        if device is None and device_map is not None:
            device = (
                "cuda"
                if device_map == "auto" and torch.cuda.is_available()
                else ("cpu" if device_map == "auto" else device_map)
            )
        folder = resolve_checkpoint_dir(
            name_or_path,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
        config = cls.config_from_checkpoint_dict({**read_config(folder), **config_overrides})
        model = build_from_checkpoint(
            (lambda: cls(config)) if backbone is None else (lambda: cls(config, backbone=backbone)),
            folder,
            cls.map_checkpoint_key,
            device=device,
            dtype=dtype,
            backbone=backbone,
        )
        model.name_or_path = str(name_or_path)
        return model

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write the model as a checkpoint folder: `config.json` (every field, `architectures` and
        `dtype` filled in) and `model.safetensors` with the hub key layout (`checkpoint_keys`), which
        this class's `from_pretrained`, `AutoModel` and the reference library all load. Returns the folder.
        """
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        config.dtype = str(self.dtype).removeprefix("torch.")
        folder = Path(save_directory)
        config.save_pretrained(folder)
        state = self.state_dict()
        layout = self.checkpoint_layout
        hub_state = {}
        for key, tensor in state.items():
            hub_key = key if layout is None else layout.to_hub(key)
            hub_state[hub_key] = tensor
        write_safetensors(hub_state, folder / WEIGHTS_NAME)
        return folder

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
