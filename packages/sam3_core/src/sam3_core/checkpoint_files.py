"""Finding and reading checkpoint files: a hub id or folder → its safetensors files (one file or
shards), read one tensor at a time straight into a destination tensor.

Weights are read as safetensors only; pickle files are never opened.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError, safe_open

from .config import load_config_dict

__all__ = [
    "CheckpointError",
    "SafetensorsCheckpoint",
    "checkpoint_files",
    "read_config",
    "read_safetensors",
    "resolve_checkpoint_dir",
    "write_safetensors",
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

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


# The most bytes a converting read (another dtype or device) holds at once besides its destination.
CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class _StoredTensor:
    file: int  # index into SafetensorsCheckpoint.paths
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int  # bytes from the start of the file
    nbytes: int


def checkpoint_files(checkpoint_dir: Path) -> tuple[list[Path], dict[str, str] | None]:
    """The safetensors files of a checkpoint folder (one file or the shards of an index) and the
    index's weight map (None for a single file). Pickle-only folders are refused, never opened."""
    single = checkpoint_dir / WEIGHTS_NAME
    index = checkpoint_dir / WEIGHTS_INDEX_NAME
    if single.is_file():
        return [single], None
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(
                f"{index} is not a valid safetensors index (needs a 'weight_map'): {e}"
            ) from e
        for shard in shards:
            if not (checkpoint_dir / shard).is_file():
                raise CheckpointError(
                    f"{index} lists shard {shard!r}, which is missing from {checkpoint_dir}"
                )
        return [checkpoint_dir / shard for shard in shards], weight_map
    pickled = [n for n in _PICKLE_NAMES if (checkpoint_dir / n).exists()]
    if pickled:
        raise CheckpointError(
            f"{checkpoint_dir} holds only pickle weights ({', '.join(pickled)}); sam3_core loads safetensors "
            "only and never unpickles. Convert them with safetensors.torch.save_file."
        )
    raise CheckpointError(f"{checkpoint_dir} has neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX_NAME}")


class SafetensorsCheckpoint:
    """The safetensors files of a checkpoint folder, open for reading one tensor at a time.

    Each file is checked once with `safetensors.safe_open` (header, offsets, size: a truncated or
    foreign file is refused here) and stays open until `close()`. Tensor bytes are then read with
    plain reads straight into their destination: safetensors' own readers map the file into memory,
    and every mapped page they touch counts in the process's resident memory until the file is
    closed, which would hold the checkpoint twice while a model loads.

    Use as a context manager: `with SafetensorsCheckpoint(folder) as ckpt: ckpt.read(key)`.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike) -> None:
        self.folder = Path(checkpoint_dir)
        self.paths, weight_map = checkpoint_files(self.folder)
        self._handles: list[BinaryIO] = []
        self._scratch: torch.Tensor | None = None  # uint8, CHUNK_BYTES: the converting reads' buffer
        self._tensors: dict[str, _StoredTensor] = {}
        try:
            for i, path in enumerate(self.paths):
                self._open(i, path)
        except BaseException:
            self.close()
            raise
        if weight_map is not None:
            missing = sorted(set(weight_map) - set(self._tensors))
            if missing:
                raise CheckpointError(
                    f"{self.folder / WEIGHTS_INDEX_NAME} lists {len(missing)} tensors that its shards "
                    f"lack, e.g. {missing[:3]}"
                )

    def _open(self, index: int, path: Path) -> None:
        try:
            with safe_open(str(path), framework="pt") as f:
                names = set(f.keys())
            handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
            self._handles.append(handle)
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            size = path.stat().st_size if path.exists() else 0
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({size} bytes; truncated or corrupt?): {e}"
            ) from e
        data_start = 8 + header_size
        for name in names:
            info = header[name]
            if info["dtype"] not in _SAFETENSORS_DTYPES:
                raise CheckpointError(
                    f"{path}: tensor {name!r} is stored as {info['dtype']}; expected one of "
                    f"{sorted(_SAFETENSORS_DTYPES)}"
                )
            if name in self._tensors:
                other = self.paths[self._tensors[name].file]
                raise CheckpointError(f"tensor {name!r} is stored twice: in {other} and in {path}")
            begin, end = info["data_offsets"]
            self._tensors[name] = _StoredTensor(
                index,
                _SAFETENSORS_DTYPES[info["dtype"]],
                tuple(info["shape"]),
                data_start + begin,
                end - begin,
            )

    def __enter__(self) -> SafetensorsCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []
        self._scratch = None

    def keys(self) -> list[str]:
        """Every tensor name, in file order (reading in this order is sequential on disk)."""
        return sorted(self._tensors, key=lambda k: (self._tensors[k].file, self._tensors[k].offset))

    def shape(self, key: str) -> tuple[int, ...]:
        return self._tensors[key].shape

    def read_into(self, key: str, out: torch.Tensor) -> None:
        """Fill `out` (same shape; any dtype and device) with tensor `key`, cast to `out`'s dtype.

        A contiguous CPU tensor of the stored dtype is read into directly. Otherwise (another dtype,
        another device) the bytes pass through one reused buffer of at most `CHUNK_BYTES`, a slice of
        the tensor at a time, so converting never holds a second full-size copy of a tensor.
        """
        stored = self._tensors[key]
        numel = out.numel()
        if numel * stored.dtype.itemsize != stored.nbytes:
            raise CheckpointError(
                f"tensor {key!r} holds {stored.nbytes} bytes; expected {numel * stored.dtype.itemsize} "
                f"for shape {tuple(out.shape)} in {stored.dtype}"
            )
        if out.device.type == "cpu" and out.dtype == stored.dtype and out.is_contiguous():
            self._read_bytes(key, stored.offset, out.detach().reshape(-1).view(torch.uint8))
            return
        target = out.detach()
        flat = (
            target.view(-1)
            if target.is_contiguous()
            else torch.empty(numel, dtype=out.dtype, device=out.device)
        )
        step = max(1, CHUNK_BYTES // stored.dtype.itemsize)  # elements per slice
        if self._scratch is None:
            self._scratch = torch.empty(CHUNK_BYTES, dtype=torch.uint8)
        with torch.no_grad():
            for start in range(0, numel, step):
                n = min(step, numel - start)
                raw = self._scratch[: n * stored.dtype.itemsize]
                self._read_bytes(key, stored.offset + start * stored.dtype.itemsize, raw)
                flat[start : start + n].copy_(raw.view(stored.dtype))  # synchronous: the buffer is free again
            if not target.is_contiguous():  # filled through a contiguous stand-in
                target.copy_(flat.view(out.shape))

    def _read_bytes(self, key: str, offset: int, out: torch.Tensor) -> None:
        """Read `out.numel()` bytes at `offset` of tensor `key`'s file into the uint8 CPU tensor `out`."""
        raw = memoryview(out.numpy())
        handle = self._handles[self._tensors[key].file]
        handle.seek(offset)
        while raw:
            n = handle.readinto(raw)
            if not n:
                raise CheckpointError(
                    f"{self.paths[self._tensors[key].file]} ends inside tensor {key!r} (truncated?)"
                )
            raw = raw[n:]

    def read(self, key: str) -> torch.Tensor:
        """Tensor `key` on the CPU in its stored dtype."""
        stored = self._tensors[key]
        out = torch.empty(stored.shape, dtype=stored.dtype)
        self.read_into(key, out)
        return out


def read_safetensors(checkpoint_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder: `model.safetensors`, or the shards listed in
    `model.safetensors.index.json`. Tensors are on the CPU in their stored dtype."""
    with SafetensorsCheckpoint(checkpoint_dir) as checkpoint:
        return {key: checkpoint.read(key) for key in checkpoint.keys()}


def write_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write `state` as one safetensors file (CPU copies; tensors that share memory, such as tied
    weights, are stored once each under their own names). Written beside, then moved into place,
    so an interrupted save never leaves a truncated file under the final name."""
    from safetensors.torch import save_file

    path = Path(path)
    seen: set[int] = set()
    tensors = {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen or not tensor.is_contiguous():
            tensor = tensor.clone()  # safetensors refuses tensors that share memory
        seen.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata={"format": "pt"})
    os.replace(partial, path)
    return path
