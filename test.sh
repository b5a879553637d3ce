#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
dotnet test StreamFarm.slnx -c Release --nologo "$@"
