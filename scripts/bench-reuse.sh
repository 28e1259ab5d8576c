#!/usr/bin/env bash
# bench-reuse.sh - what sharing a prompt saves (the prompt-reuse issue's
# two measurements), on any model file:
#
#   1. a batch of 16 lines that share a 400-token prefix and end in
#      different 10-token questions, against the same 16 lines with
#      distinct first tokens (which share nothing): prompt time of the batch;
#   2. --prompt-cache: a 900-token prompt, then the same prompt plus 10 new
#      tokens: time to the first new token, without and with the cache.
#
# Usage: scripts/bench-reuse.sh MODEL [GPT2_BINARY] [THREADS]
# Greedy, one new token (-n 1), so that the times are the prompts'.  Each
# pair is run in alternation, 5 times; the medians are printed, and the
# outputs of each pair are compared.
set -euo pipefail
model=${1:?usage: scripts/bench-reuse.sh MODEL [GPT2_BINARY] [THREADS]}
gpt2=${2:-build/gpt2}
threads=${3:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Words that are one token each after a space, so that token counts are exact.
words=(time year people way day man thing woman life child world school state family student group country
  problem hand part place case week company system program question work government number night point home
  water room mother area money story fact month lot right study book eye job word business issue side kind head)
pick() { # pick COUNT SEED: COUNT words, chosen by a small LCG from SEED
  local n=$1 s=$2 out=""
  for ((i = 0; i < n; i++)); do
    s=$(((s * 1103515245 + 12345) % 2147483648))
    out+=" ${words[s % ${#words[@]}]}"
  done
  printf '%s' "$out"
}

# ---- 1. shared prefixes in a batch ------------------------------------------------
prefix=$(pick 399 1)
: >"$work/shared.jsonl"
: >"$work/distinct.jsonl"
for ((q = 0; q < 16; q++)); do
  question=$(pick 10 $((q + 100)))
  printf '{"prompt": "The%s%s"}\n' "$prefix" "$question" >>"$work/shared.jsonl"
  # A distinct first token: the 16 lines then share nothing.
  printf '{"prompt": "%s%s%s"}\n' "${words[q]^}" "$prefix" "$question" >>"$work/distinct.jsonl"
done
batch_ms() { # batch_ms FILE: wall ms of the batch less the model's load, and prompt tokens evaluated
  local t0 t1
  t0=$(date +%s%N)
  "$gpt2" -m "$model" --batch "$1" -n 1 --temp 0 -t "$threads" --json >"$work/out.jsonl"
  t1=$(date +%s%N)
  sed -n 's/.*"load_ms":\([0-9.]*\),"prompt_tokens":[0-9]*,"prompt_evaluated":\([0-9]*\).*/\1 \2/p' "$work/out.jsonl" |
    awk -v wall=$(((t1 - t0) / 1000)) '{e += $2; if (NR == 1) load = $1} END {printf "%d %.1f\n", e, wall / 1000 - load}'
}
median() { sort -g | sed -n 3p; } # of 5 values on standard input
echo "1. 16 lines, 400-token shared prefix + 10-token questions, vs distinct first tokens ($threads threads)"
for run in 1 2 3 4 5; do
  read -r e_shared ms_shared < <(batch_ms "$work/shared.jsonl")
  read -r e_distinct ms_distinct < <(batch_ms "$work/distinct.jsonl")
  echo "$ms_shared $ms_distinct $e_shared $e_distinct" >>"$work/runs1"
done
echo "   prompt tokens evaluated: shared $e_shared, distinct $e_distinct"
echo "   batch ms (wall, less the load), median of 5 runs in alternation:" \
  "shared $(cut -d' ' -f1 "$work/runs1" | median), distinct $(cut -d' ' -f2 "$work/runs1" | median);" \
  "median ratio $(awk '{printf "%.1f\n", $2 / $1}' "$work/runs1" | median)x"
# Each line alone gives the same completion.
"$gpt2" -m "$model" --batch "$work/shared.jsonl" -n 4 --temp 0 -t "$threads" >"$work/batch.txt"
: >"$work/single.txt"
while IFS= read -r line; do
  printf '%s\n' "$line" | "$gpt2" -m "$model" --batch - -n 4 --temp 0 -t "$threads" >>"$work/single.txt"
done <"$work/shared.jsonl"
# Every field but the timings.
strip_timings() { sed 's/,"timings":{[^}]*}//' "$1"; }
cmp -s <(strip_timings "$work/batch.txt") <(strip_timings "$work/single.txt") && echo "   output: identical to the 16 single runs" ||
  { echo "   output: DIFFERS from the single runs"; exit 1; }

# ---- 2. the prompt cache -----------------------------------------------------------
long="The$(pick 899 7)"
longer="$long$(pick 10 9)"
first_token_ms() { # first_token_ms PROMPT [CACHE]: the prompt's time, from -v
  local args=(-m "$model" -p "$1" -n 1 --temp 0 -t "$threads" -v)
  [ $# -gt 1 ] && args+=(--prompt-cache "$2")
  "$gpt2" "${args[@]}" 2>&1 >/dev/null | sed -n 's/^gpt2: prompt [0-9]* tokens in \([0-9.]*\) ms.*/\1/p' | head -1
}
echo "2. --prompt-cache: a 900-token prompt cached, then it plus 10 new tokens ($threads threads)"
for run in 1 2 3 4 5; do
  rm -f "$work/cache"
  first_token_ms "$long" "$work/cache" >/dev/null # writes the cache
  cold=$(first_token_ms "$longer")
  warm=$(first_token_ms "$longer" "$work/cache")
  echo "$cold $warm" >>"$work/runs2"
done
echo "   prompt ms, median of 5: without the cache $(cut -d' ' -f1 "$work/runs2" | median)," \
  "with it $(cut -d' ' -f2 "$work/runs2" | median);" \
  "median ratio $(awk '{printf "%.1f\n", $1 / $2}' "$work/runs2" | median)x"
"$gpt2" -m "$model" -p "$longer" -n 8 --temp 0 -t "$threads" >"$work/plain.txt"
"$gpt2" -m "$model" -p "$longer" -n 8 --temp 0 -t "$threads" --prompt-cache "$work/cache" >"$work/cached.txt"
cmp -s "$work/plain.txt" "$work/cached.txt" && echo "   output: identical with and without the cache" ||
  { echo "   output: DIFFERS with the cache"; exit 1; }
