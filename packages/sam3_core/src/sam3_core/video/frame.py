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
from typing import TYPE_CHECKING, Literal

from torch import Tensor

from .memory_policy import MemoryPolicy, MemorySelection

if TYPE_CHECKING:
    from .engine import TrackStep
    from .session import Sam3TrackerVideoInferenceSession

__all__ = ["FramePlan", "FrameResult", "ObjectPlan", "commit_frame", "plan_frame"]

ObjectAction = Literal["reuse", "prompt", "track"]


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


def plan_frame(
    session: Sam3TrackerVideoInferenceSession,
    frame_idx: int,
    reverse: bool,
    streaming: bool,
    policy: MemoryPolicy | None,
) -> FramePlan:
    """Each object's action on the frame and the memory it reads (`policy` None: no memories).

    As the reference: once an object is on its first prompted frame, the objects after it in the
    frame are tracked as if going forwards (`reverse` False).
    """
    objects = []
    for obj_idx in range(session.get_obj_num()):
        obj_id = session.obj_idx_to_id(obj_idx)
        new_inputs = session.has_new_inputs(obj_id)
        if not new_inputs and session.has_cond_output(obj_idx, frame_idx):
            objects.append(ObjectPlan(obj_idx, "reuse"))
            continue
        if not new_inputs:
            memory = _memory(session, policy, obj_idx, frame_idx, reverse, streaming)
            objects.append(ObjectPlan(obj_idx, "track", reverse, memory=memory))
            continue
        first_prompt = not session.was_tracked(obj_idx, frame_idx)
        if first_prompt:
            reverse = False
        point_inputs, mask = session.prompts_on(obj_idx, frame_idx)
        if point_inputs is not None and mask is not None:
            raise ValueError(f"object {obj_id} has both clicks and a mask on frame {frame_idx}")
        points = labels = None
        if point_inputs is not None:
            points, labels = point_inputs["point_coords"], point_inputs["point_labels"]
        memory = None
        if mask is None and not first_prompt:
            memory = _memory(session, policy, obj_idx, frame_idx, reverse, streaming)
        objects.append(ObjectPlan(obj_idx, "prompt", reverse, first_prompt, points, labels, mask, memory))
    return FramePlan(frame_idx, objects)


def _memory(
    session: Sam3TrackerVideoInferenceSession,
    policy: MemoryPolicy | None,
    obj_idx: int,
    frame_idx: int,
    reverse: bool,
    streaming: bool,
) -> MemorySelection | None:
    """The object's memory on a frame, picked by the memory policy from its stored outputs."""
    if policy is None:
        return None
    cond, tracked = session.object_outputs(obj_idx)
    if not cond:
        raise ValueError(
            f"object {session.obj_idx_to_id(obj_idx)} has no prompted frame with an output yet; "
            "run the model on a frame with its prompts first"
        )
    return policy.select(frame_idx, cond, tracked, reverse, session.num_frames, streaming)


def commit_frame(
    session: Sam3TrackerVideoInferenceSession, plan: FramePlan, result: FrameResult
) -> tuple[list[Tensor], list[Tensor]]:
    """Store the engine's results of a planned frame in the session (`session.commit`)."""
    frame_idx = plan.frame_idx
    masks, scores = [], []
    for o in plan.objects:
        if o.action == "reuse":
            masks.append(session.get_output(o.obj_idx, frame_idx, "pred_masks"))
            scores.append(session.get_output(o.obj_idx, frame_idx, "object_score_logits"))
            continue
        if o.action == "prompt" and o.uses_prompts:
            session.mark_inputs_used(session.obj_idx_to_id(o.obj_idx))
        step = result.steps[o.obj_idx]
        session.store_output(
            o.obj_idx, frame_idx, output_value=step.stored(), is_conditioning_frame=o.first_prompt
        )
        if not o.first_prompt:
            session.mark_tracked(o.obj_idx, frame_idx, o.reverse)
        masks.append(step.pred_masks)
        scores.append(step.object_score_logits)
    for obj_idx, (features, pos) in sorted(result.memories.items()):
        session.store_memory(obj_idx, frame_idx, features, pos)
    session.prune_outputs(frame_idx)
    return masks, scores
