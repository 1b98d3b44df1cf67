"""What a run writes, and how it knows what is done.

    OUT/annotations.json        one COCO file for the run (images, annotations with RLE, categories)
    OUT/masks/<name>.png        per image: index mask (0 background, i for annotation `mask_index` i)
    OUT/overlays/<name>.jpg     per image, with --overlay
    OUT/videos/<name>.json      per video: the YouTube-VIS layout (`sam3_sdk.coco`): per object one
                                RLE per frame, the phrase that found it (with --text) as category
    OUT/videos/<name>.masks.zip per video: frame_000000.png ... index masks (pixel value = object id)
    OUT/videos/<name>.mp4       per video: the annotated video
    OUT/summary.json            the run's counts and failures
    OUT/.sam3/job.json          the job's settings (a resumed run must match them)
    OUT/.sam3/done/<name>.json  one record per finished input, written last and atomically

Every file is written atomically (`atomic`), and an input's record only after all its files, so a
record means the input is complete: `--resume` skips exactly those, and the COCO file is assembled
from the records in input order (never twice the same image, whatever ran it).

A record names the input it describes by its resolved path, size and modification time (`source`)
and lists the files written for it: a resumed run redoes an input whose source differs (another
folder with the same file names, an edited file) or whose files are gone. When a write fails (a
full disk), the input's files written so far are removed; a run starts by removing outputs that no
record lists (left by a run that was killed) and records whose files are missing.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import write_atomically
from ..coco import coco_dataset
from ..results import Instances, overlay_masks
from ..video_results import VideoMasks
from .inputs import InputFile
from .progress import RunStats

__all__ = ["ImageResult", "RunOutputs", "VideoResult", "image_result"]

STATE_DIR = ".sam3"


@dataclass
class ImageResult:
    """One image's outputs, ready to write. annotations: COCO records with the category's name."""

    key: str
    index: int
    file_name: str
    height: int
    width: int
    annotations: list[dict]
    mask_png: bytes = b""
    overlay_jpg: bytes | None = None
    source: dict = field(default_factory=dict)  # `InputFile.source`: which input this describes

    def record(self) -> dict:
        """The JSON-able part (no image bytes)."""
        fields = asdict(self)
        fields.pop("mask_png")
        fields.pop("overlay_jpg")
        return fields


@dataclass
class VideoResult:
    """One video's outputs: every frame's RLE masks (`VideoMasks.to_json`) and the annotated MP4."""

    key: str
    index: int
    file_name: str
    masks_json: str
    objects: list[int] = field(default_factory=list)
    frames: int = 0
    mp4: bytes | None = None  # from a Ray worker; a local run writes the MP4 in place
    source: dict = field(default_factory=dict)  # `InputFile.source`: which input this describes

    def record(self) -> dict:
        return {"key": self.key, "index": self.index, "file_name": self.file_name, "objects": self.objects,
                "frames": self.frames, "source": self.source}  # fmt: skip


def _index_mask(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool → (H, W) uint8 / uint16 with value i+1 where mask i is (later masks on top)."""
    out = np.zeros(masks.shape[1:], dtype=np.uint8 if len(masks) < 255 else np.uint16)
    for i, mask in enumerate(masks):
        out[mask] = i + 1
    return out


def image_result(
    item: InputFile, image: np.ndarray, found: list[tuple[str, Instances]], overlay: bool
) -> ImageResult:
    """Encode one image's instances (per category name) as COCO records, an index-mask PNG and,
    with `overlay`, a JPEG of the image with the masks drawn in. image: (H, W, 3) uint8."""
    h, w = image.shape[:2]
    annotations = []
    for category, instances in found:
        for record in instances.to_coco_rle():
            record.pop("id")  # annotation ids are given when the run's COCO file is assembled
            annotations.append({"category": category, **record})
    stacked = [inst.masks for _, inst in found if len(inst)]
    all_masks = np.concatenate(stacked) if stacked else np.zeros((0, h, w), bool)
    for i, record in enumerate(annotations):
        record["mask_index"] = i + 1
    buf = io.BytesIO()
    Image.fromarray(_index_mask(all_masks)).save(buf, format="PNG")
    overlay_jpg = None
    if overlay:
        jpg = io.BytesIO()
        overlay_masks(image, all_masks).save(jpg, format="JPEG", quality=90)
        overlay_jpg = jpg.getvalue()
    return ImageResult(
        key=item.key, index=item.index, file_name=item.name, height=h, width=w, annotations=annotations,
        mask_png=buf.getvalue(), overlay_jpg=overlay_jpg, source=item.source,
    )  # fmt: skip


class RunOutputs:
    """The output folder of one run (layout in the module docstring)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)
        self.state = self.root / STATE_DIR
        self.done_dir = self.state / "done"

    def prepare(self, job: dict, resume: bool) -> None:
        """Create the folder and record the job. With `resume`, the recorded job must be the same
        (ValueError naming the difference); without, earlier records are forgotten (a fresh run).
        Then, where an earlier run wrote, outputs that no record lists are removed (`reconcile`)."""
        job_path = self.state / "job.json"
        job = json.loads(json.dumps(job))  # tuples become lists, as they are read back
        ours = job_path.is_file()  # an earlier run wrote here: its output folders are ours to tidy
        if resume and job_path.is_file():
            before = json.loads(job_path.read_text())
            if before != job:
                changed = sorted(k for k in set(before) | set(job) if before.get(k) != job.get(k))
                raise ValueError(
                    f"--resume: {self.root} holds a run with other settings ({', '.join(changed)}); "
                    "use the same command, or another --out folder"
                )
        elif not resume and self.done_dir.exists():
            shutil.rmtree(self.done_dir)
        self.done_dir.mkdir(parents=True, exist_ok=True)
        if ours:  # never in a folder no run of ours wrote (its masks/ may be someone's own files)
            self.reconcile()
            # The earlier run's COCO file and summary go: this run writes its own at the end, and
            # one it cannot write (a full disk) must be missing, not stale.
            for name in ("annotations.json", "summary.json"):
                (self.root / name).unlink(missing_ok=True)
        write_atomically(job_path, json.dumps(job, indent=1, sort_keys=True).encode())

    # Where each input's outputs go (relative to the root), by the suffixes of `write_image` / `write_video`.
    OUTPUT_FOLDERS = {"masks": (".png",), "overlays": (".jpg",), "videos": (".json", ".masks.zip", ".mp4")}

    def reconcile(self) -> list[Path]:
        """Remove records whose files are missing, then output files (and temporary files of
        interrupted writes) that no record lists; returns what was removed."""
        removed = []
        listed: set[Path] = set()
        for record_path in sorted(self.done_dir.rglob("*.json")):
            if ".tmp-" in record_path.name:  # a record write that was interrupted
                record_path.unlink()
                removed.append(record_path)
                continue
            try:
                files = json.loads(record_path.read_text()).get("files")
            except (OSError, ValueError):
                files = None
            paths = [self.root / f for f in files] if isinstance(files, list) else []
            if files is None or not all(p.is_file() for p in paths):
                record_path.unlink()  # incomplete (or from before records listed files): redone
                removed.append(record_path)
            else:
                listed.update(paths)
        for folder, suffixes in self.OUTPUT_FOLDERS.items():
            if not (self.root / folder).is_dir():
                continue
            for path in sorted((self.root / folder).rglob("*")):
                ours = path.name.endswith(suffixes) or ".tmp-" in path.name
                if path.is_file() and ours and path not in listed:
                    path.unlink()
                    removed.append(path)
        return removed

    def _record_path(self, key: str) -> Path:
        return self.done_dir / f"{key}.json"

    def is_done(self, item: InputFile) -> bool:
        """Whether `item` has a record, of this very input (its `source`: path, size, modification time)."""
        path = self._record_path(item.key)
        if not path.is_file():
            return False
        try:
            return self.read_record(item.key).get("source") == item.source
        except (OSError, ValueError):
            return False

    def forget(self, key: str) -> None:
        """Remove the record under `key` (one of another input of that name, or incomplete), before
        its files are replaced: no record ever describes another input's files."""
        self._record_path(key).unlink(missing_ok=True)

    def read_record(self, key: str) -> dict:
        return json.loads(self._record_path(key).read_text())

    def _write_files(self, key: str, files: list[tuple[Path, bytes | None]], record: dict) -> None:
        """Write `files` (bytes; None: already written by the caller), then the record listing them,
        each atomically. If any write fails, this input's files are removed again and the error
        raised: no output is left without a record."""
        record = {**record, "files": [p.relative_to(self.root).as_posix() for p, _ in files]}
        self.forget(key)  # (done by `runners.pending` already; a caller may not have)
        try:
            for path, data in files:
                if data is not None:
                    write_atomically(path, data)
            write_atomically(self._record_path(key), json.dumps(record).encode())
        except BaseException:
            for path, _ in files:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            raise

    def write_image(self, result: ImageResult) -> None:
        """The image's mask (and overlay), then its record."""
        files = [(self.root / "masks" / f"{result.key}.png", result.mask_png)]
        if result.overlay_jpg is not None:
            files.append((self.root / "overlays" / f"{result.key}.jpg", result.overlay_jpg))
        self._write_files(result.key, files, result.record())

    def video_path(self, key: str, suffix: str) -> Path:
        return self.root / "videos" / f"{key}{suffix}"

    def write_video(self, result: VideoResult) -> None:
        """The video's YouTube-VIS JSON, index-mask zip (and MP4 bytes from a worker; a local run
        wrote its MP4 already), then its record."""
        mp4 = self.video_path(result.key, ".mp4")
        files: list[tuple[Path, bytes | None]] = []
        if result.mp4 is not None or mp4.is_file():
            files.append((mp4, result.mp4))
        masks = VideoMasks.from_dict(json.loads(result.masks_json))
        zip_path = self.video_path(result.key, ".masks.zip")
        try:
            masks.save_png_zip(zip_path)
        except BaseException:
            mp4.unlink(missing_ok=True)
            raise
        coco = json.dumps(masks.to_coco(name=Path(result.file_name).stem)).encode()  # YouTube-VIS
        files += [(zip_path, None), (self.video_path(result.key, ".json"), coco)]
        self._write_files(result.key, files, result.record())

    def write_coco(self, items: list[InputFile], categories: list[str]) -> Path:
        """annotations.json from the records of `items` that are done, in input order.

        Image ids are input positions + 1 (stable across resumed runs); category ids follow
        `categories`; annotation ids count from 1.
        """
        images, annotations = [], []
        for item in items:
            if not self.is_done(item):
                continue
            record = self.read_record(item.key)
            image_id = item.index + 1
            images.append(
                {"id": image_id, "file_name": record["file_name"], "height": record["height"],
                 "width": record["width"], "mask_file": f"masks/{item.key}.png"}
            )  # fmt: skip
            annotations.extend({"image_id": image_id, **ann} for ann in record["annotations"])
        coco = coco_dataset(images, annotations, categories)
        return write_atomically(self.root / "annotations.json", json.dumps(coco).encode())

    def write_summary(self, stats: RunStats, extra: dict) -> Path:
        return write_atomically(
            self.root / "summary.json", json.dumps({**extra, **stats.to_dict()}, indent=1).encode()
        )
