#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test suite (the
# real-process fault scenarios have their own command, scripts/faults.sh).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
# The real-process fault scenarios run on their own (scripts/faults.sh): they still fail now and
# then (docs/architecture.md, "What is not promised"; issue 10's closing note).
dotnet test StreamFarm.slnx -c Release --nologo --filter "Category!=Faults" "$@"
