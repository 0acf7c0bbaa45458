#!/usr/bin/env bash
# Runs the WASI programs of a corpus (default: ../shared/corpus) through wazerox and
# through every peer runtime found on PATH (or given with RUNTIMES="name=/path ..."):
# wasmtime, wazero, and node (via node:wasi). Checks each output against the
# corpus's expected stdout, repeats each run REPEAT times (default 3), and prints
# the median wall time per program and runtime, and the ratio to wazerox.
# wasmtime runs with its on-disk compile cache off (`-C cache=n`, override with
# WASMTIME_FLAGS): wazerox has no code cache yet, so with the cache on the comparison
# would pit compile+run against run alone.
#
# usage: benches/compare-runtimes.sh [CORPUS_DIR]     (from the workspace root)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/../shared/corpus}
repeat=${REPEAT:-3}
wazerox=${WAZEROX:-$root/target/release/wazerox}
[ -x "$wazerox" ] || { echo "build wazerox first: cargo build --release -p wazerox-cli" >&2; exit 2; }

declare -A bins=([wazerox]=$wazerox)
order=(wazerox)
for peer in wasmtime wazero node; do
  if command -v "$peer" >/dev/null; then bins[$peer]=$(command -v "$peer"); order+=("$peer"); fi
done
for spec in ${RUNTIMES:-}; do bins[${spec%%=*}]=${spec#*=}; order+=("${spec%%=*}"); done

node_runner=$(mktemp --suffix=.mjs)
cat >"$node_runner" <<'JS'
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
const [file, ...args] = process.argv.slice(2);
const preopens = {}; const env = {};
for (const [k, v] of Object.entries(process.env)) if (k.startsWith('WZX_DIR_')) preopens[v.split('::')[1]] = v.split('::')[0];
for (const [k, v] of Object.entries(process.env)) if (k.startsWith('WZX_ENV_')) env[k.slice(8)] = v;
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env, preopens, returnOnExit: true });
const { instance } = await WebAssembly.instantiate(await readFile(file), wasi.getImportObject());
process.exitCode = wasi.start(instance);
JS

# command line for runtime $1 with dir $2, env $3, file $4, args...
cmdline() {
  local rt=$1 dir=$2 env=$3 file=$4; shift 4
  case $rt in
    wazero) echo "${bins[$rt]} run ${dir:+-mount $dir:/sandbox} ${env:+-env $env} $file $*" ;;
    node) echo "env ${dir:+WZX_DIR_0=$dir::/sandbox} ${env:+WZX_ENV_${env%%=*}=${env#*=}} ${bins[$rt]} --no-warnings $node_runner $file $*" ;;
    wasmtime) echo "${bins[$rt]} run ${WASMTIME_FLAGS--C cache=n} ${dir:+--dir $dir::/sandbox} ${env:+--env $env} $file $*" ;;
    *) echo "${bins[$rt]} run ${dir:+--dir $dir::/sandbox} ${env:+--env $env} $file $*" ;;
  esac
}

printf '%-18s' program; for rt in "${order[@]}"; do printf ' %12s' "$rt"; done; echo
while IFS=$'\t' read -r name wasm args stdin needs code; do
  [ "$name" = name ] && continue
  [[ $needs == *threads* || $needs == *wasix* ]] && { printf '%-18s (needs %s: wazerox only)\n' "$name" "$needs"; continue; }
  [ "$args" = - ] && args=""
  input=/dev/null; [ "$stdin" != - ] && input=$corpus/$stdin
  env=""; [[ $needs == *env:* ]] && env=${needs##*env:}
  printf '%-18s' "$name"
  base=""
  for rt in "${order[@]}"; do
    times=()
    for _ in $(seq "$repeat"); do
      dir=""; [[ $needs == *dir:* ]] && dir=$(mktemp -d)
      out=$(mktemp)
      start=$(date +%s.%N)
      (cd "$corpus" && eval "$(cmdline "$rt" "$dir" "$env" "$wasm" $args)" <"$input" >"$out" 2>/dev/null); rc=$?
      t=$(echo "$(date +%s.%N) - $start" | bc)
      if [ "$rc" != "$code" ] || ! cmp -s "$out" "$corpus/expected/$name.stdout"; then t=FAIL; fi
      rm -f "$out"; [ -n "$dir" ] && rm -rf "$dir"
      times+=("$t")
    done
    if printf '%s\n' "${times[@]}" | grep -q FAIL; then printf ' %12s' FAIL; continue; fi
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p")
    if [ -z "$base" ]; then base=$median; printf ' %11.2fs' "$median"
    else printf ' %6.2fs %4.2fx' "$median" "$(echo "$median / $base" | bc -l)"; fi
  done
  echo
done <"$corpus/MANIFEST.tsv"
rm -f "$node_runner"
