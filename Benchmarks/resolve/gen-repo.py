#!/usr/bin/env python3
"""Generates a CentOS-6-os-sized repository (primary.xml.gz + comps + repomd.xml)
for the parse/resolve benchmark: ~6,700 packages, ~30 MB of primary.xml,
with realistic names, requires/provides (sonames, file requires, versioned
requires, rpmlib requires, pre requires), primary's file entries (/etc, bin),
i686 multilib copies of libraries, and long descriptions like real primaries.
Deterministic (seeded). Usage: gen-repo.py OUTDIR [--packages N]"""
import gzip
import hashlib
import os
import random
import sys
import time

out = sys.argv[1]
count = 6700
if "--packages" in sys.argv:
    count = int(sys.argv[sys.argv.index("--packages") + 1])
rng = random.Random(6)
os.makedirs(out + "/repodata", exist_ok=True)

# Core names as CentOS 6 has them, so the seeds and the core group resolve.
core_names = [
    "yum", "centos-release", "rpm", "bash", "coreutils", "glibc", "glibc-common", "shadow-utils", "chkconfig",
    "info", "sed", "grep", "gawk", "findutils", "util-linux-ng", "ncurses-libs", "ncurses-base", "libacl",
    "libattr", "libselinux", "libsepol", "pcre", "zlib", "bzip2-libs", "xz-libs", "popt", "nss", "nspr",
    "nss-util", "nss-softokn", "nss-softokn-freebl", "sqlite", "db4", "lua", "elfutils-libelf", "file-libs",
    "libcap", "readline", "python", "python-libs", "python-urlgrabber", "python-iniparse", "pygpgme",
    "yum-metadata-parser", "yum-plugin-fastestmirror", "rpm-libs", "rpm-python", "openssl", "krb5-libs",
    "keyutils-libs", "libcom_err", "e2fsprogs-libs", "e2fsprogs", "libgcc", "libstdc++", "gmp", "mpfr",
    "cracklib", "cracklib-dicts", "pam", "libuser", "audit-libs", "filesystem", "setup", "basesystem",
    "tzdata", "iputils", "iproute", "initscripts", "udev", "upstart", "dbus-libs", "expat", "libxml2", "curl",
    "libcurl", "libidn", "libssh2", "openldap", "cyrus-sasl-lib", "nss-sysinit", "ca-certificates",
    "module-init-tools", "procps", "psmisc", "net-tools", "kernel", "dracut", "openssh", "openssh-server",
    "openssh-clients", "passwd", "sudo", "cronie", "cronie-anacron", "crontabs", "postfix", "rsyslog",
    "logrotate", "tar", "cpio", "gzip", "which", "hostname", "less", "vim-minimal", "diffutils", "ethtool",
    "dhclient", "mingetty", "policycoreutils", "selinux-policy", "authconfig", "plymouth",
    "plymouth-core-libs", "iptables", "lvm2", "device-mapper", "device-mapper-libs", "grubby", "grub",
    "xfsprogs", "mysql-libs", "libsemanage", "ustr", "libgpg-error", "libgcrypt", "gnupg2", "pth", "pinentry",
    "libusb", "dash", "mlocate",
]
words = [
    "the", "of", "and", "to", "a", "in", "is", "for", "with", "library", "tools", "utilities", "support",
    "files", "program", "package", "system", "data", "network", "client", "server", "python", "perl", "devel",
    "runtime", "shared", "common", "config", "documentation", "extension",
]

packages = []  # dicts
def add(name, arch="x86_64", lib=False):
    p = {"name": name, "arch": arch, "ver": f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
         "rel": f"{rng.randint(1, 60)}.el6", "epoch": rng.choice([0] * 9 + [1, 2]),
         "provides": [], "requires": [], "files": [], "lib": lib}
    packages.append(p)
    return p

for n in core_names:
    add(n, "noarch" if n in ("yum", "python-urlgrabber", "python-iniparse", "yum-plugin-fastestmirror", "tzdata",
                              "setup", "basesystem", "ca-certificates", "crontabs", "selinux-policy", "cracklib-dicts") else "x86_64",
        lib=n.endswith("-libs") or n.startswith("lib") or n in ("glibc", "zlib", "pcre", "popt", "nss", "nspr", "sqlite", "openssl"))
prefixes = ["perl", "python", "php", "ruby", "lib", "xorg-x11", "gnome", "kde", "java", "texlive", "qt", "gtk2", "compat", "ghostscript",
            "httpd", "mod", "samba", "cups", "NetworkManager", "pulseaudio", "gstreamer", "mesa", "ibus", "eclipse", "tomcat6", "postgresql"]
while len(packages) < int(count * 0.82):
    base = rng.choice(prefixes) + "-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
    for suffix in [""] + rng.sample(["-devel", "-libs", "-doc", "-tools", "-common"], rng.randint(0, 2)):
        add(base + suffix, rng.choice(["x86_64"] * 4 + ["noarch"]), lib=base.startswith("lib") or suffix == "-libs")

# Sonames for libraries, files for everything.
libs = [p for p in packages if p["lib"]]
for p in packages:
    p["provides"].append((p["name"], "EQ", p["epoch"], p["ver"], p["rel"]))
    if p["arch"] == "x86_64":
        p["provides"].append((p["name"] + "(x86-64)", "EQ", p["epoch"], p["ver"], p["rel"]))
    if p["lib"]:
        stem = p["name"].replace("-libs", "")
        for k in range(rng.randint(1, 4)):
            so = "lib{}{}.so.{}".format(stem.replace("lib", "", 1), "" if k == 0 else str(k), rng.randint(0, 6))
            p["provides"].append((so + "()(64bit)", None, None, None, None))
            for v in ("_1.0", "_2.0")[: rng.randint(0, 2)]:
                p["provides"].append((so + f"({stem.upper()[:6]}{v})(64bit)", None, None, None, None))
    nfiles = rng.randint(0, 12)
    for i in range(nfiles):
        d = rng.choice(["/etc/{}".format(p["name"]), "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/etc"])
        p["files"].append("{}/{}{}".format(d, p["name"], "" if i == 0 else f"-{i}"))
    p["provides"] += [("config({})".format(p["name"]), "EQ", p["epoch"], p["ver"], p["rel"])] if rng.random() < 0.3 else []
byname = {p["name"]: p for p in packages}
byname["bash"]["files"] += ["/bin/bash", "/bin/sh"]
byname["glibc"]["provides"] += [("libc.so.6()(64bit)", None, None, None, None), ("libc.so.6(GLIBC_2.2.5)(64bit)", None, None, None, None),
                                ("libpthread.so.0()(64bit)", None, None, None, None), ("rtld(GNU_HASH)", None, None, None, None)]
byname["glibc"]["files"] += ["/sbin/ldconfig", "/usr/sbin/glibc_post_upgrade.x86_64"]
byname["postfix"]["provides"] += [("MTA", None, None, None, None), ("/usr/sbin/sendmail", None, None, None, None)]
byname["postfix"]["files"] += ["/usr/sbin/sendmail"]
byname["python"]["provides"] += [("python(abi)", "EQ", 0, "2.6", None)]
byname["shadow-utils"]["files"] += ["/usr/sbin/useradd", "/usr/sbin/groupadd"]
byname["chkconfig"]["files"] += ["/sbin/chkconfig"]
byname["info"]["files"] += ["/sbin/install-info"]
byname["coreutils"]["files"] += ["/bin/ls", "/bin/cp", "/bin/mv", "/bin/rm"]
byname["gawk"]["files"] += ["/bin/awk", "/bin/gawk"]
all_sonames = [(prov[0], p) for p in libs for prov in p["provides"] if prov[0].endswith("()(64bit)")]
core_set = set(core_names)

def requires(p):
    r = [("rpmlib(CompressedFileNames)", "LE", 0, "3.0.4", "1"), ("rpmlib(PayloadFilesHavePrefix)", "LE", 0, "4.0", "1"),
         ("rpmlib(PayloadIsXz)", "LE", 0, "5.2", "1")]
    if p["arch"] == "x86_64":
        r += [("libc.so.6()(64bit)", None, None, None, None), ("libc.so.6(GLIBC_2.2.5)(64bit)", None, None, None, None),
              ("rtld(GNU_HASH)", None, None, None, None)]
    if rng.random() < 0.5:
        r.append(("/bin/sh", None, None, None, None, "pre"))
    if rng.random() < 0.2:
        r.append(("/sbin/ldconfig", None, None, None, None, "pre"))
    # Core packages depend within the core set (keeps the core closure core-sized, as in CentOS).
    pool = [s for s in all_sonames if s[1]["name"] in core_set] if p["name"] in core_set else all_sonames
    for so, owner in rng.sample(pool, min(len(pool), rng.randint(0, 12 if p["name"] not in core_set else 4))):
        if owner is not p:
            r.append((so, None, None, None, None))
    if p["name"] in core_set:
        for other in rng.sample(core_names, 2):
            if other != p["name"] and other != "postfix":
                o = byname[other]
                r.append((other, "GE", o["epoch"], o["ver"], None))
    elif p["name"].endswith("-devel"):
        base = p["name"][:-6]
        if base in byname:
            b = byname[base]
            r.append((base, "EQ", b["epoch"], b["ver"], b["rel"]))
    return r

for p in packages:
    p["requires"] = requires(p)
byname["yum"]["requires"] += [("python(abi)", "EQ", 0, "2.6", None), ("rpm", "GE", 0, "0.1", None), ("python-urlgrabber", None, None, None, None)]
byname["rpm"]["requires"] += [("/bin/sh", None, None, None, None), ("coreutils", None, None, None, None)]

# Multilib: i686 copies of ~1,200 libraries (the os repo has them too).
for p in rng.sample(libs, min(len(libs), int(count * 0.18))):
    q = dict(p)
    q["arch"] = "i686"
    q["provides"] = [(n.replace("(64bit)", ""), f, e, v, r) for (n, f, e, v, r) in p["provides"] if "(x86-64)" not in n]
    q["requires"] = [tuple(x[:1]) + (None, None, None, None) if "(64bit)" in x[0] else x for x in p["requires"]]
    q["requires"] = [(x[0].replace("(64bit)", ""),) + tuple(x[1:]) for x in q["requires"]]
    packages.append(q)
while len(packages) < count:  # top up with leaf packages (documentation, data)
    q = add(rng.choice(prefixes) + "-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) + "-doc", "noarch")
    q["provides"].append((q["name"], "EQ", q["epoch"], q["ver"], q["rel"]))
    q["requires"] = requires(q)
packages = packages[:count]

def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")

def entry(t):
    name, flags, epoch, ver, rel = t[:5]
    s = f'<rpm:entry name="{esc(name)}"'
    if flags:
        s += f' flags="{flags}" epoch="{epoch}" ver="{ver}"'
        if rel:
            s += f' rel="{rel}"'
    if len(t) > 5:
        s += ' pre="1"'
    return s + "/>"

chunks = [('<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
           f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(packages)}">\n')]
for p in packages:
    fname = "{}-{}-{}.{}.rpm".format(p["name"], p["ver"], p["rel"], p["arch"])
    desc = " ".join(rng.choice(words) for _ in range(rng.randint(60, 560)))
    size = rng.randint(20000, 3000000)
    chunks.append(
        '<package type="rpm">\n  <name>{}</name>\n  <arch>{}</arch>\n  <version epoch="{}" ver="{}" rel="{}"/>\n'
        '  <checksum type="sha256" pkgid="YES">{}</checksum>\n  <summary>{}</summary>\n  <description>{}</description>\n'
        '  <packager>CentOS BuildSystem &lt;http://bugs.centos.org&gt;</packager>\n  <url>http://example.org/{}</url>\n'
        '  <time file="1490000000" build="1489000000"/>\n  <size package="{}" installed="{}" archive="{}"/>\n'
        '  <location href="Packages/{}"/>\n  <format>\n    <rpm:license>GPLv2+</rpm:license>\n    <rpm:vendor>CentOS</rpm:vendor>\n'
        '    <rpm:group>System Environment/Base</rpm:group>\n    <rpm:buildhost>c1bm.rdu2.centos.org</rpm:buildhost>\n'
        '    <rpm:sourcerpm>{}-{}-{}.src.rpm</rpm:sourcerpm>\n    <rpm:header-range start="1384" end="{}"/>\n'
        '    <rpm:provides>\n{}\n    </rpm:provides>\n    <rpm:requires>\n{}\n    </rpm:requires>\n{}  </format>\n</package>\n'.format(
            p["name"], p["arch"], p["epoch"], p["ver"], p["rel"], hashlib.sha256(fname.encode()).hexdigest(),
            esc(" ".join(rng.choice(words) for _ in range(6))), desc, p["name"], size, size * 3, size * 3 + 1000, fname,
            p["name"], p["ver"], p["rel"], rng.randint(5000, 90000),
            "\n".join("      " + entry(t) for t in p["provides"]), "\n".join("      " + entry(t) for t in p["requires"]),
            "".join(f'    <file>{esc(f)}</file>\n' for f in p["files"])))
chunks.append("</metadata>\n")
primary = "".join(chunks).encode()

group = [('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE comps PUBLIC "-//CentOS//DTD Comps info//EN" "comps.dtd">\n<comps>\n'
          '  <group>\n    <id>core</id>\n    <name>Core</name>\n    <description>Smallest possible installation</description>\n'
          '    <default>true</default>\n    <uservisible>false</uservisible>\n    <packagelist>\n')]
for n in core_names:
    if n in ("kernel", "grub", "xfsprogs"):
        continue
    group.append('      <packagereq type="{}">{}</packagereq>\n'.format("default" if n in ("postfix", "cronie", "rsyslog") else "mandatory", n))
group.append("    </packagelist>\n  </group>\n</comps>\n")
comps = "".join(group).encode()

def write(name, data):
    with open(out + "/repodata/" + name, "wb") as f:
        f.write(data)

gz = gzip.compress(primary, 6, mtime=0)
write("primary.xml.gz", gz)
write("comps.xml", comps)
now = int(time.time())
def data(type_, href, blob, opened=None):
    s = f'  <data type="{type_}">\n    <checksum type="sha256">{hashlib.sha256(blob).hexdigest()}</checksum>\n'
    if opened is not None:
        s += f'    <open-checksum type="sha256">{hashlib.sha256(opened).hexdigest()}</open-checksum>\n'
    s += f'    <location href="repodata/{href}"/>\n    <timestamp>{now}</timestamp>\n    <size>{len(blob)}</size>\n'
    if opened is not None:
        s += f'    <open-size>{len(opened)}</open-size>\n'
    return s + "  </data>\n"
repomd = ('<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" '
          f'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>{now}</revision>\n'
          + data("primary", "primary.xml.gz", gz, primary) + data("group", "comps.xml", comps) + "</repomd>\n")
write("repomd.xml", repomd.encode())
print(f"{len(packages)} packages, primary.xml {len(primary) / 1e6:.1f} MB ({len(gz) / 1e6:.1f} MB gzipped)")
