"""The base of every config: dict round trip, type checks, nested sub-configs, clear errors.

Field names and defaults are those of the reference `config.json` files, so a hub config loads
with `XConfig.from_dict(json.load(...))`. Unknown keys (bookkeeping such as `id2label` or
`transformers_version`) are ignored; a value of the wrong type or an impossible value raises a
`ConfigError` (a `ValueError`) that names the field.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# The `config.json` format these configs read and write: that of the reference library's release
# the field names follow. The reference reads the number to decide on format migrations.
FORMAT_VERSION = "5.23.0"
CONFIG_NAME = "config.json"


class ConfigError(ValueError):
    """A config value has the wrong type or an impossible value."""


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether `value` fits a (simple) type annotation: int, float, bool, str, list, dict, unions."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is typing.Any:
        return True
    if origin is not None:
        annotation = origin
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation in (list, tuple):
        return isinstance(value, (list, tuple))
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


@dataclass
class BaseConfig:
    """Base: dict round trip, type checks, nested sub-configs."""

    model_type: ClassVar[str] = ""
    # field name -> config class, for fields holding a nested config
    sub_configs: ClassVar[dict[str, type[BaseConfig]]] = {}

    # Fields every reference config has. They are keyword-only, so they stay out of the way of
    # positional arguments (`Sam3TrackerConfig(vision_config, prompt_encoder_config, ...)`).
    # `return_dict` / `output_hidden_states` / `output_attentions` are the models' defaults for
    # the arguments of the same names; `architectures` and `dtype` describe a saved checkpoint;
    # the others are bookkeeping kept so a saved config.json has every field of the reference's.
    return_dict: bool = field(default=True, kw_only=True)
    output_hidden_states: bool = field(default=False, kw_only=True)
    output_attentions: bool = field(default=False, kw_only=True)
    architectures: list[str] | None = field(default=None, kw_only=True)
    dtype: str | None = field(default=None, kw_only=True)
    chunk_size_feed_forward: int = field(default=0, kw_only=True)
    is_encoder_decoder: bool = field(default=False, kw_only=True)
    id2label: dict | None = field(default=None, kw_only=True)
    label2id: dict | None = field(default=None, kw_only=True)
    problem_type: str | None = field(default=None, kw_only=True)
    _name_or_path: str = field(default="", kw_only=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None = None, **overrides: Any):
        """Build from a `config.json` dict; unknown keys are ignored, sub-configs are built too."""
        data = dict(data or {})
        data.update(overrides)
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs = {}
        for key, value in data.items():
            if key not in names:
                continue
            sub = cls.sub_configs.get(key)
            if sub is not None:
                if isinstance(value, sub) or (
                    isinstance(value, BaseConfig) and _same_fields(type(value), sub)
                ):
                    kwargs[key] = value  # converted by __post_init__ when of a sibling class
                elif isinstance(value, dict) or value is None:
                    kwargs[key] = sub.from_dict(value)
                else:
                    raise ConfigError(
                        f"{cls.__name__}.{key}: expected a dict or {sub.__name__}, got {type(value).__name__}"
                    )
                continue
            if isinstance(value, np.generic):  # a numpy scalar (np.int64, np.float32, np.bool_): Python's
                value = value.item()
            if not _type_ok(value, hints[key]):
                raise ConfigError(
                    f"{cls.__name__}.{key}: expected {hints[key]}, got {value!r} ({type(value).__name__})"
                )
            kwargs[key] = value
        return cls(**kwargs)

    def __post_init__(self) -> None:
        if self.id2label is None:
            self.id2label = {0: "LABEL_0", 1: "LABEL_1"}
        self.id2label = {int(k): v for k, v in self.id2label.items()}  # JSON keys are strings
        if self.label2id is None:
            self.label2id = {v: k for k, v in self.id2label.items()}
        for name, sub in self.sub_configs.items():
            value = getattr(self, name)
            if value is None:
                setattr(self, name, sub())
            elif isinstance(value, dict):
                setattr(self, name, sub.from_dict(value))
            elif type(value) is not sub and isinstance(value, BaseConfig) and _same_fields(type(value), sub):
                # e.g. an image tracker's prompt-encoder config inside a video tracker config
                setattr(self, name, sub.from_dict(value._fields_dict()))
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` for impossible values. Subclasses extend this."""

    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"{type(self).__name__}.{name} must be positive, got {value!r}")

    def _check_heads(self, hidden: str = "hidden_size", heads: str = "num_attention_heads") -> None:
        self._check_positive(hidden, heads)
        if getattr(self, hidden) % getattr(self, heads):
            raise ConfigError(
                f"{type(self).__name__}.{hidden}={getattr(self, hidden)} is not divisible by "
                f"{heads}={getattr(self, heads)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every field (nested configs as dicts), `model_type` and the format version: the
        content of a `config.json`."""
        return {"transformers_version": FORMAT_VERSION, **self._fields_dict()}

    def _fields_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_type": self.model_type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, BaseConfig):
                value = value._fields_dict()
            elif isinstance(value, (dict, list)):
                value = copy.deepcopy(value)
            out[f.name] = value
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `config.json` (every field) into `save_directory`, created if needed; returns its path."""
        folder = Path(save_directory)
        if folder.is_file():
            raise ConfigError(f"{folder} is a file; save_pretrained needs a directory")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CONFIG_NAME
        path.write_text(self.to_json_string(), encoding="utf-8")
        return path


def _same_fields(a: type[BaseConfig], b: type[BaseConfig]) -> bool:
    """Whether two config classes differ only in `model_type` (image vs video tracker parts)."""
    return [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(b)]


def as_pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def load_config_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Read a `config.json`, with a clear error when it is not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
