"""`Sam3TrackerVideoModel`: track objects prompted with points, boxes or masks through a video.

The model is the glue between two parts:

- the tracking engine (`video/engine.py`): per frame and object, the frame's features are
  conditioned on the object's memory by the memory attention, the prompt encoder and mask
  decoder (`TrackerBase`, shared with the image tracker) predict the mask, and the memory
  encoder turns the frame's predictions into memories for later frames. Pure: no session state.
- the session (`video/session.py`): frames, prompts, outputs, cached features.

`forward` is one frame in three calls (`video/frame.py`): the session plans the frame (per
object: a first prompt, a correction, a tracked frame or a stored output to reuse, and the
memory the policy picks), the engine (built once) computes every object's step and memory, and
the session commits the results.

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
from ..scalars import as_int
from ..video.engine import EngineSettings, TrackerModules, TrackingEngine
from ..video.memory_policy import MemoryPolicy
from ..video.planner import plan_pass
from ..video.session import Sam3TrackerVideoInferenceSession
from .tracker_base import TrackerBase

# the model's attributes the engine holds (replacing one builds the engine again)
_ENGINE_PARTS = frozenset(
    {
        "prompt_encoder",
        "mask_decoder",
        "shared_image_embedding",
        "memory_attention",
        "memory_encoder",
        "object_pointer_proj",
        "mask_downsample",
        "no_memory_embedding",
        "no_object_pointer",
        "memory_temporal_positional_encoding",
        "temporal_positional_encoding_projection_layer",
        "occlusion_spatial_embedding_parameter",
        "spatial_perceiver",
    }
)


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

    @property
    def engine(self) -> TrackingEngine:
        """The tracking step over this model's parts (`video/engine.py`), built once (again only
        when a part is replaced, e.g. by the checkpoint loader)."""
        engine = self.__dict__.get("_engine")
        if engine is None:
            modules = TrackerModules(
                heads=self.prompt_decoder,
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
            settings = EngineSettings.from_config(
                self.config, memory_dtype=self.memory_dtype, binarise_per_object=self.binarise_per_object
            )
            engine = self.__dict__["_engine"] = TrackingEngine(modules, settings)
        return engine

    def tracking_engine(self) -> TrackingEngine:
        """The model's `engine` (built once)."""
        return self.engine

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _ENGINE_PARTS:  # a part the engine holds was replaced: build it again when used
            self.__dict__.pop("_engine", None)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Sam3TrackerVideoModel:
        # .to() / .half() may give the model's own parameters new tensor objects
        self.__dict__.pop("_engine", None)
        return super()._apply(fn, *args, **kwargs)

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
        frame_idx = session.open_frame(
            frame_idx, frame, max(self.num_maskmem, self.config.max_object_pointers_in_encoder) - 1
        )
        # one frame, three calls: the session plans it, the engine computes it, the session commits
        policy = self.memory_policy if self.num_maskmem > 0 else None
        plan = session.plan_frame(frame_idx, reverse, streaming=frame is not None, policy=policy)
        maps, pos = self.frame_features(session, frame_idx) if plan.computes else (None, None)
        result = self.engine.step(plan, maps, pos, encode_memory=run_mem_encoder)
        masks_per_obj, scores_per_obj = session.commit(plan, result)
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
        start_frame_idx = session.check_frame_idx(start_frame_idx, "start_frame_idx")
        if max_frame_num_to_track is not None:
            max_frame_num_to_track = as_int("max_frame_num_to_track", max_frame_num_to_track)
            if max_frame_num_to_track < 0:
                raise ValueError(f"max_frame_num_to_track must be >= 0, got {max_frame_num_to_track}")
        order = plan_pass(num_frames, start_frame_idx, max_frame_num_to_track, reverse).frames
        if reverse and start_frame_idx == 0:
            order = range(0)  # as the reference: a reverse pass from frame 0 visits nothing
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
