#!/usr/bin/env bash
# The container image of streamfarm, built by the .NET SDK (dotnet publish /t:PublishContainer) into
# a tarball: no container engine or daemon is needed to build it. The image holds the native AOT
# executable alone (/app/streamfarm, the entry point) and runs as the non-root user 1654.
#
#   scripts/container.sh build [--out FILE] [--base IMAGE] [-- dotnet publish options...]
#       the image on its real base, mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled
#       (pulled from the registry, so this needs that registry), or on --base IMAGE
#   scripts/container.sh build-offline [--out FILE] [-- dotnet publish options...]
#       the same image on a minimal base made from this machine's own Debian libraries (libc, libm,
#       libgcc_s, OpenSSL 3, the CA certificates, an /etc/passwd with the user app, 1654), for
#       machines that reach no image registry (the tests): the base is pushed to a registry of our
#       own (Debian's docker-registry) on 127.0.62.1:5000 (STREAMFARM_BASE_REGISTRY=IP:PORT for
#       another address) for the time of the build
#   scripts/container.sh base-rootfs DIR
#       only writes that minimal base's root file system into DIR
#
# FILE defaults to artifacts/container/streamfarm.tar (an OCI image layout in a tar, not
# compressed; its layers are). Load it with `podman load -i FILE` or `docker load -i FILE`;
# docs/operations.md ("Installing") shows how to run a farm from it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

# The libraries the native executable loads: `ldd artifacts/.../streamfarm` names libc and libm;
# it opens OpenSSL 3 (libssl, libcrypto) when it first uses TLS or a hash; libgcc_s is part of
# every .NET runtime-deps image. Their own dependencies are added below from ldd.
base_libs=(libc.so.6 libm.so.6 libgcc_s.so.1 libssl.so.3 libcrypto.so.3)

find_lib() { # the path of a library as the dynamic loader finds it on this machine
  local p
  p=$(ldconfig -p | awk -v n="$1" '$1 == n && $0 ~ /x86-64/ { print $NF; exit }')
  [ -n "$p" ] || { echo "container.sh: library $1 not found on this machine" >&2; exit 1; }
  readlink -f "$p"
}

base_rootfs() { # DIR: a minimal root file system for a self-contained .NET executable
  local dir=$1 lib dep
  [ "$(uname -m)" = x86_64 ] || { echo "container.sh: the offline base is made for x86_64 (linux-x64) only" >&2; exit 1; }
  [ -f /etc/ssl/certs/ca-certificates.crt ] || { echo "container.sh: /etc/ssl/certs/ca-certificates.crt is missing (apt-get install ca-certificates)" >&2; exit 1; }
  mkdir -p "$dir"/lib/x86_64-linux-gnu "$dir"/lib64 "$dir"/etc/ssl/certs "$dir"/usr/lib/ssl "$dir"/tmp
  chmod 1777 "$dir"/tmp
  declare -A seen=()
  local todo=("${base_libs[@]}")
  while [ ${#todo[@]} -gt 0 ]; do
    lib=${todo[0]}; todo=("${todo[@]:1}")
    [ -n "${seen[$lib]:-}" ] && continue
    seen[$lib]=1
    # installed under the name the loader asks for (libssl.so.3), the file behind it copied
    cp -L "$(find_lib "$lib")" "$dir/lib/x86_64-linux-gnu/$lib"
    while read -r dep; do todo+=("$dep"); done < <(ldd "$(find_lib "$lib")" | awk '$2 == "=>" && $3 ~ /^\// { print $1 }')
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$dir"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
  ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$dir"/lib64/ld-linux-x86-64.so.2
  cp /etc/ssl/certs/ca-certificates.crt "$dir"/etc/ssl/certs/ca-certificates.crt
  ln -sf /etc/ssl/certs/ca-certificates.crt "$dir"/usr/lib/ssl/cert.pem
  ln -sfn /etc/ssl/certs "$dir"/usr/lib/ssl/certs
  printf 'root:x:0:0:root:/root:/sbin/nologin\napp:x:1654:1654:app:/app:/sbin/nologin\n' > "$dir"/etc/passwd
  printf 'root:x:0:\napp:x:1654:\n' > "$dir"/etc/group
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$dir"/etc/nsswitch.conf
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Pushes the base made by base_rootfs to REGISTRY as REPO:TAG through the registry's HTTP API
# (an OCI image: one gzip layer, its config, its manifest).
push_base() { # DIR REGISTRY REPO TAG
  local dir=$1 reg=$2 repo=$3 tag=$4 work layer config manifest diff_id
  work=$(mktemp -d)
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$work/layer.tar" .
  diff_id=$(sha "$work/layer.tar")
  gzip -n -c "$work/layer.tar" > "$work/layer.tar.gz"
  layer=$work/layer.tar.gz
  config=$work/config.json
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_UID=1654"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/container.sh: a minimal runtime-deps base from Debian libraries"}]}' \
    "$diff_id" > "$config"
  for blob in "$layer" "$config"; do
    local digest location
    digest=sha256:$(sha "$blob")
    location=$(curl -fsS -D - -o /dev/null -X POST "http://$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
    case $location in http*) ;; *) location="http://$reg$location" ;; esac
    case $location in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$blob" "$location" -o /dev/null
  done
  manifest=$work/manifest.json
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$(sha "$config")" "$(stat -c %s "$config")" "$(sha "$layer")" "$(stat -c %s "$layer")" > "$manifest"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$manifest" \
    "http://$reg/v2/$repo/manifests/$tag" -o /dev/null
  rm -rf "$work"
}

publish() { # OUT BASE [dotnet publish options...]
  local out=$1 base=$2
  shift 2
  mkdir -p "$(dirname "$out")"
  local args=(publish src/StreamFarm.Cli -c Release -r linux-x64 -p:StreamFarmContainer=true /t:PublishContainer
              "-p:ContainerArchiveOutputPath=$out" --nologo -v q)
  [ -n "$base" ] && args+=("-p:ContainerBaseImage=$base")
  # The native executable first, through scripts/native.sh: it fails on any AOT warning it does not
  # explain, and the image's publish below then finds the compile done.
  nice -n 10 scripts/native.sh
  # The native compile takes a minute of both cores: at low priority, so that it does not starve
  # timing-sensitive work beside it (the other test suites); in processes of its own, not in
  # build servers started earlier at normal priority.
  nice -n 10 dotnet "${args[@]}" --disable-build-servers "$@"
  echo "container.sh: image written to $out" >&2
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
out=$root/artifacts/container/streamfarm.tar
base=""
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --base) base=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) [ "$cmd" = base-rootfs ] && [ -z "${dir:-}" ] && { dir=$1; shift; continue; }; usage ;;
  esac
done

case $cmd in
  build)
    publish "$out" "$base" "${extra[@]}"
    ;;
  base-rootfs)
    [ -n "${dir:-}" ] || usage
    base_rootfs "$dir"
    ;;
  build-offline)
    [ -z "$base" ] || { echo "container.sh: build-offline makes its own base; use build --base IMAGE" >&2; exit 2; }
    command -v docker-registry >/dev/null || { echo "container.sh: docker-registry is missing (scripts/setup.sh installs it)" >&2; exit 1; }
    reg=${STREAMFARM_BASE_REGISTRY:-127.0.62.1:5000}
    tmp=$(mktemp -d)
    registry_pid=""
    cleanup() {
      local rc=$?
      if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
      rm -rf "$tmp"
      exit "$rc"
    }
    trap cleanup EXIT
    base_rootfs "$tmp/rootfs"
    cat > "$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/storage
http:
  addr: $reg
EOF
    docker-registry serve "$tmp/registry.yml" > "$tmp/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 100); do
      curl -fsS "http://$reg/v2/" -o /dev/null 2>/dev/null && break
      kill -0 "$registry_pid" 2>/dev/null || { cat "$tmp/registry.log" >&2; echo "container.sh: the registry did not start" >&2; exit 1; }
      sleep 0.1
    done
    push_base "$tmp/rootfs" "$reg" streamfarm-base debian12
    # The SDK talks plain HTTP only to registries named here.
    DOTNET_CONTAINER_INSECURE_REGISTRIES="$reg" publish "$out" "$reg/streamfarm-base:debian12" "${extra[@]}"
    ;;
  *) usage ;;
esac
