#!/usr/bin/env bash
# Installs what StreamFarm's commands need on a fresh Debian machine with the .NET SDK.
#   scripts/setup.sh          the NuGet packages (enough to run the demo and the tests)
#   scripts/setup.sh --bench  also the Debian peers the side-by-side benchmarks run against
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (dotnet was not found on PATH)" >&2
  exit 1
fi

if [ "${1:-}" = "--bench" ]; then
  missing=()
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} (Debian packages)" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

dotnet restore StreamFarm.slnx --nologo -v q
