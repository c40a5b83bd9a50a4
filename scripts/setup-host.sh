#!/usr/bin/env bash
# Installs the host tools the tool and its tests need on a fresh Debian 12
# (or Ubuntu) builder: run once, as root. CI (.ci/run) calls it too.
set -euo pipefail

# Tools centos6-ami itself runs on the builder.
# rpm: 'inspect --sbom' reads an image's rpm database (sqlite, or EL6's Berkeley DB through bdb_ro) with it.
tool_packages=(util-linux fdisk parted e2fsprogs gpgv gnupg xz-utils gzip cpio coreutils mount rpm)
# What the test vault generator, the test servers and the boot harness need.
test_packages=(createrepo-c dnf busybox-static qemu-system-x86 qemu-utils xfsprogs libc6-i386
               rpm2cpio iproute2 curl python3 python3-pip dpkg-dev gcc make kmod shellcheck patchelf
               # host libraries the genuine-binaries test packages as stand-ins (Tests/Fixtures/el6-rpm-runtime)
               liblua5.1-0 libpopt0 libcap2 libacl1 libattr1 libmagic1)
# Python packages for the register tests (moto_server stands in for EC2), ruff, and the
# SBOM validators (spdx-tools, cyclonedx-python-lib), pinned.
requirements="$(cd "$(dirname "$0")" && pwd)/test-requirements.txt"

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${tool_packages[@]}" "${test_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Installed only when a pinned version is missing or different.
pinned_ok() {
  python3 - "$requirements" <<'PY'
import sys, importlib.metadata as md
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, version = line.split("==")
    try:
        if md.version(name.split("[")[0]) != version:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
PY
}
if ! { pinned_ok && command -v aws >/dev/null && command -v moto_server >/dev/null && command -v ruff >/dev/null && command -v pyspdxtools >/dev/null; }; then
  python3 -m pip install -q -r "$requirements"
fi
echo "setup-host: ready"
