"""Fuzz text-prompted video tracking (`Sam3VideoModel`) against the reference, in float64.

Runs in the reference venv (it imports both implementations), from the repository root:

    PYTHONPATH=$PWD/packages/sam3_core/src:$PWD/packages/sam3_sdk/src \\
        /work/main/.ref/bin/python scripts/fuzz_concept_video.py --configs 40 [--seed 0] [--frames 5]

Each configuration draws a tiny random checkpoint (`concept_videos.write_concept_checkpoint`, a seed
of its own), a noisy variant of the synthetic video, a pair of phrases (often overlapping ones),
the thresholds (placed among the frame-0 detection scores so that several detections of both
phrases cross the detection and new-object thresholds at once), `det_nms_thresh` (a round value,
or half of the time, where there is one, a value exactly equal to the IoU of two frame-0
detections that float32 rounds up: where the NMS kernel's comparison in double decides),
`max_num_objects`, pre-loaded or streamed frames, and the mask NMS that stands in for the
reference's absent hub kernel (`kernels-community/cv-utils`):

- `kernel`: torch_generic_nms (the CUDA kernel behind cv-utils): a stable descending sort of the
  scores in their own dtype, suppression where the float32 IoU > threshold compared in double;
- `sam3_cpu`: the CPU fallback of the original sam3 repository: scores cast to float32, numpy's
  (unstable) argsort reversed, IoU <= threshold kept (compared in float32: it parts from the
  kernel at IoUs exactly equal to the threshold, so it is drawn only with the round thresholds).

Both implementations run in float64 (the reference with the golden script's patches: its
interpolations kept in float64, its hot-start removal deferred to after the frame's outputs, as
documented). Compared per frame: object ids, mask ids, removed and suppressed ids, the kept
(post-processed) ids and the mask logits (max abs difference). A mismatch is printed with the
golden script's decision margins (how close the reference's scores and IoUs came to a threshold)
so that rounding-level flips (margin < 1e-9) can be told from logic. Exit status 1 if any
configuration differs. About 20-60 s a configuration on one CPU thread.

It found issue 20's difference: with the mask NMS as it was before (float32 comparison of IoU and
threshold), `--seed 107 --configs 1` keeps one object more on frame 0 than the reference.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT / "scripts"))

import concept_scenarios as cs  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from concept_videos import make_concept_video, write_concept_checkpoint  # noqa: E402
from golden import sam3_video as G  # noqa: E402

PHRASES = ["red ball", "blue disc", "ball", "disc", "green ellipse", "a red ball", "yellow circle", "object"]


def nms_kernel(ious, scores, iou_threshold, use_iou_matrix=True):
    """torch_generic_nms with use_iou_matrix=True, on the host."""
    order = torch.sort(scores, stable=True, descending=True).indices.tolist()
    matrix = ious.tolist()  # Python floats: compared in double, as the kernel does
    kept, removed = [], set()
    for rank, i in enumerate(order):
        if i in removed:
            continue
        kept.append(i)
        removed.update(j for j in order[rank + 1 :] if matrix[i][j] > iou_threshold)
    return torch.tensor(kept, dtype=torch.int64)


def nms_sam3_cpu(ious, scores, iou_threshold, use_iou_matrix=True):
    """sam3.perflib.nms.generic_nms_cpu."""
    ious_np = ious.float().numpy()
    order = scores.float().numpy().argsort()[::-1]
    kept = []
    while order.size > 0:
        i = order.item(0)
        kept.append(i)
        order = order[np.where(ious_np[i, order[1:]] <= iou_threshold)[0] + 1]
    return torch.tensor(kept, dtype=torch.int64)


NMS = {"kernel": nms_kernel, "sam3_cpu": nms_sam3_cpu}


def video(seed: int, frames: int) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    out = []
    for frame in make_concept_video(frames):
        noisy = frame.astype(np.float32) + rng.normal(0, 6, size=frame.shape)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def frame0_detections(folder, phrases, frames, streaming) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every query's (probabilities (Q,), mask logits (Q, 4h, 4w)) on frame 0, per phrase (the
    reference's detector)."""
    dets = []
    model = G.reference_model(folder, cs.CONFIG_OVERRIDES).double()

    def record(module, args, out):
        if getattr(out, "pred_logits", None) is not None:
            dets.append(((out.pred_logits.sigmoid() * out.presence_logits.sigmoid())[0], out.pred_masks[0]))

    hook = model.detector_model.register_forward_hook(record)
    run(model, G.reference_processor(folder), frames[:1], phrases, streaming)
    hook.remove()
    return dets[: len(phrases)]  # the patched reference runs the detector twice per phrase


def between(values: np.ndarray, k: int) -> float:
    """A threshold between the k-th and (k+1)-th largest value."""
    return float((values[k - 1] + values[k]) / 2)


def exact_ious(dets, score_threshold: float) -> list[float]:
    """IoUs of two same-phrase detections above the threshold that float32 rounds up (as a
    threshold, they are where a float32 comparison and the kernel's double one part)."""
    out = []
    for probs, masks in dets:
        binary = (masks[probs > score_threshold] > 0).flatten(1).double()
        inter = binary @ binary.T
        union = binary.sum(1)[:, None] + binary.sum(1)[None, :] - inter
        for i, j in zip(*np.triu_indices(len(binary), k=1)):
            t = float(Fraction(int(inter[i, j]), max(int(union[i, j]), 1)))
            if 0 < t < 1 and float(np.float32(t)) > t:
                out.append(t)
    return sorted(set(out))


def draw(rng: random.Random, folder, frames) -> tuple[dict, list[str], bool, str]:
    phrases, streaming = rng.sample(PHRASES, 2), rng.random() < 0.5
    dets = frame0_detections(folder, phrases, frames, streaming)
    probs = np.unique(torch.cat([p for p, _ in dets]).numpy())[::-1]
    n_det = rng.choice([3, 5, 8, 12, 16])
    n_new = rng.randint(1, n_det)
    overrides = {
        **cs.CONFIG_OVERRIDES,
        "score_threshold_detection": between(probs, n_det),
        "new_det_thresh": between(probs, n_new),
        "high_conf_thresh": between(probs, max(1, n_new // 2)),
        "det_nms_thresh": rng.choice([0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.995]),
        "max_num_objects": rng.choice([2, 4, 6, 10000]),
    }
    ties = exact_ious(dets, overrides["score_threshold_detection"])
    if ties and rng.random() < 0.5:
        overrides["det_nms_thresh"] = rng.choice(ties)
    delay = rng.choice([0, 2, 4])
    overrides.update(
        hotstart_delay=delay,
        hotstart_unmatch_thresh=min(delay, overrides["hotstart_unmatch_thresh"]),
        hotstart_dup_thresh=min(delay, overrides["hotstart_dup_thresh"]),
    )
    nms = rng.choice(list(NMS)) if overrides["det_nms_thresh"] not in ties else "kernel"
    return overrides, phrases, streaming, nms


def run(model, processor, frames, phrases, streaming):
    def scenario(model, processor, frames, dtype):
        if streaming:
            return cs.streaming(model, processor, frames, dtype, phrases=phrases)
        session = processor.init_video_session(video=frames, inference_device="cpu", dtype=dtype)
        processor.add_text_prompt(session, phrases)
        return [
            (o, processor.postprocess_outputs(session, o)) for o in model.propagate_in_video_iterator(session)
        ]

    return cs.record(scenario(model, processor, frames, torch.float64), torch.float64)


def compare(ours, theirs) -> list[str]:
    (t_ours, m_ours), (t_ref, m_ref) = ours, theirs
    problems = []
    for k, (a, b) in enumerate(zip(m_ours["steps"], m_ref["steps"], strict=True)):
        for key in ("object_ids", "mask_ids", "removed_obj_ids", "suppressed_obj_ids", "kept_ids"):
            if a[key] != b[key]:
                problems.append(f"step {k} (frame {b['frame_idx']}): {key} ours {a[key]} reference {b[key]}")
    for key in sorted(t_ref):
        if key.startswith("logits_") and key in t_ours and t_ours[key].shape == t_ref[key].shape:
            diff = (t_ours[key] - t_ref[key]).abs().max().item()
            if diff > 1e-9:
                problems.append(f"{key}: max abs diff {diff:.2e}")
    return problems


def main() -> int:
    from sam3_core import Sam3VideoModel, Sam3VideoProcessor

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=20, help="configurations to try")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first configuration")
    parser.add_argument("--frames", type=int, default=5, help="frames per video")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import transformers.models.sam3_video.modeling_sam3_video as M

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.seed, args.seed + args.configs):
            start = time.time()
            rng = random.Random(n)
            folder = write_concept_checkpoint(Path(tmp) / f"ckpt{n}", seed=rng.randint(0, 3))
            frames = video(n, args.frames)
            overrides, phrases, streaming, nms = draw(rng, folder, frames)
            margins = G._Margins(G.LOGIT_MARGIN_F64)
            G._patch_reference(margins)
            M.cv_utils_kernel = SimpleNamespace(generic_nms=NMS[nms], cc_2d=G._cc_2d)
            ref = G.reference_model(folder, overrides).double()
            G.interpolate_in_float64(type(ref.tracker_model))
            theirs = run(ref, G.reference_processor(folder), frames, phrases, streaming)
            model = Sam3VideoModel.from_pretrained(folder, dtype=torch.float64, **overrides)
            ours = run(model, Sam3VideoProcessor.from_pretrained(folder), frames, phrases, streaming)
            problems = compare(ours, theirs)
            steps = theirs[1]["steps"]
            print(
                f"[{n}] {'streaming' if streaming else 'pre-loaded'} {phrases} nms={nms} "
                f"det_nms={overrides['det_nms_thresh']} max_obj={overrides['max_num_objects']} "
                f"hotstart={overrides['hotstart_delay']}: objects {[s['object_ids'] for s in steps][:2]} "
                f"kept {[s['kept_ids'] for s in steps][:2]} ... margins score {margins.score:.1e} "
                f"iou {margins.iou:.1e} ({time.time() - start:.0f} s)",
                flush=True,
            )
            for line in problems:
                print(f"    MISMATCH {line}", flush=True)
            failures += bool(problems)
    print(f"{failures} of {args.configs} configurations differ")
    return int(failures > 0)


if __name__ == "__main__":
    sys.exit(main())
