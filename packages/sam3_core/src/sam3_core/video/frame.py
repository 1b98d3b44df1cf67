"""One video frame in three calls: the session plans it, the engine computes it, the session
commits it.

    plan = session.plan_frame(frame_idx, reverse, streaming, policy)   # which objects, which memories
    result = engine.step(plan, maps, pos, encode_memory=True)           # every object's step, memories
    masks, scores = session.commit(plan, result)                        # outputs stored, old ones pruned

The plan names, per object, what the frame does with it:

- "reuse": a prompted frame already segmented, with no new prompts: its stored output is the answer;
- "prompt": new prompts (or a first prompt) on this frame: one step with them (and, for a
  correction of a tracked frame, with its memory);
- "track": no prompts on this frame: a step from its memory alone (these are batched).

The engine reads the plan and the frame's features only; the session writes the results back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor

from .memory_policy import MemoryPolicy, MemorySelection

__all__ = ["FramePlan", "FramePlanning", "FrameResult", "ObjectPlan", "TrackStep"]

ObjectAction = Literal["reuse", "prompt", "track"]


@dataclass
class TrackStep:
    """B objects on one frame (B = 1 unless batched: `split` gives one step per object)."""

    pred_masks: Tensor  # (B, 1, 4h, 4w) low-resolution mask logits
    high_res_masks: Tensor  # (B, 1, S, S) mask logits at the model-input size
    object_pointer: Tensor  # (B, C)
    object_score_logits: Tensor  # (B, 1, 1) logit that the object is present
    iou_scores: Tensor  # (B, 1, M) predicted IoU of the candidate masks

    def split(self) -> list[TrackStep]:
        """One (B = 1) step per object."""
        return [
            TrackStep(
                *(
                    t[i : i + 1]
                    for t in (
                        self.pred_masks,
                        self.high_res_masks,
                        self.object_pointer,
                        self.object_score_logits,
                        self.iou_scores,
                    )
                )
            )
            for i in range(len(self.pred_masks))
        ]

    def stored(self) -> dict[str, Tensor]:
        """What a session keeps of the step (the memory is added by `encode_memory`)."""
        return {
            "pred_masks": self.pred_masks,
            "object_pointer": self.object_pointer,
            "object_score_logits": self.object_score_logits,
        }


@dataclass
class ObjectPlan:
    """What one object does on the frame (module doc)."""

    obj_idx: int
    action: ObjectAction
    reverse: bool = False  # tracked backwards in time (memories come from later frames)
    first_prompt: bool = False  # its first prompts here: no memory, the output is a conditioning one
    points: Tensor | None = None  # (1, 1, N, 2) clicks / box corners in model-input pixels
    labels: Tensor | None = None  # (1, 1, N)
    mask: Tensor | None = None  # (1, 1, S, S) mask prompt
    memory: MemorySelection | None = None  # its memory on the frame (None: none is read)

    @property
    def uses_prompts(self) -> bool:
        """The frame's prompts of the object make its mask (they are then used up)."""
        return self.points is not None or self.mask is not None


@dataclass
class FramePlan:
    """Every object's `ObjectPlan` on one frame, in object-index order."""

    frame_idx: int
    objects: list[ObjectPlan]

    @property
    def computes(self) -> bool:
        """Whether any object needs a step (else no features are needed)."""
        return any(o.action != "reuse" for o in self.objects)


@dataclass
class FrameResult:
    """The engine's answer to a `FramePlan`: the steps of the objects it computed and, when asked,
    their new memories ((1, L, C_mem) features and position encoding)."""

    steps: dict[int, TrackStep] = field(default_factory=dict)  # obj_idx -> step
    memories: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)  # obj_idx -> memory


class FramePlanning:
    """The plan and commit steps of a tracker video session (mixed into it): they read and write
    the session only through its own methods."""

    def plan_frame(
        self, frame_idx: int, reverse: bool, streaming: bool, policy: MemoryPolicy | None
    ) -> FramePlan:
        """Each object's action on the frame and the memory it reads (`policy` None: no memories).

        As the reference: once an object is on its first prompted frame, the objects after it in the
        frame are tracked as if going forwards (`reverse` False).
        """
        objects = []
        for obj_idx in range(self.get_obj_num()):
            obj_id = self.obj_idx_to_id(obj_idx)
            new_inputs = self.has_new_inputs(obj_id)
            if not new_inputs and self.has_cond_output(obj_idx, frame_idx):
                objects.append(ObjectPlan(obj_idx, "reuse"))
                continue
            if not new_inputs:
                memory = self._frame_memory(policy, obj_idx, frame_idx, reverse, streaming)
                objects.append(ObjectPlan(obj_idx, "track", reverse, memory=memory))
                continue
            first_prompt = not self.was_tracked(obj_idx, frame_idx)
            if first_prompt:
                reverse = False
            point_inputs, mask = self.prompts_on(obj_idx, frame_idx)
            if point_inputs is not None and mask is not None:
                raise ValueError(f"object {obj_id} has both clicks and a mask on frame {frame_idx}")
            points = labels = None
            if point_inputs is not None:
                points, labels = point_inputs["point_coords"], point_inputs["point_labels"]
            memory = None
            if mask is None and not first_prompt:
                memory = self._frame_memory(policy, obj_idx, frame_idx, reverse, streaming)
            objects.append(ObjectPlan(obj_idx, "prompt", reverse, first_prompt, points, labels, mask, memory))
        return FramePlan(frame_idx, objects)

    def _frame_memory(
        self,
        policy: MemoryPolicy | None,
        obj_idx: int,
        frame_idx: int,
        reverse: bool,
        streaming: bool,
    ) -> MemorySelection | None:
        """The object's memory on a frame, picked by the memory policy from its stored outputs."""
        if policy is None:
            return None
        cond, tracked = self.object_outputs(obj_idx)
        if not cond:
            raise ValueError(
                f"object {self.obj_idx_to_id(obj_idx)} has no prompted frame with an output yet; "
                "run the model on a frame with its prompts first"
            )
        return policy.select(frame_idx, cond, tracked, reverse, self.num_frames, streaming)

    def commit(self, plan: FramePlan, result: FrameResult) -> tuple[list[Tensor], list[Tensor]]:
        """Store the engine's results of a planned frame; returns every object's (1, 1, 4h, 4w)
        mask logits and (1, 1, 1) object-score logits on it, in object-index order.

        Computed objects' outputs are stored (as conditioning outputs on a first prompt, else as
        tracked ones), their prompts marked used, their new memories attached; outputs out of
        the memory window are then pruned.
        """
        frame_idx = plan.frame_idx
        masks, scores = [], []
        for o in plan.objects:
            if o.action == "reuse":
                masks.append(self.get_output(o.obj_idx, frame_idx, "pred_masks"))
                scores.append(self.get_output(o.obj_idx, frame_idx, "object_score_logits"))
                continue
            if o.action == "prompt" and o.uses_prompts:
                self.mark_inputs_used(self.obj_idx_to_id(o.obj_idx))
            step = result.steps[o.obj_idx]
            self.store_output(
                o.obj_idx, frame_idx, output_value=step.stored(), is_conditioning_frame=o.first_prompt
            )
            if not o.first_prompt:
                self.mark_tracked(o.obj_idx, frame_idx, o.reverse)
            masks.append(step.pred_masks)
            scores.append(step.object_score_logits)
        for obj_idx, (features, pos) in sorted(result.memories.items()):
            self.store_memory(obj_idx, frame_idx, features, pos)
        self.prune_outputs(frame_idx)
        return masks, scores
