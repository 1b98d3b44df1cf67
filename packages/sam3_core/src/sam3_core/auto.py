"""`AutoConfig`, `AutoModel`, `AutoProcessor`: pick the SAM 3 class a checkpoint's `model_type` names.

Small adapters over the concrete classes' own `from_pretrained`: they read `config.json` (and
`processor_config.json`) of a hub repo or folder and hand over to the class. As in the reference,
the combined `facebook/sam3` checkpoint (`model_type` "sam3_video") gives the text-prompted video
model `Sam3VideoModel`; a SAM3-LiteText checkpoint ("sam3_lite_text") gives `Sam3LiteTextModel`; `AutoProcessor` follows the `processor_class` of `processor_config.json`
(`Sam3Processor` or `Sam3VideoProcessor`), else the model type's processor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .checkpoint_files import read_config, resolve_checkpoint_dir
from .config import CONFIG_CLASSES, BaseConfig, ConfigError, config_from_dict
from .models.sam3 import Sam3Model
from .models.sam3_lite_text import Sam3LiteTextModel, Sam3LiteTextTextModel
from .models.sam3_tracker import Sam3TrackerModel
from .models.sam3_tracker_video import Sam3TrackerVideoModel
from .models.sam3_video import Sam3VideoModel
from .processing.detector import Sam3Processor
from .processing.sam3_video import Sam3VideoProcessor
from .processing.tracker import Sam3TrackerProcessor
from .processing.video import Sam3TrackerVideoProcessor

__all__ = ["AutoConfig", "AutoModel", "AutoProcessor", "MODEL_CLASSES", "PROCESSOR_CLASSES"]

_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")

# model_type → class. "sam3_video" is the combined checkpoint (all models of the family).
MODEL_CLASSES: dict[str, type] = {
    "sam3_video": Sam3VideoModel,
    "sam3": Sam3Model,
    "sam3_tracker": Sam3TrackerModel,
    "sam3_tracker_video": Sam3TrackerVideoModel,
    "sam3_lite_text": Sam3LiteTextModel,
    "sam3_lite_text_text_model": Sam3LiteTextTextModel,
}
PROCESSOR_CLASSES: dict[str, type] = {
    "sam3_video": Sam3VideoProcessor,
    "sam3": Sam3Processor,
    "sam3_tracker": Sam3TrackerProcessor,
    "sam3_tracker_video": Sam3TrackerVideoProcessor,
    "sam3_lite_text": Sam3Processor,
}
# `processor_class` of a processor_config.json → our class.
_PROCESSOR_BY_NAME: dict[str, type] = {
    "Sam3Processor": Sam3Processor,
    "Sam3VideoProcessor": Sam3VideoProcessor,
    "Sam3TrackerProcessor": Sam3TrackerProcessor,
    "Sam3TrackerVideoProcessor": Sam3TrackerVideoProcessor,
}


def _folder(name_or_path: str | os.PathLike, kwargs: dict[str, Any]) -> Path:
    hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
    return resolve_checkpoint_dir(name_or_path, **hub)


def _pick(table: dict[str, type], model_type: Any, what: str, source: Any) -> type:
    cls = table.get(model_type)
    if cls is None:
        raise ConfigError(
            f"{source}: no {what} for model_type {model_type!r}; expected one of {sorted(table)}"
        )
    return cls


class AutoConfig:
    """The config class named by a `config.json`'s `model_type` (any SAM 3 model or part)."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs: Any) -> BaseConfig:
        """Read `config.json` of a hub repo or folder; keyword arguments override its fields."""
        folder = _folder(name_or_path, kwargs)
        config = config_from_dict({**read_config(folder), **kwargs})
        config._name_or_path = str(name_or_path)
        return config

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> BaseConfig:
        """A default config of `model_type`, with `kwargs` as fields."""
        return _pick(CONFIG_CLASSES, model_type, "config class", "AutoConfig.for_model").from_dict(kwargs)


class AutoModel:
    """The model class named by a checkpoint's `model_type`, loaded with its `from_pretrained`."""

    @staticmethod
    def model_class(model_type: str) -> type:
        return _pick(MODEL_CLASSES, model_type, "model class", "AutoModel")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs: Any):
        """`XModel.from_pretrained(name_or_path, **kwargs)` for the checkpoint's model type
        (device, dtype, device_map, ... as there)."""
        folder = _folder(name_or_path, kwargs)
        model_type = read_config(folder).get("model_type")
        cls = _pick(MODEL_CLASSES, model_type, "model class", name_or_path)
        model = cls.from_pretrained(folder, **kwargs)
        model.name_or_path = str(name_or_path)
        return model

    @staticmethod
    def from_config(config: BaseConfig, **kwargs: Any):
        """A randomly initialised model for `config`."""
        return _pick(MODEL_CLASSES, config.model_type, "model class", "AutoModel.from_config")(
            config, **kwargs
        )


class AutoProcessor:
    """The processor of a checkpoint: the `processor_class` of its `processor_config.json`, else
    the one for its config's `model_type`."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **kwargs: Any):
        folder = _folder(name_or_path, kwargs)
        processor_file = folder / "processor_config.json"
        cls = None
        if processor_file.is_file():
            name = json.loads(processor_file.read_text(encoding="utf-8")).get("processor_class")
            cls = _PROCESSOR_BY_NAME.get(name)
        if cls is None:
            model_type = read_config(folder).get("model_type")
            cls = _pick(PROCESSOR_CLASSES, model_type, "processor class", name_or_path)
        return cls.from_pretrained(folder, **kwargs)
