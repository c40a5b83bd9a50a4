#!/usr/bin/env bash
# Builds stand-ins, from this host's own libraries, for the packages genuine EL6
# rpm 4.8 links whose genuine copies this fixture does not have (see README.md):
# glibc (the host's libc and loader: the host's other libraries need its newer
# glibc), popt, lua, libcap, libacl, libattr and file-libs. EL6's layout
# (/lib64, /usr/lib64), their sonames as EL6's Provides, signed with the key in
# GNUPGHOME. The NSS packages, rpm and the rest stay genuine.
# Usage: host-standins.sh OUT GNUPGHOME KEY_UID   (prints the packages built)
set -euo pipefail
out=$1 gnupg=$2 uid=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/centos6-ami-standins.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
multiarch=/usr/lib/x86_64-linux-gnu

# package NAME VERSION 'DEST=SOURCE ...': one stand-in package.
package() {
  local name=$1 version=$2 pairs=$3 root="$work/root-$1" spec="$work/$1.spec" pair dest source provides=""
  mkdir -p "$root"
  for pair in $pairs; do
    dest=${pair%%=*} source=${pair#*=}
    install -D -m 0755 "$(readlink -f "$source")" "$root$dest"
    provides+="Provides: $(basename "$dest")()(64bit)"$'\n'
  done
  cat > "$spec" <<SPEC
Name: $name
Version: $version
Release: host.standin
Summary: $name stand-in from the build host's libraries (genuine-binaries test)
License: see the host's packages
AutoReqProv: no
${provides}
%description
Stand-in for EL6's $name, made from the build host's own libraries by host-standins.sh.

%files
%defattr(-,root,root)
$(cd "$root" && find . -type f | sed 's/^\.//')
SPEC
  rpmbuild -bb --quiet --buildroot "$root" --define "_topdir $work/rpmbuild" --define "_rpmdir $out" \
    --define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
    --define '__os_install_post %{nil}' --define 'debug_package %{nil}' --define '_build_id_links none' \
    --target x86_64 "$spec" >/dev/null
  echo "$out/$name-$version-host.standin.x86_64.rpm"
}

glibc_pairs=""
for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libresolv.so.2; do
  glibc_pairs+=" /lib64/$lib=/lib/x86_64-linux-gnu/$lib"
done
built=(
  "$(package glibc 2.36 "$glibc_pairs")"
  "$(package popt 1.19 "/lib64/libpopt.so.0=$multiarch/libpopt.so.0")"
  "$(package lua 5.1.5 "/usr/lib64/liblua-5.1.so=$multiarch/liblua5.1.so.0")"
  "$(package libcap 2.66 "/lib64/libcap.so.2=$multiarch/libcap.so.2")"
  "$(package libacl 2.3.1 "/lib64/libacl.so.1=$multiarch/libacl.so.1")"
  "$(package libattr 2.5.1 "/lib64/libattr.so.1=$multiarch/libattr.so.1")"
  # Debian's libmagic links liblzma.so.5 and libbz2.so.1.0, which EL6's xz-libs and bzip2-libs do not ship.
  "$(package file-libs 5.44 "/usr/lib64/libmagic.so.1=$multiarch/libmagic.so.1 /usr/lib64/liblzma.so.5=$multiarch/liblzma.so.5 /lib64/libbz2.so.1.0=$multiarch/libbz2.so.1.0")"
)
rpmsign --addsign --rpmv3 --define '__gpg /usr/bin/gpg' --define "_gpg_path $gnupg" --define "_gpg_name $uid" \
  "${built[@]}" >/dev/null
printf '%s\n' "${built[@]}"
