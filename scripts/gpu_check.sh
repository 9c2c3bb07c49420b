#!/usr/bin/env bash
# The GPU checks in one call, for a machine with a CUDA device (CI never has one):
#   1. the tests marked `gpu` (CUDA games vs the CPU, collector, training + resume, loading);
#   2. `rltransfer bench` on CUDA: random-play moves/s of every game at large batches;
#   3. `rltransfer bench-train` on CUDA: training-loop throughput, ppo_small and ppo_resnet;
#      then ppo_small at 65,536 boards eager against `train.compile` (default and
#      reduce-overhead, i.e. CUDA graphs) and with bf16 (issue 12's targets);
#   4. the search (simulations/s), the search-trained learner's loop (az_small, and the GPU
#      preset az_resnet) and the loop in 2 processes on the one GPU (per-rank throughput,
#      scaling efficiency);
#   5. a short `rltransfer train` of the GPU preset (ppo_resnet), sized from step 3.
# Usage, from the repository root: OUT=some/dir bash scripts/gpu_check.sh
# On an H100 (2026-11-27) the steps then there took about 0.5, 0.3, 3.5 + 1.5 and 2.5
# minutes; the compiled loop (added later, not yet run on a GPU) needs up to 7 more. One
# call may run 10 minutes, so run it in two: STEPS=tests,compile first (issue 12's checks),
# then STEPS=games,loop,more,train (the default runs all six steps).
# (DEVICE=cpu PY=.venv/bin/python SMALL_SCALES=1 RESNET_SCALES=0.125 BATCH=1024
# TRAIN_SECONDS=5 tries the script itself on a CPU in about 6 minutes; there ppo_resnet's
# evaluations are too slow, so its training step stops at its 150 s limit.)
# Wheels the machine lacks (gymnasium, pettingzoo, SB3) are taken from .whl/ when present
# (fetch them with ../shared/hooks/device-wheels.sh). Each step has its own time limit, and
# each writes its output under $OUT as it goes, so a failed step leaves the others' results.
set -u
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
DEVICE=${DEVICE:-cuda} PY=${PY:-python3} RESNET_SCALES=${RESNET_SCALES:-32}
STEPS=,${STEPS:-tests,games,loop,compile,more,train},
step() { echo "== $(date +%T) $*"; }
want() { [[ $STEPS == *,$1,* ]]; }

step environment | tee "$OUT/env.txt"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
  nproc; } 2>&1 | tee -a "$OUT/env.txt"

if want tests; then
step "gpu tests" | tee "$OUT/tests.txt"
timeout 150 "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py \
  tests/test_views_gymnasium.py tests/test_search_gpu.py tests/test_compiled.py \
  tests/test_games_fill.py tests/test_games_playout.py 2>&1 | tail -25 \
  | tee -a "$OUT/tests.txt"

fi

if want games; then
step "game benchmark" | tee "$OUT/bench_games.txt"
timeout 90 "$PY" -m rltransfer bench --device "$DEVICE" --no-reference --seconds 0.3 --quiet ${BATCH:+--batch $BATCH} \
  2>&1 | tee -a "$OUT/bench_games.txt"

fi

if want loop; then
step "training-loop benchmark" | tee "$OUT/bench_train.txt"
timeout 240 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent ppo_small --scale ${SMALL_SCALES:-16,64,256} \
  --set ppo.num_minibatches=16 --quiet --json /tmp/bench_small.json 2>&1 | tee -a "$OUT/bench_train.txt"
timeout 120 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent ppo_resnet --scale "$RESNET_SCALES" --iterations 2 \
  --quiet --json /tmp/bench_resnet.json 2>&1 | tee -a "$OUT/bench_train.txt"

fi

if want compile; then
step "compiled loop and bf16 at 65,536 boards" | tee "$OUT/bench_compile.txt"
timeout 300 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent ppo_small --scale ${COMPILE_SCALE:-256} \
  --set ppo.num_minibatches=16 --compile off,default,reduce-overhead --warmup 2 --iterations 2 \
  --quiet --json "$OUT/bench_compile.json" 2>&1 | tee -a "$OUT/bench_compile.txt"
timeout 120 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent ppo_small --scale ${COMPILE_SCALE:-256} \
  --set ppo.num_minibatches=16 --set net.precision=bfloat16 --compile off,reduce-overhead --warmup 2 \
  --iterations 2 --quiet 2>&1 | tee -a "$OUT/bench_compile.txt"

fi

if want more; then
step "search, alphazero loop, 2 processes" | tee "$OUT/bench_more.txt"
timeout 90 "$PY" -m rltransfer.bench.search --device "$DEVICE" --batch 256 4096 \
  2>&1 | tee -a "$OUT/bench_more.txt"
timeout 90 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent az_small --scale 16 \
  --iterations 2 --quiet 2>&1 | tee -a "$OUT/bench_more.txt"
# the GPU preset of learning from search (issue 11: positions/s; x 32 = simulations/s)
timeout 150 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent az_resnet \
  --scale "$RESNET_SCALES" --iterations 2 --quiet 2>&1 | tee -a "$OUT/bench_more.txt"
timeout 150 "$PY" -m rltransfer bench-train --device "$DEVICE" --agent ppo_small --scale 64 \
  --iterations 2 --nproc 2 --quiet 2>&1 | tee -a "$OUT/bench_more.txt"

fi

if want train; then
# about TRAIN_SECONDS of ppo_resnet training at the loop rate just measured (its last scale)
steps=$("$PY" -c "
import json
rows = json.load(open('/tmp/bench_resnet.json'))
print(int(rows[-1]['decisions'] / (rows[-1]['collect_s'] + rows[-1]['update_s']) * ${TRAIN_SECONDS:-80}))
" 2>/dev/null || echo 2000000)
step "train ppo_resnet for $steps learner decisions" | tee "$OUT/train.txt"
timeout 150 "$PY" -m rltransfer train --agent ppo_resnet --device "$DEVICE" --steps "$steps" \
  --set train.num_envs_scale="${RESNET_SCALES##*,}" \
  --run-dir /tmp/gpu_runs --name resnet 2>&1 | tr '\r' '\n' | tail -30 | tee -a "$OUT/train.txt"
cp /tmp/gpu_runs/resnet/eval.json "$OUT/train_eval.json" 2>/dev/null
fi
step done | tee -a "$OUT/train.txt"
