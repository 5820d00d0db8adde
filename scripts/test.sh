#!/usr/bin/env bash
# The test command: set-up (packages, npm ci), type-check (tests included), build (dist/: the
# daemons the tests start run compiled), then the whole vitest suite, closing with a plain
# "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
npx tsc -p tsconfig.json --noEmit || { echo "type-check failed"; echo "0 passed, 1 failed"; exit 1; }
node scripts/build.js || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
results=$(mktemp -t pollen-vitest-XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
code=$?
node -e '
  const fs = require("node:fs");
  let r = {};
  try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch {}
  const passed = r.numPassedTests ?? 0;
  const failed = (r.numFailedTests ?? 0) || (r.numFailedTestSuites ?? 0) || (r.success === false ? 1 : 0);
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results"
rm -f "$results"
exit $code
