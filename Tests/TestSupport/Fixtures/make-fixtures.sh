#!/bin/bash
# Regenerates the small REAL fixtures of the rpm, signature and repository tests (committed, so
# tests need none of these tools): two tiny EL-shaped packages built with
# rpmbuild (xz payload; files, a directory, a symlink, a hard-link pair, a
# setuid file; requires/provides incl. a file require /bin/sh), signed by a
# throwaway key with `rpmsign --addsign --rpmv3` (SIGPGP + RSAHEADER, like
# CentOS 6 packages), one unsigned copy, and a createrepo_c repository with a
# comps file. Usage: make-fixtures.sh   (writes next to itself, into repo/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/repo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"
cat > "$work/keyparams" <<'K'
%no-protection
Key-Type: RSA
Key-Length: 2048
Key-Usage: sign
Name-Real: centos6-ami fixture key
Name-Email: fixtures@centos6-ami.invalid
Expire-Date: 0
%commit
K
gpg --batch --quiet --gen-key "$work/keyparams"
mkdir -p "$work"/{SPECS,SOURCES,BUILD,RPMS,SRPMS}
cat > "$work/SPECS/tinyfix.spec" <<'S'
Name: tinyfix
Version: 1.2
Release: 3.el6
Summary: tiny fixture package
License: MIT
BuildArch: x86_64
Requires: /bin/sh, tinylib >= 1.0
Requires(pre): tinylib
Provides: tiny-tool = 1.2
AutoReqProv: no
%global _binary_payload w9.xzdio
%global _build_id_links none
%global debug_package %{nil}
%global __os_install_post %{nil}
%description
fixture
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/tinyfix %{buildroot}/usr/share/tinyfix
printf '#!/bin/sh\necho tiny\n' > %{buildroot}/usr/bin/tiny
printf 'key=value\n' > %{buildroot}/etc/tinyfix/tiny.conf
printf 'same bytes\n' > %{buildroot}/usr/share/tinyfix/a
ln %{buildroot}/usr/share/tinyfix/a %{buildroot}/usr/share/tinyfix/b
ln -s ../share/tinyfix/a %{buildroot}/usr/bin/tiny-link
printf 'suid\n' > %{buildroot}/usr/bin/tiny-suid
%files
%attr(0755,root,root) /usr/bin/tiny
/usr/bin/tiny-link
%attr(4755,root,root) /usr/bin/tiny-suid
%dir /etc/tinyfix
%config(noreplace) /etc/tinyfix/tiny.conf
/usr/share/tinyfix
S
cat > "$work/SPECS/tinylib.spec" <<'S'
Name: tinylib
Epoch: 1
Version: 1.0
Release: 1.el6
Summary: tiny fixture library
License: MIT
BuildArch: noarch
AutoReqProv: no
Provides: /bin/sh
%global _binary_payload w9.gzdio
%global _build_id_links none
%global __os_install_post %{nil}
%description
fixture
%install
mkdir -p %{buildroot}/bin %{buildroot}/usr/lib/tinylib
printf '#!/bin/true\n' > %{buildroot}/bin/sh
printf 'lib\n' > %{buildroot}/usr/lib/tinylib/data
%files
%attr(0755,root,root) /bin/sh
/usr/lib/tinylib
S
for s in tinyfix tinylib; do
  rpmbuild --quiet --define "_topdir $work" --define '_source_date_epoch 1500000000' -bb "$work/SPECS/$s.spec"
done
rm -rf "$out"; mkdir -p "$out/Packages"
cp "$work"/RPMS/*/*.rpm "$out/Packages/"
cp "$out/Packages/tinyfix-1.2-3.el6.x86_64.rpm" "$here/tinyfix-unsigned.rpm"
rpmsign --quiet --addsign --rpmv3 --define '_gpg_name fixtures@centos6-ami.invalid' --define '__gpg /usr/bin/gpg' "$out"/Packages/*.rpm
cp "$out/Packages/tinyfix-1.2-3.el6.x86_64.rpm" "$here/tinyfix-signed.rpm"
# Only a header signature + PAYLOADDIGEST (rpm 4.18 default --addsign).
cp "$here/tinyfix-unsigned.rpm" "$here/tinyfix-headersig.rpm"
rpmsign --quiet --addsign --define '_gpg_name fixtures@centos6-ami.invalid' --define '__gpg /usr/bin/gpg' "$here/tinyfix-headersig.rpm"
gpg --armor --export fixtures@centos6-ami.invalid > "$here/fixture-key.asc"
cat > "$work/comps.xml" <<'C'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//CentOS//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>core</id>
    <name>Core</name>
    <name xml:lang="ja">コア</name>
    <description>Smallest possible installation</description>
    <default>true</default>
    <uservisible>false</uservisible>
    <packagelist>
      <packagereq type="mandatory">tinyfix</packagereq>
      <packagereq type="default">tinylib</packagereq>
      <packagereq type="optional">tinyextra</packagereq>
      <packagereq type="conditional" requires="tinylib">tinycond</packagereq>
    </packagelist>
  </group>
  <group>
    <id>base</id>
    <name>Base</name>
    <packagelist>
      <packagereq>tinylib</packagereq>
    </packagelist>
  </group>
  <category>
    <id>base-system</id>
    <name>Base System</name>
    <grouplist><groupid>core</groupid></grouplist>
  </category>
</comps>
C
createrepo_c --quiet --no-database --simple-md-filenames --revision 1500000000 --set-timestamp-to-revision -g "$work/comps.xml" "$out"
echo "fixtures written to $here"
