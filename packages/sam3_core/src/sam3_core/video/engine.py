"""The video tracker's step: one object on one frame, with no session state.

    frame features ([s0, s1, (1, C, h, w)] maps + (1, C, h, w) position encoding)
    + the object's memory (`MemorySelection`: memories of earlier frames, object pointers)
    + the frame's prompts (clicks / box corners, or a mask)
      --TrackingEngine.track_step--> masks, object pointer, object score   (`TrackStep`)
    a frame's predictions of N objects
      --TrackingEngine.encode_memory--> their memories (N, L, C_mem) for later frames

Which stored outputs make up an object's memory on a frame (the closest prompted frames, the last
`num_maskmem - 1` tracked frames in tracking direction, object pointers within
`max_object_pointers_in_encoder` frames) is `MemoryPolicy.select` (`memory_policy.py`), a pure
function of the object's stored outputs (plain dicts keyed by frame index) and of the frame index
and direction. A frame is three calls (`frame.py`): the session (`session.py`) plans it (each
object's action, prompts and memory), `TrackingEngine.step` computes every object's step and
memory, and the session commits the results. Nothing here reads or writes a session, so one
engine serves any number of videos, and the step can be run by hand on outputs gathered from
anywhere.

The engine holds no modules of its own: a model hands it its parts as `TrackerModules` once (the
prompt encoder and mask decoder as a `PromptDecoder`, not the model: nothing here calls back into
a model). Another tracker of the SAM 2 family plugs in by handing different parts to this same
engine. EdgeTAM, for example, brings:

- its own backbone (RepViT + FPN): the engine only sees the features, so nothing changes here;
  the model computes `maps` / `pos` with its own vision encoder;
- a perceiver that compresses each frame's memory map into a few latent tokens:
  `TrackerModules.memory_compressor`, called on the memory encoder's (N, C_mem, h, w) output and
  its position encoding, returning (N, L, C_mem) tokens and encodings (L latents instead of h*w);
- a memory attention whose RoPE covers the perceiver's 2D latents: any module called as
  `memory_attention(features=, features_pos=, memory=, memory_pos=, num_object_pointer_tokens=)`
  with (B, h*w, C) features and (B, M, C_mem) memory; since every frame's memory has the same
  number of latents, it can tell the frames apart from the token count.

So `EdgeTamVideoModel` builds those modules under its own checkpoint names and its engine gets
`memory_compressor=self.spatial_perceiver` and its memory attention; the memory policy, the
session and the model's `forward` stay as they are.

Objects are batched: `track_objects` segments a frame's tracked objects (no prompts on the frame)
in one pass through the memory attention and the heads, grouping objects whose memories have the
same token counts (equal shapes stack exactly, with no padding or attention mask to get wrong;
objects prompted at the same time always share their counts). `track_step` is the one-object form
used for prompted objects; the memory encoder batches a frame's objects as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..dtypes import at_least_float32
from ..modeling.mask_decoder import MaskDecoderOutput
from ..modeling.memory.pointers import object_pointer_tokens
from ..modeling.prompt_encoder import PromptEncoder
from .frame import FramePlan, FrameResult, TrackStep
from .memory_policy import MemorySelection

__all__ = [
    "EngineSettings",
    "NO_OBJ_SCORE",
    "TrackStep",
    "TrackerModules",
    "TrackingEngine",
]

NO_OBJ_SCORE = -1024.0  # mask logit given to every pixel when the object is judged absent

# A mask prompt is used as the output itself, as logits: -10 off the mask, +10 on it.
MASK_AS_OUTPUT_SCALE, MASK_AS_OUTPUT_BIAS = 20.0, -10.0


class PromptHeads(Protocol):
    """The prompt encoder and mask decoder of a tracker (`tracker_base.PromptDecoder`)."""

    prompt_encoder: PromptEncoder

    def decode_masks(
        self,
        image_embeddings: list[Tensor],
        points: Tensor | None = None,
        labels: Tensor | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
        multimask_output: bool = True,
        batch_size: int | None = None,
    ) -> MaskDecoderOutput: ...


@dataclass(frozen=True)
class TrackerModules:
    """The learnt parts a tracking step uses (a model's own modules and parameters)."""

    heads: PromptHeads  # prompt encoder + mask decoder (a `PromptDecoder`, not a model)
    memory_attention: nn.Module  # conditions a frame's features on the memory
    memory_encoder: nn.Module  # (N, C, h, w) features + (N, 1, 16h, 16w) mask -> memory map, pos
    object_pointer_proj: nn.Module  # decoder token (C) -> object pointer (C)
    mask_downsample: nn.Module  # a mask prompt (1, 1, S, S) -> mask input (1, 1, S/4, S/4)
    no_memory_embedding: Tensor  # (1, 1, C): added to a frame with no memory (a first prompt)
    no_object_pointer: Tensor  # (1, C): the pointer of an absent object
    memory_temporal_positional_encoding: Tensor  # (num_maskmem, 1, 1, C_mem), one per slot
    pointer_temporal_projection: nn.Module | None = None  # C -> C_mem, the pointers' time encoding
    occlusion_spatial_embedding: Tensor | None = None  # (1, C_mem): added to absent objects' memories
    memory_compressor: nn.Module | None = None  # memory map, pos -> (N, L, C_mem) tokens, pos


@dataclass(frozen=True)
class EngineSettings:
    """The numbers a tracking step needs (from a `Sam3TrackerVideoConfig`)."""

    image_size: int  # S, the model-input side
    num_maskmem: int  # memory slots; 0: frames are never conditioned on memory
    multimask_output_in_sam: bool
    multimask_output_for_tracking: bool
    multimask_min_pt_num: int
    multimask_max_pt_num: int
    sigmoid_scale_for_mem_enc: float  # mask probabilities -> memory-encoder input
    sigmoid_bias_for_mem_enc: float
    # dtype memories are kept in; None: the masks' dtype (EdgeTAM keeps its few latents as computed)
    memory_dtype: torch.dtype | None = torch.bfloat16
    # False (SAM 3, as its reference): prompts on any object binarise every mask of the frame for
    # the memory encoder (one batch); True (EdgeTAM): only the prompted objects' masks
    binarise_per_object: bool = False

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> EngineSettings:
        """The settings from a tracker config (any config with these field names, e.g. EdgeTAM's);
        `overrides` set the engine-only fields (`memory_dtype`, `binarise_per_object`)."""
        engine_only = ("memory_dtype", "binarise_per_object")
        names = [
            name for name in cls.__dataclass_fields__ if name not in overrides and name not in engine_only
        ]
        return cls(**{name: getattr(config, name) for name in names}, **overrides)


class TrackingEngine:
    """Segment an object on a frame from its features, memory and prompts; encode new memories."""

    def __init__(self, modules: TrackerModules, settings: EngineSettings) -> None:
        self.modules = modules
        self.settings = settings

    def step(
        self, plan: FramePlan, maps: list[Tensor], pos: Tensor, encode_memory: bool = True
    ) -> FrameResult:
        """Every object's step on one frame, as the session planned it (`frame.py`).

        Prompted objects are segmented one by one (in object order), tracked ones in one batch;
        with `encode_memory` (and memory slots), the computed objects' masks are then encoded
        into their memories of this frame.

        Args:
            plan: the session's `FramePlan` (actions, prompts and memories).
            maps, pos: the frame's features (see `track_step`); unused when nothing is computed.
        """
        result = FrameResult()
        for o in plan.objects:
            if o.action == "prompt":
                result.steps[o.obj_idx] = self.track_step(
                    maps, pos, o.memory, o.points, o.labels, o.mask, first_prompt=o.first_prompt
                )
        tracked = [o for o in plan.objects if o.action == "track"]
        if tracked:
            steps = self.track_objects(maps, pos, [o.memory for o in tracked])
            result.steps.update((o.obj_idx, step) for o, step in zip(tracked, steps))
        if encode_memory and self.settings.num_maskmem > 0 and result.steps:
            order = sorted(result.steps)
            from_prompts = {o.obj_idx: o.action == "prompt" and o.uses_prompts for o in plan.objects}
            memories = self.encode_frame_memories(
                maps[-1], [result.steps[k] for k in order], [from_prompts[k] for k in order]
            )
            result.memories = dict(zip(order, memories))
        return result

    def encode_frame_memories(
        self, features: Tensor, steps: list[TrackStep], prompted: list[bool]
    ) -> list[tuple[Tensor, Tensor]]:
        """This frame's memories of several objects: per step, its (1, L, C_mem) memory and position
        encoding.

        prompted: per object, whether its mask came from prompts on this frame. Prompted masks are
        binarised, tracked ones kept soft: per object with `settings.binarise_per_object`, else all
        of the frame's masks are binarised when any object was prompted (one batch).
        """
        if self.settings.binarise_per_object:
            groups = [[k for k, p in enumerate(prompted) if p == flag] for flag in (True, False)]
            batches = [(group, flag) for group, flag in zip(groups, (True, False)) if group]
        else:
            batches = [(list(range(len(steps))), any(prompted))]
        out: list[tuple[Tensor, Tensor] | None] = [None] * len(steps)
        for group, from_prompts in batches:
            memory, memory_pos = self.encode_memory(
                features,
                torch.cat([steps[k].high_res_masks for k in group], dim=0),  # (N, 1, S, S)
                torch.cat([steps[k].object_score_logits for k in group], dim=0),  # (N, 1, 1)
                from_prompts,
            )
            for i, k in enumerate(group):
                out[k] = (memory[i : i + 1], memory_pos[i : i + 1])
        return out  # type: ignore[return-value]

    def use_multimask(self, first_prompt: bool, num_points: int) -> bool:
        """Three candidate masks for ambiguous prompts (few clicks), else one."""
        s = self.settings
        return (
            s.multimask_output_in_sam
            and (first_prompt or s.multimask_output_for_tracking)
            and s.multimask_min_pt_num <= num_points <= s.multimask_max_pt_num
        )

    def track_step(
        self,
        maps: list[Tensor],
        pos: Tensor,
        memory: MemorySelection | None,
        points: Tensor | None = None,
        labels: Tensor | None = None,
        mask: Tensor | None = None,
        first_prompt: bool = False,
    ) -> TrackStep:
        """Segment one object on one frame.

        Args:
            maps: the frame's [(1, C/8, 4h, 4w), (1, C/4, 2h, 2w), (1, C, h, w)] features.
            pos: (1, C, h, w) position encoding of the last map.
            memory: the object's memory on this frame; None on its first prompted frame.
            points: (1, 1, N, 2) clicks / box corners in model-input pixels; labels (1, 1, N).
            mask: (1, 1, H, W) mask prompt, taken as the output itself (not with points).
            first_prompt: the object's first prompts on this frame (no memory used).
        """
        if points is not None and mask is not None:
            raise ValueError("give clicks or a mask prompt for an object on a frame, not both")
        if mask is not None:
            return self.mask_as_output(maps, mask)
        conditioned = self.condition_on_memory(maps[-1], pos, memory)
        num_points = 0 if labels is None else labels.shape[2]
        return self.decode(
            [maps[0], maps[1], conditioned],
            points=points,
            labels=labels,
            multimask_output=self.use_multimask(first_prompt, num_points),
        )

    def track_objects(
        self, maps: list[Tensor], pos: Tensor, memories: list[MemorySelection | None]
    ) -> list[TrackStep]:
        """Segment several tracked objects (no prompts on this frame) on one frame, batched.

        Objects whose memories have equal token counts go through the memory attention and the
        heads together; the result is per object, as `track_step(maps, pos, memory)` would give.

        Args:
            maps, pos: the frame's features, as for `track_step`.
            memories: per object, its memory on this frame (None: no memory, e.g. num_maskmem 0).

        Returns:
            one (B = 1) `TrackStep` per object, in the order of `memories`.
        """
        groups: dict[tuple[int, int], list[int]] = {}
        tokens: list[tuple[Tensor, Tensor, int] | None] = []
        for k, memory in enumerate(memories):
            bank = None if memory is None else self.memory_tokens(memory, maps[-1])
            tokens.append(bank)
            key = (-1, -1) if bank is None else (bank[0].shape[1], bank[2])
            groups.setdefault(key, []).append(k)
        multimask = self.use_multimask(False, 0)
        steps: list[TrackStep | None] = [None] * len(memories)
        for key, members in groups.items():
            if key == (-1, -1):
                conditioned = self.condition_on_memory(maps[-1], pos, None).expand(len(members), -1, -1, -1)
            else:
                conditioned = self.attend_to_memory(
                    maps[-1],
                    pos,
                    torch.cat([tokens[k][0] for k in members]),  # (B, M, C_mem)
                    torch.cat([tokens[k][1] for k in members]),
                    key[1],
                )  # (B, C, h, w)
            batch = len(members)
            embeddings = [maps[0].expand(batch, -1, -1, -1), maps[1].expand(batch, -1, -1, -1), conditioned]
            for k, step in zip(members, self.decode(embeddings, multimask_output=multimask).split()):
                steps[k] = step
        return steps  # type: ignore[return-value]

    def decode(
        self,
        image_embeddings: list[Tensor],
        points: Tensor | None = None,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        multimask_output: bool = True,
    ) -> TrackStep:
        """Prompt encoder + mask decoder on B objects (one per image embedding): the chosen mask of
        each and its object pointer.

        image_embeddings: [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w), (B, C, h, w)]; points (B, 1, N, 2),
        labels (B, 1, N); masks (B, 1, 4h, 4w) mask-input logits.
        """
        m = self.modules
        batch = image_embeddings[-1].shape[0]
        decoded = m.heads.decode_masks(
            image_embeddings, points, labels, masks=masks, multimask_output=multimask_output, batch_size=batch
        )
        appearing = decoded.object_score_logits > 0  # (B, 1, 1)
        # A hard choice: an absent object gets no mask at all (also in its memory).
        low_res = torch.where(appearing[..., None, None], decoded.masks, NO_OBJ_SCORE)  # (B, 1, M, 4h, 4w)
        rows = torch.arange(batch, device=low_res.device)
        if multimask_output:
            best = decoded.iou_scores[:, 0].argmax(dim=-1)  # (B,)
        else:
            best = torch.zeros(batch, dtype=torch.long, device=low_res.device)
        chosen = low_res[rows, 0, best].unsqueeze(1)  # (B, 1, 4h, 4w)
        size = (self.settings.image_size, self.settings.image_size)
        # Only the chosen candidate is upsampled (bilinear works per channel: the same numbers as
        # upsampling all candidates, up to float32 kernels' last bit, which differs for 1 and 3
        # channels; a float64 model upsamples in float64).
        high_res = F.interpolate(
            at_least_float32(chosen), size=size, mode="bilinear", align_corners=False
        ).to(low_res.dtype)  # (B, 1, S, S)
        pointer = m.object_pointer_proj(decoded.mask_tokens[rows, 0, best])  # (B, C)
        weight = appearing[:, 0].to(pointer.dtype)  # (B, 1)
        pointer = weight * pointer + (1 - weight) * m.no_object_pointer
        return TrackStep(
            pred_masks=chosen,
            high_res_masks=high_res,
            object_pointer=pointer,
            object_score_logits=decoded.object_score_logits,
            iou_scores=decoded.iou_scores,
        )

    def mask_as_output(self, maps: list[Tensor], mask: Tensor) -> TrackStep:
        """A mask prompt (1, 1, H, W), taken as the prediction itself (a ground-truth mask).

        The decoder still runs on the downsampled mask to get the object pointer; whether the
        object is present follows the mask (any pixel on), not the decoder's score.
        """
        m = self.modules
        dtype = maps[-1].dtype
        side = self.settings.image_size
        mask_f = mask.to(dtype)
        if tuple(mask_f.shape[-2:]) != (side, side):
            mask_f = F.interpolate(
                at_least_float32(mask_f),
                size=(side, side),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            ).to(mask.dtype)
        high_res = mask_f * MASK_AS_OUTPUT_SCALE + MASK_AS_OUTPUT_BIAS
        low_res = F.interpolate(
            at_least_float32(high_res),
            size=m.heads.prompt_encoder.mask_input_size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        ).to(dtype)
        pointer = self.decode(maps, masks=m.mask_downsample(mask_f.to(dtype))).object_pointer
        present = (mask.flatten(1).float() > 0).any(dim=1, keepdim=True).to(dtype)  # (1, 1)
        pointer = present * pointer + (1 - present) * m.no_object_pointer
        return TrackStep(
            pred_masks=low_res,
            high_res_masks=high_res,
            object_pointer=pointer,
            object_score_logits=(MASK_AS_OUTPUT_SCALE * present + MASK_AS_OUTPUT_BIAS).unsqueeze(-1),
            iou_scores=mask.new_ones(1, 1).to(dtype),
        )

    def condition_on_memory(self, features: Tensor, pos: Tensor, memory: MemorySelection | None) -> Tensor:
        """The frame's (1, C, h, w) features conditioned on the object's memory (None: a first
        prompt, which has none yet)."""
        m = self.modules
        if self.settings.num_maskmem == 0:
            return features
        if memory is None:
            return features + m.no_memory_embedding.reshape(1, -1, 1, 1)
        memories, memory_pos, num_pointer_tokens = self.memory_tokens(memory, features)
        return self.attend_to_memory(features, pos, memories, memory_pos, num_pointer_tokens)

    def memory_tokens(self, memory: MemorySelection, features: Tensor) -> tuple[Tensor, Tensor, int]:
        """An object's memory as tokens: (1, M, C_mem) memories then pointer tokens, their (1, M,
        C_mem) position encodings, and how many of the last tokens are pointers."""
        m = self.modules
        device, dtype = features.device, features.dtype
        memories, memory_pos = [], []
        for t, out in memory.memories:
            memories.append(out["maskmem_features"].to(device, dtype))
            memory_pos.append(
                out["maskmem_pos_enc"].to(device) + m.memory_temporal_positional_encoding[t - 1, 0]
            )
        num_pointer_tokens = 0
        if memory.pointers:
            tokens, tokens_pos = object_pointer_tokens(
                [p.to(device) for _, p in memory.pointers],
                [offset for offset, _ in memory.pointers],
                memory.max_pointer_offset,
                m.memory_temporal_positional_encoding.shape[-1],
                m.pointer_temporal_projection,
            )
            memories.append(tokens.to(dtype))
            memory_pos.append(tokens_pos)
            num_pointer_tokens = tokens.shape[1]
        return torch.cat(memories, dim=1), torch.cat(memory_pos, dim=1), num_pointer_tokens

    def attend_to_memory(
        self, features: Tensor, pos: Tensor, memory: Tensor, memory_pos: Tensor, num_pointer_tokens: int
    ) -> Tensor:
        """(1, C, h, w) frame features conditioned on B objects' (B, M, C_mem) memory tokens ->
        (B, C, h, w)."""
        _, c, h, w = features.shape
        batch = memory.shape[0]
        conditioned = self.modules.memory_attention(
            features=features.flatten(2).transpose(1, 2).expand(batch, -1, -1),
            features_pos=pos.flatten(2).transpose(1, 2).expand(batch, -1, -1),
            memory=memory,
            memory_pos=memory_pos,
            num_object_pointer_tokens=num_pointer_tokens,
        )  # (B, h*w, C)
        return conditioned.transpose(1, 2).reshape(batch, c, h, w)

    def encode_memory(
        self, features: Tensor, high_res_masks: Tensor, object_score_logits: Tensor, from_prompts: bool
    ) -> tuple[Tensor, Tensor]:
        """This frame's memories of N objects.

        Args:
            features: (1, C, h, w) the frame's lowest-resolution features (not memory-conditioned).
            high_res_masks: (N, 1, S, S) predicted mask logits.
            object_score_logits: (N, 1, 1) the objects' presence logits.
            from_prompts: the masks come from prompts (binarised) rather than tracking (soft).

        Returns:
            memory (N, L, C_mem) in `settings.memory_dtype` and its position encoding (N, L, C_mem),
            L = h*w (or the compressor's latent count).
        """
        m, s = self.modules, self.settings
        masks = high_res_masks
        mem_size = tuple(4 * side for side in m.heads.prompt_encoder.mask_input_size)
        if tuple(masks.shape[-2:]) != mem_size:
            masks = F.interpolate(
                at_least_float32(masks), size=mem_size, mode="bilinear", align_corners=False, antialias=True
            ).to(masks.dtype)
        probs = (masks > 0).to(masks.dtype) if from_prompts else torch.sigmoid(masks)
        probs = probs * s.sigmoid_scale_for_mem_enc + s.sigmoid_bias_for_mem_enc
        memory, memory_pos = m.memory_encoder(
            features.expand(len(masks), -1, -1, -1), probs
        )  # (N, C_mem, h, w)
        if m.occlusion_spatial_embedding is not None:
            absent = 1 - (object_score_logits > 0).float()[..., None]  # (N, 1, 1, 1)
            # added in float32 and rounded back to the memory's dtype (the reference adds in place)
            memory = (memory + absent * m.occlusion_spatial_embedding[..., None, None]).to(memory.dtype)
        if m.memory_compressor is not None:
            memory, memory_pos = m.memory_compressor(memory, memory_pos)  # (N, L, C_mem)
        else:
            memory, memory_pos = memory.flatten(2).transpose(1, 2), memory_pos.flatten(2).transpose(1, 2)
        # SAM 3 keeps memories in bf16, as its reference does (half the memory; same numbers).
        memory_dtype = s.memory_dtype if s.memory_dtype is not None else masks.dtype
        return memory.to(memory_dtype), memory_pos.to(masks.dtype)
