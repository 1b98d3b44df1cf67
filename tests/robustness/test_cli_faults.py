"""The `sam3` command line when the world misbehaves: a disk that fills up mid-run or just before
annotations.json (a real 2 MB tmpfs), a resumed run pointed at another folder with the same file
names, an output folder inside the input folder, symbolic links that form a loop under a `**`
glob, and a run killed between an output and its record. Nothing crashes with a traceback, and
nothing on disk claims more than was done: every output has a record, every record its outputs,
and summary.json counts exactly the records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sam3_sdk.cli import main
from sam3_sdk.cli.arguments import EXIT_ERROR, EXIT_OK


def _images(folder: Path, count: int, size: tuple[int, int] = (48, 64), seed: int = 0) -> list[Path]:
    """`count` noisy JPEGs (noise keeps overlays large, so a small disk fills after a few)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.jpg"
        Image.fromarray(rng.randint(0, 256, (*size, 3), dtype=np.uint8)).save(path, quality=95)
        paths.append(path)
    return paths


def _object(inputs: list[str], out: Path, checkpoint: Path, *extra: str) -> int:
    return main(["object", *inputs, "--point", "12,9", "--model", str(checkpoint), "--out", str(out), "-q",
                 "--batch-size", "2", *extra])  # fmt: skip


def _records(out: Path) -> dict[str, dict]:
    done = out / ".sam3" / "done"
    return {
        p.relative_to(done).as_posix()[: -len(".json")]: json.loads(p.read_text())
        for p in done.rglob("*.json")
    }


def _assert_consistent(out: Path) -> dict[str, dict]:
    """Every mask / overlay has a record that lists it, every record's files exist, nothing temporary
    is left, and summary.json (when written) counts exactly the records."""
    records = _records(out)
    listed = {f for r in records.values() for f in r["files"]}
    for folder in ("masks", "overlays"):
        for path in (out / folder).rglob("*") if (out / folder).is_dir() else []:
            if path.is_file():
                assert path.relative_to(out).as_posix() in listed, f"{path} has no record"
    assert all((out / f).is_file() for f in listed), "a record lists a missing file"
    if (out / "summary.json").is_file():
        summary = json.loads((out / "summary.json").read_text())
        assert summary["done"] + summary["skipped"] == len(records), (summary, sorted(records))
    return records


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB file system (tmpfs), or a skip saying why there is none."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a 2 MB tmpfs ({e}); the disk-full cases need root")
    if made.returncode != 0:
        pytest.skip(f"cannot mount a 2 MB tmpfs ({made.stderr.strip()}); the disk-full cases need root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _grow(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True, timeout=30)


def test_disk_full_mid_run_counts_only_recorded_inputs_and_resume_finishes(
    tiny_checkpoint_dir, tmp_path, small_disk, capsys
):
    inputs = _images(tmp_path / "in", 16, size=(480, 640))
    out = small_disk / "out"
    rc = _object([str(tmp_path / "in")], out, tiny_checkpoint_dir, "--overlay")
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR
    assert "No space left on device" in err and "--resume" in err and "Traceback" not in err, err
    records = _assert_consistent(out)
    assert 0 < len(records) < len(inputs)  # it did stop part way
    if (out / "annotations.json").is_file():  # what is done so far, described once each
        coco = json.loads((out / "annotations.json").read_text())
        assert sorted(i["file_name"] for i in coco["images"]) == sorted(
            r["file_name"] for r in records.values()
        )

    _grow(small_disk, "64m")  # space freed: the same command with --resume does the rest
    rc = _object([str(tmp_path / "in")], out, tiny_checkpoint_dir, "--overlay", "--resume")
    assert rc == EXIT_OK, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["done"], summary["failed"]) == (
        len(records), len(inputs) - len(records), 0,
    )  # fmt: skip
    assert len(_assert_consistent(out)) == len(inputs)
    coco = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == [p.name for p in inputs]
    # the same outputs as a run that never met a full disk (scores to float32 rounding: the backbone
    # saw other batches, whose sums may differ in the last bits)
    clean = tmp_path / "clean"
    assert _object([str(tmp_path / "in")], clean, tiny_checkpoint_dir, "--overlay") == EXIT_OK
    want = json.loads((clean / "annotations.json").read_text())
    assert coco["images"] == want["images"] and len(coco["annotations"]) == len(want["annotations"])
    for got, expected in zip(coco["annotations"], want["annotations"]):
        assert got.pop("score") == pytest.approx(expected.pop("score"), abs=1e-5)
        assert got == expected


def test_disk_full_just_before_annotations_json_is_a_sentence(
    tiny_checkpoint_dir, tmp_path, small_disk, capsys, monkeypatch
):
    _images(tmp_path / "in", 3)
    out = small_disk / "out"
    from sam3_sdk.cli.outputs import RunOutputs

    write_coco = RunOutputs.write_coco

    def fill_then_write(self, items, categories):
        # Fill the real file system to its last byte, so the real write below meets ENOSPC.
        with open(small_disk / "ballast", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        return write_coco(self, items, categories)

    monkeypatch.setattr(RunOutputs, "write_coco", fill_then_write)
    rc = _object([str(tmp_path / "in")], out, tiny_checkpoint_dir)
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR
    assert f"cannot write {out / 'annotations.json'}: No space left on device" in err, err
    assert "--resume" in err and "Traceback" not in err
    assert not (out / "annotations.json").exists()
    assert len(_assert_consistent(out)) == 3  # the records are kept: --resume only writes the COCO file
    (small_disk / "ballast").unlink()
    monkeypatch.setattr(RunOutputs, "write_coco", write_coco)
    assert _object([str(tmp_path / "in")], out, tiny_checkpoint_dir, "--resume") == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped"]) == (0, 3)
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 3


def test_resume_against_another_folder_with_the_same_names_redoes_them(tiny_checkpoint_dir, tmp_path):
    a = _images(tmp_path / "a", 2, size=(48, 64), seed=1)
    b = _images(tmp_path / "b", 2, size=(40, 56), seed=2)
    out = tmp_path / "out"
    assert _object([str(tmp_path / "a")], out, tiny_checkpoint_dir) == EXIT_OK
    assert _object([str(tmp_path / "b")], out, tiny_checkpoint_dir, "--resume") == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped"]) == (2, 0)  # a's records do not describe b's images
    coco = json.loads((out / "annotations.json").read_text())
    assert [(i["file_name"], i["height"], i["width"]) for i in coco["images"]] == [
        ("img00.jpg", 40, 56), ("img01.jpg", 40, 56)
    ]  # fmt: skip
    assert {r["source"]["path"] for r in _records(out).values()} == {str(p.resolve()) for p in b}

    # an input edited in place (same path and name) is redone too; the untouched one is skipped
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(b[1])
    os.utime(b[1], ns=(b[1].stat().st_atime_ns, b[1].stat().st_mtime_ns + 10**9))
    assert _object([str(tmp_path / "b")], out, tiny_checkpoint_dir, "--resume") == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped"]) == (1, 1)
    coco = json.loads((out / "annotations.json").read_text())
    assert (coco["images"][1]["height"], coco["images"][1]["width"]) == (30, 30)
    _assert_consistent(out)
    assert a  # a's files were only the earlier run's inputs


def test_output_folder_inside_the_input_folder_is_never_read(tiny_checkpoint_dir, tmp_path):
    _images(tmp_path / "in", 2)
    out = tmp_path / "in" / "out"
    for extra in ((), ("--resume",)):
        assert _object([str(tmp_path / "in")], out, tiny_checkpoint_dir, "--overlay", *extra) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["total"], summary["skipped"], summary["done"]) == (2, 2, 0)
    coco = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["img00.jpg", "img01.jpg"]
    # a glob reaching into it does not read it either
    assert _object([str(tmp_path / "in" / "**" / "*.jpg")], out, tiny_checkpoint_dir, "--overlay") == EXIT_OK
    coco = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["img00.jpg", "img01.jpg"]


_EXPAND = """
import sys
from sam3_sdk.cli.inputs import expand_images
found, problems = expand_images([sys.argv[1]])
print(sorted(f.name for f in found))
"""


def test_recursive_glob_over_a_symlink_loop_ends(tiny_checkpoint_dir, tmp_path):
    root = tmp_path / "sl"
    _images(root, 1)
    _images(root / "sub" / "deep", 1, seed=3)
    (root / "sub" / "up").symlink_to("..")  # sl/sub/up -> sl
    (root / "self").symlink_to(".")  # sl/self -> sl
    (root / "sub" / "deep" / "top").symlink_to("../..")
    pattern = str(root / "**" / "*.jpg")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:  # in a child process: before the fix this never ended
        run = subprocess.run([sys.executable, "-c", _EXPAND, pattern], capture_output=True, text=True,
                             timeout=60, env=env)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"expanding {pattern!r} over a symlink loop did not end in 60 s")
    assert run.stdout.strip() == "['img00.jpg', 'sub/deep/img00.jpg']", run.stdout + run.stderr
    out = tmp_path / "out"
    assert _object([pattern], out, tiny_checkpoint_dir) == EXIT_OK
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 2


def test_outputs_of_a_killed_run_without_records_are_removed_on_resume(tiny_checkpoint_dir, tmp_path):
    """A run killed between an input's mask and its record (or mid-write) leaves files no record
    lists; the next run removes them and redoes that input."""
    _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert _object([str(tmp_path / "in")], out, tiny_checkpoint_dir, "--overlay") == EXIT_OK
    (out / ".sam3" / "done" / "img01.json").unlink()  # killed before img01's record
    (out / "masks" / ".img02.tmp-999.png").write_bytes(b"half a png")  # killed mid-write
    (out / "masks" / "gone.png").write_bytes(b"from an input no longer here")
    (out / "overlays" / "img00.jpg").unlink()  # a record whose file is gone: redone
    assert _object([str(tmp_path / "in")], out, tiny_checkpoint_dir, "--overlay", "--resume") == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped"]) == (2, 1)
    assert not (out / "masks" / ".img02.tmp-999.png").exists() and not (out / "masks" / "gone.png").exists()
    assert sorted(_assert_consistent(out)) == ["img00", "img01", "img02"]


def _noisy_video(path: Path, frames: int, seed: int) -> Path:
    """An H.264 MP4 of noise (large, so a small disk fills after a video or two)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(frames):
            rgb = rng.randint(0, 256, (240, 320, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_disk_full_while_tracking_leaves_no_video_output_without_a_record(
    tiny_checkpoint_dir, tmp_path, small_disk, capsys
):
    for i in range(3):
        _noisy_video(tmp_path / "in" / f"clip{i}.mp4", 3, seed=i)
    _grow(small_disk, "300k")  # one video's outputs (~200 KB: the annotated MP4 of noise, masks) fit
    out = small_disk / "out"
    argv = ["track", str(tmp_path / "in"), "--point", "0:12,9", "--model", str(tiny_checkpoint_dir),
            "--out", str(out), "-q"]  # fmt: skip
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR
    assert "No space left on device" in err and "--resume" in err and "Traceback" not in err, err
    records = _records(out)
    assert 0 < len(records) < 3
    listed = {f for r in records.values() for f in r["files"]}
    assert {p.relative_to(out).as_posix() for p in (out / "videos").rglob("*") if p.is_file()} == listed
    assert all(any(f.endswith(".mp4") for f in r["files"]) for r in records.values())
    if (out / "summary.json").is_file():
        assert json.loads((out / "summary.json").read_text())["done"] == len(records)
    _grow(small_disk, "64m")
    assert main([*argv, "--resume"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["done"]) == (len(records), 3 - len(records))
    assert sorted(_records(out)) == [f"clip{i}" for i in range(3)]


def test_a_first_run_into_a_folder_of_someone_elses_files_removes_nothing(tiny_checkpoint_dir, tmp_path):
    """Tidying is only for folders an earlier run wrote (.sam3/job.json): a first run into a folder
    that already has a masks/ folder of its owner's PNGs leaves them alone."""
    _images(tmp_path / "in", 1)
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "mine.png").write_bytes(b"the owner's file")
    assert _object([str(tmp_path / "in")], out, tiny_checkpoint_dir) == EXIT_OK
    assert (out / "masks" / "mine.png").read_bytes() == b"the owner's file"
