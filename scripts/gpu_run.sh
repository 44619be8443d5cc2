#!/usr/bin/env bash
# The one command for a lent GPU machine (PyTorch, OpenCV, safetensors, typer, rich, pyyaml, torchmetrics
# installed; no network; one command of at most 10 minutes; at most 8 files back):
#   1. refuses a queue whose schedule does not fit its minutes (smfd queue --plan), before any minute is spent;
#   2. measures the data path's and the training steps' faces/s, eager and compiled, at batch 16 and 64, for at
#      most BENCH_SECONDS (default 60; 0 skips it) into OUT/throughput.md: is a step bound by kernel launches, and
#      does torch.compile pay inside a job's minutes?
#   3. runs the queue into OUT/queue (results.md/json, metrics.csv, queue.log, kept fp16 weights), its jobs' run
#      folders in a fresh folder under /tmp (WORK to choose one; it must not hold an earlier queue's runs).
# OUT holds at most 8 files if the queue keeps at most 3 jobs' weights under 16 MiB each. QUEUE_ARGS (such as
# "--minutes 6 --lanes 2") reach both the plan's check and the run.
#   bash scripts/gpu_run.sh configs/gpu/next-run.yaml [OUT]      # OUT defaults to $OUT (the device's folder)
# The pack travels with the code: smfd prepare pack ... -o packs/synthface-2000, then carry packs/synthface-2000.
set -euo pipefail
queue=${1:?usage: bash scripts/gpu_run.sh QUEUE.yaml [OUT]}
out=${2:-${OUT:?give an output folder or set OUT}}
pack=${PACK:-packs/synthface-2000}
bench_seconds=${BENCH_SECONDS:-60}
bench_args=${BENCH_ARGS:---workers 0,15 --degradations thesis --nets smfd_unet --batch 16 \
--step-batches 16,64 --compile --seconds 2}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
if [ ! -f "$pack/pack.json" ]; then
    echo "gpu_run: $pack: not a training pack (make one with smfd prepare pack and carry it)" >&2
    exit 2
fi
# shellcheck disable=SC2086  # QUEUE_ARGS and bench_args are lists of options (word splitting wanted)
"$py" -m smfd queue "$queue" --plan ${QUEUE_ARGS:-}
mkdir -p "$out"
work=${WORK:-$(mktemp -d /tmp/smfd-queue.XXXXXX)}
if [ "$bench_seconds" != 0 ]; then
    rc=0
    timeout "$bench_seconds" "$py" benchmarks/train_throughput.py --data "$pack" $bench_args > "$out/throughput.md" ||
        rc=$?
    if [ "$rc" = 124 ]; then
        echo "(stopped after ${bench_seconds} s: the rows above are complete)" >> "$out/throughput.md"
    elif [ "$rc" != 0 ]; then  # the queue runs anyway: the tables matter more than the throughput
        echo "(the benchmark failed with exit $rc: its error is in the command's output)" >> "$out/throughput.md"
    fi
fi
"$py" -m smfd queue "$queue" --data "$pack" -o "$out/queue" --work "$work" ${QUEUE_ARGS:-}
