#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test suite, the
# real-process fault scenarios included (about 3 of its 7 minutes; scripts/faults.sh runs them alone),
# then the browser client's tests (scripts/js-tests.sh: Node and headless Chromium, about a minute).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
dotnet test StreamFarm.slnx -c Release --nologo "$@"
scripts/js-tests.sh
