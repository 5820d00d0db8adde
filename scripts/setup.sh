#!/usr/bin/env bash
# Installs what Pollen's tests and benchmarks need, when missing: Debian packages for the real
# components (registry, clients, runtimes, network tools) and the npm dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> Debian package
declare -A NEED=(
  [docker-registry]=docker-registry [skopeo]=skopeo [umoci]=umoci [runc]=runc
  [containerd]=containerd [ctr]=containerd [busybox]=busybox-static [zstd]=zstd [ip]=iproute2
  [tini]=tini [htpasswd]=apache2-utils [curl]=curl [tc]=iproute2 [openssl]=openssl
  [aria2c]=aria2 [opentracker]=opentracker [setfattr]=attr [getfattr]=attr
  [systemd-analyze]=systemd [dockerd]=docker.io [docker]=docker.io [kubectl]=kubernetes-client
  [chromium]=chromium [prometheus]=prometheus
)
missing=()
for tool in "${!NEED[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] || missing+=("${NEED[$tool]}")
done
# GNU time (the test bed's CPU/peak-RSS meter): `command -v time` finds the shell keyword, so check the file.
[ -x /usr/bin/time ] || missing+=(time)
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "setup: installing Debian packages: $pkgs"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to apt-get install $pkgs" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $pkgs ca-certificates
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
