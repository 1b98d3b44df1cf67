"""`sam3 ... --ray` on a local Ray instance (2 CPUs) with the tiny random checkpoint: a replica dies
mid-run, Ray restarts it and retries its batch, and the run still writes exactly the annotations
and masks of a local run (nothing lost, nothing twice). One Ray run, to keep the suite lean."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip(
    "ray", reason='Ray is not installed: pip install "sam3-sdk[ray]" (make install does)'
)

from cli_inputs import write_corrupt, write_images  # noqa: E402
from sam3_sdk.cli import main, on_ray  # noqa: E402
from sam3_sdk.cli.arguments import EXIT_INPUT_FAILED  # noqa: E402
from sam3_sdk.cli.outputs import RunOutputs  # noqa: E402


@pytest.fixture
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
    # Ray gives a replica its own thread count, which may change float sums in the last bits: the
    # masks must match exactly, the scores to float32 rounding
    assert len(on_ray_run["annotations"]) == len(local["annotations"]) == 5
    for got, want in zip(on_ray_run["annotations"], local["annotations"]):
        assert got.pop("score") == pytest.approx(want.pop("score"), abs=1e-5)
        assert got == want
    for name in written:
        mask = np.asarray(Image.open(tmp_path / "ray" / "masks" / f"{name}.png"))
        assert np.array_equal(mask, np.asarray(Image.open(tmp_path / "local" / "masks" / f"{name}.png")))
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert (summary["done"], summary["failed"]) == (5, 1)
    assert summary["failures"][0]["input"].endswith("broken.jpg")
