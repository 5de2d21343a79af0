#!/usr/bin/env bash
# The README's test command (`npm test`): installs what the tests need when it is missing,
# builds the addon and the TypeScript, then runs every tier (unit, integration with real NBD
# clients, kernel in a QEMU VM) and ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: real NBD clients, QEMU for the kernel tier, and what the
# kernel rig builds its initramfs from; stress-ng is the benchmark's busy core; prometheus
# scrapes the metrics endpoint in its test. The RBD bdev builds against librbd-dev and is tested
# on a one-node cluster of ceph-mon/ceph-osd/ceph-common; qemu-block-extra is qemu-nbd's rbd:
# driver, the RBD benchmark's reference.
PKGS=(nbd-client qemu-system-x86 qemu-utils libnbd-bin python3-libnbd nbdkit nbdfuse fio socat
      busybox-static cpio kmod xz-utils e2fsprogs xfsprogs stress-ng prometheus
      ceph-mon ceph-osd ceph-common librbd-dev qemu-block-extra)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "aionbd test: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  elif [ "${CI:-}" = true ]; then
    echo "aionbd test: missing Debian packages ${missing[*]} and not root to install them" >&2
    exit 1
  else
    echo "aionbd test: missing ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]}); the tests that need them will skip" >&2
  fi
fi

# npm packages and the native build. `npm ci` runs our install script (the addon) and prepare
# (tsc) itself; otherwise both run here, so that changed sources are built (the install script
# skips node-gyp when the addon is newer than native/).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || npm install --no-audit --no-fund
else
  npm run --silent install >/dev/null
  npm run --silent prepare >/dev/null
fi

mkdir -p test-results
set +e
# Lint and format check (Biome) first: quick, and a failure is reported with the tests' result.
npx biome ci . >test-results/lint.txt 2>&1
lint=$?
if [ $lint -ne 0 ]; then cat test-results/lint.txt >&2; echo "aionbd test: lint/format check failed (npm run lint:fix applies the fixable part)" >&2; fi
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
rc=$?
set -e
node -e '
  const fs = require("fs");
  try {
    const r = JSON.parse(fs.readFileSync("test-results/vitest.json", "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  } catch (e) { console.log("0 passed, 1 failed"); }
'
if [ $lint -ne 0 ]; then echo "lint/format check failed (test-results/lint.txt)"; [ $rc -eq 0 ] && rc=$lint; fi
exit $rc
