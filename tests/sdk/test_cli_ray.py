"""`sam3 ... --ray` on a local Ray instance (2 CPUs) with the tiny random checkpoint: a replica dies
mid-run, Ray restarts it and retries its batch, and the run still writes exactly the annotations
and masks of a local run (nothing lost, nothing twice; equal up to float rounding); videos go one per task and give the same
per-video outputs as a local run. One Ray instance for both, to keep the suite lean."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

ray = pytest.importorskip(
    "ray", reason='Ray is not installed: pip install "sam3-sdk[ray]" (make install does)'
)

from cli_inputs import write_corrupt, write_images, write_video  # noqa: E402
from sam3_sdk import Sam3  # noqa: E402
from sam3_sdk.cli import main, on_ray  # noqa: E402
from sam3_sdk.cli.arguments import EXIT_INPUT_FAILED  # noqa: E402
from sam3_sdk.cli.outputs import RunOutputs  # noqa: E402
from sam3_sdk.rle import rle_to_mask  # noqa: E402

# A thresholded pixel may flip only where its logit is this close to 0 (the tiny model's mask logits
# are ~0.01-1 in size, float32 rounding differences ~1e-7).
MASK_LOGIT_TOL = 1e-4


def _object_logits(sam, path: Path) -> np.ndarray:
    """(H, W) logits of the mask the "object" command keeps (the best-scored one) for this test's prompts."""
    found = sam.segment_object(Image.open(path), points=[(12, 9)], labels=[1], box=(4, 4, 40, 30))
    low_res = torch.as_tensor(found.low_res_logits[:1])[None, None]  # (1, 1, 1, h, w)
    size = [found.masks.shape[1:]]
    return sam.image_processor.post_process_masks(low_res, size, binarize=False)[0][0, 0].numpy()


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_run_matches_the_local_run_when_a_replica_dies(
    local_ray, tiny_checkpoint_dir, tmp_path, monkeypatch
):
    write_images(tmp_path / "in", 5)
    write_corrupt(tmp_path / "in" / "broken.jpg")
    argv = ["object", str(tmp_path / "in"), "--point", "12,9", "--box", "4,4,40,30",
            "--model", str(tiny_checkpoint_dir), "-q", "--batch-size", "2"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "local")]) == EXIT_INPUT_FAILED

    marker = tmp_path / "killed"

    class DiesOnce(on_ray.ImageReplica):
        """Ends its worker process (no exception, no cleanup) the first time it meets img03."""

        def __call__(self, batch):
            if any(str(p).endswith("img03.jpg") for p in batch["path"]) and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
            return super().__call__(batch)

    written = []
    write_image = RunOutputs.write_image
    monkeypatch.setattr(on_ray, "ImageReplica", DiesOnce)
    monkeypatch.setattr(
        RunOutputs, "write_image", lambda self, r: (written.append(r.key), write_image(self, r))
    )
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray"]) == EXIT_INPUT_FAILED

    assert marker.is_file()  # a replica did die mid-run; Ray restarted it and retried its batch
    assert sorted(written) == [f"img{i:02d}" for i in range(5)]  # every image written, once
    local = json.loads((tmp_path / "local" / "annotations.json").read_text())
    on_ray_run = json.loads((tmp_path / "ray" / "annotations.json").read_text())
    assert on_ray_run["images"] == local["images"] and on_ray_run["categories"] == local["categories"]
    # Ray gives a replica its own thread count (and its own batches), which may change float sums in
    # the last bits: the scores agree to float32 rounding, and a mask pixel may flip only where its
    # logit (recomputed here) is within MASK_LOGIT_TOL of 0
    assert len(on_ray_run["annotations"]) == len(local["annotations"]) == 5
    sam = Sam3.from_pretrained(tiny_checkpoint_dir, device="cpu")
    files = {image["id"]: image["file_name"] for image in local["images"]}
    decided = {}
    for got, want in zip(on_ray_run["annotations"], local["annotations"]):
        assert got.pop("score") == pytest.approx(want.pop("score"), abs=1e-5)
        name = Path(files[want["image_id"]]).stem
        logits = _object_logits(sam, tmp_path / "in" / f"{name}.jpg")
        decided[name] = np.abs(logits) > MASK_LOGIT_TOL
        a, b = rle_to_mask(got.pop("segmentation")), rle_to_mask(want.pop("segmentation"))
        assert np.array_equal(b[decided[name]], (logits > 0)[decided[name]])  # the logits of that mask
        assert np.array_equal(a[decided[name]], b[decided[name]])
        if not np.array_equal(a, b):  # the fields measured on the mask follow its flipped pixels
            for key in ("area", "bbox"):
                got.pop(key), want.pop(key)
        assert got == want
    for name in written:
        mask = np.asarray(Image.open(tmp_path / "ray" / "masks" / f"{name}.png"))
        expected = np.asarray(Image.open(tmp_path / "local" / "masks" / f"{name}.png"))
        assert np.array_equal(mask[decided[name]], expected[decided[name]])
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert (summary["done"], summary["failed"]) == (5, 1)
    assert summary["failures"][0]["input"].endswith("broken.jpg")


def test_ray_tracks_one_video_per_task_like_the_local_run(local_ray, tiny_checkpoint_dir, tmp_path):
    write_video(tmp_path / "in" / "left.mp4", frames=4)
    write_video(tmp_path / "in" / "right.mp4", frames=3, size=(40, 56))
    write_corrupt(tmp_path / "in" / "broken.mp4")
    argv = ["track", str(tmp_path / "in"), "--obj", "1", "--point", "1:20,20", "--obj", "2",
            "--box", "1:5,5,30,25", "--direction", "both", "--model", str(tiny_checkpoint_dir), "-q"]  # fmt: skip
    # A replica of this 2-CPU instance gets 1 CPU, and Ray runs it with 1 thread; the local run uses
    # as many, so that both track each video with the same computation (one video at a time, the
    # same shapes, the same float sums) and the masks can be compared exactly
    threads = torch.get_num_threads()
    torch.set_num_threads(on_ray.replica_resources("cpu", None)[1]["num_cpus"])
    try:
        assert main([*argv, "--out", str(tmp_path / "local")]) == EXIT_INPUT_FAILED
    finally:
        torch.set_num_threads(threads)
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray"]) == EXIT_INPUT_FAILED

    for name, frames in (("left", 4), ("right", 3)):
        local = json.loads((tmp_path / "local" / "videos" / f"{name}.json").read_text())
        on_ray_run = json.loads((tmp_path / "ray" / "videos" / f"{name}.json").read_text())
        assert on_ray_run["videos"] == local["videos"] and local["videos"][0]["length"] == frames
        assert [a["object_id"] for a in on_ray_run["annotations"]] == [
            a["object_id"] for a in local["annotations"]
        ]
        assert [a["object_id"] for a in local["annotations"]] == [1, 2]
        for got, want in zip(on_ray_run["annotations"], local["annotations"], strict=True):
            assert got.pop("score") == pytest.approx(want.pop("score"), abs=1e-5)
            assert got == want  # masks (RLE per frame), areas, boxes and ids exactly
        with av.open(str(tmp_path / "ray" / "videos" / f"{name}.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == frames
    assert not (tmp_path / "ray" / "videos" / "broken.json").exists()
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert (summary["done"], summary["failed"], summary["instances"]) == (2, 1, 4)
    assert summary["failures"][0]["input"].endswith("broken.mp4")
