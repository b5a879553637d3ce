#!/usr/bin/env bash
# The browser client's tests (clients/js): unit tests on an in-memory farm, the client against a
# real local farm of `streamfarm node` processes, and the pages in Debian's Chromium (Playwright)
# against a real 3-server farm. ./test.sh runs this after the .NET suites; scripts/setup.sh installs
# what it needs. Artifacts (a dashboard screenshot, node logs) go to clients/js/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/StreamFarm.Cli -c Release --nologo -v q >/dev/null
cd clients/js
rm -rf artifacts/logs
node build.mjs
node --experimental-websocket --test test/unit/
node --experimental-websocket --test --test-concurrency=1 test/farm/
if [ -d test/browser ]; then
  node --experimental-websocket --test --test-concurrency=1 test/browser/
fi
