#!/usr/bin/env bash
# check-big-model.sh - a model of GPT-2 1558M's shape in f32, where every
# file is bigger than 4 GiB (too big for CI; a developer's check):
#
#   1. gpt2-convert --random 1558M writes the 6.2 GB model file, and gpt2
#      generates from it;
#   2. scripts/model-to-hf.py writes those same weights out as a Hugging
#      Face folder with one 6.4 GB model.safetensors (names as on the hub,
#      with the h.N.attn.bias buffers, wte last, past 4 GiB), which must
#      convert back to a byte-identical model file that generates the same;
#   3. the same as 3 shards of about 2.1 GB with model.safetensors.index.json
#      and names prefixed "transformer.", as transformers writes them;
#   4. with --dtypes, also f16 and q8_0 conversions of the sharded folder.
#
# Usage: scripts/check-big-model.sh [--keep] [--dtypes] [WORKDIR]
# WORKDIR (default: a new folder under ${TMPDIR:-/tmp}) needs about 19 GB
# free, 32 GB with --keep, which keeps every file made instead of deleting
# each once it has been checked.  $GPT2_SHARED/gpt2 gives the tokenizer;
# GPT2_BUILD (default build) the binaries; THREADS (default 2) gpt2's
# threads; SHAPE (default 1558M) another --random shape, for a quick run
# of this script (the files are still named r1558.bin etc.).  Prints the wall time, peak RSS and output size of each step,
# and the generation speed (greedy, prompt "Hello", 8 tokens).
set -euo pipefail

die() {
  echo "check-big-model.sh: $*" >&2
  exit 1
}

keep=0 dtypes=0 work=""
for arg in "$@"; do
  case $arg in
  --keep) keep=1 ;;
  --dtypes) dtypes=1 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  -*) die "unknown option $arg (see --help)" ;;
  *) [[ -z $work ]] || die "one WORKDIR only (see --help)"; work=$arg ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
build=${GPT2_BUILD:-build}
threads=${THREADS:-2}
shape=${SHAPE:-1558M}
[[ -n ${GPT2_SHARED:-} ]] || die "set GPT2_SHARED to the shared data folder (its gpt2/ holds vocab.json and merges.txt)"
tok=$GPT2_SHARED/gpt2
convert=$build/gpt2-convert gpt2=$build/gpt2
[[ -x $convert && -x $gpt2 ]] || die "no $convert or $gpt2: build first, or set GPT2_BUILD"
[[ -f $tok/vocab.json && -f $tok/merges.txt ]] || die "$tok has no vocab.json and merges.txt"
command -v python3 >/dev/null || die "python3 is needed to write the safetensors files"

made_work=0
if [[ -z $work ]]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/check-big-model.XXXXXX")
  made_work=1
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
need_gb=$((keep ? 32 : 19))
free_gb=$(($(df -Pk "$work" | awk 'NR == 2 {print $4}') / 1048576))
((free_gb >= need_gb)) || die "$work has $free_gb GB free; this check needs $need_gb GB"

cleanup() {
  ((keep)) && return
  rm -rf "$work/r1558.bin" "$work/st.bin" "$work/sh.bin" "$work/f16.bin" "$work/q8_0.bin" "$work/hf" \
    "$work/hf-sharded" "$work/time.txt" "$work/gen.json" "$work/dump.txt"
  ((made_work)) && rmdir "$work" 2>/dev/null
  return 0
}
trap cleanup EXIT
drop() { ((keep)) || rm -rf "$@"; } # drop FILE...: delete what has been checked, unless --keep

rows=() # the figures: "step|wall s|peak RSS MB|bytes"
timed() { # timed LABEL OUTPUT CMD...: runs CMD, records its wall time, peak RSS and OUTPUT's size
  local label=$1 output=$2 wall rss t0
  shift 2
  echo "== $label" >&2
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@"
    read -r wall rss <"$work/time.txt"
    rss=$((rss / 1024))
  else
    t0=$(date +%s%N)
    "$@"
    wall=$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN {printf "%.2f", ns / 1e9}')
    rss=-
  fi
  rows+=("$label|$wall|$rss|$([[ -n $output ]] && du -cb "$output" | tail -1 | cut -f1 || echo -)")
}

gen_rows=() # "model|tokens|load ms|ms/token"
generate() { # generate LABEL MODEL: 8 greedy tokens after "Hello"; sets ids to their ids
  timed "generate: $1" "" "$gpt2" -m "$2" -p Hello -n 8 --temp 0 -t "$threads" --json >"$work/gen.json"
  local load ms_tok
  ids=$(sed -n 's/.*"completion_tokens":\[\([0-9,]*\)\].*/\1/p' "$work/gen.json")
  load=$(sed -n 's/.*"load_ms":\([0-9]*\).*/\1/p' "$work/gen.json")
  ms_tok=$(sed -n 's/.*"gen_tokens":\([0-9]*\),"gen_ms":\([0-9.]*\).*/\2 \1/p' "$work/gen.json" |
    awk '{printf "%.1f", $1 / $2}')
  [[ -n $ids && -n $ms_tok ]] || die "gpt2 -m $2 printed no tokens: $(head -c 300 "$work/gen.json")"
  gen_rows+=("$1|$ids|$load|$ms_tok")
}

# converts_back FOLDER NAME WHAT: converts the Hugging Face FOLDER (holding
# WHAT) to $work/NAME, which must be r1558.bin byte for byte and generate its
# tokens.
converts_back() {
  timed "gpt2-convert $(basename "$1")/ ($3)" "$work/$2" "$convert" -q "$1" "$work/$2"
  cmp "$work/r1558.bin" "$work/$2" || die "converting $3 did not give back r1558.bin"
  echo "$2 is r1558.bin, byte for byte" >&2
  generate "$2 ($3)" "$work/$2"
  [[ $ids == "$want" ]] || die "$2 generates $ids, r1558.bin $want"
}

past_4gib() { # past_4gib LINE: LINE ends in "starts at byte N"; N must be past 4 GiB (with SHAPE 1558M)
  local at=${1##* }
  echo "$1" >&2
  [[ $shape != 1558M ]] || ((at > 4294967296)) || die "${1%%:*}: the last tensor starts at byte $at, not past 4 GiB"
}

# ---- 1. the random model file --------------------------------------------------
timed "gpt2-convert --random $shape (f32)" "$work/r1558.bin" \
  "$convert" -q --random "$shape" "$work/r1558.bin" --tokenizer "$tok"
generate "r1558.bin (--random)" "$work/r1558.bin"
want=$ids

# ---- 2. one model.safetensors --------------------------------------------------
timed "model-to-hf.py: model.safetensors" "$work/hf/model.safetensors" \
  python3 "$here/model-to-hf.py" "$work/r1558.bin" "$work/hf" >"$work/dump.txt"
past_4gib "$(sed -n 1p "$work/dump.txt")"
past_4gib "$(sed -n 2p "$work/dump.txt")"
rm "$work/dump.txt"
cp "$tok/vocab.json" "$tok/merges.txt" "$work/hf/"
converts_back "$work/hf" st.bin "model.safetensors"
drop "$work/st.bin" "$work/hf/model.safetensors"

# ---- 3. shards -----------------------------------------------------------------
timed "model-to-hf.py --shards 3: 3 shards + index" "$work/hf-sharded" \
  python3 "$here/model-to-hf.py" "$work/r1558.bin" "$work/hf-sharded" --shards 3 --prefix transformer. >&2
cp "$tok/vocab.json" "$tok/merges.txt" "$work/hf-sharded/"
converts_back "$work/hf-sharded" sh.bin "index + 3 shards"
drop "$work/sh.bin"

# ---- 4. other weight types -----------------------------------------------------
if ((dtypes)); then
  for t in f16 q8_0; do
    timed "gpt2-convert hf-sharded/ --dtype $t" "$work/$t.bin" \
      "$convert" -q "$work/hf-sharded" "$work/$t.bin" --dtype "$t"
    generate "$t.bin" "$work/$t.bin"
    drop "$work/$t.bin"
  done
fi

# ---- the figures ---------------------------------------------------------------
echo
echo "gpt2-convert --random $shape, $threads threads, $(nproc) CPUs"
printf '%-46s %8s %12s %14s\n' step "wall s" "peak RSS MB" bytes
for r in "${rows[@]}"; do
  IFS='|' read -r a b c d <<<"$r"
  printf '%-46s %8s %12s %14s\n' "$a" "$b" "$c" "$d"
done
echo
printf '%-28s %10s %9s  %s\n' model "load ms" "ms/token" "8 greedy tokens after \"Hello\""
for r in "${gen_rows[@]}"; do
  IFS='|' read -r a b c d <<<"$r"
  printf '%-28s %10s %9s  %s\n' "$a" "$c" "$d" "$b"
done
echo "ok: every f32 path gives the same model file and the same tokens"
