#!/usr/bin/env bash
# Installs what StreamFarm's commands need on a fresh Debian machine with the .NET SDK.
#   scripts/setup.sh          NuGet packages, the Debian tools the tests use (dig, kdig, knotd;
#                             nft, for the partition test of routes; curl and openssl for TLS;
#                             node, npm and chromium for the browser client and its tests; clang
#                             and zlib1g-dev for the native executable; docker-registry, podman
#                             and runc for the container image's tests; ip, unbound and faketime
#                             for the multi-host fault scenario), the browser client's npm
#                             packages, and an earlier commit's build for the upgrade test
#                             (scripts/old-build.sh, cached)
#   scripts/setup.sh --bench  also the peers the side-by-side benchmarks run against
#                             (nats-server, serf, dnsperf)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (dotnet was not found on PATH)" >&2
  exit 1
fi

# command to look for, Debian package that provides it
need=("dig dnsutils" "kdig knot-dnsutils" "knotd knot" "nft nftables" "curl curl" "openssl openssl"
      "node nodejs" "npm npm" "chromium chromium" "clang clang" "ip iproute2" "unbound unbound" "faketime faketime")
if [ "${1:-}" = "--bench" ]; then
  need+=("nats-server nats-server" "serf serf" "dnsperf dnsperf")
fi
# The container image's tests (scripts/container.sh build-offline, PackagingTests): a registry for
# the base image, the CA certificates that go into it, podman and runc to run the image.
need+=("docker-registry docker-registry" "update-ca-certificates ca-certificates" "podman podman" "runc runc")

missing=()
for pair in "${need[@]}"; do
  cmd=${pair% *}
  pkg=${pair#* }
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done

# the native build's linker inputs (scripts/native.sh: clang links, zlib's headers)
[ -f /usr/include/zlib.h ] || missing+=("zlib1g-dev")

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${missing[*]} (Debian packages)" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts knot, serf, docker-registry and unbound as services on install; the tests and
  # benchmarks run their own.
  for svc in knot serf docker-registry unbound; do
    $sudo_cmd systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi

dotnet restore StreamFarm.slnx --nologo -v q

# The earlier build that the upgrade scenario runs next to this one (tests/StreamFarm.Faults.Tests),
# built once into a cache: 1-2 minutes the first time, nothing after. Not fatal here: without it
# (a shallow clone) the upgrade test says why it cannot run.
scripts/old-build.sh >/dev/null || echo "setup: the earlier build for the upgrade test is missing (see above)" >&2

# The browser client (clients/js): its build and test tools from the npm registry, as the lock file
# pins them (again only when the lock file changed). Chromium is Debian's; nothing is downloaded at
# run time.
js=clients/js
if [ ! -f "$js/node_modules/.package-lock.json" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  echo "setup: installing the browser client's npm packages" >&2
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
