#!/usr/bin/env bash
# Builds the streamfarm command as one native executable (.NET native AOT, trimmed, linux-x64):
#   scripts/native.sh            -> artifacts/native/streamfarm (rebuilt only when sources changed)
#   scripts/native.sh --force    rebuild anyway
# ./streamfarm runs it when it is there and current. Needs clang and zlib's headers (scripts/setup.sh
# installs them). Every trim or AOT warning fails the build except the ones listed and explained below.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/artifacts/native"
exe="$out/streamfarm"
rid="${STREAMFARM_RID:-linux-x64}"

stale() {
  [ ! -x "$exe" ] || [ -n "$(find "$here/src" "$here/clients/js/src" "$here/Directory.Build.props" "$here/Directory.Packages.props" \
    \( -name bin -o -name obj \) -prune -o \
    \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.ts' -o -name '*.html' -o -name '*.css' \) \
    -newer "$exe" -print -quit)" ]
}

if [ "${1:-}" != "--force" ] && ! stale; then
  exit 0
fi

echo "native: publishing $rid native AOT executable (about a minute)..." >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# StreamFarmNative (src/StreamFarm.Cli's project file) turns native AOT on and keeps IL3053 (an
# assembly's own warnings, summarised) a warning, so the check below can tell which assembly
# produced it; every other trim/AOT warning is an error as in every build.
if ! dotnet publish "$here/src/StreamFarm.Cli" -c Release -r "$rid" -p:StreamFarmNative=true \
    --nologo -o "$out.tmp" >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi

# Warnings accepted, each with its reason:
# - ARSoft.Tools.Net (dns-sync's RFC 2136 updates and TSIG): its EnumHelper<T> calls
#   Enum.GetValues(Type), which AOT cannot prove safe in general; for the enum types it is used with
#   (record types, classes, TSIG algorithms) the arrays are generated, and the native build's
#   dns-sync runs against a real Knot in the test suite (NativeBinaryTests).
allowed='ARSoft\.Tools\.Net\.dll : warning IL3053'
unexplained="$(grep -E 'warning [A-Z]+[0-9]+' "$log" | grep -Ev "$allowed" | sort -u || true)"
if [ -n "$unexplained" ]; then
  echo "native: warnings that are not explained in scripts/native.sh:" >&2
  echo "$unexplained" >&2
  exit 1
fi

# Only the executable ships: debug symbols stay next to it for crash analysis, the XML docs do not.
rm -rf "$out.tmp"/*.xml "$out.tmp"/*.pdb
mkdir -p "$out"
mv -f "$out.tmp"/* "$out"/
rmdir "$out.tmp"
touch "$exe" # built now, from the sources as they are now (the link step's files keep older times)
echo "native: $exe ($(du -h "$exe" | cut -f1))" >&2
