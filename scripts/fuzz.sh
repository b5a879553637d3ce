#!/usr/bin/env bash
# Coverage-guided fuzzing of what reads untrusted bytes, with AFL++ and SharpFuzz:
#   scripts/fuzz.sh rttp|dns|gossip [SECONDS]    (default 600; findings in fuzz/findings/<target>)
# Installs afl++ (Debian) and the SharpFuzz instrumenter (a .NET tool, in .tools/) when missing,
# publishes fuzz/StreamFarm.Fuzz, instruments the assemblies under test, and runs afl-fuzz from
# the seed corpus in fuzz/corpus/<target>. A crash or hang is saved by AFL under
# fuzz/findings/<target>/default/{crashes,hangs}; replay one with
#   dotnet fuzz/out/streamfarm-fuzz.dll replay <target> <file>
# The bounded in-process smoke run (no AFL) is part of ./test.sh: tests/StreamFarm.Fuzz.Tests.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh rttp|dns|gossip [SECONDS]}"
seconds="${2:-600}"
case "$target" in
  rttp) dlls=(StreamFarm.Protocol.dll) ;;
  dns) dlls=(StreamFarm.Dns.dll) ;;
  gossip) dlls=(StreamFarm.Membership.dll) ;;
  *) echo "unknown target $target (rttp, dns, gossip)" >&2; exit 2 ;;
esac

if ! command -v afl-fuzz > /dev/null; then
  apt-get install -y -q afl++ > /dev/null
fi

if [ ! -x .tools/sharpfuzz ]; then
  dotnet tool install SharpFuzz.CommandLine --tool-path .tools > /dev/null
fi

out=fuzz/out
rm -rf "$out"
dotnet publish fuzz/StreamFarm.Fuzz -c Release -o "$out" --nologo -v q > /dev/null
for dll in "${dlls[@]}"; do
  .tools/sharpfuzz "$out/$dll" > /dev/null
done

mkdir -p "fuzz/findings/$target"
# The .NET runtime is not built with AFL: skip its binary check; forkserver start-up is slow, so a
# long init timeout; 1 s per input is a hang.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=60000 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1
afl-fuzz -i "fuzz/corpus/$target" -o "fuzz/findings/$target" -t 1000 -m none -V "$seconds" -- dotnet "$out/streamfarm-fuzz.dll" "$target"
stats="fuzz/findings/$target/default/fuzzer_stats"
crashes=$(awk -F: '/^saved_crashes/ {gsub(/ /, "", $2); print $2}' "$stats")
hangs=$(awk -F: '/^saved_hangs/ {gsub(/ /, "", $2); print $2}' "$stats")
execs=$(awk -F: '/^execs_done/ {gsub(/ /, "", $2); print $2}' "$stats")
echo "$target: $execs executions in $seconds s, $crashes crashes, $hangs hangs (fuzz/findings/$target)"
[ "$crashes" = "0" ] && [ "$hangs" = "0" ]
