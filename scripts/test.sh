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
# One test at a time: the integration suites share loop devices, the CPU and QEMU.
swift test --no-parallel "$@"
