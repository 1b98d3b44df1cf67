"""Every model path keeps its tensors on the model's device (the CPU side of the GPU work).

The usual first failure on CUDA is a tensor made on the CPU inside a forward (`torch.zeros(n)`
without `device=`, `torch.tensor([...])` of constants) meeting one on the GPU. Two checks find
these without a GPU:

- **meta**: the model and every input on the `meta` device (shapes only, no data). An op that mixes
  a meta tensor with one made on the CPU raises, and so does any `.item()` / `.tolist()` / `if
  tensor:` on the way (a host synchronisation on a GPU). The outputs must have the shapes of the
  same call on the CPU. Paths that decide on values (the text-prompted video's NMS and matching)
  cannot run on meta;
- **default device**: the model and inputs on the CPU, but `torch.device("meta")` as the default
  device while the model runs, so a tensor created without `device=` lands on meta and the first
  op mixing it with the CPU data raises. Results must equal an ordinary run's. This covers the
  value-dependent paths too.
"""

from __future__ import annotations

import contextlib
import copy

import concept_scenarios as cs
import numpy as np
import pytest
import torch
from concept_videos import write_concept_checkpoint
from PIL import Image
from sam3_core import (
    EdgeTamVideoModel,
    Sam2VideoProcessor,
    Sam3VideoModel,
    Sam3VideoProcessor,
)
from tiny_checkpoint import HERE, write_tiny_checkpoint

META = torch.device("meta")


def _on_meta(model):
    return copy.deepcopy(model).to(META)


def _meta_like(inputs: dict) -> dict:
    return {k: v.to(META) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _shapes(out) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in out.items() if isinstance(v, torch.Tensor)}


def _assert_meta_like(meta_out, cpu_out) -> None:
    shapes = _shapes(cpu_out)
    assert shapes, "the call returned no tensors"
    assert _shapes(meta_out) == shapes
    for key, value in meta_out.items():
        if isinstance(value, torch.Tensor):
            assert value.device == META, f"{key} left the model's device: {value.device}"


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(1)
    return torch.from_numpy(rng.integers(0, 256, (5, 48, 64, 3), dtype=np.uint8))


TRACKER_PROMPTS = {
    "points": dict(input_points=[[[[10, 20], [30, 40]]]], input_labels=[[[1, 0]]]),
    "box": dict(input_boxes=[[[10, 20, 50, 40]]]),
    "two objects": dict(input_points=[[[[10, 20]], [[50, 30]]]], input_labels=[[[1], [1]]]),
}


@pytest.mark.parametrize("prompt", sorted(TRACKER_PROMPTS))
@pytest.mark.parametrize("multimask", [True, False])
def test_image_tracker_runs_on_meta(tracker_model, tracker_processor, image, prompt, multimask):
    inputs = dict(tracker_processor(images=image, **TRACKER_PROMPTS[prompt], return_tensors="pt"))
    inputs.pop("original_sizes", None)
    cpu = tracker_model(**inputs, multimask_output=multimask)
    meta = _on_meta(tracker_model)(**_meta_like(inputs), multimask_output=multimask)
    _assert_meta_like(meta, cpu)


def test_image_tracker_mask_prompt_runs_on_meta(tracker_model, tracker_processor, image):
    inputs = dict(tracker_processor(images=image, input_points=[[[[10, 20]]]], input_labels=[[[1]]]))
    inputs.pop("original_sizes", None)
    size = tracker_model.config.prompt_encoder_config.image_size // 4
    inputs["input_masks"] = torch.zeros(1, 1, size, size)
    cpu = tracker_model(**inputs)
    meta = _on_meta(tracker_model)(**_meta_like(inputs))
    _assert_meta_like(meta, cpu)


def _detector_inputs(processor, image, prompt: str) -> dict:
    kwargs = {}
    if "text" in prompt:
        kwargs["text"] = "a red ball"
    if "boxes" in prompt:
        kwargs.update(input_boxes=[[[10, 20, 50, 40], [5, 5, 20, 20]]], input_boxes_labels=[[1, 0]])
    inputs = dict(processor(images=image, **kwargs))
    if "text" not in prompt:
        inputs.update(processor(text="visual", images=None))
    inputs.pop("original_sizes", None)
    return inputs


def test_detector_runs_on_meta(detector_model, detector_processor, image):
    # Exemplar boxes cannot run on meta: ROI align reads the largest box's sample count (one
    # host read per call, not per frame); they are covered by the default-device test below.
    inputs = _detector_inputs(detector_processor, image, "text")
    cpu = detector_model(**inputs)
    meta = _on_meta(detector_model)(**_meta_like(inputs))
    _assert_meta_like(meta, cpu)


@pytest.mark.parametrize("prompt", ["text", "boxes", "text and boxes"])
def test_detector_makes_no_tensor_on_the_default_device(detector_model, detector_processor, image, prompt):
    inputs = _detector_inputs(detector_processor, image, prompt)
    plain = detector_model(**inputs)
    with META:
        guarded = detector_model(**inputs)
    _outputs_equal(guarded, plain)


def _video_tracker_calls(model, processor, session, guard=contextlib.nullcontext) -> list:
    """Two clicked objects, forward propagation, a refinement and a reverse pass, then a box adds
    an object late and the last frames are tracked again: each step's outputs. The model runs
    under `guard()`, the processor outside it."""

    def track(**kwargs):
        with guard():
            return [model(inference_session=session, frame_idx=kwargs.pop("frame_idx"))] + list(
                model.propagate_in_video_iterator(session, **kwargs)
            )

    outs = []
    processor.add_inputs_to_inference_session(
        inference_session=session,
        frame_idx=0,
        obj_ids=[1, 2],
        input_points=[[[[10, 10]], [[40, 30]]]],
        input_labels=[[[1], [1]]],
    )
    outs += track(frame_idx=0)
    processor.add_inputs_to_inference_session(
        inference_session=session, frame_idx=3, obj_ids=[1], input_points=[[[[12, 14]]]], input_labels=[[[0]]]
    )
    outs += track(frame_idx=3, start_frame_idx=3, reverse=True)
    processor.add_inputs_to_inference_session(
        inference_session=session, frame_idx=2, obj_ids=[3], input_boxes=[[[20, 10, 50, 40]]]
    )
    outs += track(frame_idx=2, start_frame_idx=2, max_frame_num_to_track=2)
    return outs


def _tracker_cases(request):
    if request.param == "sam3":
        return request.getfixturevalue("video_model"), request.getfixturevalue("video_processor")
    folder = write_tiny_checkpoint(
        request.getfixturevalue("tmp_path_factory").mktemp("edgetam") / "e", source_dir=HERE / "tiny_edgetam"
    )
    return EdgeTamVideoModel.from_pretrained(folder), Sam2VideoProcessor(size=128, mask_size=32)


@pytest.fixture(scope="module", params=["sam3", "edgetam"])
def video_tracker(request):
    return _tracker_cases(request)


def test_video_tracker_runs_on_meta(video_tracker, frames):
    model, processor = video_tracker
    cpu = _video_tracker_calls(model, processor, processor.init_video_session(video=frames))
    meta = _video_tracker_calls(
        _on_meta(model), processor, processor.init_video_session(video=frames, inference_device=META)
    )
    assert len(meta) == len(cpu)
    for m, c in zip(meta, cpu):
        assert m.frame_idx == c.frame_idx
        _assert_meta_like(m, c)


def test_video_tracker_streaming_runs_on_meta(video_tracker, frames):
    model, processor = video_tracker
    meta_model = _on_meta(model)
    for device, net in (("cpu", model), (META, meta_model)):
        session = processor.init_video_session(inference_device=device)
        for i in range(3):
            pixels = processor(images=frames[i].numpy(), return_tensors="pt")
            if i == 0:
                processor.add_inputs_to_inference_session(
                    inference_session=session,
                    frame_idx=0,
                    obj_ids=[1],
                    input_points=[[[[10, 10]]]],
                    input_labels=[[[1]]],
                    original_size=pixels.original_sizes[0],
                )
            out = net(inference_session=session, frame=pixels.pixel_values[0].to(device))
            assert out.pred_masks.device.type == torch.device(device).type


def _outputs_equal(a, b) -> None:
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            # the same computation on the same data twice: only the default device differs
            assert torch.equal(value, b[key]), key


def test_video_tracker_makes_no_tensor_on_the_default_device(video_tracker, frames):
    model, processor = video_tracker
    plain = _video_tracker_calls(model, processor, processor.init_video_session(video=frames))
    guarded = _video_tracker_calls(
        model, processor, processor.init_video_session(video=frames), guard=lambda: META
    )
    for g, p in zip(guarded, plain):
        _outputs_equal(g, p)


@pytest.fixture(scope="module")
def concept_video(tmp_path_factory):
    folder = write_concept_checkpoint(tmp_path_factory.mktemp("concept"))
    return Sam3VideoModel.from_pretrained(folder, **cs.CONFIG_OVERRIDES), Sam3VideoProcessor.from_pretrained(
        folder
    )


def test_text_video_makes_no_tensor_on_the_default_device(concept_video):
    """The text-prompted video decides on values (NMS, matching), so it cannot run on meta; with
    meta as the default device a tensor made without `device=` would meet the CPU data and raise."""
    model, processor = concept_video

    def run(guard: bool):
        session = processor.init_video_session(video=cs.video(3))
        processor.add_text_prompt(session, cs.PHRASES)
        if not guard:
            return list(model.propagate_in_video_iterator(inference_session=session))
        with META:
            return list(model.propagate_in_video_iterator(inference_session=session))

    plain, guarded = run(False), run(True)
    assert [o.object_ids for o in guarded] == [o.object_ids for o in plain]
    assert any(len(o.object_ids) for o in plain), "the scenario finds no object: nothing is checked"
    for g, p in zip(guarded, plain):
        for obj in p.obj_id_to_mask:
            assert torch.equal(g.obj_id_to_mask[obj], p.obj_id_to_mask[obj])
