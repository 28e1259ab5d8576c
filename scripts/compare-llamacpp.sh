#!/bin/sh
# compare-llamacpp.sh - gpt2 beside llama.cpp on this machine, on the same
# random weights, in one table.
#
# usage: scripts/compare-llamacpp.sh LLAMA_CPP_DIR
#
# LLAMA_CPP_DIR is a llama.cpp checkout with a build in it: this script
# builds nothing of llama.cpp's. It takes llama-bench from the build and
# the checkout's own gguf Python package (gguf-py; see PYTHON below) to
# write a GGUF of random GPT-2 weights in each dtype; gpt2-convert turns
# that same GGUF into a gpt2 model file, so both engines run the very same
# weights. Then llama-bench and gpt2-bench take turns, ROUNDS times, on
# the same tests (prefill pp512, decode tg128) and thread count, and one
# table gives the median tokens/s of each and their ratio.
#
# Environment:
#   BUILD_DIR   gpt2's CMake build folder (default: build; configured and
#               built here when missing, gpt2 only)
#   MODEL_DIR   where the models are made and kept (default: models/compare)
#   SHAPE       GPT-2 shape: 124M, 355M, 774M or 1558M (default: 124M)
#   DTYPES      among f32, f16, q8_0 (default: "f32 q8_0")
#   THREADS     threads for both engines (default: all CPUs)
#   ROUNDS      alternating rounds (default: 3)
#   REPS        repetitions inside each round, both engines (default: 3)
#   TOKENIZER   folder of vocab.json and merges.txt (default: ../shared/gpt2)
#   PYTHON      a Python 3 that can import the checkout's gguf-py (numpy, and
#               at some commits sentencepiece and PyYAML; default: python3)
#   GPT2_PREFETCH passed to gpt2-bench (nta, l2 or none: its prefetch hint; unset,
#               the CPU's), and named in the table's heading
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
llama=${1:-}

how_to_get() {
    cat >&2 <<'EOF'
compare-llamacpp.sh needs a llama.cpp checkout with llama-bench built, e.g.:

    git clone https://github.com/ggml-org/llama.cpp /tmp/llama.cpp
    cmake -S /tmp/llama.cpp -B /tmp/llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON
    cmake --build /tmp/llama.cpp/build --target llama-bench -j
    python3 -m pip install numpy sentencepiece pyyaml   # what gguf-py imports

then:   scripts/compare-llamacpp.sh /tmp/llama.cpp
EOF
}

if [ -z "$llama" ] || [ "$llama" = "-h" ] || [ "$llama" = "--help" ]; then
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    echo >&2
    how_to_get
    [ -n "$llama" ] && exit 0
    exit 2
fi
if [ ! -d "$llama" ]; then
    echo "compare-llamacpp.sh: $llama: no such folder" >&2
    how_to_get
    exit 1
fi
llama=$(cd "$llama" && pwd)
lbench=""
for c in "$llama/build/bin/llama-bench" "$llama/build/llama-bench" "$llama/llama-bench"; do
    if [ -x "$c" ]; then
        lbench=$c
        break
    fi
done
if [ -z "$lbench" ]; then
    echo "compare-llamacpp.sh: no llama-bench built in $llama (looked in build/bin)" >&2
    how_to_get
    exit 1
fi
if [ ! -d "$llama/gguf-py/gguf" ]; then
    echo "compare-llamacpp.sh: $llama has no gguf-py folder: is it a llama.cpp checkout?" >&2
    exit 1
fi
python=${PYTHON:-python3}
if ! why=$(PYTHONPATH="$llama/gguf-py" "$python" -c 'import numpy, gguf' 2>&1); then
    echo "compare-llamacpp.sh: $python cannot import llama.cpp's gguf-py: $(printf '%s\n' "$why" | tail -n 1)" >&2
    echo "    it needs numpy, and at some commits sentencepiece and PyYAML: python3 -m pip install numpy sentencepiece pyyaml" >&2
    exit 1
fi

build=${BUILD_DIR:-$root/build}
models=${MODEL_DIR:-$root/models/compare}
shape=${SHAPE:-124M}
dtypes=${DTYPES:-"f32 q8_0"}
threads=${THREADS:-$(nproc 2>/dev/null || echo 1)}
rounds=${ROUNDS:-3}
reps=${REPS:-3}
tokenizer=${TOKENIZER:-$root/../shared/gpt2}
for f in vocab.json merges.txt; do
    if [ ! -f "$tokenizer/$f" ]; then
        echo "compare-llamacpp.sh: no $tokenizer/$f (set TOKENIZER to a folder of vocab.json and merges.txt)" >&2
        exit 1
    fi
done

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGPT2_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target gpt2-bench --target gpt2-convert >/dev/null
mkdir -p "$models"

# A GGUF of random weights in GPT-2's shape, written with llama.cpp's own
# gguf-py as its convert_hf_to_gguf.py writes a GPT-2: matrices [out][in],
# the output head written out as a second copy of token_embd (llama.cpp
# wants an output.weight; gpt2-convert checks it equals token_embd and
# keeps one), <|endoftext|> a control token, the real tokenizer.
write_gguf() { # shape dtype file
    PYTHONPATH="$llama/gguf-py" "$python" - "$1" "$2" "$3" "$tokenizer" <<'EOF'
import json, sys
import numpy as np
import gguf

shape, dtype, out, tok = sys.argv[1:5]
n_layer, n_head, n_embd = {"124M": (12, 12, 768), "355M": (24, 16, 1024),
                           "774M": (36, 20, 1280), "1558M": (48, 25, 1600)}[shape]
n_ctx, n_vocab = 1024, 50257
vocab = json.load(open(f"{tok}/vocab.json", encoding="utf-8"))
tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
merges = [l for l in open(f"{tok}/merges.txt", encoding="utf-8").read().split("\n")
          if l and not l.startswith("#version")]
rng = np.random.default_rng(1)
w = gguf.GGUFWriter(out, "gpt2")
w.add_context_length(n_ctx)
w.add_embedding_length(n_embd)
w.add_feed_forward_length(4 * n_embd)
w.add_block_count(n_layer)
w.add_head_count(n_head)
w.add_layer_norm_eps(1e-5)
w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype])
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("gpt-2")
w.add_token_list(tokens)
w.add_token_types([gguf.TokenType.CONTROL if i == 50256 else gguf.TokenType.NORMAL for i in range(len(tokens))])
w.add_token_merges(merges)
w.add_bos_token_id(50256)
w.add_eos_token_id(50256)

def add(name, a, matrix):
    if matrix and dtype == "q8_0":
        w.add_tensor(name, gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0),
                     raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    elif matrix and dtype == "f16":
        w.add_tensor(name, a.astype(np.float16))
    else:
        w.add_tensor(name, a)

def tensor(name, shape, std, matrix):
    a = (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)
    add(name, a, matrix)
    return a

C = n_embd
wte = tensor("token_embd.weight", (n_vocab, C), 0.02, True)
tensor("position_embd.weight", (n_ctx, C), 0.01, False)
for l in range(n_layer):
    b = f"blk.{l}."
    tensor(b + "attn_norm.weight", (C,), 0.1, False)
    tensor(b + "attn_norm.bias", (C,), 0.02, False)
    tensor(b + "attn_qkv.weight", (3 * C, C), 0.02, True)
    tensor(b + "attn_qkv.bias", (3 * C,), 0.02, False)
    tensor(b + "attn_output.weight", (C, C), 0.02, True)
    tensor(b + "attn_output.bias", (C,), 0.02, False)
    tensor(b + "ffn_norm.weight", (C,), 0.1, False)
    tensor(b + "ffn_norm.bias", (C,), 0.02, False)
    tensor(b + "ffn_up.weight", (4 * C, C), 0.02, True)
    tensor(b + "ffn_up.bias", (4 * C,), 0.02, False)
    tensor(b + "ffn_down.weight", (C, 4 * C), 0.02, True)
    tensor(b + "ffn_down.bias", (C,), 0.02, False)
tensor("output_norm.weight", (C,), 0.1, False)
tensor("output_norm.bias", (C,), 0.02, False)
add("output.weight", wte, True)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
EOF
}

# The t/s of the pp and tg rows of a markdown table (gpt2-bench and
# llama-bench print the same style): "pp512 MEAN" per line.
rates() {
    awk -F'|' '/\| *(pp|tg)[0-9]+ *\|/ {
        t = $(NF - 2); v = $(NF - 1); gsub(/ /, "", t); split(v, a, " "); print t, a[1] }'
}

# Appends the pp512 and tg128 rates of $out/run.md to $out/ENGINE-DTYPE-TEST;
# a table with neither (another version's layout) stops the comparison.
parse() { # tool engine dtype
    rates <"$out/run.md" >"$out/rates"
    if ! grep -q '^pp512 ' "$out/rates" || ! grep -q '^tg128 ' "$out/rates"; then
        echo "compare-llamacpp.sh: no pp512 and tg128 rows in what $1 printed:" >&2
        head -n 5 "$out/run.md" >&2
        exit 1
    fi
    while read -r test v; do echo "$v" >>"$out/$2-$3-$test"; done <"$out/rates"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')
commit=$(git -C "$llama" rev-parse --short HEAD 2>/dev/null || echo "?")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for t in $dtypes; do
    gguf_file="$models/gpt2-$shape-$t.gguf"
    bin_file="$models/gpt2-$shape-$t.bin"
    if [ ! -f "$gguf_file" ]; then
        echo "making $gguf_file" >&2
        if ! write_gguf "$shape" "$t" "$gguf_file.tmp"; then
            rm -f "$gguf_file.tmp"
            echo "compare-llamacpp.sh: llama.cpp's gguf-py could not write $gguf_file" >&2
            exit 1
        fi
        mv "$gguf_file.tmp" "$gguf_file"
    fi
    if [ ! -f "$bin_file" ]; then
        echo "converting it to $bin_file" >&2
        "$build/gpt2-convert" "$gguf_file" "$bin_file" --dtype "$t" -q
    fi
    r=1
    while [ "$r" -le "$rounds" ]; do
        echo "round $r of $rounds, $t: gpt2-bench, then llama-bench" >&2
        if ! "$build/gpt2-bench" -t "$threads" -p 512 -n 128 -r "$reps" --batch 0 --no-e2e "$bin_file" \
            >"$out/run.md" 2>"$out/run.err"; then
            echo "compare-llamacpp.sh: gpt2-bench failed on $bin_file: $(tail -n 1 "$out/run.err")" >&2
            exit 1
        fi
        parse gpt2-bench gpt2 "$t"
        if ! "$lbench" -m "$gguf_file" -t "$threads" -p 512 -n 128 -r "$reps" -o md >"$out/run.md" 2>"$out/run.err"; then
            echo "compare-llamacpp.sh: llama-bench failed on $gguf_file: $(grep -m 1 -i error "$out/run.err" || tail -n 1 "$out/run.err")" >&2
            exit 1
        fi
        parse llama-bench llama "$t"
        r=$((r + 1))
    done
done

echo "# gpt2 beside llama.cpp $commit, $(date -u +%Y-%m-%dT%H:%M:%SZ), on ${cpu:-?}, $threads threads${GPT2_PREFETCH:+, GPT2_PREFETCH=$GPT2_PREFETCH}"
echo "# GPT-2 $shape shape, random weights, the same GGUF for both; median of $rounds alternating rounds of $reps"
echo
echo "| dtype | test  | gpt2 t/s | llama.cpp t/s | gpt2 / llama.cpp |"
echo "| ----- | ----- | -------: | ------------: | ---------------: |"
for t in $dtypes; do
    for test in pp512 tg128; do
        g=$(median <"$out/gpt2-$t-$test" 2>/dev/null || echo -)
        l=$(median <"$out/llama-$t-$test" 2>/dev/null || echo -)
        ratio=$(awk -v g="$g" -v l="$l" 'BEGIN { if (g + 0 > 0 && l + 0 > 0) printf "%.2fx", g / l; else print "-" }')
        printf "| %-5s | %-5s | %8s | %13s | %16s |\n" "$t" "$test" "$g" "$l" "$ratio"
    done
done
