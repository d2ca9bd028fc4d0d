#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`, clang 14) and runs one of them.
#   scripts/fuzz.sh fuzz_gguf 600        run the GGUF reader fuzzer for 600 s
#   scripts/fuzz.sh fuzz_tokenizer 600   run the tokenizer fuzzer for 600 s
#   scripts/fuzz.sh fuzz_safetensors 600 run the safetensors reader fuzzer for 600 s
# The corpus lives in build/fuzz/corpus/<target>/ (never in the repository) and is seeded from
# the shared fixtures ($THINKMESH_FIXTURES, default ../shared): GGUF files for fuzz_gguf, texts
# for fuzz_tokenizer, small files written here for fuzz_safetensors. Crashes are written to build/fuzz/crashes/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET SECONDS}"
seconds="${2:-60}"
fixtures="${THINKMESH_FIXTURES:-../shared}"

[ -f build/fuzz/build.ninja ] || cmake --preset fuzz
cmake --build --preset fuzz --target "$target"

corpus="build/fuzz/corpus/$target"
crashes="build/fuzz/crashes/$target"
mkdir -p "$corpus" "$crashes"
if [ -z "$(ls -A "$corpus")" ] && [ -d "$fixtures" ]; then
  case "$target" in
    fuzz_gguf)
      # The first 64 KiB of every GGUF: its header, metadata and the start of its data.
      for f in $(find "$fixtures" -name '*.gguf'); do
        head -c 65536 "$f" > "$corpus/head-$(basename "$f")"
      done ;;
    fuzz_tokenizer)
      i=0
      for f in "$fixtures"/models/tokenizers/llama.cpp-vocab/*.inp "$fixtures"/eval/*.txt; do
        [ -f "$f" ] || continue
        for sel in 0 1 2 3 4 5; do head -c 4096 "$f" | { printf "\\x$(printf %02x $((sel + 128 * (i % 2))))"; cat; } > "$corpus/seed-$i-$sel"; done
        i=$((i + 1))
      done ;;
    fuzz_safetensors)
      # u64 header length | JSON header | data (the fixtures hold no safetensors files).
      st_seed() {
        local len=${#1}
        printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((len & 255)) \
          $(((len >> 8) & 255)) $(((len >> 16) & 255)) $(((len >> 24) & 255)))" > "$corpus/$3"
        printf '%s' "$1" >> "$corpus/$3"
        head -c "$2" /dev/urandom >> "$corpus/$3"
      }
      st_seed '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8 one
      st_seed '{"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[12,18]}}' 18 two
      st_seed '{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"U8","shape":[0,4],"data_offsets":[8,8]}}' 8 scalar ;;
    fuzz_hessian)
      # A real Hessian file: one short chunk of calibration on stories260K.
      bin="build/release/bin/thinkmesh"
      if [ -x "$bin" ]; then
        "$bin" calibrate -m "$fixtures/models/stories260K/stories260K.gguf" \
          -f "$fixtures/eval/prose.txt" -o "$corpus/.imatrix.dat" --ctx 16 --chunks 1 \
          --hessian "$corpus/seed-hessian.gguf" >/dev/null 2>&1 || true
        rm -f "$corpus/.imatrix.dat"
      fi ;;
  esac
fi
export THINKMESH_FIXTURES="$fixtures"
max_len=131072
[ "$target" = fuzz_tokenizer ] && max_len=16384
"build/fuzz/fuzz/$target" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 \
  -max_len="$max_len" -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 | tee "build/fuzz/$target.log" | grep -E '^(#[0-9]+ +(DONE|INITED)|stat::|==[0-9]+==ERROR|SUMMARY)' || true
grep -q 'ERROR' "build/fuzz/$target.log" && { echo "fuzz: $target found a problem (see build/fuzz/$target.log, $crashes)"; exit 1; }
echo "fuzz: $target ran clean for ${seconds}s"
