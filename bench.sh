#!/usr/bin/env bash
# The benchmarks against peers (nats-server, knot, serf), kept out of the product binary:
#   ./bench.sh --help            every benchmark
#   ./bench.sh fanout            fan-out next to nats-server
#   ./bench.sh failover --servers 3 --runs 20
# Builds the benchmark program and the product (whose servers it starts) when the sources changed.
# scripts/setup.sh --bench installs the peers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dll="$here/bench/StreamFarm.BenchCli/bin/Release/net10.0/streamfarm-bench.dll"
server="$here/src/StreamFarm.Cli/bin/Release/net10.0/streamfarm.dll"
if [ ! -f "$dll" ] || [ ! -f "$server" ] || [ -n "$(find "$here/src" "$here/bench/StreamFarm.Bench" "$here/bench/StreamFarm.BenchCli" \( -name '*.cs' -o -name '*.csproj' \) -newer "$dll" -print -quit)" ]; then
  echo "bench: building (first run or sources changed)..." >&2
  if ! log=$(dotnet build "$here/bench/StreamFarm.BenchCli" -c Release --nologo -v q 2>&1); then
    echo "$log" >&2
    exit 1
  fi
fi
exec dotnet "$dll" "$@"
