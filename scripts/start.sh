#!/usr/bin/env bash
# Runs Pollen all-in-one (supernode + peer, embedded storage) after installing the npm dependencies
# and building dist/ (the compiled JavaScript the `pollen` command runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
node scripts/build.js
# malloc's heap on transparent huge pages: fewer page faults per byte (src/malloc-tunables.ts).
case ":${GLIBC_TUNABLES:-}:" in *:glibc.malloc.hugetlb=*) ;; *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;; esac
exec node bin/pollen.js start "$@"
