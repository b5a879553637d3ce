#!/usr/bin/env bash
# Builds the `streamfarm` command of an earlier commit, once, for the upgrade test (a farm of old and
# new builds side by side: tests/StreamFarm.Faults.Tests, Upgrade_...), and prints the path of its
# streamfarm.dll. The build is kept in $STREAMFARM_BUILD_CACHE (default ~/.cache/streamfarm/builds),
# one directory per commit, and reused: building takes 1-2 minutes on 2 cores, running the test
# does not. scripts/setup.sh runs it, so ./test.sh never builds inside a test.
#   scripts/old-build.sh            the commit the upgrade test runs (UPGRADE_FROM below)
#   scripts/old-build.sh <commit>   any other commit with the same `node` options
set -euo pipefail
cd "$(dirname "$0")/.."

# The earlier build the upgrade test runs next to this one: main of 2026-12-05 (0c2de4a, 45 commits
# before the upgrade test came; after the last change of the gossip codec, e7fbea7, and before route
# HELLO's life=, the owners barrier and the per-address limits). docs/operations.md, "Upgrading a
# farm", says what may be mixed.
UPGRADE_FROM=0c2de4a9b8ba9742ff5be0ae77a34aff7dd58d85

# A shallow clone lacks the earlier commit: fetch the history once if a remote has it.
if ! git rev-parse --verify --quiet "${1:-$UPGRADE_FROM}^{commit}" >/dev/null && [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  git fetch --quiet --unshallow >&2 || true
fi
commit=$(git rev-parse --verify --quiet "${1:-$UPGRADE_FROM}^{commit}") || {
  echo "old-build: commit ${1:-$UPGRADE_FROM} is not in this clone (a shallow clone? git fetch --unshallow)" >&2
  exit 1
}
cache=${STREAMFARM_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamfarm/builds}
out="$cache/$commit"
if [ -f "$out/streamfarm.dll" ]; then
  echo "$out/streamfarm.dll"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive "$commit" | tar -x -C "$work"
echo "old-build: building streamfarm at ${commit:0:7} into $out (once)" >&2
# NodeExitCode=1: without the dashboard pages (no npm run for an old tree; the status page stands in).
dotnet build "$work/src/StreamFarm.Cli" -c Release -o "$work/out" -p:NodeExitCode=1 --nologo -v q -clp:"ErrorsOnly;NoSummary" >&2
mkdir -p "$cache"
rm -rf "$out"
mv "$work/out" "$out"
echo "$out/streamfarm.dll"
