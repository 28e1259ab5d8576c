#!/usr/bin/env bash
# check-library.sh - builds libgpt2 static and shared, installs each into a
# temporary prefix, builds examples/complete.c against the installed copy
# twice (pkg-config, then CMake's find_package), runs both on a model, and
# checks the symbols the libraries define:
#   - libgpt2.so exports exactly the GPT2_API functions of include/gpt2.h;
#   - every global symbol of libgpt2.a starts with gpt2_.
#
# usage: scripts/check-library.sh MODEL_FILE
#   or:  scripts/check-library.sh HF_FOLDER TOKENIZER_FOLDER
#   e.g. scripts/check-library.sh ../shared/reference/tiny ../shared/gpt2
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
model_in=${1:?usage: scripts/check-library.sh MODEL_FILE | HF_FOLDER TOKENIZER_FOLDER}
tokenizer_dir=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check-library: $*" >&2; exit 1; }

# The public functions, as gpt2.h declares them.
grep -oE 'GPT2_API [^(]*\bgpt2_[a-z0-9_]+\(' include/gpt2.h | grep -oE 'gpt2_[a-z0-9_]+' | sort -u >"$work/api.txt"
[ -s "$work/api.txt" ] || fail "found no GPT2_API function in include/gpt2.h"

for kind in static shared; do
  shared=OFF; [ "$kind" = shared ] && shared=ON
  build="$work/build-$kind" prefix="$work/prefix-$kind"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGPT2_TESTS=OFF -DBUILD_SHARED_LIBS=$shared >/dev/null
  cmake --build "$build" -j"$(nproc)" >/dev/null
  cmake --install "$build" --prefix "$prefix" >/dev/null
  libdir=$(dirname "$(find "$prefix" -name "libgpt2.a" -o -name "libgpt2.so" | head -1)")
  [ -f "$prefix/include/gpt2.h" ] || fail "$kind: gpt2.h not installed"
  [ -f "$libdir/pkgconfig/gpt2.pc" ] || fail "$kind: gpt2.pc not installed"
  [ -f "$libdir/cmake/gpt2/gpt2Config.cmake" ] || fail "$kind: the CMake package is not installed"

  if [ "$kind" = shared ]; then
    nm -D --defined-only "$libdir/libgpt2.so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$work/exported.txt"
    diff -u "$work/api.txt" "$work/exported.txt" >"$work/diff.txt" ||
      { cat "$work/diff.txt" >&2; fail "libgpt2.so exports other symbols than gpt2.h's functions (diff above)"; }
  else
    nm -g --defined-only "$libdir/libgpt2.a" | awk 'NF == 3 {print $3}' | sort -u >"$work/globals.txt"
    if grep -v '^gpt2_' "$work/globals.txt" >"$work/bad.txt"; then
      cat "$work/bad.txt" >&2; fail "libgpt2.a defines global symbols without the gpt2_ prefix (above)"
    fi
  fi

  if [ -d "$model_in" ]; then
    model="$work/model.bin"
    [ -f "$model" ] || "$build/gpt2-convert" "$model_in" "$model" ${tokenizer_dir:+--tokenizer "$tokenizer_dir"} >/dev/null 2>&1
  else
    model=$model_in
  fi
  # With pkg-config.
  PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --exists gpt2 || fail "$kind: pkg-config does not find gpt2"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror examples/complete.c -o "$work/complete-pc-$kind" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs gpt2)
  # With find_package.
  cmake -S examples -B "$work/example-$kind" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null
  cmake --build "$work/example-$kind" >/dev/null
  for exe in "$work/complete-pc-$kind" "$work/example-$kind/complete"; do
    out=$(LD_LIBRARY_PATH="$libdir" "$exe" "$model" "Hello, my name is" 8) || fail "$kind: $exe failed"
    grep -q "libgpt2 $(sed -n 's/^project(gpt2 VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)" <<<"$out" ||
      fail "$kind: unexpected output from $exe: $out"
    if [ "$kind" = shared ]; then
      # ldd's whole output first: `ldd | grep -q` under pipefail fails
      # whenever grep stops reading before ldd has written everything.
      deps=$(LD_LIBRARY_PATH="$libdir" ldd "$exe") || fail "$kind: ldd $exe failed"
      grep -q "$libdir/libgpt2.so" <<<"$deps" || fail "$kind: $exe does not use the installed libgpt2.so"
    fi
  done
  echo "check-library: $kind libgpt2: installed, example built with pkg-config and find_package, ran; symbols clean"
done
