#!/usr/bin/env bash
# Bootstraps a chroot by hand from the test vault's RPMs and then lets the
# chroot's own yum (dnf behind the vault's /usr/bin/yum) install the core
# group over HTTP, as install's bootstrap step does (README.md). Test code (VaultTests drives it):
# rpm2cpio | cpio, not the host's dnf --installroot.
#
#   bootstrap-chroot-by-hand.sh ROOT MIRROR RELEASE VAULT_BUILD_DIR [KERNEL_VERSION]
#     ROOT              an empty directory to build the chroot in
#     MIRROR            e.g. http://127.0.0.1:8080 serving VAULT_BUILD_DIR/vault
#     RELEASE           6.8 or 6.9
#
# Steps: closure of yum+rpm+bash+coreutils+centos-release over the packages'
# Requires/Provides; extract them; mount proc and a minimal /dev (tmpfs +
# mknod); rpm --initdb; rpm -ivh --justdb --nodeps --noscripts; a repo file
# for MIRROR with gpgcheck=1 and the test key the vault's centos-release ships;
# `yum -y --releasever=RELEASE --disablerepo='*' --enablerepo=vault-test
# groupinstall core --exclude=postfix`. Writes ROOT.rpm-qa (rpm -qa names).
# With KERNEL_VERSION (e.g. 2.6.32-696.el6): then `yum install gcc make
# kernel-devel-KERNEL_VERSION` and build an out-of-tree hello module against
# /usr/src/kernels/KERNEL_VERSION.x86_64 inside the chroot (ROOT.hello.ko).
# Unmounts and stops anything left running in ROOT on every exit.
set -euo pipefail
[ $# -eq 4 ] || [ $# -eq 5 ] || { echo "usage: $0 ROOT MIRROR RELEASE VAULT_BUILD_DIR [KERNEL_VERSION]" >&2; exit 64; }
root=$(realpath -m "$1"); mirror=${2%/}; release=$3; vault=$4; kernel=${5:-}
packages=$vault/vault/$release/os/x86_64/Packages
[ -d "$packages" ] || { echo "bootstrap: no packages at '$packages' (build the vault first)" >&2; exit 1; }
mkdir -p "$root"

cleanup() {
  local status=$? pid
  # processes left in the chroot (gpg-agent started by dnf's key import, ...)
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    if [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  for m in "$root/dev/pts" "$root/dev" "$root/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m" || true; fi
  done
  exit "$status"
}
trap cleanup EXIT INT TERM HUP

# 1. The bootstrap set: closure over the packages' own Requires/Provides.
mapfile -t set < <(
  rpm -qp --nosignature --qf 'N\t%{NAME}\t%{NAME}\n[P\t%{=NAME}\t%{PROVIDENAME}\n][R\t%{=NAME}\t%{REQUIRENAME}\n]F\t%{NAME}\t%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm\n' "$packages"/*.rpm 2>/dev/null |
  python3 -c '
import sys
provides, requires, files = {}, {}, {}
for line in sys.stdin:
    kind, name, value = line.rstrip("\n").split("\t")
    if kind in "NP": provides.setdefault(value, name)
    elif kind == "R": requires.setdefault(name, []).append(value)
    else: files[name] = value
seen, todo, missing = set(), ["yum", "rpm", "bash", "coreutils", "centos-release"], []
while todo:
    n = todo.pop()
    if n in seen: continue
    seen.add(n)
    for r in requires.get(n, []):
        if r.startswith("rpmlib("): continue
        if r in provides: todo.append(provides[r])
        else: missing.append(f"{n} requires {r}")
if missing: sys.exit("bootstrap: unresolved: " + ", ".join(missing))
for n in sorted(seen, key=lambda n: (n != "filesystem", n)): print(files[n])
')
[ "${#set[@]}" -gt 0 ] || { echo "bootstrap: could not compute the bootstrap set" >&2; exit 1; }
echo "bootstrap: ${#set[@]} packages in the bootstrap set" >&2

# 2. Extract them (filesystem first: it makes bin, sbin, lib* links into usr/).
for f in "${set[@]}"; do
  rpm2cpio "$packages/$f" | (cd "$root" && cpio -idm --quiet --no-absolute-filenames)
done

# 3. proc and a minimal /dev.
mkdir -p "$root/proc" "$root/dev" "$root/tmp"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
ln -s /proc/self/fd "$root/dev/fd"

# 4. Register the bootstrap packages in the chroot's own rpm database.
mkdir -p "$root/tmp/bootstrap-rpms"
for f in "${set[@]}"; do cp "$packages/$f" "$root/tmp/bootstrap-rpms/"; done
chroot "$root" rpm --initdb
chroot "$root" rpm -ivh --justdb --nodeps --noscripts --nosignature /tmp/bootstrap-rpms/*.rpm >/dev/null
rm -rf "$root/tmp/bootstrap-rpms"

# 5. The chroot's yum against the mirror, verifying with the test key.
mkdir -p "$root/etc/yum.repos.d" "$root/etc/yum/vars"
cat > "$root/etc/yum.repos.d/vault-test.repo" <<EOF
[vault-test]
name=test vault \$releasever
baseurl=$mirror/\$releasever/os/x86_64/
enabled=1
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-6
EOF
chroot "$root" /usr/bin/yum -y --releasever="$release" --disablerepo='*' --enablerepo=vault-test \
  groupinstall Core --exclude=postfix
chroot "$root" rpm -qa --qf '%{NAME}\n' | sort > "$root.rpm-qa"
echo "bootstrap: $(wc -l < "$root.rpm-qa") packages installed in $root" >&2

[ -n "$kernel" ] || exit 0
# 6. kernel-devel works: an out-of-tree module builds inside the chroot.
chroot "$root" /usr/bin/yum -y --releasever="$release" --disablerepo='*' --enablerepo=vault-test \
  install gcc make "kernel-devel-$kernel"
mkdir -p "$root/tmp/hello"
cat > "$root/tmp/hello/hello.c" <<'EOF'
#include <linux/module.h>
#include <linux/init.h>
MODULE_LICENSE("GPL");
static int __init hello_init(void) { pr_info("hello from the test vault\n"); return 0; }
static void __exit hello_exit(void) { }
module_init(hello_init);
module_exit(hello_exit);
EOF
echo 'obj-m := hello.o' > "$root/tmp/hello/Makefile"
chroot "$root" make -C "/usr/src/kernels/$kernel.x86_64" M=/tmp/hello modules
cp "$root/tmp/hello/hello.ko" "$root.hello.ko"
echo "bootstrap: built $root.hello.ko against kernel-devel-$kernel" >&2
