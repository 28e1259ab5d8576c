#!/usr/bin/env bash
# bench-tokenizer.sh - tokenizer throughput: our CLI against gpt-tokenizer.
#
# Tokenizes the shared benchmark text (bench/tok_bench.txt, 5 MB of mostly
# non-Latin Markdown) with `gpt2 -m MODEL --tokenize -f FILE` and with the
# npm package gpt-tokenizer 4.0.0 (encoding r50k_base, which is GPT-2's) in
# the same run, three times each, and prints the median MB/s of both and
# their ratio.  The two id lists must be identical, or the script fails.
#
# What is timed, on purpose against us: our side is the whole gpt2 process
# (start, model load, encoding, printing 2.4 million ids); gpt-tokenizer's
# side is the encode call alone, inside one warm Node process.
#
# Usage: scripts/bench-tokenizer.sh [BUILD_DIR]
#   BUILD_DIR      where gpt2 and gpt2-convert are (default: build)
#   GPT2_SHARED    the shared data folder (default: ../shared beside the repo)
#   GPT2_BENCH_CACHE  where gpt-tokenizer is installed if missing
#                  (default: ${XDG_CACHE_HOME:-~/.cache}/gpt2-bench)
# Needs node and npm (npm only the first time).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$repo/build}" 2>/dev/null && pwd) || { echo "bench-tokenizer: no build folder ${1:-$repo/build}" >&2; exit 1; }
shared=${GPT2_SHARED:-$repo/../shared}
text=$shared/bench/tok_bench.txt
vocab=$shared/gpt2
cache=${GPT2_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt2-bench}
js_version=4.0.0

die() { echo "bench-tokenizer: $*" >&2; exit 1; }

[ -f "$text" ] || die "missing $text (set GPT2_SHARED to the shared data folder)"
for f in vocab.json merges.txt; do
    [ -f "$vocab/$f" ] || die "missing $vocab/$f"
done
for tool in gpt2 gpt2-convert; do
    [ -x "$build/$tool" ] || die "missing $build/$tool: build it first (cmake --build build --target gpt2 gpt2-convert)"
done
command -v node >/dev/null || die "node is needed to run gpt-tokenizer"

# gpt-tokenizer, installed once into the cache folder (never into the repo).
js_dir=$cache/gpt-tokenizer-$js_version
js_pkg=$js_dir/node_modules/gpt-tokenizer/package.json
if ! node -e "process.exit(require('$js_pkg').version === '$js_version' ? 0 : 1)" 2>/dev/null; then
    command -v npm >/dev/null || die "npm is needed once, to install gpt-tokenizer $js_version into $js_dir"
    echo "installing gpt-tokenizer $js_version into $js_dir" >&2
    mkdir -p "$js_dir"
    npm install --prefix "$js_dir" --no-save --no-audit --no-fund --loglevel=error "gpt-tokenizer@$js_version" >&2
fi

# A one-layer model with random weights around the real tokenizer: loading
# it costs next to nothing, so the gpt2 process is mostly tokenizing.
work=$(mktemp -d "${TMPDIR:-/tmp}/gpt2-bench-tok.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$build/gpt2-convert" --random 1x1x16x16 "$work/model.bin" --tokenizer "$vocab" -q

# Node runs and times both sides, so the two are measured in the same run
# with the same clock.
GPT2_BIN=$build/gpt2 MODEL=$work/model.bin TEXT=$text JS_DIR=$js_dir WORK=$work node - <<'EOF'
const fs = require('fs');
const { spawnSync } = require('child_process');
const { GPT2_BIN, MODEL, TEXT, JS_DIR, WORK } = process.env;
const { encode } = require(`${JS_DIR}/node_modules/gpt-tokenizer/cjs/encoding/r50k_base.js`);

const RUNS = 3;
const bytes = fs.statSync(TEXT).size;
const text = fs.readFileSync(TEXT, 'utf8');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

function runOurs(outPath) {
  const out = fs.openSync(outPath, 'w');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(GPT2_BIN, ['-m', MODEL, '--tokenize', '-f', TEXT], { stdio: ['ignore', out, 'pipe'] });
  const dt = seconds(t0);
  fs.closeSync(out);
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`gpt2 --tokenize failed (${r.status}): ${r.stderr}`);
  return dt;
}

function runJs() {
  const t0 = process.hrtime.bigint();
  const ids = encode(text, { disallowedSpecial: new Set() }); // <|endoftext|> is plain text, as in ours
  return [seconds(t0), ids];
}

const ours = [], js = [];
let jsIds;
for (let i = 0; i < RUNS; i++) {
  ours.push(runOurs(`${WORK}/ours.txt`));
  const [dt, ids] = runJs();
  js.push(dt);
  jsIds = ids;
}

const oursText = fs.readFileSync(`${WORK}/ours.txt`, 'utf8').trim();
if (oursText !== jsIds.join(' ')) {
  const a = oursText.split(' ');
  let i = 0;
  while (i < a.length && Number(a[i]) === jsIds[i]) i++;
  console.error(`bench-tokenizer: the ids differ (ours: ${a.length}, gpt-tokenizer: ${jsIds.length}; first difference at id ${i})`);
  process.exit(1);
}

const mbs = (dt) => bytes / dt / 1e6;
const oursMbs = mbs(median(ours)), jsMbs = mbs(median(js));
console.log(`text: ${TEXT} (${bytes} bytes, ${jsIds.length} tokens, identical ids on both sides)`);
console.log(`runs: ${RUNS} each, median`);
console.log(`gpt2 --tokenize (whole process):        ${oursMbs.toFixed(2)} MB/s  [${ours.map((d) => d.toFixed(3)).join(' ')} s]`);
console.log(`gpt-tokenizer 4.0.0 r50k_base (encode): ${jsMbs.toFixed(2)} MB/s  [${js.map((d) => d.toFixed(3)).join(' ')} s]`);
console.log(`ratio: ${(oursMbs / jsMbs).toFixed(1)}x`);
EOF
