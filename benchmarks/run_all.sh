#!/usr/bin/env bash
# Runs every benchmark in its full configuration, one after another, on an otherwise quiet machine.
# Each writes its Markdown table (with command, machine and date) to benchmarks/results/NAME.md;
# BENCHMARKS.md quotes those tables. Takes about 25 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SURGE=.venv/bin/surge
out=benchmarks/results
mkdir -p "$out"
only="${1:-}"

run() {
  local name=$1; shift
  if [ -n "$only" ] && [ "$only" != "$name" ]; then return; fi
  echo "== $name: $*" >&2
  local start=$SECONDS
  if "$@" > "$out/$name.md.tmp" 2> "$out/$name.log"; then
    mv "$out/$name.md.tmp" "$out/$name.md"
  else
    echo "   failed (see $out/$name.log)" >&2
    cat "$out/$name.md.tmp" >> "$out/$name.log"; rm -f "$out/$name.md.tmp"
  fi
  echo "   $((SECONDS - start)) s" >&2
}

run server    $PY benchmarks/bench_server.py --duration 5 --repeat 3
run client    $PY benchmarks/bench_client.py -n 100000 -c 100 --rounds 3 --only wrk,surge-uvloop,surge-asyncio,aiohttp,bare-uvloop,bare-asyncio
run fetch     $PY benchmarks/bench_fetch.py --requests 100000 --connections 100 --big-urls 1000000 --rounds 9
run crawl     $PY benchmarks/bench_crawl.py --rounds 3
run amap      $PY benchmarks/bench_amap.py -n 100000 -c 100 --repeat 5 --loop uvloop
run ratelimit $PY benchmarks/bench_ratelimit.py -n 2000000 --repeat 5 --loop uvloop
run stats     $PY benchmarks/bench_stats.py --repeat 5
run python-path $PY benchmarks/bench_python_path.py -n 100000 --repeat 7
run loops     $SURGE bench loops
run steps     $SURGE bench steps
run http-nginx $SURGE bench http --target nginx -n 100000
run http-embedded $SURGE bench http -n 100000
