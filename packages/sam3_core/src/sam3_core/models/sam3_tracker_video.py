"""`Sam3TrackerVideoModel`: track objects prompted with points, boxes or masks through a video.

The model is the glue between two parts:

- the tracking engine (`video/engine.py`): per frame and object, the frame's features are
  conditioned on the object's memory by the memory attention, the prompt encoder and mask
  decoder (`TrackerBase`, shared with the image tracker) predict the mask, and the memory
  encoder turns the frame's predictions into memories for later frames. Pure: no session state.
- the session (`video/session.py`): frames, prompts, outputs, cached features.

`forward` decides, per object, whether the frame is a first prompt, a correction or a tracked
frame; gathers the object's stored outputs from the session; has the memory policy pick its
memory and the engine segment it; and stores the results back through the session's methods.

Loading: the combined `facebook/sam3` checkpoint, keys mapped like the image tracker's, memory
modules included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint_keys import VIDEO_TRACKER
from ..config import BaseConfig, Sam3TrackerVideoConfig
from ..modeling.backbones.vit import Sam3ViTModel
from ..modeling.layers import MLP
from ..modeling.memory.attention import MemoryAttention
from ..modeling.memory.encoder import MemoryEncoder
from ..outputs import Sam3TrackerVideoSegmentationOutput
from ..video.engine import EngineSettings, TrackerModules, TrackingEngine, TrackStep
from ..video.memory_policy import MemoryPolicy, MemorySelection
from ..video.session import Sam3TrackerVideoInferenceSession
from .tracker_base import TrackerBase


class Sam3TrackerVideoModel(TrackerBase):
    """SAM 3 video tracker: segment and track objects prompted with points, boxes or masks.

    Args:
        config: a `Sam3TrackerVideoConfig` (or a combined `Sam3VideoConfig`; its tracker part is used).
        remove_vision_encoder: build without the backbone (features must then come from elsewhere).
        backbone: an existing ViT to share with other models (one trunk, a neck each).
    """

    config_class = Sam3TrackerVideoConfig
    config_key = "tracker_config"
    checkpoint_layout = VIDEO_TRACKER

    def __init__(
        self,
        config: Sam3TrackerVideoConfig | BaseConfig,
        remove_vision_encoder: bool = False,
        backbone: Sam3ViTModel | None = None,
    ) -> None:
        if getattr(config, "tracker_config", None) is not None:  # a combined sam3_video config
            config = config.tracker_config
        super().__init__(config, backbone=backbone, build_vision_encoder=not remove_vision_encoder)
        hidden = config.vision_config.fpn_hidden_size
        mem_dim = config.memory_encoder_output_channels
        self.hidden_dim, self.mem_dim = hidden, mem_dim
        self.num_maskmem = config.num_maskmem
        self.image_size = config.image_size

        self.memory_attention = self.build_memory_attention(config)
        self.memory_encoder = MemoryEncoder(config)
        # In the checkpoint but never read (as in the reference).
        self.no_memory_positional_encoding = nn.Parameter(torch.zeros(1, 1, hidden))
        # temporal encoding of memory slot t (t frames back; the last slot for prompted frames)
        self.memory_temporal_positional_encoding = nn.Parameter(torch.zeros(self.num_maskmem, 1, 1, mem_dim))
        self.no_object_pointer = nn.Parameter(torch.zeros(1, hidden))  # pointer of an absent object
        # Downsamples a mask prompt 4x to the decoder's mask-input size (to get its object pointer).
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.object_pointer_proj = MLP([hidden] * 4, names="sam")  # 3 layers
        self.temporal_positional_encoding_projection_layer = (
            nn.Linear(hidden, mem_dim) if config.enable_temporal_pos_encoding_for_object_pointers else None
        )
        self.occlusion_spatial_embedding_parameter = (
            nn.Parameter(torch.zeros(1, mem_dim)) if config.enable_occlusion_spatial_embedding else None
        )
        self.memory_policy = MemoryPolicy(
            config.num_maskmem, config.max_cond_frame_num, config.max_object_pointers_in_encoder
        )

    @staticmethod
    def build_memory_attention(config: BaseConfig) -> nn.Module:
        """The memory attention this tracker conditions frames with (a subclass brings its own)."""
        return MemoryAttention(config)

    @classmethod
    def _accepts_model_type(cls, model_type: str) -> bool:
        return model_type == "sam3_tracker_video"

    # ------------------------------------------------------------------------------------------
    # The engine and the features it runs on
    # ------------------------------------------------------------------------------------------

    # What a subclass of the SAM 2 family changes about the step (EdgeTAM: a perceiver that
    # compresses memories, memories kept in the model's dtype, each object's mask binarised alone).
    memory_dtype: torch.dtype | None = torch.bfloat16  # None: memories keep the model's dtype
    binarise_per_object = False  # False: prompts on any object binarise every mask of the frame

    def memory_compressor(self) -> nn.Module | None:
        """The module that compresses a frame's memory map into tokens (None: the map itself)."""
        return None

    def tracking_engine(self) -> TrackingEngine:
        """The tracking step over this model's modules (cheap: built on each call, so it always
        holds the current parameters)."""
        modules = TrackerModules(
            heads=self,
            memory_attention=self.memory_attention,
            memory_encoder=self.memory_encoder,
            object_pointer_proj=self.object_pointer_proj,
            mask_downsample=self.mask_downsample,
            no_memory_embedding=self.no_memory_embedding,
            no_object_pointer=self.no_object_pointer,
            memory_temporal_positional_encoding=self.memory_temporal_positional_encoding,
            pointer_temporal_projection=self.temporal_positional_encoding_projection_layer,
            occlusion_spatial_embedding=self.occlusion_spatial_embedding_parameter,
            memory_compressor=self.memory_compressor(),
        )
        return TrackingEngine(
            modules, EngineSettings.from_config(self.config, memory_dtype=self.memory_dtype)
        )

    def get_image_features(self, pixel_values: Tensor) -> tuple[list[Tensor], Tensor]:
        """pixel_values (B, 3, S, S) -> ([(B, C/8, 4h, 4w), (B, C/4, 2h, 2w), (B, C, h, w)], pos (B, C, h, w)).

        The two high-resolution maps already went through the decoder's `conv_s0` / `conv_s1`;
        `pos` is the sine encoding of the lowest-resolution map.
        """
        features = self._image_features(pixel_values)
        return features.maps, features.pos

    def frame_features(
        self, session: Sam3TrackerVideoInferenceSession, frame_idx: int
    ) -> tuple[list[Tensor], Tensor]:
        """A frame's `get_image_features`, from the session's cache or computed (and cached)."""
        cached = session.get_vision_features(frame_idx)
        if cached is not None:
            return cached["maps"], cached["pos"][0]
        maps, pos = self.get_image_features(session.get_frame(frame_idx).unsqueeze(0))
        session.cache_vision_features(frame_idx, {"maps": maps, "pos": [pos]})
        return maps, pos

    def select_memory(
        self,
        session: Sam3TrackerVideoInferenceSession,
        obj_idx: int,
        frame_idx: int,
        reverse: bool,
        streaming: bool,
    ) -> MemorySelection:
        """The object's memory on a frame, picked by the memory policy from its stored outputs."""
        cond, tracked = session.object_outputs(obj_idx)
        if not cond:
            raise ValueError(
                f"object {session.obj_idx_to_id(obj_idx)} has no prompted frame with an output yet; "
                "run the model on a frame with its prompts first"
            )
        return self.memory_policy.select(frame_idx, cond, tracked, reverse, session.num_frames, streaming)

    def _track_object(
        self,
        engine: TrackingEngine,
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_idx: int,
        first_prompt: bool,
        point_inputs: dict | None,
        mask_inputs: Tensor | None,
        reverse: bool,
        streaming: bool,
    ) -> TrackStep:
        """Segment one object on one frame (memory-conditioned unless it is a first prompt)."""
        if point_inputs is not None and mask_inputs is not None:
            raise ValueError(
                f"object {session.obj_idx_to_id(obj_idx)} has both clicks and a mask on frame {frame_idx}"
            )
        maps, pos = self.frame_features(session, frame_idx)
        memory = None
        if mask_inputs is None and not first_prompt and self.num_maskmem > 0:
            memory = self.select_memory(session, obj_idx, frame_idx, reverse, streaming)
        points = labels = None
        if point_inputs is not None:
            points, labels = point_inputs["point_coords"], point_inputs["point_labels"]
        return engine.track_step(maps, pos, memory, points, labels, mask_inputs, first_prompt=first_prompt)

    def encode_frame_memories(
        self,
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_indices: list[int],
        steps: list[TrackStep],
        prompted: list[bool],
    ) -> None:
        """Encode this frame's predictions of several objects into their memories.

        prompted: per object, whether its mask came from prompts on this frame. Prompted masks are
        binarised, tracked ones kept soft: per object with `binarise_per_object`, else (SAM 3, as the
        reference) all of the frame's masks are binarised when any object was prompted (one batch).
        """
        if not obj_indices:
            return
        if self.binarise_per_object:
            groups = [[k for k, p in enumerate(prompted) if p == flag] for flag in (True, False)]
            batches = [(group, flag) for group, flag in zip(groups, (True, False)) if group]
        else:
            batches = [(list(range(len(obj_indices))), any(prompted))]
        maps, _ = self.frame_features(session, frame_idx)
        engine = self.tracking_engine()
        for group, from_prompts in batches:
            memory, memory_pos = engine.encode_memory(
                maps[-1],
                torch.cat([steps[k].high_res_masks for k in group], dim=0),  # (N, 1, S, S)
                torch.cat([steps[k].object_score_logits for k in group], dim=0),  # (N, 1, 1)
                from_prompts,
            )
            for i, k in enumerate(group):
                session.store_memory(obj_indices[k], frame_idx, memory[i : i + 1], memory_pos[i : i + 1])

    @staticmethod
    def _keep_step(
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_idx: int,
        step: TrackStep,
        first_prompt: bool,
        reverse: bool,
        prompted: bool,
        new_steps: dict[int, tuple[TrackStep, bool]],
    ) -> None:
        """Store an object's new output on the frame (and whether it was tracked from there)."""
        session.store_output(
            obj_idx, frame_idx, output_value=step.stored(), is_conditioning_frame=first_prompt
        )
        new_steps[obj_idx] = (step, prompted)
        if not first_prompt:
            session.mark_tracked(obj_idx, frame_idx, reverse)

    # ------------------------------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def forward(
        self,
        inference_session: Sam3TrackerVideoInferenceSession,
        frame_idx: int | None = None,
        frame: Tensor | None = None,
        reverse: bool = False,
        run_mem_encoder: bool = True,
    ) -> Sam3TrackerVideoSegmentationOutput:
        """Segment every object of the session on one frame.

        Args:
            inference_session: the session (from `Sam3TrackerVideoProcessor.init_video_session`).
            frame_idx: the frame to segment; with `frame`, defaults to the next streamed index.
            frame: a new streamed frame, (3, S, S) or (1, 3, S, S) pixel values from the processor.
            reverse: tracking backwards in time (memories come from later frames).
            run_mem_encoder: encode this frame's predictions into the memory bank.

        Returns:
            `Sam3TrackerVideoSegmentationOutput` with pred_masks (num_objects, 1, 4h, 4w) low-res
            mask logits, object_score_logits (num_objects, 1), object_ids and frame_idx.
        """
        session = inference_session
        if not isinstance(session, Sam3TrackerVideoInferenceSession):
            raise TypeError(
                f"inference_session must be a Sam3TrackerVideoInferenceSession, got {type(session).__name__}"
            )
        session.set_default_memory_window(
            max(self.num_maskmem, self.config.max_object_pointers_in_encoder) - 1
        )
        if frame is not None:
            if session.get_obj_num() == 0:
                raise ValueError(
                    "no objects to track; add prompts with add_inputs_to_inference_session first"
                )
            frame_idx = session.add_new_frame(frame, frame_idx)
        if frame_idx is None:
            raise ValueError("give frame_idx (a frame of the session's video) or a streamed frame=")
        session.check_frame_idx(frame_idx)
        num_objects = session.get_obj_num()
        if num_objects == 0:
            raise ValueError("no objects to track; add prompts with add_inputs_to_inference_session first")

        engine = self.tracking_engine()
        masks_per_obj: list[Tensor | None] = [None] * num_objects
        scores_per_obj: list[Tensor | None] = [None] * num_objects
        new_steps: dict[int, tuple[TrackStep, bool]] = {}  # obj_idx -> step, prompted on this frame
        deferred: list[tuple[int, bool]] = []  # tracked objects (obj_idx, reverse): batched below
        streaming = frame is not None
        for obj_idx in range(num_objects):
            obj_id = session.obj_idx_to_id(obj_idx)
            has_new_inputs = session.has_new_inputs(obj_id)
            if not has_new_inputs and session.has_cond_output(obj_idx, frame_idx):
                # a prompted frame already segmented: reuse its output
                masks_per_obj[obj_idx] = session.get_output(obj_idx, frame_idx, "pred_masks")
                scores_per_obj[obj_idx] = session.get_output(obj_idx, frame_idx, "object_score_logits")
                continue
            if not has_new_inputs:
                deferred.append((obj_idx, reverse))
                continue
            first_prompt = not session.was_tracked(obj_idx, frame_idx)
            if first_prompt:
                # As the reference: this also applies to the objects after this one.
                reverse = False
            point_inputs, mask_inputs = session.prompts_on(obj_idx, frame_idx)
            if point_inputs is not None or mask_inputs is not None:
                session.mark_inputs_used(obj_id)
            step = self._track_object(
                engine,
                session,
                frame_idx,
                obj_idx,
                first_prompt,
                point_inputs,
                mask_inputs,
                reverse,
                streaming,
            )
            prompted = point_inputs is not None or mask_inputs is not None
            self._keep_step(session, frame_idx, obj_idx, step, first_prompt, reverse, prompted, new_steps)
            masks_per_obj[obj_idx], scores_per_obj[obj_idx] = step.pred_masks, step.object_score_logits

        # Objects with no prompts on this frame only read their own memories: one batched pass.
        if deferred:
            maps, pos = self.frame_features(session, frame_idx)
            memories = [
                self.select_memory(session, obj_idx, frame_idx, rev, streaming)
                if self.num_maskmem > 0
                else None
                for obj_idx, rev in deferred
            ]
            for (obj_idx, rev), step in zip(deferred, engine.track_objects(maps, pos, memories)):
                self._keep_step(session, frame_idx, obj_idx, step, False, rev, False, new_steps)
                masks_per_obj[obj_idx], scores_per_obj[obj_idx] = step.pred_masks, step.object_score_logits

        to_encode = sorted(new_steps) if run_mem_encoder and self.num_maskmem > 0 else []
        steps = [new_steps[k][0] for k in to_encode]
        prompted = [new_steps[k][1] for k in to_encode]
        self.encode_frame_memories(session, frame_idx, to_encode, steps, prompted)
        session.prune_outputs(frame_idx)
        return Sam3TrackerVideoSegmentationOutput(
            object_ids=list(session.obj_ids),
            pred_masks=torch.cat(masks_per_obj, dim=0),
            object_score_logits=torch.cat([s.squeeze(-1) for s in scores_per_obj], dim=0),
            frame_idx=frame_idx,
        )

    @torch.inference_mode()
    def propagate_in_video_iterator(
        self,
        inference_session: Sam3TrackerVideoInferenceSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        show_progress_bar: bool = False,
    ) -> Iterator[Sam3TrackerVideoSegmentationOutput]:
        """Track the session's objects frame after frame, yielding one output per frame.

        Args:
            inference_session: a session with the whole video and at least one prompted frame.
            start_frame_idx: first frame; defaults to the earliest prompted frame already segmented.
            max_frame_num_to_track: how many frames to go beyond the start (the start frame itself
                is extra, as in the reference: `n` tracks `n + 1` frames); default: to the end.
            reverse: go backwards from the start frame to frame 0.
            show_progress_bar: show a tqdm progress bar (when tqdm is installed).
        """
        session = inference_session
        num_frames = session.num_frames
        if not num_frames:
            raise ValueError("the session has no frames; pass video=... to init_video_session")
        if start_frame_idx is None:
            start_frame_idx = session.first_prompted_output_frame()
            if start_frame_idx is None:
                raise ValueError(
                    "cannot tell where to start: no prompted frame has been segmented yet; run "
                    "model(inference_session=..., frame_idx=...) on a prompted frame first, or pass start_frame_idx"
                )
        session.check_frame_idx(start_frame_idx)
        if max_frame_num_to_track is None:
            max_frame_num_to_track = num_frames
        if max_frame_num_to_track < 0:
            raise ValueError(f"max_frame_num_to_track must be >= 0, got {max_frame_num_to_track}")
        if reverse:
            end = max(start_frame_idx - max_frame_num_to_track, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
        else:
            end = min(start_frame_idx + max_frame_num_to_track, num_frames - 1)
            order = range(start_frame_idx, end + 1)
        for frame_idx in _progress(order, show_progress_bar):
            yield self(session, frame_idx=frame_idx, reverse=reverse)


def _progress(frames: range, show: bool) -> Any:
    if not show:
        return frames
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return frames
    return tqdm(frames, desc="propagate in video")
