#!/usr/bin/env bash
# test_download_model.sh - scripts/download-model.sh against a fake hub.
#
# No network: tests/fake_curl.sh is put first on PATH as "curl" and serves
# repositories made here under $FAKE_HUB (see that file for what it answers).
# Checked: files that match the hash the hub announces are kept (Git LFS
# SHA-256, git blob SHA-1), files that do not are deleted and named in a
# one-line error, a file without an announced hash is refused, absent files
# (404) are skipped, sharded checkpoints fetch the shards their index names,
# a cut-off download leaves no file under its final name and resumes, the
# short names map to the published repositories, and a downloaded tiny GPT-2
# converts with gpt2-convert ($GPT2_BUILD_DIR, default build/).
set -u

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$src/scripts/download-model.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/test_download_model.XXXXXX")"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/bin" "$work/hub/repos"
cp "$src/tests/fake_curl.sh" "$work/bin/curl"
chmod +x "$work/bin/curl"
export PATH="$work/bin:$PATH"
export FAKE_HUB="$work/hub"
unset HF_TOKEN HF_ENDPOINT GPT2_CONVERT
hub="$FAKE_HUB/repos"

failures=0 checks=0
pass() { checks=$((checks + 1)); }
fail() {
    checks=$((checks + 1)) failures=$((failures + 1))
    echo "FAIL: $case_name: $*" >&2
}

# again NAME ARGS...: runs the script once more in the folder $d, as case
# NAME; sets rc and err (its standard error).
again() {
    case_name="$1"
    shift
    : >"$FAKE_HUB/log"
    rc=0
    (cd "$d" && "$script" "$@") >"$d.out" 2>"$d.err" || rc=$?
    err="$(cat "$d.err")"
}

# dl NAME ARGS...: the same in a new folder $work/run/NAME, which d names.
dl() {
    d="$work/run/$1"
    mkdir -p "$d"
    again "$@"
}

expect_rc() {
    if [ "$rc" = "$1" ]; then pass; else fail "exit status $rc, expected $1; stderr:"$'\n'"$err"; fi
}
# The failure is one line on standard error, the last, matching $1 (an ERE).
expect_error() {
    local last n
    last="$(tail -n 1 "$d.err")"
    n="$(grep -c '^download-model.sh:' "$d.err")"
    if [ "$n" = 1 ] && [[ "$last" == download-model.sh:* ]] && printf '%s\n' "$last" | grep -Eq -- "$1"; then
        pass
    else
        fail "expected one error line matching /$1/; stderr:"$'\n'"$err"
    fi
}
expect_same() { # FILE SOURCE
    if cmp -s "$1" "$2"; then pass; else fail "$1 is not a copy of $2"; fi
}
expect_absent() {
    if [ ! -e "$1" ]; then pass; else fail "$1 should not be there"; fi
}
expect_no_parts() {
    if [ -z "$(find "$d" -name '*.part')" ]; then pass; else fail "a .part file was left: $(find "$d" -name '*.part')"; fi
}
expect_log() { # ERE
    if grep -Eq -- "$1" "$FAKE_HUB/log"; then pass; else fail "no call matching /$1/ in:"$'\n'"$(cat "$FAKE_HUB/log")"; fi
}
expect_no_log() {
    if ! grep -Eq -- "$1" "$FAKE_HUB/log"; then pass; else fail "a call matches /$1/:"$'\n'"$(cat "$FAKE_HUB/log")"; fi
}

# mkrepo OWNER/NAME [weights...]: a GPT-2-like repository with random
# weights, config.json, vocab.json and merges.txt.
mkrepo() {
    local r="$hub/$1" w
    shift
    mkdir -p "$r/.meta"
    printf '{\n  "model_type": "gpt2",\n  "n_layer": 2\n}\n' >"$r/config.json"
    printf '{"hello": 0, "world": 1}\n' >"$r/vocab.json"
    printf '#version: 0.2\nh e\n' >"$r/merges.txt"
    for w in "$@"; do head -c 70000 /dev/urandom >"$r/$w"; done
}
sha256() { sha256sum <"$1" | cut -c1-64; }

# ---- a plain repository: LFS SHA-256 and git blob SHA-1 both verify ----------
mkrepo test/plain model.safetensors
dl plain test/plain --no-convert
out="$d/models/hf/test--plain"
expect_rc 0
for f in config.json vocab.json merges.txt model.safetensors; do expect_same "$out/$f" "$hub/test/plain/$f"; done
expect_absent "$out/tokenizer.json"
expect_absent "$out/added_tokens.json" # a 404: not there, not an error
expect_no_parts
expect_log "^curl -sSI .*https://huggingface.co/test/plain/resolve/main/config.json$"
# Everything after config.json comes from the commit it announced.
commit=c0ffee0000000000000000000000000000000001
expect_log "^curl -sSI .*https://huggingface.co/test/plain/resolve/$commit/model.safetensors$"
expect_log "-o models/hf/test--plain/model.safetensors.[0-9a-f]{16}.part https://huggingface.co/test/plain/resolve/$commit/model.safetensors"
expect_absent "$d/models/plain.bin"

# Run again: every file is there and verifies, nothing is downloaded.
again plain-again test/plain --no-convert
expect_rc 0
expect_no_log " -o "
if [ "$(grep -c '^have ' "$d.err")" = 4 ]; then pass; else fail "expected 4 files kept:"$'\n'"$err"; fi

# A file already there that does not verify is downloaded again.
printf 'x' >>"$out/vocab.json"
again plain-damaged test/plain --no-convert
expect_rc 0
expect_same "$out/vocab.json" "$hub/test/plain/vocab.json"
expect_log "-o models/hf/test--plain/vocab.json"

# ---- an LFS file whose bytes do not match its SHA-256 --------------------------
mkrepo test/badlfs model.safetensors
head -c 70000 /dev/urandom >"$hub/test/badlfs/.meta/model.safetensors.served"
dl badlfs test/badlfs --no-convert
expect_rc 1
expect_error "^download-model.sh: model.safetensors: SHA-256 mismatch: expected $(sha256 "$hub/test/badlfs/model.safetensors") \(announced by the hub\), got $(sha256 "$hub/test/badlfs/.meta/model.safetensors.served");"
expect_absent "$d/models/hf/test--badlfs/model.safetensors"
expect_no_parts

# The hub announcing a wrong SHA-256 is the same failure.
mkrepo test/wronglfs model.safetensors
echo '"0000000000000000000000000000000000000000000000000000000000000000"' >"$hub/test/wronglfs/.meta/model.safetensors.etag"
dl wronglfs test/wronglfs --no-convert
expect_rc 1
expect_error "model.safetensors: SHA-256 mismatch: expected 0{64} \(announced by the hub\), got $(sha256 "$hub/test/wronglfs/model.safetensors")"
expect_absent "$d/models/hf/test--wronglfs/model.safetensors"
expect_no_parts

# A weak, upper-case X-Linked-Etag is the same hash.
mkrepo test/weaketag model.safetensors
printf 'W/"%s"\n' "$(sha256 "$hub/test/weaketag/model.safetensors" | tr a-f A-F)" >"$hub/test/weaketag/.meta/model.safetensors.etag"
dl weaketag test/weaketag --no-convert
expect_rc 0
expect_same "$d/models/hf/test--weaketag/model.safetensors" "$hub/test/weaketag/model.safetensors"

# ---- a small file whose bytes do not match its git blob SHA-1 ------------------
mkrepo test/badblob model.safetensors
printf '{"hello": 0, "world": 2}\n' >"$hub/test/badblob/.meta/vocab.json.served"
want="$( { printf 'blob %s\0' "$(wc -c <"$hub/test/badblob/vocab.json")"; cat "$hub/test/badblob/vocab.json"; } | sha1sum | cut -c1-40)"
dl badblob test/badblob --no-convert
expect_rc 1
expect_error "^download-model.sh: vocab.json: git blob SHA-1 mismatch: expected $want \(announced by the hub\), got [0-9a-f]{40};"
expect_absent "$d/models/hf/test--badblob/vocab.json"
expect_absent "$d/models/hf/test--badblob/model.safetensors" # the small files come first
expect_no_parts

# ---- no hash announced: refused before anything is downloaded ------------------
mkrepo test/nohash model.safetensors
: >"$hub/test/nohash/.meta/merges.txt.noetag"
dl nohash test/nohash --no-convert
expect_rc 1
expect_error "^download-model.sh: merges.txt: the hub announced no SHA-256 .* or git blob SHA-1 .*refusing it$"
expect_no_log " -o "
expect_absent "$d/models/hf/test--nohash/merges.txt"

mkrepo test/nohashlfs model.safetensors
: >"$hub/test/nohashlfs/.meta/model.safetensors.noetag"
dl nohashlfs test/nohashlfs --no-convert
expect_rc 1
expect_error "model.safetensors: the hub announced no SHA-256"
expect_no_log " -o "

mkrepo test/oddhash model.safetensors
echo '"not-a-hash"' >"$hub/test/oddhash/.meta/config.json.etag"
dl oddhash test/oddhash --no-convert
expect_rc 1
expect_error "config.json: the hub announced no SHA-256"

# ---- sharded checkpoints, tokenizer.json, optional files -----------------------
mkrepo test/sharded model-00001-of-00002.safetensors model-00002-of-00002.safetensors
rm "$hub/test/sharded/vocab.json" "$hub/test/sharded/merges.txt"
printf '{"model": {"vocab": {}, "merges": []}}\n' >"$hub/test/sharded/tokenizer.json"
printf '{"<|pad|>": 2}\n' >"$hub/test/sharded/added_tokens.json"
cat >"$hub/test/sharded/model.safetensors.index.json" <<'EOF'
{
  "metadata": {
    "total_size": 140000
  },
  "weight_map": {
    "h.0.attn.c_attn.weight": "model-00001-of-00002.safetensors",
    "h.1.attn.c_attn.weight": "model-00002-of-00002.safetensors",
    "wte.weight": "model-00001-of-00002.safetensors"
  }
}
EOF
dl sharded test/sharded --no-convert
out="$d/models/hf/test--sharded"
expect_rc 0
for f in config.json tokenizer.json added_tokens.json model.safetensors.index.json \
    model-00001-of-00002.safetensors model-00002-of-00002.safetensors; do
    expect_same "$out/$f" "$hub/test/sharded/$f"
done
expect_absent "$out/vocab.json"
expect_absent "$out/model.safetensors"
expect_no_parts
if [ "$(grep -c ' -o .*model-00001-of-00002.safetensors' "$FAKE_HUB/log")" = 1 ]; then pass; else fail "shard 1 downloaded other than once"; fi

# The same folder, now from a repository with one pytorch_model.bin: the
# files of the sharded one that this one lacks are removed, so that
# gpt2-convert cannot take them.
mkrepo test/torch pytorch_model.bin
mkdir -p "$d/models/hf/test--torch"
cp "$out"/* "$d/models/hf/test--torch/"
again torch test/torch --no-convert
out="$d/models/hf/test--torch"
expect_rc 0
expect_same "$out/pytorch_model.bin" "$hub/test/torch/pytorch_model.bin"
expect_same "$out/vocab.json" "$hub/test/torch/vocab.json"
for f in model.safetensors.index.json tokenizer.json added_tokens.json; do expect_absent "$out/$f"; done

mkrepo test/torchsharded pytorch_model-00001-of-00002.bin pytorch_model-00002-of-00002.bin
printf '{"metadata": {"total_size": 1}, "weight_map": {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}}' \
    >"$hub/test/torchsharded/pytorch_model.bin.index.json"
dl torchsharded test/torchsharded --no-convert
expect_rc 0
expect_same "$d/models/hf/test--torchsharded/pytorch_model-00002-of-00002.bin" "$hub/test/torchsharded/pytorch_model-00002-of-00002.bin"

# A shard that fails its hash fails the whole download.
mkrepo test/badshard model-00001-of-00002.safetensors model-00002-of-00002.safetensors
cp "$hub/test/sharded/model.safetensors.index.json" "$hub/test/badshard/"
head -c 100 /dev/urandom >"$hub/test/badshard/.meta/model-00002-of-00002.safetensors.served"
dl badshard test/badshard --no-convert
expect_rc 1
expect_error "^download-model.sh: model-00002-of-00002.safetensors: SHA-256 mismatch"
expect_absent "$d/models/hf/test--badshard/model-00002-of-00002.safetensors"
expect_no_parts

# An index that names a shard outside its folder, or one the repository lacks.
mkrepo test/evilindex
printf '{"weight_map": {"a": "../../../etc/x.safetensors"}}' >"$hub/test/evilindex/model.safetensors.index.json"
dl evilindex test/evilindex --no-convert
expect_rc 1
expect_error "names a shard that is not a plain .safetensors file name: \.\./\.\./\.\./etc/x\.safetensors$"
expect_no_log "etc/x"

mkrepo test/lostshard
printf '{"weight_map": {"a": "model-00001-of-00009.safetensors"}}' >"$hub/test/lostshard/model.safetensors.index.json"
dl lostshard test/lostshard --no-convert
expect_rc 1
expect_error "model.safetensors.index.json names model-00001-of-00009.safetensors, which test/lostshard does not have$"

# ---- a cut-off download leaves no file under its name, and resumes ----------
mkrepo test/cut model.safetensors
echo 30000 >"$hub/test/cut/.meta/model.safetensors.cut"
dl cut test/cut --no-convert
expect_rc 1
expect_error "^download-model.sh: downloading .*model.safetensors failed \(curl exit status 18\); run again to resume$"
expect_absent "$d/models/hf/test--cut/model.safetensors"
parts="$(find "$d" -name 'model.safetensors.*.part')"
if [ -n "$parts" ] && [ "$(wc -c <"$parts")" = 30000 ]; then pass; else fail "expected a 30000-byte .part, got '$parts'"; fi
rm "$hub/test/cut/.meta/model.safetensors.cut"
again cut-resumed test/cut --no-convert
expect_rc 0
expect_log "^resume from 30000$"
expect_same "$d/models/hf/test--cut/model.safetensors" "$hub/test/cut/model.safetensors"
expect_no_parts

# ---- what is not a GPT-2, not there, or misnamed -------------------------------
mkrepo test/llama model.safetensors
printf '{"model_type": "llama"}\n' >"$hub/test/llama/config.json"
dl llama test/llama --no-convert
expect_rc 1
expect_error "test/llama is a \"llama\" model \(config.json's model_type\), not GPT-2"
expect_no_log " -o .*model.safetensors"

mkrepo test/noweights
dl noweights test/noweights --no-convert
expect_rc 1
expect_error "test/noweights has none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json$"

mkrepo test/notokenizer model.safetensors
rm "$hub/test/notokenizer/merges.txt"
dl notokenizer test/notokenizer --no-convert
expect_rc 1
expect_error "has neither vocab.json and merges.txt nor tokenizer.json$"

dl missing test/missing --no-convert
expect_rc 1
expect_error "test/missing: no such repository on https://huggingface.co, or it is private or gated: set HF_TOKEN"

mkrepo test/revs model.safetensors
dl norev test/revs --revision nosuchrev --no-convert
expect_rc 1
expect_error "test/revs has no revision nosuchrev$"

dl rev test/revs --revision refs/pr/1 --no-convert
expect_rc 0
expect_log "^curl -sSI .*https://huggingface.co/test/revs/resolve/refs%2Fpr%2F1/config.json$"

dl usage-none
expect_rc 2
expect_error "missing MODEL"
dl usage-bad 'test/../x' --no-convert
expect_rc 2
expect_error "not a Hugging Face repository id"
dl usage-size 125M
expect_rc 2
expect_error "unknown MODEL: 125M"

# ---- a renamed repository (relative redirect), the short names, a token -------
mkrepo openai-community/gpt2 model.safetensors
echo openai-community/gpt2 >"$hub/test/oldname"
dl moved test/oldname --no-convert
expect_rc 0
expect_same "$d/models/hf/test--oldname/model.safetensors" "$hub/openai-community/gpt2/model.safetensors"

for alias in 124M gpt2 openai-community/gpt2; do
    dl "short-${alias//\//-}" "$alias" --no-convert
    expect_rc 0
    expect_same "$d/models/hf/gpt2-124M/model.safetensors" "$hub/openai-community/gpt2/model.safetensors"
done
mkrepo distilbert/distilgpt2 model.safetensors
dl short-distil distil --no-convert
expect_rc 0
expect_same "$d/models/hf/distilgpt2/model.safetensors" "$hub/distilbert/distilgpt2/model.safetensors"

export HF_TOKEN=hf_SeCrEt123
dl token test/plain --no-convert
unset HF_TOKEN
expect_rc 0
expect_log '^config: header = "Authorization: Bearer hf_SeCrEt123"$'
expect_no_log "^curl .*hf_SeCrEt123" # never in curl's arguments

# ---- end to end: the tiny reference GPT-2, downloaded and converted ------------
shared="${GPT2_SHARED:-$src/../shared}"
build="$(cd "${GPT2_BUILD_DIR:-$src/build}" 2>/dev/null && pwd)" || build="${GPT2_BUILD_DIR:-$src/build}"
if [ ! -d "$shared/reference/tiny" ] && [ -z "${GPT2_SHARED:-}" ]; then
    echo "SKIPPED (end to end): the shared test data is missing ($shared); set GPT2_SHARED to its folder" >&2
else
    mkdir -p "$hub/test/tiny" "$hub/test/tinysharded"
    cp "$shared/reference/tiny/config.json" "$shared/reference/tiny/model.safetensors" \
        "$shared/gpt2/vocab.json" "$shared/gpt2/merges.txt" "$hub/test/tiny/"
    cp "$shared/reference/formats/tiny/safetensors-sharded/"* "$hub/test/tinysharded/"
    export GPT2_CONVERT="$build/gpt2-convert"
    dl tiny test/tiny --dtype f16
    expect_rc 0
    if [ -s "$d/models/tiny.bin" ]; then pass; else fail "models/tiny.bin was not written"; fi
    dl tinysharded test/tinysharded -o out/tiny.bin
    expect_rc 0
    if [ -s "$d/out/tiny.bin" ]; then pass; else fail "out/tiny.bin was not written"; fi
    unset GPT2_CONVERT
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures of $checks checks failed" >&2
    exit 1
fi
echo "all $checks checks passed"
