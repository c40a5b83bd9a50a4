#!/usr/bin/env bash
# Runs every test: the linters (scripts/lint.sh), unit tests and the integration
# tests (root, loop devices, the local signed test vault, QEMU). Needs root and
# scripts/setup-host.sh.
# The test vault is built once into $CENTOS6_AMI_TEST_CACHE and reused while
# its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
export CENTOS6_AMI_TEST_CACHE="${CENTOS6_AMI_TEST_CACHE:-/var/cache/centos6-ami-test}"
export CENTOS6_AMI_TEST_VAULT="${CENTOS6_AMI_TEST_VAULT:-$CENTOS6_AMI_TEST_CACHE/vault-build}"
export CENTOS6_AMI_INTEGRATION=1
mkdir -p "$CENTOS6_AMI_TEST_CACHE"
# Lint first: a finding fails the run before the long part starts.
scripts/lint.sh
scripts/embed-data.sh
git diff --quiet -- Sources/Versions/EmbeddedVersions.swift Sources/Signature/EmbeddedKey.swift 2>/dev/null \
  || echo "test.sh: note: embedded data regenerated (commit it)"
if [ -x scripts/testvault/build-vault.sh ]; then
  scripts/testvault/build-vault.sh "$CENTOS6_AMI_TEST_VAULT"
fi
swift build
# What an earlier run (or another checkout's) left is not this run's to judge: noted, not counted.
before=$(find "$CENTOS6_AMI_TEST_CACHE/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | sort || true)
if [ -n "$before" ]; then
  echo "test.sh: note: $(wc -l <<< "$before") entries were already under $CENTOS6_AMI_TEST_CACHE/tmp/ before this run" >&2
fi
# One test at a time: the integration suites share loop devices, the CPU and QEMU.
status=0
swift test --no-parallel "$@" || status=$?
# The tests remove their images and scratch directories (Tests/IntegrationTests/Support.swift:
# scratchDirectory, removed at the latest when the test process exits): anything
# this run left would pile up run after run on a long-lived builder.
after=$(find "$CENTOS6_AMI_TEST_CACHE/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | sort || true)
leftovers=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
if [ -n "$leftovers" ]; then
  echo "test.sh: the tests left these under $CENTOS6_AMI_TEST_CACHE/tmp/ (remove them; a test is missing its cleanup):" >&2
  while IFS= read -r entry; do
    echo "  $(du -sh "$entry" 2>/dev/null | cut -f1)	$entry" >&2
  done <<< "$leftovers"
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
