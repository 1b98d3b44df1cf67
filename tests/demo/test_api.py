"""The demo's API from a program: `gradio_client` against the real demo server (tiny random
checkpoint), every action with what a click gives as plain arguments; the masks it returns (COCO /
YouTube-VIS JSON, read with pycocotools) equal the SDK's for the same inputs on the same weights.

Tolerance: the server and this process run the same code on the same weights, but with their own
thread counts, so float sums may round differently and a pixel whose logit is ~0 may flip: at most
0.1% of the pixels of a mask may differ, scores within 1e-4."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coco_files import coco_masks, load_coco, load_youtube_vis  # noqa: E402
from tab_flows import write_clip  # noqa: E402
from test_images import make_image  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
ENDPOINTS = {"/segment_concept", "/segment_object", "/generate_masks", "/track_video"}


@pytest.fixture(scope="module")
def client(demo_url):
    return gradio_client.Client(demo_url, verbose=False)


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    from sam3_sdk import Sam3
    from sam3_sdk.testing import tiny_random_checkpoint

    # The server's `--model tiny-random` writes the same weights (seeded by each tensor's name).
    return Sam3.from_pretrained(tiny_random_checkpoint(tmp_path_factory.mktemp("sdk-cache")), device="cpu")


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "scene.png"
    make_image(120, 160, seed=4).save(path)
    return path


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def assert_same_masks(coco_file: dict, expected, tmp_path) -> None:
    """The endpoint's COCO JSON, loaded by pycocotools, against the SDK's `Instances`."""
    path = tmp_path / "api.json"
    path.write_text(json.dumps(coco_file))
    coco = load_coco(path)
    got = coco_masks(coco)
    assert got.shape == expected.masks.shape and len(got) > 0
    for g, want in zip(got, expected.masks):
        assert (g != want).mean() <= 1e-3
    scores = [a["score"] for a in sorted(coco.dataset["annotations"], key=lambda a: a["id"])]
    np.testing.assert_allclose(scores, expected.scores, atol=1e-4)


def test_the_api_lists_one_readable_endpoint_per_action(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == ENDPOINTS and not info["unnamed_endpoints"]
    params = {
        name: [p["parameter_name"] for p in e["parameters"]] for name, e in info["named_endpoints"].items()
    }
    assert params["/segment_object"] == ["image", "points", "labels", "box", "multimask"]
    assert params["/track_video"] == ["video", "prompts", "text", "direction", "tracker"]
    text = client.view_api(print_info=False, return_format="str")
    assert "on_upload" not in text and "on_click" not in text and "lambda" not in text


def test_segment_concept_equals_the_sdk(client, sam, image_path, tmp_path):
    boxes, labels = [[10, 10, 80, 90]], [1]
    coco, overlay = client.predict(gradio_client.handle_file(str(image_path)), "red ball", boxes, labels,
                                   0.0, 0.5, api_name="/segment_concept")  # fmt: skip
    want = sam.segment_concept(
        _image(image_path), text="red ball", boxes=boxes, box_labels=labels, threshold=0.0
    )
    assert_same_masks(coco, want, tmp_path)
    assert (
        coco["categories"] == [{"id": 1, "name": "red ball"}]
        and coco["images"][0]["file_name"] == "scene.png"
    )
    assert Image.open(overlay).size == (160, 120)


def test_segment_object_takes_points_labels_and_a_box(client, sam, image_path, tmp_path):
    handle = gradio_client.handle_file(str(image_path))
    coco, overlay = client.predict(handle, [[40, 50]], [1], None, "auto", api_name="/segment_object")
    want = sam.segment_object(_image(image_path), points=[(40, 50)], labels=[1])
    assert len(want) == 3  # one click: three candidates, best first
    assert_same_masks(coco, want, tmp_path)
    coco, _ = client.predict(handle, [[40, 50], [100, 30]], [1, 0], [20, 20, 90, 100], "auto",
                             api_name="/segment_object")  # fmt: skip
    want = sam.segment_object(
        _image(image_path), points=[(40, 50), (100, 30)], labels=[1, 0], box=(20, 20, 90, 100)
    )
    assert_same_masks(coco, want, tmp_path)
    assert np.asarray(Image.open(overlay)).shape == (120, 160, 3)


def test_generate_masks_equals_the_sdk(client, sam, image_path, tmp_path):
    coco, _ = client.predict(gradio_client.handle_file(str(image_path)), 4, 0.0, 0.0, 0.7, 0,
                             api_name="/generate_masks")  # fmt: skip
    want = sam.generate_masks(
        _image(image_path), points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    assert_same_masks(coco, want, tmp_path)


def test_track_video_takes_an_object_id_frame_and_clicks(client, sam, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    prompts = [
        {"object_id": 1, "frame": 1, "points": [[30, 30]], "labels": [1]},
        {"object_id": 5, "frame": 1, "box": [50, 10, 90, 50]},
    ]
    vis, mp4 = client.predict(gradio_client.handle_file(str(clip)), prompts, "", "both", "SAM 3",
                              api_name="/track_video")  # fmt: skip
    path = tmp_path / "vis.json"
    path.write_text(json.dumps(vis))
    got = load_youtube_vis(path)  # every frame's RLE decoded by pycocotools
    assert got["data"]["videos"][0]["file_names"][0] == "clip/00000.jpg"
    sdk_prompts = {1: dict(frame=1, points=[(30, 30)], labels=[1]), 5: dict(frame=1, box=(50, 10, 90, 50))}
    frames = set()
    for result in sam.track_object(str(clip), sdk_prompts, direction="both"):  # frame 1 comes twice
        frames.add(result.frame_idx)
        for obj_id in (1, 5):
            want = result.mask(obj_id)
            mask = got["masks"][obj_id][result.frame_idx]
            mask = np.zeros_like(want) if mask is None else mask
            assert (mask != want).mean() <= 1e-3, (obj_id, result.frame_idx)
    assert frames == {0, 1, 2, 3}
    with av.open(mp4) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4


def test_refusals_come_back_as_messages(client, image_path, tmp_path):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="text prompt, exemplar boxes, or both"):
        client.predict(gradio_client.handle_file(str(image_path)), "", None, None, 0.5, 0.5,
                       api_name="/segment_concept")  # fmt: skip
    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    with pytest.raises(AppError, match=r"prompts\[0\] must be an object with object_id"):
        client.predict(gradio_client.handle_file(str(clip)), [{"frame": 0}], "", "both", "SAM 3",
                       api_name="/track_video")  # fmt: skip
