#!/usr/bin/env bash
# The fault-injection suite against real processes (kill -9, SIGSTOP, nftables partitions, drain, and
# a farm across network-namespace hosts with unbound and a stepped clock), judged by a history
# checker: about 3 minutes. FAULTS_SEED=<n> replays a scenario's choices. Needs nft (scripts/setup.sh
# installs it) and root for the partition scenario; root, ip, unbound and faketime for the hosts one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dotnet test tests/StreamFarm.Faults.Tests -c Release --nologo "$@"
