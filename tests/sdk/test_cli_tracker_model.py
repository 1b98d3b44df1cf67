"""`sam3 ... --model <SAM3-LiteText> --tracker-model <SAM 3>`: the CLI pairs a detector-only checkpoint
with SAM 3's tracker as `Sam3.from_pretrained(..., tracker_model=...)` does, for clicks on images
(`object`) and in video (`track`); a resume with another tracker is refused; and the two wrong
pairings (no tracker where one is needed, a tracker for a checkpoint with its own) are usage errors
that name the CLI's flag, not the SDK's keyword.

Tolerance: none on the masks. The CLI and the SDK run the same float32 computation on CPU in this
process (same threads, same checkpoint folders; a batch of one image is the SDK's own single-image
pass), so the RLEs and scores are expected equal; a difference means the CLI built another model."""

from __future__ import annotations

import json

import pytest
from cli_inputs import write_images, write_video
from sam3_sdk import Sam3
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import EXIT_OK, EXIT_USAGE, build_parser
from sam3_sdk.cli.inputs import expand_images, expand_videos
from sam3_sdk.cli.jobs import ImageJob, VideoJob
from sam3_sdk.cli.outputs import RunOutputs
from sam3_sdk.cli.progress import RunStats
from sam3_sdk.results import Instances
from sam3_sdk.testing import TINY_RANDOM, TINY_RANDOM_LITE_TEXT, resolve_name
from sam3_sdk.video_io import open_video
from sam3_sdk.video_results import VideoMasks

PAIR = ["--model", TINY_RANDOM_LITE_TEXT, "--tracker-model", TINY_RANDOM, "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh $SAM3_CACHE for the random checkpoints' names (as a user's run resolves them), and no
    $SAM3_TRACKER_MODEL from the environment."""
    folder = tmp_path_factory.mktemp("sam3-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAM3_CACHE", str(folder))
        mp.delenv("SAM3_TRACKER_MODEL", raising=False)
        yield folder


@pytest.fixture(scope="module")
def paired(cache):
    """What the SDK gives: the LiteText checkpoint with the tiny SAM 3's tracker around its backbone."""
    lite, tracker = resolve_name(TINY_RANDOM_LITE_TEXT), resolve_name(TINY_RANDOM)
    return Sam3.from_pretrained(lite, tracker_model=tracker, device="cpu")


def test_object_matches_the_sdk_and_resume_keeps_the_tracker(paired, tmp_path, capsys):
    (image,) = write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    argv = ["object", str(image), "--point", "20,15", "--point", "5,5:neg", *PAIR, "--out", str(out)]
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    (got,) = json.loads((out / "annotations.json").read_text())["annotations"]

    found = paired.segment_object(image, points=[(20, 15), (5, 5)], labels=[1, 0])
    best = Instances(found.masks[:1], found.scores[:1], found.boxes[:1])  # the CLI keeps the best-scored
    (want,) = best.to_coco_rle()
    assert 0 < want["area"] < found.masks[0].size  # a mask, not an empty or full frame
    assert got["segmentation"] == want["segmentation"] and got["score"] == want["score"]
    assert json.loads((out / "summary.json").read_text())["tracker_model"] == TINY_RANDOM

    # the tracker is one of the run's settings: a resume with another one is refused
    other = [*argv, "--resume", "--tracker-model", str(resolve_name(TINY_RANDOM))]  # the same checkpoint
    assert main(other) == EXIT_USAGE
    assert "other settings (tracker_model)" in capsys.readouterr().err


def test_track_matches_the_sdk(paired, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", frames=2)
    out = tmp_path / "out"
    argv = ["track", str(video), "--point", "0:20,15", "--no-mp4", *PAIR, "--out", str(out)]
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    got = json.loads((out / "videos" / "clip.json").read_text())

    reader = open_video(video)
    want = VideoMasks(size=reader.size, num_frames=len(reader), fps=reader.fps)
    prompts = {1: {"frame": 0, "points": [(20, 15)], "labels": [1], "box": None}}
    for frame in paired.track_object(reader, prompts):
        want.add(frame)
    want = want.to_coco(name="clip")
    (annotation,) = want["annotations"]
    assert len(annotation["segmentations"]) == 2 and any(a for a in annotation["areas"])  # a tracked mask
    assert got["annotations"] == want["annotations"]  # RLEs, areas, boxes and scores per frame


@pytest.mark.parametrize(
    "argv",
    [
        ["object", "IMG", "--point", "20,15"],
        ["everything", "IMG", "--points-per-side", "2"],
        ["track", "VIDEO", "--point", "0:20,15"],
        ["track", "VIDEO", "--text", "ball"],
    ],
)
def test_litetext_without_a_tracker_names_the_flag(cache, tmp_path, capsys, argv):
    subst = {
        "IMG": str(write_images(tmp_path / "in", 1)[0]),
        "VIDEO": str(write_video(tmp_path / "v.mp4", 2)),
    }
    out = tmp_path / "out"
    argv = [subst.get(a, a) for a in argv] + ["--model", TINY_RANDOM_LITE_TEXT, "--out", str(out)]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--tracker-model facebook/sam3" in err and repr(TINY_RANDOM_LITE_TEXT) in err
    assert "tracker_model=" not in err and "Traceback" not in err
    assert not out.exists()  # refused before anything is written


def test_a_tracker_for_a_checkpoint_with_its_own_is_a_usage_error(cache, tmp_path, capsys):
    (image,) = write_images(tmp_path / "in", 1)
    argv = ["object", str(image), "--point", "20,15", "--model", TINY_RANDOM, "--tracker-model", TINY_RANDOM,
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--tracker-model {TINY_RANDOM!r} is for checkpoints without a tracker" in err
    assert "Traceback" not in err


def test_ray_replicas_load_the_tracker(cache, tmp_path, monkeypatch):
    """What `--ray` hands Ray Data (recorded by a stand-in dataset; no cluster): the tracker's name is
    resolved before connecting, the replicas of both commands get --tracker-model, the images are
    decoded with the tracker's processor (as a local run's), and a replica built with those
    arguments has the tracker."""
    on_ray = pytest.importorskip("sam3_sdk.cli.on_ray", reason="Ray is not installed")
    events, replicas = [], []

    class Dataset:
        def map_batches(self, fn, **kwargs):
            if "fn_constructor_kwargs" in kwargs:
                replicas.append((fn, kwargs["fn_constructor_kwargs"]))
            return self

        def iter_rows(self):
            return iter(())

    resolve, processor = on_ray.resolve_name, on_ray._processor
    monkeypatch.setattr(on_ray, "resolve_name", lambda name: events.append(name) or resolve(name))
    monkeypatch.setattr(
        on_ray, "_processor", lambda name: events.append(("processor", name)) or processor(name)
    )
    monkeypatch.setattr(on_ray, "connect", lambda address: events.append("connect"))
    monkeypatch.setattr(on_ray.ray.data, "read_binary_files", lambda *a, **k: Dataset())
    monkeypatch.setattr(on_ray.ray.data, "from_items", lambda *a, **k: Dataset())
    monkeypatch.setattr(on_ray, "replica_resources", lambda device, replicas: (1, {"num_cpus": 1}))
    write_images(tmp_path / "in", 1)
    write_video(tmp_path / "clip.mp4", frames=2)
    for argv in (
        ["object", str(tmp_path / "in"), "--point", "1,1"],
        ["track", str(tmp_path), "--point", "0:1,1"],
    ):
        args = build_parser().parse_args([*argv, *PAIR, "--ray", "--out", str(tmp_path / "out")])
        track = args.command == "track"
        job = VideoJob.from_args(args) if track else ImageJob.from_args(args)
        items, _ = (expand_videos if track else expand_images)(args.inputs, exclude=args.out)
        outputs = RunOutputs(args.out)
        outputs.prepare({}, resume=False)
        events.clear()
        on_ray.run(args, job, items, outputs, RunStats(total=len(items)))
        assert events.index(TINY_RANDOM) < events.index("connect")  # written once, before the replicas
        if not track:
            assert ("processor", TINY_RANDOM) in events
    assert [(fn, kwargs["tracker_model"]) for fn, kwargs in replicas] == [
        (on_ray.ImageReplica, TINY_RANDOM),
        (on_ray.VideoReplica, TINY_RANDOM),
    ]
    replica = on_ray.VideoReplica(**{**replicas[1][1], "device": "cpu"})
    assert replica.sam.tracker_checkpoint == resolve_name(TINY_RANDOM) and replica.sam.image_model is not None
