#!/bin/sh
# bench.sh - builds gpt2-bench and random GPT-2 124M models, then runs the
# benchmark (tools/bench/): throughput per dtype and thread count
# against the read bandwidth and FMA peak measured in the same run.
#
# usage: scripts/bench.sh [gpt2-bench options...]     e.g. -t 1,2 -r 5
#
# Environment:
#   BUILD_DIR   the CMake build folder (default: build)
#   MODEL_DIR   where the models are made and kept (default: models/bench,
#               ignored by git); a model is made again only when missing
#   SHAPE       the --random shape of gpt2-convert (default: 124M)
#   DTYPES      the model types (default: "f32 f16 bf16 q8_0")
#   TOKENIZER   the folder of vocab.json and merges.txt (default: ../shared/gpt2)
#
# Nothing is downloaded: the models have random weights in the real shapes
# and the real tokenizer, which is all that speed depends on.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
models=${MODEL_DIR:-$root/models/bench}
shape=${SHAPE:-124M}
dtypes=${DTYPES:-"f32 f16 bf16 q8_0"}
tokenizer=${TOKENIZER:-$root/../shared/gpt2}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target gpt2-bench --target gpt2-convert >/dev/null

mkdir -p "$models"
files=""
for t in $dtypes; do
    f="$models/gpt2-$shape-$t.bin"
    if [ ! -f "$f" ]; then
        echo "making $f" >&2
        "$build/gpt2-convert" --random "$shape" "$f" --dtype "$t" --tokenizer "$tokenizer" -q
    fi
    files="$files $f"
done

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')
echo "# gpt2-bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on ${cpu:-?}, $(nproc 2>/dev/null || echo '?') CPUs"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "# $build/gpt2-bench $* $files"
echo
# shellcheck disable=SC2086
"$build/gpt2-bench" "$@" $files
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
