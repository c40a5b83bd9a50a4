#!/usr/bin/env bash
# Lints the repository: `swift format lint --strict` on every Swift file with
# the committed .swift-format (4-space indents, 160 columns; the rule
# AlwaysUseLowerCamelCase is off because the Codable types of AWS's answers keep
# AWS's own field names, SnapshotId, VolumeSize), shellcheck on every shell
# script (*.sh and every other tracked file with a sh or bash shebang:
# scripts/fake-aws/aws, .ci/run, the test vault's busybox scripts) and
# `ruff check` on every Python file (*.py and python shebangs). Exits non-zero
# on any finding. scripts/test.sh runs it first; swift format comes with the
# toolchain; scripts/setup-host.sh installs shellcheck and ruff (pinned in
# scripts/test-requirements.txt, so a new release cannot fail CI overnight).
# To format: swift format format -i --configuration .swift-format FILE...
set -euo pipefail
cd "$(dirname "$0")/.."

shell_files=()
python_files=()
swift_files=()
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  case "$f" in
    *.sh) shell_files+=("$f"); continue ;;
    *.py) python_files+=("$f"); continue ;;
    *.swift) swift_files+=("$f"); continue ;;
  esac
  first=$(head -c 200 "$f" | head -n 1 | tr -d '\0')
  case "$first" in
    '#!'*python*) python_files+=("$f") ;;
    '#!'*sh | '#!'*sh\ *) shell_files+=("$f") ;;
  esac
done < <(git ls-files -z)

echo "lint: swift format lint --strict on ${#swift_files[@]} Swift files"
swift format lint --strict --configuration .swift-format "${swift_files[@]}"
echo "lint: shellcheck on ${#shell_files[@]} shell scripts"
shellcheck -x "${shell_files[@]}"
echo "lint: ruff check on ${#python_files[@]} Python files"
ruff check --no-cache --quiet "${python_files[@]}"
echo "lint: clean"
