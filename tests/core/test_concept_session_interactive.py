"""The interactive options and methods of the text-prompted session (`Sam3VideoInferenceSession`):
the detection cache bounded in bytes, clicked objects in the phrases' id space, hide / remove /
forget a phrase, and protection from the hot-start rules (`concept_tracker.update_hotstart`).
No model: the state and the rules alone (the model's use of them is covered by tests/sdk)."""

from __future__ import annotations

import pytest
import torch
from sam3_core import Sam3VideoConfig, Sam3VideoInferenceSession
from sam3_core.video import concept_tracker as ct
from sam3_core.video.concept_detections import DetectionCache, Detections


def _dets(n: int, prompt_id: int = 0, size: int = 8) -> Detections:
    return Detections(
        boxes=torch.zeros(n, 4),
        masks=torch.zeros(n, size, size),
        scores=torch.ones(n),
        prompt_ids=torch.full((n,), prompt_id, dtype=torch.long),
    )


def test_detection_cache_is_bounded_in_bytes():
    one = _dets(2).nbytes  # 2 * (4 + 64 + 1) * 4 bytes + 2 * 8
    assert one == 2 * (4 + 64 + 1) * 4 + 2 * 8
    cache = DetectionCache(max_bytes=2 * one)
    for frame in range(3):
        cache.put(frame, 0, _dets(2))
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert cache.get(0, 0) is None and cache.get(2, 0) is not None  # the first frame cached goes first
    cache.put(2, 1, _dets(2, prompt_id=1))  # over the limit: frame 1 goes, the frame at hand stays
    assert cache.get(1, 0) is None and len(cache) == 1 and cache.nbytes == 2 * one
    cache.forget_prompt(1)
    assert cache.get(2, 1) is None and cache.nbytes == one
    off = DetectionCache(0)  # the default: nothing kept
    off.put(0, 0, _dets(2))
    assert len(off) == 0 and off.get(0, 0) is None
    with pytest.raises(ValueError, match="detection_cache_bytes"):
        DetectionCache(-1)


def test_clicked_objects_share_the_id_space_with_phrase_objects():
    session = Sam3VideoInferenceSession(first_obj_id=1, detection_cache_bytes=1024)
    assert session.next_obj_id() == 1 and session.max_obj_id == 0
    session.add_prompt("red ball")
    session.add_clicked_object(5)
    assert session.next_obj_id() == 6 and session.obj_id_used(5) and not session.obj_id_used(6)
    assert session.phrase_of(5) is None and 5 in session.protected_obj_ids
    assert session.clicked_obj_indices() == [0]
    with pytest.raises(ValueError, match="remove_object"):
        session.hide_object(5)
    session.remove_object(5)
    assert session.obj_ids == [] and 5 not in session.protected_obj_ids and 5 not in session.clicked_obj_ids
    session.reset_state()  # the options stay
    assert session.first_obj_id == 1 and session.detections.max_bytes == 1024 and session.next_obj_id() == 1


def test_forget_text_removes_its_objects_and_a_phrase_comes_back():
    session = Sam3VideoInferenceSession(first_obj_id=1, detection_cache_bytes=10**6)
    red, blue = session.add_prompt("red ball"), session.add_prompt("blue disc")
    session.add_found_objects(0, [1, 2], torch.ones(2, 4, 4, dtype=torch.bool))
    session.obj_id_to_prompt_id.update({1: red, 2: blue})  # as admit_new_objects records them
    session.cache_detections(0, blue, _dets(1, blue))
    session.hide_object(2)
    assert session.forget_text("blue disc") == [2]
    assert session.obj_ids == [1] and session.hidden_obj_ids == set()
    assert session.active_phrases == ["red ball"] and session.cached_detections(0, blue) is None
    with pytest.raises(ValueError, match="unknown phrase 'blue disc'"):
        session.forget_text("blue disc")
    assert session.add_prompt("blue disc") == blue and session.active_phrases == ["red ball", "blue disc"]


def _settings(**overrides) -> ct.ConceptTrackerSettings:
    return ct.ConceptTrackerSettings.from_config(
        Sam3VideoConfig(hotstart_delay=4, hotstart_unmatch_thresh=2, hotstart_dup_thresh=2, **overrides)
    )


@pytest.mark.parametrize("protect", [False, True], ids=["fresh", "protected"])
def test_hot_start_rules_spare_protected_objects(protect):
    # two objects found on frame 0, neither matched by a detection on frames 1 and 2: within the
    # hot-start delay, both would be removed on frame 2; a protected one stays and is never hidden
    s = _settings()
    session = Sam3VideoInferenceSession()
    session.add_found_objects(0, [0, 1], torch.ones(2, 4, 4, dtype=torch.bool))
    found = ct.Association([], [], [], {}, {})
    assert ct.update_hotstart(session, 0, False, found, [0, 1], s, streaming=False) == set()
    if protect:
        session.protect_found_objects()
    unmatched = ct.Association([], [0, 1], [], {}, {})
    ct.update_hotstart(session, 1, False, unmatched, [], s, streaming=False)
    removed = ct.update_hotstart(session, 2, False, unmatched, [], s, streaming=False)
    assert removed == (set() if protect else {0, 1})
    assert (session.unmatched_frame_inds == {}) is protect
    session.suppressed_obj_ids[3].add(1)  # hidden on frame 3 by an earlier pass
    ct.update_hotstart(session, 3, False, unmatched, [], s, streaming=False)
    assert (1 in session.suppressed_obj_ids[3]) is not protect
