#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test suite, the
# real-process fault scenarios included (scripts/faults.sh runs them alone), then the command's suite
# again against the native executable, then the browser client's tests (scripts/js-tests.sh: Node
# and headless Chromium).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
dotnet test StreamFarm.slnx -c Release --nologo "$@"
# The native executable (scripts/native.sh, about a minute to build), then the command's own suite
# again against it: every command, real farms, failover, TLS, dns-sync against Knot.
scripts/native.sh
STREAMFARM_BINARY="$PWD/artifacts/native/streamfarm" dotnet test tests/StreamFarm.Cli.Tests -c Release --nologo --no-build "$@"
scripts/js-tests.sh
