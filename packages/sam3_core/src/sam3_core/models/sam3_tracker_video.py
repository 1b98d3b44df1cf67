"""`Sam3TrackerVideoModel`: track objects prompted with points, boxes or masks through a video.

Per frame and object: the backbone features of the frame (cached in the session) are conditioned
on the object's memory bank -- the memories of its prompted frames and of the last
`num_maskmem - 1` tracked frames, plus object pointers of up to `max_object_pointers_in_encoder`
frames -- by the memory attention (`memory.py`); the shared prompt encoder and mask decoder
(`prompt_decoder.py`) predict the mask; the memory encoder then turns the prediction into this
frame's memory. The session (`video_session.py`) holds everything between frames.

Loading: the combined `facebook/sam3` checkpoint, keys mapped like the image tracker's, memory
modules included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import PreTrainedModel
from ..checkpoint_keys import VIDEO_TRACKER
from ..config import Sam3TrackerVideoConfig, _Config
from ..modeling.backbones.vit import Sam3ViTModel
from ..modeling.layers import SamMLP
from ..modeling.mask_decoder import MaskDecoder
from ..modeling.memory.attention import MemoryAttention
from ..modeling.memory.encoder import MemoryEncoder
from ..modeling.memory.pointers import object_pointer_tokens
from ..modeling.prompt_encoder import FourierPositionEmbedding, PromptEncoder
from ..modeling.vision import Sam3VisionModel
from ..outputs import Sam3TrackerVideoSegmentationOutput
from ..video.session import Sam3TrackerVideoInferenceSession

NO_OBJ_SCORE = -1024.0  # mask logit given to every pixel when the object is judged absent


# A mask prompt is used as the output itself, as logits: -10 off the mask, +10 on it.
MASK_AS_OUTPUT_SCALE, MASK_AS_OUTPUT_BIAS = 20.0, -10.0


class Sam3TrackerVideoModel(PreTrainedModel):
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
        config: Sam3TrackerVideoConfig | _Config,
        remove_vision_encoder: bool = False,
        backbone: Sam3ViTModel | None = None,
    ) -> None:
        super().__init__()
        if getattr(config, "tracker_config", None) is not None:  # a combined sam3_video config
            config = config.tracker_config
        self.config = config
        pe_config = config.prompt_encoder_config
        hidden = config.vision_config.fpn_hidden_size
        mem_dim = config.memory_encoder_output_channels
        self.hidden_dim, self.mem_dim = hidden, mem_dim
        self.num_maskmem = config.num_maskmem
        self.image_size = config.image_size

        # The image tracker's parts (shared code in prompt_decoder.py).
        self.shared_image_embedding = FourierPositionEmbedding(pe_config.hidden_size, pe_config.scale)
        self.vision_encoder = (
            None if remove_vision_encoder else Sam3VisionModel(config.vision_config, backbone=backbone)
        )
        self.prompt_encoder = PromptEncoder(pe_config)
        self.mask_decoder = MaskDecoder(config.mask_decoder_config)
        self.no_memory_embedding = nn.Parameter(torch.zeros(1, 1, hidden))  # added on prompted frames

        # Memory.
        self.memory_attention = MemoryAttention(config)
        self.memory_encoder = MemoryEncoder(config)
        # In the checkpoint but never read (as in the reference).
        self.no_memory_positional_encoding = nn.Parameter(torch.zeros(1, 1, hidden))
        # temporal encoding of memory slot t (t frames back; the last slot for prompted frames)
        self.memory_temporal_positional_encoding = nn.Parameter(torch.zeros(self.num_maskmem, 1, 1, mem_dim))
        self.no_object_pointer = nn.Parameter(torch.zeros(1, hidden))  # pointer of an absent object
        # Downsamples a mask prompt 4x to the decoder's mask-input size (to get its object pointer).
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.object_pointer_proj = SamMLP(hidden, hidden, hidden, 3)
        self.temporal_positional_encoding_projection_layer = (
            nn.Linear(hidden, mem_dim) if config.enable_temporal_pos_encoding_for_object_pointers else None
        )
        self.occlusion_spatial_embedding_parameter = (
            nn.Parameter(torch.zeros(1, mem_dim)) if config.enable_occlusion_spatial_embedding else None
        )

    # ------------------------------------------------------------------------------------------
    # Checkpoint layout
    # ------------------------------------------------------------------------------------------

    @classmethod
    def _accepts_model_type(cls, model_type: str) -> bool:
        return model_type == "sam3_tracker_video"

    # ------------------------------------------------------------------------------------------
    # Image features
    # ------------------------------------------------------------------------------------------

    def get_image_wide_positional_embeddings(self) -> Tensor:
        """(1, C, h, w) Fourier encoding of the image-embedding grid."""
        return self.shared_image_embedding.dense_grid(*self.prompt_encoder.image_embedding_size)

    def get_image_features(self, pixel_values: Tensor) -> tuple[list[Tensor], Tensor]:
        """pixel_values (B, 3, S, S) -> ([(B, C/8, 4h, 4w), (B, C/4, 2h, 2w), (B, C, h, w)], pos (B, C, h, w)).

        The two high-resolution maps already went through the decoder's `conv_s0` / `conv_s1`;
        `pos` is the sine encoding of the lowest-resolution map.
        """
        if self.vision_encoder is None:
            raise ValueError("this model was built with remove_vision_encoder=True; it cannot encode frames")
        out = self.vision_encoder(pixel_values.to(device=self.device, dtype=self.dtype))
        maps = list(out.fpn_hidden_states[:3])
        maps[0] = self.mask_decoder.conv_s0(maps[0])
        maps[1] = self.mask_decoder.conv_s1(maps[1])
        return maps, out.fpn_position_encoding[2]

    def _frame_features(
        self, session: Sam3TrackerVideoInferenceSession, frame_idx: int
    ) -> tuple[list[Tensor], Tensor]:
        """Backbone features of a frame, from the session's cache or computed (and cached)."""
        cached = session.get_vision_features(frame_idx)
        if cached is not None:
            return cached["maps"], cached["pos"][0]
        maps, pos = self.get_image_features(session.get_frame(frame_idx).unsqueeze(0))
        session.cache_vision_features(frame_idx, {"maps": maps, "pos": [pos]})
        return maps, pos

    # ------------------------------------------------------------------------------------------
    # One prompted / tracked frame
    # ------------------------------------------------------------------------------------------

    def _decode(
        self,
        image_embeddings: list[Tensor],
        points: Tensor | None = None,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        multimask_output: bool = True,
    ) -> dict[str, Tensor]:
        """Prompt encoder + mask decoder on one object: the chosen mask, its object pointer, ...

        image_embeddings: [s0, s1, (1, C, h, w)]; points (1, 1, N, 2), labels (1, 1, N); masks
        (1, 1, 4h, 4w) mask-input logits.
        Returns pred_masks (1, 1, 4h, 4w), high_res_masks (1, 1, S, S), object_pointer (1, C),
        object_score_logits (1, 1, 1), iou_scores (1, 1, M).
        """
        sparse, dense = self.prompt_encoder(points, labels, None, masks, batch_size=1)
        decoded = self.mask_decoder(
            image_embeddings=image_embeddings[-1],
            image_positional_embeddings=self.get_image_wide_positional_embeddings(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            high_resolution_features=image_embeddings[:-1],
        )
        appearing = decoded.object_score_logits > 0  # (1, 1, 1)
        # A hard choice: an absent object gets no mask at all (also in its memory).
        low_res = torch.where(appearing[..., None, None], decoded.masks, NO_OBJ_SCORE)  # (1, 1, M, 4h, 4w)
        high_res = F.interpolate(
            low_res[0].float(), size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        ).to(low_res.dtype)  # (1, M, S, S)
        best = decoded.iou_scores[0, 0].argmax() if multimask_output else 0
        pointer = self.object_pointer_proj(decoded.mask_tokens[0, :, best])  # (1, C)
        weight = appearing[0].to(pointer.dtype)  # (1, 1)
        pointer = weight * pointer + (1 - weight) * self.no_object_pointer
        return {
            "pred_masks": low_res[:, :, best],
            "high_res_masks": high_res[:, best : best + 1],
            "object_pointer": pointer,
            "object_score_logits": decoded.object_score_logits,
            "iou_scores": decoded.iou_scores,
        }

    def _mask_as_output(self, maps: list[Tensor], mask: Tensor) -> dict[str, Tensor]:
        """A mask prompt (1, 1, H, W), taken as the prediction itself (a ground-truth mask).

        The decoder still runs on the downsampled mask to get the object pointer; whether the
        object is present follows the mask (any pixel on), not the decoder's score.
        """
        dtype = maps[-1].dtype
        mask_f = mask.to(dtype)
        if tuple(mask_f.shape[-2:]) != (self.image_size, self.image_size):
            mask_f = F.interpolate(
                mask_f.float(),
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            ).to(mask.dtype)
        high_res = mask_f * MASK_AS_OUTPUT_SCALE + MASK_AS_OUTPUT_BIAS
        low_res = F.interpolate(
            high_res.float(),
            size=self.prompt_encoder.mask_input_size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        ).to(dtype)
        pointer = self._decode(maps, masks=self.mask_downsample(mask_f.to(dtype)))["object_pointer"]
        present = (mask.flatten(1).float() > 0).any(dim=1, keepdim=True).to(dtype)  # (1, 1)
        pointer = present * pointer + (1 - present) * self.no_object_pointer
        return {
            "pred_masks": low_res,
            "high_res_masks": high_res,
            "object_pointer": pointer,
            "object_score_logits": (MASK_AS_OUTPUT_SCALE * present + MASK_AS_OUTPUT_BIAS).unsqueeze(-1),
            "iou_scores": mask.new_ones(1, 1).to(dtype),
        }

    def _use_multimask(self, is_init_cond_frame: bool, point_inputs: dict | None) -> bool:
        """Three candidate masks for ambiguous prompts (few clicks), else one."""
        num_points = 0 if point_inputs is None else point_inputs["point_labels"].shape[2]
        cfg = self.config
        return (
            cfg.multimask_output_in_sam
            and (is_init_cond_frame or cfg.multimask_output_for_tracking)
            and cfg.multimask_min_pt_num <= num_points <= cfg.multimask_max_pt_num
        )

    def _track_step(
        self,
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_idx: int,
        is_init_cond_frame: bool,
        point_inputs: dict | None,
        mask_inputs: Tensor | None,
        reverse: bool,
        streaming: bool,
    ) -> dict[str, Tensor]:
        """Segment one object on one frame (memory-conditioned unless it is a first prompt)."""
        if point_inputs is not None and mask_inputs is not None:
            raise ValueError(
                f"object {session.obj_idx_to_id(obj_idx)} has both clicks and a mask on frame {frame_idx}"
            )
        maps, pos = self._frame_features(session, frame_idx)
        if mask_inputs is not None:
            return self._mask_as_output(maps, mask_inputs)
        conditioned = self._memory_conditioned_features(
            session, frame_idx, obj_idx, is_init_cond_frame, maps[-1], pos, reverse, streaming
        )
        return self._decode(
            [maps[0], maps[1], conditioned],
            points=None if point_inputs is None else point_inputs["point_coords"],
            labels=None if point_inputs is None else point_inputs["point_labels"],
            multimask_output=self._use_multimask(is_init_cond_frame, point_inputs),
        )

    # ------------------------------------------------------------------------------------------
    # Memory bank
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _select_closest_cond_frames(frame_idx: int, cond_outputs: dict, max_num: int) -> tuple[dict, dict]:
        """Up to `max_num` prompted frames: the closest before, the closest after, then the nearest."""
        if max_num == -1 or len(cond_outputs) <= max_num:
            return cond_outputs, {}
        selected = {}
        before = max((t for t in cond_outputs if t < frame_idx), default=None)
        if before is not None:
            selected[before] = cond_outputs[before]
        after = min((t for t in cond_outputs if t >= frame_idx), default=None)
        if after is not None:
            selected[after] = cond_outputs[after]
        rest = sorted((t for t in cond_outputs if t not in selected), key=lambda t: abs(t - frame_idx))
        selected.update((t, cond_outputs[t]) for t in rest[: max_num - len(selected)])
        return selected, {t: v for t, v in cond_outputs.items() if t not in selected}

    def _memory_conditioned_features(
        self,
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_idx: int,
        is_init_cond_frame: bool,
        features: Tensor,
        pos: Tensor,
        reverse: bool,
        streaming: bool,
    ) -> Tensor:
        """The frame's (1, C, h, w) features conditioned on the object's memories."""
        if self.num_maskmem == 0:
            return features
        if is_init_cond_frame:  # a first prompt: no memory yet
            return features + self.no_memory_embedding.reshape(1, -1, 1, 1)
        outputs = session.output_dict_per_obj[obj_idx]
        if not outputs["cond_frame_outputs"]:
            raise ValueError(
                f"object {session.obj_idx_to_id(obj_idx)} has no prompted frame with an output yet; "
                "run the model on a frame with its prompts first"
            )
        cond, unselected = self._select_closest_cond_frames(
            frame_idx, outputs["cond_frame_outputs"], self.config.max_cond_frame_num
        )
        # (temporal slot, output): prompted frames use slot 0 (i.e. the last encoding), tracked
        # frames slot t for t frames back in tracking direction.
        slots = [(0, out) for out in cond.values()]
        sign = -1 if reverse else 1
        for t in range(self.num_maskmem - 1, 0, -1):
            previous = frame_idx - sign * t
            slots.append((t, outputs["non_cond_frame_outputs"].get(previous, unselected.get(previous))))

        dtype = session.dtype
        memories, memory_pos = [], []
        for t, out in slots:
            if out is None or "maskmem_features" not in out:
                continue
            memories.append(out["maskmem_features"].to(features.device, dtype))
            memory_pos.append(
                out["maskmem_pos_enc"].to(features.device)
                + self.memory_temporal_positional_encoding[t - 1, 0]
            )

        pointers, offsets, max_pointers = self._object_pointers(
            session, obj_idx, frame_idx, reverse, streaming
        )
        num_pointer_tokens = 0
        if pointers:
            projection = self.temporal_positional_encoding_projection_layer
            tokens, tokens_pos = object_pointer_tokens(
                [p.to(features.device) for p in pointers], offsets, max_pointers - 1, self.mem_dim, projection
            )
            memories.append(tokens.to(dtype))
            memory_pos.append(tokens_pos)
            num_pointer_tokens = tokens.shape[1]

        b, c, h, w = features.shape
        conditioned = self.memory_attention(
            features=features.flatten(2).transpose(1, 2),
            features_pos=pos.flatten(2).transpose(1, 2),
            memory=torch.cat(memories, dim=1),
            memory_pos=torch.cat(memory_pos, dim=1),
            num_object_pointer_tokens=num_pointer_tokens,
        )
        return conditioned.transpose(1, 2).reshape(b, c, h, w)

    def _object_pointers(
        self,
        session: Sam3TrackerVideoInferenceSession,
        obj_idx: int,
        frame_idx: int,
        reverse: bool,
        streaming: bool,
    ) -> tuple[list[Tensor], list[int], int]:
        """Object pointers of earlier prompted and tracked frames, with their temporal offsets."""
        num_frames = session.num_frames
        max_pointers = self.config.max_object_pointers_in_encoder
        if not streaming:
            max_pointers = min(num_frames, max_pointers)
        outputs = session.output_dict_per_obj[obj_idx]
        sign = -1 if reverse else 1
        pointers, offsets = [], []
        for t, out in outputs["cond_frame_outputs"].items():
            if (t >= frame_idx) if reverse else (t <= frame_idx):  # only prompted frames already passed
                offsets.append((frame_idx - t) * sign)
                pointers.append(out["object_pointer"])
        for t in range(1, max_pointers):
            ref = frame_idx - sign * t
            if ref < 0 or (not streaming and ref >= num_frames):
                break
            out = outputs["non_cond_frame_outputs"].get(ref)
            if out is not None:
                offsets.append(t)
                pointers.append(out["object_pointer"])
        return pointers, offsets, max_pointers

    def _encode_memories(
        self,
        session: Sam3TrackerVideoInferenceSession,
        frame_idx: int,
        obj_indices: list[int],
        high_res_masks: list[Tensor],
        object_score_logits: list[Tensor],
        from_prompts: bool,
    ) -> None:
        """Encode this frame's predictions of several objects into their memories (one batch)."""
        if not obj_indices:
            return
        maps, _ = self._frame_features(session, frame_idx)
        masks = torch.cat(high_res_masks, dim=0)  # (N, 1, S, S)
        scores = torch.cat(object_score_logits, dim=0)  # (N, 1, 1)
        mem_size = tuple(4 * s for s in self.prompt_encoder.mask_input_size)
        if tuple(masks.shape[-2:]) != mem_size:
            masks = F.interpolate(
                masks.float(), size=mem_size, mode="bilinear", align_corners=False, antialias=True
            ).to(masks.dtype)
        # Prompted predictions are binarised; tracked ones keep their soft probabilities.
        probs = (masks > 0).to(masks.dtype) if from_prompts else torch.sigmoid(masks)
        probs = probs * self.config.sigmoid_scale_for_mem_enc + self.config.sigmoid_bias_for_mem_enc
        features = maps[-1].expand(len(obj_indices), -1, -1, -1)
        memory, memory_pos = self.memory_encoder(features, probs)  # (N, C_mem, h, w)
        if self.occlusion_spatial_embedding_parameter is not None:
            absent = 1 - (scores > 0).float()[..., None]  # (N, 1, 1, 1)
            memory = memory + absent * self.occlusion_spatial_embedding_parameter[..., None, None]
        # Memories are kept in bf16, as the reference does (half the memory; same numbers).
        memory = memory.to(torch.bfloat16).flatten(2).transpose(1, 2)  # (N, h*w, C_mem)
        memory_pos = memory_pos.to(masks.dtype).flatten(2).transpose(1, 2)
        for i, obj_idx in enumerate(obj_indices):
            outputs = session.output_dict_per_obj[obj_idx]
            key = (
                "cond_frame_outputs"
                if frame_idx in outputs["cond_frame_outputs"]
                else "non_cond_frame_outputs"
            )
            if frame_idx in outputs[key]:
                state = session.inference_state_device
                outputs[key][frame_idx]["maskmem_features"] = memory[i : i + 1].to(state)
                outputs[key][frame_idx]["maskmem_pos_enc"] = memory_pos[i : i + 1].to(state)

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
        if session.memory_window is None:
            session.memory_window = max(self.num_maskmem, self.config.max_object_pointers_in_encoder) - 1
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

        masks_per_obj: list[Tensor] = []
        scores_per_obj: list[Tensor] = []
        to_encode: list[int] = []
        high_res_for_memory: list[Tensor] = []
        scores_for_memory: list[Tensor] = []
        from_prompts: list[bool] = []
        for obj_idx in range(num_objects):
            obj_id = session.obj_idx_to_id(obj_idx)
            outputs = session.output_dict_per_obj[obj_idx]
            has_new_inputs = obj_id in session.obj_with_new_inputs
            if not has_new_inputs and frame_idx in outputs["cond_frame_outputs"]:
                # a prompted frame already segmented: reuse its output
                pred_masks = session.get_output(obj_idx, frame_idx, "pred_masks")
                scores = session.get_output(obj_idx, frame_idx, "object_score_logits")
                is_init_cond_frame = True
            else:
                is_init_cond_frame = False
                point_inputs = mask_inputs = None
                if has_new_inputs:
                    is_init_cond_frame = frame_idx not in session.frames_tracked_per_obj[obj_idx]
                    if is_init_cond_frame:
                        # As the reference: this also applies to the objects after this one.
                        reverse = False
                    point_inputs = session.point_inputs_per_obj[obj_idx].get(frame_idx)
                    mask_inputs = session.mask_inputs_per_obj[obj_idx].get(frame_idx)
                    if point_inputs is not None or mask_inputs is not None:
                        session.obj_with_new_inputs.remove(obj_id)
                out = self._track_step(
                    session,
                    frame_idx,
                    obj_idx,
                    is_init_cond_frame,
                    point_inputs,
                    mask_inputs,
                    reverse,
                    streaming=frame is not None,
                )
                session.store_output(
                    obj_idx,
                    frame_idx,
                    output_value={k: out[k] for k in ("pred_masks", "object_pointer", "object_score_logits")},
                    is_conditioning_frame=is_init_cond_frame,
                )
                pred_masks, scores = out["pred_masks"], out["object_score_logits"]
                if run_mem_encoder and self.num_maskmem > 0:
                    to_encode.append(obj_idx)
                    high_res_for_memory.append(out["high_res_masks"])
                    scores_for_memory.append(scores)
                    from_prompts.append(point_inputs is not None or mask_inputs is not None)
            masks_per_obj.append(pred_masks)
            scores_per_obj.append(scores.squeeze(-1))
            if not is_init_cond_frame:
                session.frames_tracked_per_obj[obj_idx][frame_idx] = {"reverse": reverse}

        self._encode_memories(
            session, frame_idx, to_encode, high_res_for_memory, scores_for_memory, any(from_prompts)
        )
        session.prune_outputs(frame_idx)
        return Sam3TrackerVideoSegmentationOutput(
            object_ids=list(session.obj_ids),
            pred_masks=torch.cat(masks_per_obj, dim=0),
            object_score_logits=torch.cat(scores_per_obj, dim=0),
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
            prompted = [t for out in session.output_dict_per_obj.values() for t in out["cond_frame_outputs"]]
            if not prompted:
                raise ValueError(
                    "cannot tell where to start: no prompted frame has been segmented yet; run "
                    "model(inference_session=..., frame_idx=...) on a prompted frame first, or pass start_frame_idx"
                )
            start_frame_idx = min(prompted)
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
