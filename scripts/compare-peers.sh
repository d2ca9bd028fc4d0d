#!/bin/bash
# Interleaved speed comparison of thinkmesh with llama.cpp-family peers on the same machine.
#
#   scripts/compare-peers.sh [-r ROUNDS] [-m MODEL.gguf]... [NAME=/path/to/llama-bench[:extra args]]...
#
# Each round runs `thinkmesh bench` and then every peer's llama-bench on every model (pp128 and
# tg64, threads 1 and 2, 3 repetitions each), so that machine noise hits all programs alike;
# the table keeps each program's best tokens/s over the rounds (interference only slows a run
# down). Peers are built by you, outside this repository (see docs/kernels.md); e.g. with
# their checkouts beside this one:
#   scripts/compare-peers.sh -r 3 llama=../llama.cpp/build/bin/llama-bench \
#       "ik=../ik_llama.cpp/build/bin/llama-bench:-rtr 1"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="${THINKMESH_FIXTURES:-$root/../shared}"
thinkmesh="${THINKMESH_BIN:-$root/build/release/bin/thinkmesh}"
rounds=2
models=()
while getopts "r:m:" opt; do
  case $opt in
    r) rounds=$OPTARG ;;
    m) models+=("$OPTARG") ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ ${#models[@]} -eq 0 ]; then
  for t in Q8_0 Q4_0 Q4_K_M; do models+=("$fixtures/fixtures/models/tiny-llama-spm-$t.gguf"); done
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for round in $(seq "$rounds"); do
  for m in "${models[@]}"; do
    name=$(basename "$m" .gguf)
    "$thinkmesh" bench -m "$m" -p 128 -n 64 -t 1,2 -r 3 --json 2>/dev/null |
      python3 -c "
import json, sys
for r in json.load(sys.stdin):
    print('thinkmesh', '$name', r['threads'], r['test'], r['best_tokens_per_second'])" >>"$out"
    for peer in "$@"; do
      pname=${peer%%=*}
      spec=${peer#*=}
      bin=${spec%%:*}
      extra=""
      [ "$spec" != "$bin" ] && extra=${spec#*:}
      # shellcheck disable=SC2086
      "$bin" -m "$m" -p 128 -n 64 -t 1,2 -r 3 $extra -o json 2>/dev/null |
        python3 -c "
import json, sys
for r in json.load(sys.stdin):
    t = 'pp%d' % r['n_prompt'] if r['n_prompt'] else 'tg%d' % r['n_gen']
    print('$pname', '$name', r['n_threads'], t, max(r['samples_ts']))" >>"$out" || echo "$pname failed on $name" >&2
    done
  done
  echo "round $round done" >&2
done
python3 - "$out" <<'PY'
import sys, collections
best = collections.defaultdict(float)
progs = []
for line in open(sys.argv[1]):
    prog, model, threads, test, ts = line.split()
    if prog not in progs: progs.append(prog)
    key = (model, int(threads), test, prog)
    best[key] = max(best[key], float(ts))
cells = sorted({k[:3] for k in best}, key=lambda k: (k[0], k[2], k[1]))
peers = [p for p in progs if p != 'thinkmesh']
print('| model | test | threads | thinkmesh | ' + ' | '.join(peers) + ' | vs ' + ' | vs '.join(peers) + ' | vs best peer |')
print('|---|---|---:|---:|' + '---:|' * (2 * len(peers) + 1))
for model, threads, test in cells:
    ours = best[(model, threads, test, 'thinkmesh')]
    vals = [best[(model, threads, test, p)] for p in peers]
    ratios = ['%.2fx' % (ours / v) if v else '-' for v in vals]
    top = max(vals) if vals else 0
    print(f'| {model} | {test} | {threads} | {ours:.0f} | ' + ' | '.join('%.0f' % v for v in vals) +
          ' | ' + ' | '.join(ratios) + (' | %.2fx |' % (ours / top) if top else ' | - |'))
PY
