#!/usr/bin/env bash
# The test command: installs what is missing, builds the native executable, then builds everything
# and runs every test suite, then the browser client's tests (scripts/js-tests.sh: Node and
# headless Chromium).
#
# The suites that start real `streamfarm` processes (the command's own: every command, real farms,
# failover, TLS, dns-sync against Knot; and the fault scenarios: kill -9, SIGSTOP, partitions) run
# the native executable, which is what `./streamfarm` and the release give users. The .NET build of
# the command (what `dotnet tool install` gives) runs the command suite's smoke set afterwards:
# every command once and a real farm. Running the whole command suite twice cost four minutes of
# a suite that is meant to stay well under fifteen.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
scripts/native.sh
STREAMFARM_BINARY="$PWD/artifacts/native/streamfarm" dotnet test StreamFarm.slnx -c Release --nologo "$@"
dotnet test tests/StreamFarm.Cli.Tests -c Release --nologo --no-build --filter "FullyQualifiedName~CommandTests|FullyQualifiedName~FarmProcessTests" "$@"
scripts/js-tests.sh
