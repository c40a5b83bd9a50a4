#!/usr/bin/env python3
"""Writes a tiny, metadata-only 6.9 repository (repomd.xml, primary.xml.gz,
comps.xml) for the dry-run plan test: enough for fetch-metadata and resolve
(a dry run downloads no package). Run it from this directory; the output is
committed, so the golden test needs no network and no vault."""
import gzip
import hashlib
import os

PKGS = [  # name, version, release, arch, requires, provides, files
    ("bash", "4.1.2", "48.el6", "x86_64", ["libc.so.6()(64bit)"], [], ["/bin/bash", "/bin/sh"]),
    ("glibc", "2.12", "1.209.el6", "x86_64", [], ["libc.so.6()(64bit)"], ["/sbin/ldconfig"]),
    ("coreutils", "8.4", "46.el6", "x86_64", ["/bin/sh", "libc.so.6()(64bit)"], [], ["/bin/cp"]),
    ("setup", "2.8.14", "23.el6", "noarch", [], [], ["/etc/passwd"]),
    ("filesystem", "2.4.30", "3.el6", "x86_64", ["setup"], [], []),
    ("rpm", "4.8.0", "55.el6", "x86_64", ["/bin/sh", "libc.so.6()(64bit)"], [], ["/bin/rpm"]),
    ("yum", "3.2.29", "81.el6.centos", "noarch", ["rpm", "/bin/sh"], [], ["/usr/bin/yum"]),
    ("centos-release", "6", "9.el6.12.3", "x86_64", [], ["redhat-release"], ["/etc/redhat-release"]),
    ("kernel", "2.6.32", "696.el6", "x86_64", ["/bin/sh"], [], ["/boot/vmlinuz-2.6.32-696.el6.x86_64"]),
    ("xfsprogs", "3.1.1", "20.el6", "x86_64", ["libc.so.6()(64bit)"], [], ["/sbin/mkfs.xfs"]),
    ("grub", "0.97", "99.el6", "x86_64", ["/bin/sh"], [], ["/sbin/grub"]),
    ("openssh-server", "5.3p1", "122.el6", "x86_64", ["/bin/sh"], [], ["/usr/sbin/sshd"]),
    ("postfix", "2.6.6", "8.el6", "x86_64", ["/bin/sh"], [], ["/usr/sbin/postfix"]),
]

def entry(n, v, r, a, req, prov, files):
    loc = f"Packages/{n}-{v}-{r}.{a}.rpm"
    digest = hashlib.sha256(loc.encode()).hexdigest()
    reqs = "".join(f'<rpm:entry name="{x}"/>' for x in req)
    provs = "".join(f'<rpm:entry name="{x}"/>' for x in prov + [n])
    fl = "".join(f"<file>{f}</file>" for f in files)
    return (f'<package type="rpm"><name>{n}</name><arch>{a}</arch><version epoch="0" ver="{v}" rel="{r}"/>'
            f'<checksum type="sha256" pkgid="YES">{digest}</checksum><summary>{n}</summary><description>{n}</description>'
            f'<packager>test</packager><url/><time file="1" build="1"/><size package="1000" installed="2000" archive="2100"/>'
            f'<location href="{loc}"/><format><rpm:license>GPL</rpm:license><rpm:provides>{provs}</rpm:provides>'
            f'<rpm:requires>{reqs}</rpm:requires>{fl}</format></package>\n')

primary = ('<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
           f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(PKGS)}">\n'
           + "".join(entry(*p) for p in PKGS) + "</metadata>\n").encode()
comps = ('<?xml version="1.0" encoding="UTF-8"?>\n<comps><group><id>core</id><name>Core</name><default>true</default>'
         '<uservisible>false</uservisible><packagelist>'
         + "".join(f'<packagereq type="mandatory">{n}</packagereq>' for n in ["bash", "coreutils", "setup", "filesystem", "rpm", "yum", "openssh-server", "postfix"])
         + "</packagelist></group></comps>\n").encode()

repo = "vault/6.9/os/x86_64/repodata"
os.makedirs(repo, exist_ok=True)
primary_gz = gzip.compress(primary, mtime=0)
files = {"primary": ("repodata/primary.xml.gz", primary_gz, primary), "group": ("repodata/comps.xml", comps, None)}
md = ['<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n<revision>1</revision>\n']
for kind, (loc, data, opened) in files.items():
    with open("vault/6.9/os/x86_64/" + loc, "wb") as f:
        f.write(data)
    md.append(f'<data type="{kind}"><checksum type="sha256">{hashlib.sha256(data).hexdigest()}</checksum>')
    if opened is not None:
        md.append(f'<open-checksum type="sha256">{hashlib.sha256(opened).hexdigest()}</open-checksum><open-size>{len(opened)}</open-size>')
    md.append(f'<location href="{loc}"/><timestamp>1</timestamp><size>{len(data)}</size></data>\n')
md.append("</repomd>\n")
with open(repo + "/repomd.xml", "w") as f:
    f.write("".join(md))
