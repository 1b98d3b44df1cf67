#!/usr/bin/env bash
# The GPU run (issue: "On the GPU"), prepared on the CPU so the lent minutes go to running it.
# Here, once: `bash scripts/gpu/fetch_wheels.sh` (packages the GPU image lacks, into .whl/, ignored).
# Then one call of the device tool, from the repository root:
#     run(command="bash scripts/gpu/check.sh", carry=[".whl"], timeout_s=590)
# Results land in $OUT (tests.log, cuda-tests.xml, bench/*.{json,md}, syncs.jsonl, env.txt); commit
# them under benchmarks/results/ with the GPU's name. Each step has its own time limit, so one
# that hangs leaves time for the rest.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=python3
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/packages/sam3_core/src:$PWD/packages/sam3_sdk/src:${PYTHONPATH:-}
{ nvidia-smi; $PY -c "import torch, transformers; print(torch.__version__, torch.cuda.get_device_name(0), transformers.__version__)"; } >"$OUT/env.txt" 2>&1

# 1. The core and SDK suites on CUDA (shared models on the GPU, TF32 off; browser tests stay on the CPU).
timeout 200 $PY -m pytest -q -p no:cacheprovider tests/core tests/sdk --device cuda \
    --deselect tests/sdk/test_cli_ray.py --junitxml="$OUT/cuda-tests.xml" >"$OUT/tests.log" 2>&1
echo "tests: exit $?" | tee -a "$OUT/tests.log"

# 2. Host synchronisations per tracked frame (1, 3, 16 objects; 4-block ViT at the real widths).
timeout 60 $PY scripts/gpu/sync_count.py --layers 4 --objects 1,3,16 --frames 4 >"$OUT/syncs.jsonl" 2>>"$OUT/tests.log"

# 3. The benchmark at the real widths on CUDA, ours next to the reference (same interpreter: the
#    image's torch), fp32 (TF32 off) and bf16, tracking with 1, 3, 16, 64 objects.
timeout 280 $PY benchmarks/run.py --device cuda --layers 32 --repeats 3 --reference "$(command -v $PY)" \
    --rows backbone,click,concept_heads,track_1,track_3,track_16,track_64,edgetam_1,video_frame_1 \
    --no-load --video-rss-frames 0 --video-frames 6 --output "$OUT/bench" >"$OUT/bench.log" 2>&1
echo "bench: exit $?" | tee -a "$OUT/bench.log"
tail -n 30 "$OUT/bench.log"; tail -n 5 "$OUT/tests.log"; cat "$OUT/syncs.jsonl"
