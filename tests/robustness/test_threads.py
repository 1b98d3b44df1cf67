"""Shared objects touched from several threads at once, as a server's handler threads touch them: a
video file's reader (one decoder), a video session (one tracking state), an image session, the
feature store. Each either serialises its callers (and gives every one the right answer) or refuses
the second caller with a clear error; nothing crashes and no result is silently wrong."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading

import av
import numpy as np
import pytest
from sam3_sdk import SessionBusyError
from test_videos import make_video

H, W = 24, 32


def write_video(path, frames, gop: int = 6):
    """An H.264 MP4 of (H, W, 3) uint8 frames, a keyframe every `gop` frames (so reads seek)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.gop_size = gop
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _run_threads(target, count: int) -> list:
    """Run target(i) on `count` threads started together; returns each one's result or exception."""
    start = threading.Barrier(count)
    out: list = [None] * count

    def work(i: int) -> None:
        start.wait()
        try:
            out[i] = target(i)
        except Exception as e:  # kept for the test to inspect
            out[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread is still running after 300 s"
    return out


# ---------------------------------------------------------------------------------------------
# VideoReader: one file, one decoder, many readers
# ---------------------------------------------------------------------------------------------

# Run in a child process, so that a crash (FFmpeg seeking under another thread's decode) fails the
# test instead of ending the test run. Prints how many reads were wrong and which errors came.
_CONCURRENT_READS = """
import random, sys, threading
import numpy as np
from sam3_sdk.video_io import VideoReader, _AvSource
path, n, closer = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "close"
reference = [np.asarray(f).copy() for f in VideoReader(_AvSource(path, cache_bytes=1), "ref")]
shared = VideoReader(_AvSource(path, cache_bytes=1), "shared")  # cache of 2 frames: reads decode
start, wrong, errors = threading.Barrier(4), [], []
def work(seed):
    rng = random.Random(seed)
    start.wait()
    for _ in range(n):
        i = rng.randrange(len(reference))
        try:
            if closer and seed == 0:
                shared.close()  # the next read opens the file again
                continue
            frame = shared[i]
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
            continue
        if not np.array_equal(frame, reference[i]):
            wrong.append(i)
threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(f"wrong={len(wrong)} errors={len(errors)} {errors[:2]}")
"""


@pytest.mark.parametrize("closer", ["read", "close"])
def test_one_video_reader_read_from_four_threads_gives_each_the_right_frame(tmp_path, closer):
    """Random frame access on one file from 4 threads at once (a seek under another thread's decode
    crashed FFmpeg, or raised "generator already executing"), and with "close" one thread closing
    the reader meanwhile: every frame read equals the frame a single thread reads."""
    path = write_video(tmp_path / "clip.mp4", make_video(30, 48, 64, seed=5))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CONCURRENT_READS), str(path), "60", closer],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert run.returncode == 0, f"the reading process died (code {run.returncode}): {run.stderr[-2000:]}"
    assert run.stdout.startswith("wrong=0 errors=0"), run.stdout + run.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# VideoSession: one tracking state
# ---------------------------------------------------------------------------------------------


def _clip() -> np.ndarray:
    frames = np.zeros((4, H, W, 3), np.uint8)
    for t in range(4):
        frames[t, 6:16, 4 + 2 * t : 14 + 2 * t] = (230, 210, 40)  # a square moving right
    return frames


def _masks(results) -> dict[int, np.ndarray]:
    return {r.frame_idx: r.masks.copy() for r in results}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(sam):
    """Every frame's masks of a session used by one thread."""
    with sam.video_session(_clip()) as session:
        session.add_object(frame=0, points=[(8, 10)], obj_id=1)
        return _masks(session.propagate())


def _session(sam):
    session = sam.video_session(_clip())
    session.add_object(frame=0, points=[(8, 10)], obj_id=1)
    return session


def test_second_propagation_and_prompt_changes_from_another_thread_are_refused(sam, reference):
    session = _session(sam)
    running = session.propagate()
    first = next(running)  # a propagation is under way in this thread

    def other(_: int):
        refused = []
        for call in (
            lambda: list(session.propagate()),
            lambda: session.add_object(frame=0, points=[(20, 10)]),
            lambda: session.refine(1, frame=2, points=[(12, 10)]),
            lambda: session.remove_object(1),
            lambda: session.reset(),
        ):
            with pytest.raises(SessionBusyError, match="a propagation of this session is under way"):
                call()
            refused.append(True)
        return refused

    assert _run_threads(other, 1) == [[True] * 5]
    masks = _masks([first, *running])
    assert _same(masks, reference), "the running propagation's masks changed"
    # once it is done the session is free again, and gives the same masks
    assert _same(_masks(session.propagate()), reference)
    session.close()


def test_a_propagation_given_up_frees_the_session(sam, reference):
    session = _session(sam)
    for _ in session.propagate():
        break  # the iterator is closed: the session is free at once
    assert _same(_masks(session.propagate()), reference)


@pytest.mark.parametrize("round_", range(3))
def test_two_threads_propagating_one_session_get_right_masks_or_a_clear_refusal(sam, reference, round_):
    """Before the lock, two propagations of one session interleaved their steps on one state, and a
    frame's mask could come out wrong without a word."""
    session = _session(sam)
    out = _run_threads(lambda i: _masks(session.propagate()), 2)
    for result in out:
        if isinstance(result, Exception):
            assert isinstance(result, SessionBusyError) and "under way" in str(result), repr(result)
        else:
            assert _same(result, reference), "a propagation running beside another gave other masks"
    assert any(not isinstance(r, Exception) for r in out)


def test_close_from_another_thread_stops_a_propagation_with_a_clear_error(sam):
    session = _session(sam)
    running = session.propagate()
    next(running)
    _run_threads(lambda i: session.close(), 1)
    with pytest.raises(RuntimeError, match="closed during propagation"):
        next(running)


# ---------------------------------------------------------------------------------------------
# ImageSession and the feature store
# ---------------------------------------------------------------------------------------------


def test_clicks_from_two_threads_on_one_image_session_are_all_kept(sam):
    image = _clip()[0]
    session = sam.image_session(image)
    points = [(4 + i, 8 + i % 5) for i in range(8)]
    _run_threads(lambda i: [session.add_point(*points[k]) for k in range(i, 8, 2)], 2)
    assert sorted(session.prompt.points) == sorted((float(x), float(y)) for x, y in points)
    alone = sam.image_session(image)
    for x, y in session.prompt.points:  # the same clicks in the order they were kept
        last = alone.add_point(x, y)
    assert np.array_equal(session.result.masks, last.masks)


def test_feature_store_shared_by_threads_keeps_its_bound_and_entries(sam):
    store = sam.feature_store
    images = [np.full((H, W, 3), 10 * k, np.uint8) for k in range(12)]

    def work(i: int) -> bool:
        rng = random.Random(i)
        for _ in range(300):
            k = rng.randrange(12)
            entry = store.get(images[k])
            assert np.array_equal(entry.image, images[k])
        return True

    assert _run_threads(work, 4) == [True] * 4
    assert len(store) <= store.cache_size


def test_models_loaded_on_first_use_load_once_when_threads_ask_at_once(tiny_checkpoint_dir, monkeypatch):
    """The detector and the video tracker load on first use; two handler threads asking at once
    loaded two copies (twice the memory, and two detectors for one feature store)."""
    from sam3_sdk import Sam3

    sam = Sam3.from_pretrained(tiny_checkpoint_dir, device="cpu")
    loads = []
    for name in ("_load_detector", "_load_video_predictor"):
        real = getattr(Sam3, name)
        monkeypatch.setattr(
            Sam3, name, lambda self, real=real, name=name: (loads.append(name), real(self))[1]
        )
    out = _run_threads(lambda i: (sam.detector, sam.concept_predictor, sam.video_predictor), 3)
    assert not any(isinstance(r, Exception) for r in out), out
    assert sorted(loads) == ["_load_detector", "_load_video_predictor"]
    assert all(r[0] is out[0][0] and r[1] is out[0][1] and r[2] is out[0][2] for r in out)
