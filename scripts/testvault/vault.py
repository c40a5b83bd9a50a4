#!/usr/bin/env python3
"""Builds the test vault: a signed, EL-shaped CentOS 6 stand-in repository made
from this machine's Debian packages (see README.md in this directory).

    vault.py inputs DEBDIR      print the build's inputs (hashed by build-vault.sh)
    vault.py build WORK DEBDIR  build the vault into WORK (an empty directory)

Called by build-vault.sh, which does the caching and the atomic rename.
"""
import concurrent.futures
import gzip
import hashlib
import json
import lzma
import os
import shutil
import stat
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "files")

# nvme: whether the release's kernel has an nvme driver (CentOS 6 kernels have
# one from 6.5, 2.6.32-431, on; 6.4 stands in for 6.0-6.4, which have none).
# devel: whether kernel-devel is built (only ENA-eligible releases need it; 6.4
# leaves it out to keep the vault small).
RELEASES = {
    "6.4": {"kernel": "358.el6", "centos_release": "4.el6.centos.10", "tzdata": "2012j-1.el6",
            "nvme": False, "devel": False},
    "6.8": {"kernel": "642.el6", "centos_release": "8.el6.centos.12.3", "tzdata": "2016c-1.el6",
            "nvme": True, "devel": True},
    "6.9": {"kernel": "696.el6", "centos_release": "9.el6.12.3", "tzdata": "2017b-1.el6",
            "nvme": True, "devel": True},
}
ONLY_IN = {"only-in-6.9": "6.9"}
# A release's updates repository (vault/<release>/updates/x86_64): a newer
# kernel of the same kABI, as CentOS 6.9's updates carried 2.6.32-696.30.1.el6
# (the same Debian kernel renamed, so modules of the GA kernel's extra/ are
# compatible and weak-modules links them).
UPDATES = {"6.9": {"kernel": "696.30.1.el6"}}
KERNEL_VERSION = "2.6.32"

# Debian packages whose dependency closure is repackaged one to one.
DEBIAN_ROOTS = [
    "dnf", "rpm", "busybox-static", "bash", "coreutils", "passwd", "curl", "xfsprogs", "tzdata",
    "gcc", "make", "libc6-dev", "libc6-i386", "kmod", "grep", "sed", "findutils", "mawk",
    "diffutils", "gzip", "tar", "xz-utils", "cpio", "util-linux", "gnupg",
]
# Debian packages not installed on the builder: `apt-get download` + `dpkg -x`.
DOWNLOADS = ["linux-image-{k}", "linux-headers-{k}", "linux-headers-{abi}-common", "linux-kbuild-{series}",
             "grub-legacy", "sudo", "acpid", "ntpsec"]
# Downloads repackaged with their own files only: their Debian dependencies
# (python3 for ntpsec's tools) stay out of the closure.
DOWNLOADS_ALONE = {"acpid", "ntpsec"}
# The modules the stand-in kernels keep (with their modules.dep closure): what
# QEMU's disks and NIC, ext4, the ACPI power button and Xen/Nitro need. The
# generic kernel's other ~4000 modules, and its in-tree ena (CentOS 6 kernels
# have none: ENA comes only from kmod-ena), are dropped.
KERNEL_MODULES = ["crc32c_generic", "ext4", "ata_piix", "ata_generic", "sd_mod", "virtio_pci", "virtio_blk",
                  "virtio_scsi", "virtio_net", "xen_blkfront", "xen_netfront", "button", "evdev"]
# Debian name -> CentOS name, where centos6-ami or CentOS habit depends on it.
RENAME = {"dnf": "yum", "busybox-static": "busybox", "passwd": "shadow-utils", "libc6": "glibc",
          "libc6-dev": "glibc-devel"}
EXTRA_PROVIDES = {
    "bash": ["/bin/sh", "/bin/bash"],
    "yum": ["dnf", "/usr/bin/yum"],
    "busybox": ["busybox-static"],
    "coreutils": ["/bin/cat", "/bin/ls"],
    "glibc": ["libc6"],
}
# Where the payload is not xz (CentOS 6 uses xz; at least one gzip package).
GZIP_PAYLOAD = {"setup", "passwd"}
EXCLUDE_PREFIXES = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/",
                    "/usr/share/lintian/", "/usr/share/bug/", "/usr/share/doc-base/")
EXCLUDE_PATHS = {"/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale",
                 "/usr/share/lintian", "/usr/share/bug", "/usr/share/doc-base",
                 "/usr/bin/sh",  # bash's, not dash's: CentOS's /bin/sh is bash
                 "/etc/issue", "/etc/issue.net"}  # centos-release's, not base-files'
MERGED = ("bin", "sbin", "lib", "lib64", "lib32", "libx32")

CORE_GROUP = ["filesystem", "setup", "bash", "coreutils", "centos-release", "initscripts", "rpm", "yum",
              "busybox", "openssh-server", "sudo", "passwd", "shadow-utils", "curl", "selinux-policy",
              "tzdata", "postfix", "util-linux", "grep", "sed", "findutils", "gzip", "tar", "kmod"]
BOOTSTRAP_SEED = ["yum", "rpm", "bash", "coreutils", "centos-release"]
KEY_UID = "CentOS-6 Test Key (centos6-ami test vault only) <test-vault@centos6-ami.invalid>"
OTHER_UID = "Other Test Key (not trusted) <other-key@centos6-ami.invalid>"


def run(args, **kw):
    kw.setdefault("check", True)
    return subprocess.run(args, **kw)  # noqa: PLW1510 -- check is in kw: True unless the caller says otherwise


def out(args, **kw):
    return run(args, capture_output=True, text=True, **kw).stdout


def log(msg):
    print(f"build-vault: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- Debian side

def dpkg_db():
    fmt = "${Package}\t${Status}\t${Version}\t${Architecture}\t${Pre-Depends}, ${Depends}\t${Provides}\t${binary:Summary}\n"
    db = {}
    for line in out(["dpkg-query", "-W", "-f=" + fmt]).splitlines():
        name, status, version, arch, deps, provides, summary = line.split("\t")
        if not status.endswith(" installed"):
            continue
        db[name] = {"version": version, "arch": arch, "deps": deps, "summary": summary,
                    "provides": [p.strip().split()[0].split(":")[0] for p in provides.split(",") if p.strip()]}
    return db


def first_installed(alternatives, db):
    """The first alternative that is installed (or provided by an installed package)."""
    names = [a.strip().split()[0].split(":")[0] for a in alternatives.split("|") if a.strip()]
    for n in names:
        if n in db:
            return n
    for n in names:
        for p, info in sorted(db.items()):
            if n in info["provides"]:
                return p
    return None


def dependencies(depends, db):
    result = []
    for d in depends.split(","):
        if d.strip():
            p = first_installed(d, db)
            if p:
                result.append(p)
    return result


def closure(roots, db):
    seen, todo = [], list(roots)
    while todo:
        p = todo.pop(0)
        if p in seen or p not in db:
            continue
        seen.append(p)
        todo.extend(dependencies(db[p]["deps"], db))
    return sorted(seen)


_apt_cache = {}


def apt_show(pkgs):
    """Candidate Version and Depends of packages, in one apt-cache call (apt is slow to start)."""
    missing = [p for p in pkgs if p not in _apt_cache]
    if missing:
        text = out(["apt-cache", "show", "--no-all-versions"] + missing)
        for record in text.split("\n\n"):
            fields = {}
            for line in record.splitlines():
                if line and not line[0].isspace() and ":" in line:
                    k, v = line.split(":", 1)
                    fields[k] = v.strip()
            if "Package" in fields:
                _apt_cache[fields["Package"]] = fields
    for p in pkgs:
        if p not in _apt_cache:
            raise SystemExit(f"build-vault: no candidate version for '{p}' (apt-get update?)")
    return {p: _apt_cache[p] for p in pkgs}


def kernel_abi():
    """The Debian generic kernel the metapackage points at, e.g. 6.1.0-56-amd64.
    The generic kernel, not the cloud one: it has nvme (and ext4, libata) as
    modules, as CentOS 6.5+ kernels have nvme, so they must come through the
    initramfs; the cloud kernel has NVMe built in."""
    depends = apt_show(["linux-image-amd64"])["linux-image-amd64"].get("Depends", "")
    for d in depends.split(","):
        d = d.strip().split()[0]
        if d.startswith("linux-image-"):
            return d[len("linux-image-"):]
    raise SystemExit("build-vault: cannot find the Debian kernel (apt-cache show linux-image-amd64); run apt-get update")


def download_names():
    k = kernel_abi()
    abi = k[:-len("-amd64")]          # 6.1.0-56
    series = ".".join(abi.split(".")[:2])  # 6.1
    names = [d.format(k=k, abi=abi, series=series) for d in DOWNLOADS]
    apt_show(names)
    return k, names


def candidate(pkg):
    return apt_show([pkg])[pkg]["Version"]


def deb_control(path, field):
    return out(["dpkg-deb", "-f", path, field]).strip()


def inputs(debdir):
    """Everything the vault depends on besides the generator's own files."""
    db = dpkg_db()
    k, downloads = download_names()
    lines = [f"kernel-abi {k}"]
    # the tools whose output lands in packages besides rpmbuild's: gcc is in
    # the closure (nss_pkgs compile with it), patchelf is not
    lines.append(f"tool patchelf {out(['dpkg-query', '-W', '-f=${Version}', 'patchelf'], check=False).strip()}")
    for d in downloads:
        lines.append(f"download {d} {candidate(d)}")
    roots = list(DEBIAN_ROOTS)
    for d in downloads:
        deb = fetch(debdir, d, dry=True)
        if deb and d not in DOWNLOADS_ALONE:
            roots += dependencies(deb_control(deb, "Depends"), db)
    for p in closure(roots, db):
        lines.append(f"debian {p} {db[p]['version']} {db[p]['arch']}")
    return "\n".join(lines) + "\n"


def fetch(debdir, pkg, dry=False):
    version = candidate(pkg)
    prefix = f"{pkg}_{version.split(':')[-1]}_"
    os.makedirs(debdir, exist_ok=True)
    # apt-get download writes an epoch as %3a (acpid_1%3a2.0.33-2+b1_amd64.deb)
    prefixes = (prefix, f"{pkg}_{version.replace(':', '%3a')}_")
    for f in os.listdir(debdir):
        if f.startswith(prefixes) and f.endswith(".deb"):
            return os.path.join(debdir, f)
    if dry:
        return None
    log(f"apt-get download {pkg}={version}")
    run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", f"{pkg}={version}"], cwd=debdir,
        stdout=subprocess.DEVNULL)
    return fetch(debdir, pkg, dry=True)


def dpkg_list(pkg):
    for suffix in ("", ":amd64", ":i386"):
        p = f"/var/lib/dpkg/info/{pkg}{suffix}.list"
        if os.path.exists(p):
            with open(p) as f:
                return [l.rstrip("\n") for l in f if l.strip()]
    return []


def diversions():
    """Paths diverted by one package away from another: {path: diverter}."""
    result = {}
    lines = out(["dpkg-divert", "--list"]).splitlines()
    for l in lines:
        # "diversion of /bin/sh to /bin/sh.distrib by dash"
        parts = l.split()
        if len(parts) >= 6 and parts[0] == "diversion" and parts[1] == "of":
            result[canonical(parts[2])] = parts[-1]
    return result


def canonical(path):
    """Merged /usr: /bin/x -> /usr/bin/x (and sbin, lib, lib64, lib32)."""
    parts = path.split("/")
    if len(parts) > 1 and parts[1] in MERGED:
        return "/usr" + path
    return path


def alternatives():
    """dpkg alternatives' master links, e.g. {'/usr/bin/awk': '/usr/bin/mawk'}."""
    result = {}
    base = "/var/lib/dpkg/alternatives"
    if not os.path.isdir(base):
        return result
    for name in os.listdir(base):
        try:
            with open(os.path.join(base, name)) as f:
                lines = f.read().splitlines()
            link = canonical(lines[1])
            target = os.path.realpath(os.path.join("/etc/alternatives", name))
            if os.path.exists(target) and os.path.islink(link):
                result[link] = canonical(target)
        except (OSError, IndexError):
            pass
    return result


def excluded(path):
    return path in EXCLUDE_PATHS or path.startswith(EXCLUDE_PREFIXES)


# ---------------------------------------------------------------- RPM side

def rpm_evr(debian_version):
    epoch = None
    v = debian_version
    if ":" in v:
        epoch, v = v.split(":", 1)
    if "-" in v:
        upstream, rev = v.rsplit("-", 1)
    else:
        upstream, rev = v, "0"
    clean = lambda s: s.replace("-", "_").replace(":", "_")
    return epoch, clean(upstream), clean(rev)


class Package:
    """One RPM to build: its header fields and a staging tree (the buildroot)."""

    def __init__(self, name, version, release, summary, arch="x86_64", epoch=None):
        self.name, self.version, self.release, self.arch, self.epoch = name, version, release, arch, epoch
        self.summary = summary or name
        self.requires, self.provides = [], []
        self.files = None          # explicit %files lines; None: every top-level entry of the stage
        self.ghosts = []
        self.scripts = {}          # e.g. {"posttrans": "..."}
        self.stage = None
        self.group = "shared"      # or a release
        self.debian = None         # source Debian package and version

    @property
    def nevra(self):
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"

    def spec(self):
        lines = [f"Name: {self.name}", f"Version: {self.version}", f"Release: {self.release}",
                 f"Summary: {self.summary}", "License: see Debian's copyright files", "AutoReqProv: no",
                 "Group: System Environment/Base", "URL: https://www.debian.org/",
                 "Vendor: centos6-ami test vault", "Packager: centos6-ami test vault"]
        if self.epoch:
            lines.append(f"Epoch: {self.epoch}")
        if self.arch == "noarch":
            lines.append("BuildArch: noarch")
        for r in sorted(set(self.requires)):
            if r != self.name:
                lines.append(f"Requires: {r}")
        for p in sorted(set(self.provides)):
            lines.append(f"Provides: {p}")
        lines += ["", "%description",
                  f"{self.summary}. Test vault stand-in"
                  + (f" repackaged from Debian's {self.debian}." if self.debian else "."), ""]
        for when, body in self.scripts.items():
            lines += [f"%{when}", body, ""]
        lines += ["%files", "%defattr(-,root,root)"]
        if self.files is None:
            for entry in sorted(os.listdir(self.stage)):
                lines.append("/" + entry)
        else:
            lines += self.files
        for g in self.ghosts:
            lines.append(f"%ghost {g}")
        return "\n".join(lines) + "\n"


def rpmbuild(pkg, work, rpmdir):
    specdir = os.path.join(work, "specs")
    os.makedirs(specdir, exist_ok=True)
    spec = os.path.join(specdir, f"{pkg.nevra}.spec")
    with open(spec, "w") as f:
        f.write(pkg.spec())
    payload = "w9.gzdio" if pkg.name in GZIP_PAYLOAD else "w1.xzdio"
    os.makedirs(rpmdir, exist_ok=True)
    topdir = os.path.join(work, "rpmbuild")
    # rpmbuild makes its topdir's directories itself and fails when a parallel
    # build made one between its check and its mkdir: make them all first.
    for d in ("BUILD", "BUILDROOT", "RPMS", "SOURCES", "SPECS", "SRPMS"):
        os.makedirs(os.path.join(topdir, d), exist_ok=True)
    result = subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--buildroot", pkg.stage,
         "--define", f"_topdir {topdir}", "--define", f"_rpmdir {rpmdir}",
         "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
         "--define", f"_binary_payload {payload}", "--define", "__os_install_post %{nil}",
         "--define", "__arch_install_post %{nil}", "--define", "debug_package %{nil}",
         "--define", "_build_id_links none", "--define", "_binary_filedigest_algorithm 8",
         "--define", "source_date_epoch_from_changelog 0", "--define", "_buildhost centos6-ami-test-vault",
         spec], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build-vault: rpmbuild of {pkg.nevra} failed:\n{result.stderr[-3000:]}")
    path = os.path.join(rpmdir, f"{pkg.nevra}.rpm")
    if not os.path.exists(path):
        raise SystemExit(f"build-vault: rpmbuild did not write {path}")
    return path


# ---------------------------------------------------------------- staging

def stage_from_host(paths, stage):
    """Copies host paths (canonical, absolute) into stage with tar, keeping modes and links."""
    os.makedirs(stage, exist_ok=True)
    listfile = stage + ".list"
    with open(listfile, "w") as f:
        f.writelines(p.lstrip("/") + "\n" for p in paths)
    tar_c = subprocess.Popen(["tar", "-C", "/", "--no-recursion", "-cf", "-", "-T", listfile],
                             stdout=subprocess.PIPE)
    run(["tar", "-C", stage, "-xpf", "-"], stdin=tar_c.stdout)
    tar_c.stdout.close()
    if tar_c.wait() != 0:
        raise SystemExit(f"build-vault: tar of {listfile} failed")
    os.unlink(listfile)


def write(stage, path, content, mode=0o644):
    full = os.path.join(stage, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    with open(full, "wb") as f:
        f.write(content)
    os.chmod(full, mode)


def copy(stage, path, source, mode=None):
    with open(source, "rb") as f:
        data = f.read()
    write(stage, path, data, mode if mode is not None else stat.S_IMODE(os.stat(source).st_mode))


def symlink(stage, path, target):
    full = os.path.join(stage, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.lexists(full):
        os.unlink(full)
    os.symlink(target, full)


def mkdir(stage, path, mode=0o755):
    full = os.path.join(stage, path.lstrip("/"))
    os.makedirs(full, exist_ok=True)
    os.chmod(full, mode)


def dpkg_x(deb, dest):
    os.makedirs(dest, exist_ok=True)
    run(["dpkg-deb", "-x", deb, dest])
    return dest


def merge_usr(tree):
    """Moves a dpkg -x tree's bin/sbin/lib* into usr/ (merged /usr)."""
    for d in MERGED:
        src = os.path.join(tree, d)
        if os.path.isdir(src) and not os.path.islink(src):
            dst = os.path.join(tree, "usr", d)
            os.makedirs(dst, exist_ok=True)
            run(["cp", "-a", src + "/.", dst + "/"])
            shutil.rmtree(src)


def prune(tree):
    for p in EXCLUDE_PATHS | {x.rstrip("/") for x in EXCLUDE_PREFIXES}:
        full = os.path.join(tree, p.lstrip("/"))
        if os.path.islink(full) or os.path.isfile(full):
            if p.startswith("/usr/share/"):
                os.unlink(full)
        elif os.path.isdir(full):
            shutil.rmtree(full)


# ---------------------------------------------------------------- the packages

def debian_packages(db, names, work):
    """One RPM per Debian package of the closure (passwd split in two)."""
    divs = diversions()
    alts = alternatives()
    claimed = set()
    pkgs = []
    for deb in names:
        info = db[deb]
        name = RENAME.get(deb, deb)
        epoch, version, release = rpm_evr(info["version"])
        pkg = Package(name, version, release, info["summary"],
                      arch="noarch" if info["arch"] == "all" else "x86_64", epoch=epoch)
        pkg.debian = f"{deb} {info['version']}"
        paths = []
        for raw in dpkg_list(deb):
            if raw in ("/.", "/"):
                continue
            p = canonical(raw)
            if excluded(p) or divs.get(p, deb) != deb:
                continue
            if not os.path.lexists(p):
                continue
            if not os.path.isdir(p) or os.path.islink(p):
                if p in claimed:
                    continue
                claimed.add(p)
            paths.append(p)
        # dpkg alternatives' public links (made by maintainer scripts, so not in dpkg -L)
        own = set(paths)
        alt_links = {}
        for link, target in alts.items():
            if target in own and link not in claimed:
                alt_links[link] = target
                claimed.add(link)
        deps = [RENAME.get(d, d) for d in dependencies(info["deps"], db) if d in names and d != deb]
        pkg.requires = deps + ["filesystem"]
        pkg.provides = EXTRA_PROVIDES.get(name, []) + ([deb] if name != deb else [])
        pkg.stage = os.path.join(work, "stage", pkg.nevra)
        stage_from_host(paths, pkg.stage)
        for link, target in alt_links.items():  # /usr/bin/awk -> mawk, not -> /etc/alternatives/awk
            symlink(pkg.stage, link, os.path.relpath(target, os.path.dirname(link)))
        if not os.listdir(pkg.stage):
            mkdir(pkg.stage, f"/usr/share/{name}")  # nothing left after pruning: own one dir
        if name == "bash":
            symlink(pkg.stage, "/usr/bin/sh", "bash")
        if name == "yum":
            copy(pkg.stage, "/usr/bin/yum", os.path.join(FILES, "yum"), 0o755)
            copy(pkg.stage, "/etc/yum.conf", os.path.join(FILES, "yum.conf"), 0o644)
            mkdir(pkg.stage, "/etc/yum/vars")
            mkdir(pkg.stage, "/etc/yum.repos.d")
            mkdir(pkg.stage, "/var/cache/yum")
            pkg.requires.append("bash")
        if name == "rpm":
            # Debian's rpm keeps its database in ~/.rpmdb; CentOS's in /var/lib/rpm.
            write(pkg.stage, "/etc/rpm/macros.dbpath", "%_dbpath /var/lib/rpm\n")
            mkdir(pkg.stage, "/var/lib/rpm")
            load_nss_first(pkg.stage)
            pkg.requires.append("libnss3.so()(64bit)")
        if name == "shadow-utils":
            copy(pkg.stage, "/etc/login.defs", os.path.join(FILES, "login.defs"), 0o644)
            passwd = Package("passwd", version, release, "The passwd utility for setting or changing passwords",
                             epoch=epoch)
            passwd.debian = pkg.debian
            passwd.stage = os.path.join(work, "stage", passwd.nevra)
            for p in ("/usr/bin/passwd", "/etc/pam.d/passwd"):
                src = os.path.join(pkg.stage, p.lstrip("/"))
                if os.path.lexists(src):
                    dst = os.path.join(passwd.stage, p.lstrip("/"))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    os.rename(src, dst)
            passwd.requires = ["shadow-utils", "filesystem"] + [r for r in pkg.requires if r.startswith("libpam")]
            pkgs.append(passwd)
        pkgs.append(pkg)
    return pkgs


def load_nss_first(stage):
    """Makes every executable of the rpm package that links librpmio load the
    vault's libnss3.so (nss_pkgs) through a DT_NEEDED entry ahead of all
    others, as CentOS 6's rpm 4.8 loads NSS: its librpmio.so.1 links libnss3.
    `rpm -K` and `rpm --import` exec rpmkeys (rpmpopt aliases), so rpm alone
    is not enough.
    The entry must come first: the global lookup scope is the executable,
    then its DT_NEEDED in order (breadth-first), so only a libnss3.so ahead
    of librpm.so.9 and librpmio.so.9 interposes librpmio's rpmDigestFinal for
    calls from rpm, librpm and librpmio itself. patchelf --add-needed puts
    the new entry first (checked below, so a patchelf that appends fails the
    build instead of silently not interposing)."""
    bindir = os.path.join(stage, "usr/bin")
    patched = []
    for name in sorted(os.listdir(bindir)):
        exe = os.path.join(bindir, name)
        if os.path.islink(exe) or not os.path.isfile(exe):
            continue
        with open(exe, "rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        needed = out(["patchelf", "--print-needed", exe]).split()
        if "librpmio.so.9" not in needed:
            continue
        run(["patchelf", "--add-needed", "libnss3.so", exe])
        needed = out(["patchelf", "--print-needed", exe]).split()
        if needed[0] != "libnss3.so":
            raise SystemExit(f"build-vault: libnss3.so is not the first DT_NEEDED of {exe}: {needed}")
        patched.append(name)
    if "rpm" not in patched or "rpmkeys" not in patched:
        raise SystemExit(f"build-vault: rpm and rpmkeys not both patched to load libnss3.so ({patched})")


# CentOS 6's rpm 4.8 computes every digest and checks every signature
# through NSS, and NSS loads its crypto at run time: libnss3.so dlopens its
# PKCS #11 module libsoftokn3.so (nss-softokn), which dlopens libfreebl3.so
# (nss-softokn-freebl). No ELF file rpm loads names those two in DT_NEEDED;
# Requires do (EL6's nss requires libsoftokn3.so()(64bit) and
# libfreebl3.so()(64bit); here nss requires softokn's and nss-softokn
# freebl's, so a bootstrap must follow them transitively; FIDELITY.md has the
# genuine shape). Without them genuine rpm 4.8 reports every digest NOT OK and
# every signature BAD and installs nothing. The three packages below give
# the vault that shape (files/nss-*.c say how), with CentOS 6.9's versions.
# The libraries live in the directory Debian's loader searches by default
# (the vault's /usr/lib64, CentOS's place for them, is not on its path).
NSS_LIBDIR = "/usr/lib/x86_64-linux-gnu"
NSS_PACKAGES = [
    # name, version, release, library, C source, provides, requires, summary
    ("nss", "3.28.4", "3.el6_9", "libnss3.so", "nss-libnss3.c", ["libnss3.so()(64bit)"],
     ["libsoftokn3.so()(64bit)"], "Network Security Services (test vault stand-in: rpm's digest check)"),
    ("nss-softokn", "3.14.3", "23.3.el6_8", "libsoftokn3.so", "nss-softokn.c", ["libsoftokn3.so()(64bit)"],
     ["libfreebl3.so()(64bit)"], "Network Security Services Softoken Module (test vault stand-in)"),
    ("nss-softokn-freebl", "3.14.3", "23.3.el6_8", "libfreebl3.so", "nss-freebl.c", ["libfreebl3.so()(64bit)"],
     [], "Freebl library for the Network Security Services (test vault stand-in)"),
]


def nss_pkgs(work):
    """nss, nss-softokn, nss-softokn-freebl: one shared library each, compiled
    from files/ with the host gcc; each links at most libc (glibc 2.34+ has
    dlopen in libc), so their ELF closure is in the vault's glibc."""
    pkgs = []
    for name, version, release, lib, source, provides, requires, summary in NSS_PACKAGES:
        p = synthetic(name, version, release, summary, work, arch="x86_64")
        target = os.path.join(p.stage, NSS_LIBDIR.lstrip("/"), lib)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-Wl,-soname,{lib}",
             "-Wl,--no-undefined", "-o", target, os.path.join(FILES, source)])
        os.chmod(target, 0o755)
        needed = out(["patchelf", "--print-needed", target]).split()
        if not set(needed) <= {"libc.so.6"}:
            raise SystemExit(f"build-vault: {lib} needs {needed}, not only libc.so.6")
        p.files = [f"{NSS_LIBDIR}/{lib}"]
        p.provides = provides + [f"{name}(x86-64) = {version}-{release}"]  # %{_isa}, as EL6's packages
        p.requires = ["filesystem", "glibc"] + requires
        pkgs.append(p)
    return pkgs


def synthetic(name, version, release, summary, work, arch="noarch", group="shared"):
    pkg = Package(name, version, release, summary, arch=arch)
    pkg.group = group
    pkg.stage = os.path.join(work, "stage", f"{pkg.nevra}.{group}")
    os.makedirs(pkg.stage, exist_ok=True)
    return pkg


def filesystem_pkg(work):
    pkg = synthetic("filesystem", "2.4.30", "3.el6", "The basic directory layout for a Linux system", work,
                    arch="x86_64")
    s = pkg.stage
    for d in MERGED[:5]:
        symlink(s, "/" + d, "usr/" + d)
    dirs = {"/boot": 0o555, "/dev": 0o755, "/etc": 0o755, "/etc/pki": 0o755, "/etc/pki/rpm-gpg": 0o755,
            "/etc/sysconfig": 0o755, "/etc/sysconfig/network-scripts": 0o755, "/etc/rc.d": 0o755,
            "/etc/rc.d/init.d": 0o755, "/etc/yum": 0o755, "/etc/yum/vars": 0o755, "/etc/yum.repos.d": 0o755,
            "/etc/skel": 0o755, "/etc/sudoers.d": 0o750, "/home": 0o755, "/media": 0o755, "/mnt": 0o755,
            "/opt": 0o755, "/proc": 0o555, "/root": 0o550, "/run": 0o755, "/srv": 0o755, "/sys": 0o555,
            "/tmp": 0o1777, "/usr": 0o755, "/usr/bin": 0o755, "/usr/sbin": 0o755, "/usr/lib": 0o755,
            "/usr/lib64": 0o755, "/usr/lib32": 0o755, "/usr/include": 0o755, "/usr/libexec": 0o755,
            "/usr/local": 0o755, "/usr/local/bin": 0o755, "/usr/local/sbin": 0o755, "/usr/share": 0o755,
            "/usr/src": 0o755, "/usr/src/kernels": 0o755, "/usr/lib/modules": 0o755, "/var": 0o755,
            "/var/cache": 0o755, "/var/empty": 0o555, "/var/lib": 0o755, "/var/lock": 0o755,
            "/var/lock/subsys": 0o755, "/var/log": 0o755, "/var/run": 0o755, "/var/spool": 0o755,
            "/var/spool/mail": 0o775, "/var/tmp": 0o1777, "/var/cache/yum": 0o755}
    for d, mode in sorted(dirs.items()):
        mkdir(s, d, mode)
    return pkg


SETUP_PASSWD = """root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/spool/mail:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucp:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
games:x:12:100:games:/usr/games:/sbin/nologin
gopher:x:13:30:gopher:/var/gopher:/sbin/nologin
ftp:x:14:50:FTP User:/var/ftp:/sbin/nologin
nobody:x:99:99:Nobody:/:/sbin/nologin
"""
SETUP_GROUP = """root:x:0:
bin:x:1:bin,daemon
daemon:x:2:bin,daemon
sys:x:3:bin,adm
adm:x:4:adm,daemon
tty:x:5:
disk:x:6:
lp:x:7:daemon
mem:x:8:
kmem:x:9:
wheel:x:10:
mail:x:12:mail
uucp:x:14:
man:x:15:
games:x:20:
gopher:x:30:
video:x:39:
dip:x:40:
ftp:x:50:
lock:x:54:
audio:x:63:
nobody:x:99:
users:x:100:
floppy:x:19:
utmp:x:22:
utempter:x:35:
shadow:x:42:
"""


def setup_pkg(work):
    pkg = synthetic("setup", "2.8.14", "23.el6", "A set of system configuration and setup files", work)
    s = pkg.stage
    write(s, "/etc/passwd", SETUP_PASSWD)
    write(s, "/etc/group", SETUP_GROUP)
    users = [l.split(":")[0] for l in SETUP_PASSWD.splitlines()]
    groups = [l.split(":")[0] for l in SETUP_GROUP.splitlines()]
    write(s, "/etc/shadow", "".join(f"{u}:*:15980:0:99999:7:::\n" for u in users), 0o000)
    write(s, "/etc/gshadow", "".join(f"{g}:::\n" for g in groups), 0o000)
    write(s, "/etc/hosts", "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"
                           "::1         localhost localhost.localdomain localhost6 localhost6.localdomain6\n")
    write(s, "/etc/shells", "/bin/sh\n/bin/bash\n/sbin/nologin\n")
    write(s, "/etc/host.conf", "multi on\n")
    write(s, "/etc/profile", "# /etc/profile (test vault)\n"
                             "export PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
                             "for i in /etc/profile.d/*.sh; do [ -r \"$i\" ] && . \"$i\"; done\nunset i\n")
    mkdir(s, "/etc/profile.d")
    write(s, "/etc/motd", "")
    write(s, "/etc/fstab", "")
    write(s, "/usr/share/doc/setup-2.8.14/COPYING-test-vault-setup-package-notice",
          "The setup package of the centos6-ami test vault (synthetic; CentOS 6 content).\n")
    return pkg


def centos_release_pkg(release, key_asc, work):
    minor = release.split(".")[1]
    pkg = synthetic("centos-release", "6", RELEASES[release]["centos_release"], "CentOS release file", work,
                    arch="x86_64", group=release)
    s = pkg.stage
    line = f"CentOS release {release} (Final)\n"
    write(s, "/etc/centos-release", line)
    symlink(s, "/etc/redhat-release", "centos-release")
    symlink(s, "/etc/system-release", "centos-release")
    write(s, "/etc/system-release-cpe", "cpe:/o:centos:linux:6:GA\n")
    write(s, "/etc/issue", line + "Kernel \\r on an \\m\n\n")
    write(s, "/etc/issue.net", line + "Kernel \\r on an \\m\n")
    copy(s, "/etc/yum.repos.d/CentOS-Base.repo", os.path.join(FILES, "CentOS-Base.repo"), 0o644)
    write(s, "/etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-6", key_asc)
    write(s, "/etc/rpm/macros.dist", "# dist macros.\n\n%rhel 6\n%centos_ver 6\n%centos 6\n%dist .el6\n%el6 1\n")
    pkg.provides = [f"redhat-release = 6-{minor}", f"system-release = 6-{minor}",
                    "system-release(releasever) = 6", f"centos-release(upstream) = {release}"]
    pkg.requires = ["filesystem"]
    return pkg


def tzdata_pkg(release, debian_stage, work):
    version, rel = RELEASES[release]["tzdata"].split("-")
    pkg = synthetic("tzdata", version, rel, "Timezone data", work, group=release)
    run(["cp", "-a", debian_stage + "/.", pkg.stage + "/"])
    pkg.requires = ["filesystem"]
    return pkg


def small_pkgs(work):
    pkgs = []
    p = synthetic("openssh-server", "5.3p1", "122.el6", "An open source SSH server daemon (configuration only)",
                  work, arch="x86_64")
    copy(p.stage, "/etc/ssh/sshd_config", os.path.join(FILES, "sshd_config"), 0o600)
    write(p.stage, "/etc/sysconfig/sshd", "# Configuration file for the sshd service.\n")
    os.chmod(os.path.join(p.stage, "etc/ssh"), 0o755)
    p.requires = ["filesystem"]
    pkgs.append(p)

    p = synthetic("selinux-policy", "3.7.19", "307.el6", "SELinux policy configuration", work)
    copy(p.stage, "/etc/selinux/config", os.path.join(FILES, "selinux-config"), 0o644)
    mkdir(p.stage, "/etc/selinux/targeted")
    p.requires = ["filesystem"]
    pkgs.append(p)

    p = synthetic("postfix", "2.6.6", "8.el6", "Postfix Mail Transport Agent (test vault stub)", work,
                  arch="x86_64")
    write(p.stage, "/etc/postfix/main.cf", "# postfix main.cf (test vault stub)\nmyhostname = localhost\n")
    write(p.stage, "/usr/sbin/postfix", "#!/bin/sh\necho 'postfix: test vault stub'\n", 0o755)
    p.requires = ["filesystem", "/bin/sh"]
    pkgs.append(p)

    p = synthetic("initscripts", "9.03.58", "1.el6.centos", "The inittab file and the /etc/init.d scripts",
                  work, arch="x86_64")
    copy(p.stage, "/usr/sbin/init", os.path.join(FILES, "init"), 0o755)
    copy(p.stage, "/etc/rc.d/rc.local", os.path.join(FILES, "rc.local"), 0o755)
    symlink(p.stage, "/etc/rc.local", "rc.d/rc.local")
    copy(p.stage, "/usr/share/udhcpc/default.script", os.path.join(FILES, "udhcpc.script"), 0o755)
    copy(p.stage, "/etc/acpi/PWRF/00000080", os.path.join(FILES, "acpi-power-button"), 0o755)
    write(p.stage, "/etc/inittab", "# test vault: /sbin/init is a busybox script (see initscripts)\n"
                                   "id:3:initdefault:\n")
    write(p.stage, "/etc/sysconfig/network-scripts/ifcfg-lo",
          "DEVICE=lo\nIPADDR=127.0.0.1\nNETMASK=255.0.0.0\nNETWORK=127.0.0.0\nBROADCAST=127.255.255.255\n"
          "ONBOOT=yes\nNAME=loopback\n")
    write(p.stage, "/etc/sysconfig/init", "BOOTUP=serial\n")
    p.requires = ["filesystem", "busybox", "bash", "setup", "chkconfig"]
    pkgs.append(p)

    p = synthetic("rpm-build", "4.8.0", "55.el6", "Scripts and executable programs used to build packages", work,
                  arch="x86_64")
    mkdir(p.stage, "/usr/share/rpm-build")
    p.requires = ["rpm", "gcc", "make", "binutils", "bash", "coreutils", "findutils", "grep", "sed", "gzip",
                  "tar", "xz-utils", "cpio", "diffutils", "mawk", "glibc-devel"]
    pkgs.append(p)
    return pkgs


def only_in_pkg(name, release, work):
    p = synthetic(name, "1.0", "1.el6", f"A package present only in release {release} of the test vault", work,
                  group=release)
    write(p.stage, f"/usr/share/{name}/README", f"This package exists only in the {release} test vault.\n")
    p.requires = ["filesystem"]
    return p


def kernel_pkgs(release, deb_k, trees, work, update=None):
    """kernel and kernel-devel named 2.6.32-<n>.el6 from Debian's generic kernel and headers, the
    kernel's modules trimmed to KERNEL_MODULES (plus nvme where the release has it). update: the
    release of an updates-repository kernel, group '<release>-updates'; it gets its kernel-devel
    too, as CentOS 6's updates repository carries one for every kernel it carries."""
    krel = update or RELEASES[release]["kernel"]
    kver = f"{KERNEL_VERSION}-{krel}.x86_64"
    group = f"{release}-updates" if update else release
    image, common, arch, kbuild = trees
    k = synthetic("kernel", KERNEL_VERSION, krel,
                  f"The Linux kernel (Debian's {deb_k} as {kver})", work, arch="x86_64", group=group)
    s = k.stage
    for f in ("vmlinuz", "System.map", "config"):
        copy(s, f"/boot/{f}-{kver}", os.path.join(image, "boot", f"{f}-{deb_k}"))
    mods = os.path.join(s, "usr/lib/modules", kver)
    os.makedirs(os.path.dirname(mods), exist_ok=True)
    run(["cp", "-a", os.path.join(image, "lib/modules", deb_k), mods])
    for l in ("build", "source"):
        if os.path.lexists(os.path.join(mods, l)):
            os.unlink(os.path.join(mods, l))
    symlink(s, f"/usr/lib/modules/{kver}/build", f"/usr/src/kernels/{kver}")
    symlink(s, f"/usr/lib/modules/{kver}/source", "build")
    mkdir(s, f"/usr/lib/modules/{kver}/extra")
    mkdir(s, f"/usr/lib/modules/{kver}/weak-updates")
    write(s, f"/usr/lib/modules/{kver}/vault-uname-r", deb_k + "\n")
    trim_modules(os.path.join(s, "usr"), kver, KERNEL_MODULES + (["nvme"] if RELEASES[release]["nvme"] else []))
    run(["depmod", "-b", os.path.join(s, "usr"), kver])
    # /boot/symvers-KVER.gz as CentOS 6's kernel ships it (the symbol CRCs
    # weak-modules checks a module against): Debian's Module.symvers.
    symvers = os.path.join(arch, "usr/src", f"linux-headers-{deb_k}", "Module.symvers")
    os.makedirs(os.path.join(s, "boot"), exist_ok=True)
    with open(symvers, "rb") as src, open(os.path.join(s, f"boot/symvers-{kver}.gz"), "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    copy(s, "/usr/sbin/new-kernel-pkg", os.path.join(FILES, "new-kernel-pkg"), 0o755)
    # CentOS 6 ships weak-modules in module-init-tools; here it rides with the
    # kernel (identical in every kernel package, so they share the file).
    copy(s, "/usr/sbin/weak-modules", os.path.join(FILES, "weak-modules"), 0o755)
    k.files = [f"/boot/vmlinuz-{kver}", f"/boot/System.map-{kver}", f"/boot/config-{kver}",
               f"/boot/symvers-{kver}.gz", f"/usr/lib/modules/{kver}", "/usr/sbin/new-kernel-pkg",
               "/usr/sbin/weak-modules"]
    k.ghosts = [f"%attr(0600,root,root) /boot/initramfs-{kver}.img"]
    # CentOS 6's kernel.spec: %posttrans runs weak-modules --add-kernel before
    # new-kernel-pkg; %preun undoes both.
    k.scripts = {
        "posttrans": f"if [ -x /sbin/weak-modules ]; then /sbin/weak-modules --add-kernel {kver} || exit $?; fi\n"
                     f"/sbin/new-kernel-pkg --package kernel --mkinitrd --dracut --depmod --install {kver} || exit $?",
        "preun": f"/sbin/new-kernel-pkg --rminitrd --remove {kver} || :\n"
                 f"if [ -x /sbin/weak-modules ]; then /sbin/weak-modules --remove-kernel {kver} || :; fi",
    }
    # CentOS 6's kernel requires dracut-kernel (its initramfs builder).
    k.requires = ["filesystem", "busybox", "/bin/sh", "dracut-kernel"]
    # as CentOS 6's kernel.spec: kernel-<arch>, kernel-drm, kernel-uname-r
    k.provides = [f"kernel-x86_64 = {KERNEL_VERSION}-{krel}", "kernel-drm = 4.3.0", f"kernel-uname-r = {kver}"]
    if not RELEASES[release]["devel"]:
        return k, None

    d = synthetic("kernel-devel", KERNEL_VERSION, krel,
                  f"Development package for building kernel modules to match the kernel (Debian's {deb_k} headers)",
                  work, arch="x86_64", group=group)
    tree = os.path.join(d.stage, "usr/src/kernels", kver)
    # what kbuild's scripts run for an out-of-tree module (awk: scripts/check-local-export)
    d.requires = ["filesystem", "mawk", "sed", "grep", "coreutils", "findutils", "make", "bash"]
    # installonlypkg(kernel): yum 3.2's default installonlypkgs lists kernel-devel
    # (an update installs beside the old one), dnf's does not; this Provides is
    # how dnf is told the same.
    d.provides = [f"kernel-devel-x86_64 = {KERNEL_VERSION}-{krel}", f"kernel-devel-uname-r = {kver}",
                  "installonlypkg(kernel)"]
    # Every kernel-devel tree is the same Debian headers under another name:
    # the later ones are hard links of the first staged one (staging only;
    # each package still carries its own copy).
    if deb_k in _devel_trees:
        os.makedirs(os.path.dirname(tree), exist_ok=True)
        run(["cp", "-al", _devel_trees[deb_k], tree])
        return k, d
    os.makedirs(tree)
    _devel_trees[deb_k] = tree
    common_src = next(os.path.join(common, "usr/src", x) for x in os.listdir(os.path.join(common, "usr/src")))
    arch_src = os.path.join(arch, "usr/src", f"linux-headers-{deb_k}")
    kbuild_src = next(os.path.join(kbuild, "usr/lib", x) for x in os.listdir(os.path.join(kbuild, "usr/lib"))
                      if x.startswith("linux-kbuild"))
    run(["cp", "-a", common_src + "/.", tree + "/"])
    for x in ("scripts", "tools"):
        if os.path.islink(os.path.join(tree, x)):
            os.unlink(os.path.join(tree, x))
    for x in os.listdir(arch_src):
        src = os.path.join(arch_src, x)
        if x == "Makefile" or os.path.islink(src):
            continue  # arch's Makefile only includes common's; links point into kbuild
        run(["cp", "-a", src, tree + "/"])
    run(["cp", "-a", kbuild_src + "/.", tree + "/"])
    return k, d


_devel_trees = {}  # Debian kernel -> the first staged kernel-devel tree of it


def grub_pkg(tree, version, work):
    _epoch, v, r = rpm_evr(version)
    p = synthetic("grub", v, r, "Grand Unified Boot Loader (Debian's grub-legacy)", work, arch="x86_64")
    p.debian = f"grub-legacy {version}"
    s = p.stage
    stage_dir = os.path.join(tree, "usr/lib/grub/x86_64-pc")
    for f in sorted(os.listdir(stage_dir)):
        copy(s, f"/usr/share/grub/x86_64-redhat/{f}", os.path.join(stage_dir, f))
    for d in ("usr/sbin", "usr/bin"):
        for f in sorted(os.listdir(os.path.join(tree, d))):
            if f in ("update-grub",):
                continue
            copy(s, f"/{d}/{f}", os.path.join(tree, d, f))
    p.requires = ["filesystem", "libc6-i386"]
    return p


def sudo_pkg(tree, version, db, names, work):
    _epoch, v, r = rpm_evr(version)
    p = synthetic("sudo", v, r, "Allows restricted root access for specified users (Debian's sudo)", work,
                  arch="x86_64")
    p.debian = f"sudo {version}"
    merge_usr(tree)
    prune(tree)
    for x in ("etc/sudoers.d/README", "etc/sudo_logsrvd.conf"):
        if os.path.exists(os.path.join(tree, x)):
            os.unlink(os.path.join(tree, x))
    run(["cp", "-a", tree + "/.", p.stage + "/"])
    copy(p.stage, "/etc/sudoers", os.path.join(FILES, "sudoers"), 0o440)
    mkdir(p.stage, "/etc/sudoers.d", 0o750)
    p.requires = ["filesystem"] + [RENAME.get(d, d) for d in dependencies(
        deb_control_cache["sudo"], db) if d in names]
    return p


def trim_modules(root, kver, keep):
    """Keeps only the modules named in keep and what they depend on (modules.dep
    of the whole tree, made first), so the kernel package stays small; the
    modules.builtin/order/builtin.modinfo lists stay as Debian made them."""
    run(["depmod", "-b", root, kver])
    moddir = os.path.join(root, "lib/modules", kver)
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.strip().partition(":")
            deps[path] = rest.split()

    def name(path):
        n = os.path.basename(path)
        return n[:n.index(".ko")].replace("-", "_")

    by_name = {name(p): p for p in deps}
    wanted, todo = set(), [by_name[n] for n in keep if n in by_name]
    missing = [n for n in keep if n not in by_name]
    if missing:
        log(f"{kver}: not modules (built in or absent): {' '.join(missing)}")
    while todo:
        p = todo.pop()
        if p not in wanted:
            wanted.add(p)
            todo += deps[p]
    for p in deps:
        if p not in wanted:
            os.unlink(os.path.join(moddir, p))
    for dirpath, dirnames, filenames in os.walk(os.path.join(moddir, "kernel"), topdown=False):
        if not os.listdir(dirpath):
            os.rmdir(dirpath)
    log(f"{kver}: kept {len(wanted)} of {len(deps)} modules")


def deb_tree_pkg(name, tree, version, summary, work, drop):
    """A package from a downloaded .deb's tree (merged /usr, docs pruned, drop removed)."""
    _epoch, v, r = rpm_evr(version)
    p = synthetic(name, v, r, summary, work, arch="x86_64")
    p.debian = f"{os.path.basename(tree)} {version}"
    merge_usr(tree)
    prune(tree)
    for x in drop:
        full = os.path.join(tree, x)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        elif os.path.lexists(full):
            os.unlink(full)
    for dirpath, dirnames, filenames in os.walk(tree, topdown=False):
        if dirpath != tree and not os.listdir(dirpath):
            os.rmdir(dirpath)
    run(["cp", "-a", tree + "/.", p.stage + "/"])
    return p


def sysv_script(name, chkconfig, description, daemon):
    """An /etc/rc.d/init.d script with CentOS 6's chkconfig header (the stand-in
    guest's /sbin/init does not run them; chkconfig reads the header)."""
    return f"""#!/bin/sh
#
# {name}\t{description}
#
# chkconfig: {chkconfig}
# description: {description}
# (test vault stand-in)

case "$1" in
  start) {daemon} ;;
  stop) killall {os.path.basename(daemon.split()[0])} 2>/dev/null ;;
  status) pidof {os.path.basename(daemon.split()[0])} >/dev/null ;;
  *) echo "Usage: $0 {{start|stop|status}}"; exit 2 ;;
esac
"""


def acpid_pkg(tree, version, work):
    """Debian's acpid as CentOS 6's acpid: init script 'chkconfig: 2345 26 74' and
    %post 'chkconfig --add acpid' (so it is on in 2345 once installed, as on CentOS 6),
    the power button event running /etc/acpi/actions/power.sh."""
    p = deb_tree_pkg("acpid", tree, version, "ACPI Event Daemon (Debian's acpid)", work,
                     ["etc/init.d", "etc/default", "etc/runit", "etc/sv", "usr/lib/systemd", "usr/share/runit",
                      "var/log/runit"])
    write(p.stage, "/etc/rc.d/init.d/acpid", sysv_script("acpid", "2345 26 74", "ACPI event daemon",
                                                          "/usr/sbin/acpid"), 0o755)
    write(p.stage, "/etc/sysconfig/acpid", "OPTIONS=\n")
    write(p.stage, "/etc/acpi/events/power.conf", "# ACPID config to power down machine if powerbutton is pressed\n"
                                                  "event=button/power.*\naction=/etc/acpi/actions/power.sh\n")
    write(p.stage, "/etc/acpi/actions/power.sh", "#!/bin/sh\nPATH=/sbin:/bin:/usr/bin\nshutdown -h now\n", 0o755)
    p.requires = ["filesystem", "glibc", "chkconfig", "/bin/sh"]
    p.scripts = {"post": "/sbin/chkconfig --add acpid", "preun": "[ $1 = 0 ] && /sbin/chkconfig --del acpid || :"}
    return p


def ntp_pkg(tree, version, work):
    """Debian's ntpsec as CentOS 6's ntp: /etc/ntp.conf in CentOS 6's form, init
    script ntpd 'chkconfig: - 58 74' and %post 'chkconfig --add ntpd' (off until
    'chkconfig ntpd on', as on CentOS 6)."""
    p = deb_tree_pkg("ntp", tree, version, "The NTP daemon and utilities (Debian's ntpsec)", work,
                     ["etc/init.d", "etc/default", "etc/NetworkManager", "etc/apparmor", "etc/apparmor.d",
                      "etc/cron.d", "etc/dhcp", "etc/letsencrypt", "etc/ntpsec", "usr/lib/systemd",
                      "usr/share/apport", "usr/libexec"])
    copy(p.stage, "/etc/ntp.conf", os.path.join(FILES, "ntp.conf"), 0o644)
    write(p.stage, "/etc/sysconfig/ntpd", 'OPTIONS="-u ntp:ntp -p /var/run/ntpd.pid -g"\n')
    write(p.stage, "/etc/rc.d/init.d/ntpd", sysv_script("ntpd", "- 58 74", "ntpd is the NTPv4 daemon",
                                                         "/usr/sbin/ntpd -g"), 0o755)
    mkdir(p.stage, "/etc/ntp")
    write(p.stage, "/etc/ntp/keys", "# ntp keys (test vault)\n", 0o600)
    write(p.stage, "/etc/ntp/crypto/pw", "# See ntp.conf(5) for details.\n", 0o600)
    mkdir(p.stage, "/var/lib/ntp")
    p.requires = ["filesystem", "glibc", "chkconfig", "/bin/sh"]
    p.scripts = {"post": "/sbin/chkconfig --add ntpd", "preun": "[ $1 = 0 ] && /sbin/chkconfig --del ntpd || :"}
    return p


def chkconfig_pkg(work):
    """CentOS 6's chkconfig: /sbin/chkconfig and the runlevel directories it manages."""
    p = synthetic("chkconfig", "1.3.49.3", "5.el6", "A system tool for maintaining the /etc/rc*.d hierarchy",
                  work, arch="x86_64")
    copy(p.stage, "/usr/sbin/chkconfig", os.path.join(FILES, "chkconfig"), 0o755)
    mkdir(p.stage, "/etc/rc.d/init.d")
    for level in range(7):
        mkdir(p.stage, f"/etc/rc.d/rc{level}.d")
    p.files = ["/usr/sbin/chkconfig", "/etc/rc.d/init.d"] + [f"/etc/rc.d/rc{l}.d" for l in range(7)]
    p.requires = ["filesystem", "busybox"]
    return p


def dracut_pkg(work):
    """CentOS 6's dracut (004): /sbin/dracut (the stand-in initramfs builder) and
    /etc/dracut.conf.d; provides dracut-kernel, which the kernel requires."""
    p = synthetic("dracut", "004", "409.el6", "Initramfs generator using udev (test vault stand-in)", work)
    copy(p.stage, "/usr/sbin/dracut", os.path.join(FILES, "dracut"), 0o755)
    write(p.stage, "/etc/dracut.conf", "# PUT YOUR CONFIG HERE OR IN separate files named *.conf\n"
                                       "# in /etc/dracut.conf.d\n# SEE man dracut.conf(5)\n")
    mkdir(p.stage, "/etc/dracut.conf.d")
    p.files = ["/usr/sbin/dracut", "%config(noreplace) /etc/dracut.conf", "/etc/dracut.conf.d"]
    p.requires = ["filesystem", "busybox"]
    p.provides = ["dracut-kernel = 004-409.el6"]
    return p


deb_control_cache = {}


# ---------------------------------------------------------------- keys, signing

def make_keys(keys_dir):
    os.makedirs(keys_dir)
    homes = {}
    for kind, uid in (("test", KEY_UID), ("other", OTHER_UID)):
        home = os.path.join(keys_dir, "gnupg" if kind == "test" else ".other-gnupg")
        os.makedirs(home, mode=0o700)
        params = (f"%no-protection\nKey-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\n"
                  f"Name-Real: {uid.split(' <')[0]}\nName-Email: {uid.split('<')[1].rstrip('>')}\n"
                  f"Expire-Date: 0\n%commit\n")
        run(["gpg", "--homedir", home, "--batch", "--quiet", "--gen-key"], input=params.encode(),
            stderr=subprocess.DEVNULL)
        asc = out(["gpg", "--homedir", home, "--armor", "--export"])
        with open(os.path.join(keys_dir, f"{kind}-key.asc"), "w") as f:
            f.write(asc)
        colons = out(["gpg", "--homedir", home, "--with-colons", "--fingerprint"])
        fpr = next(l.split(":")[9] for l in colons.splitlines() if l.startswith("fpr:"))
        homes[kind] = {"home": home, "uid": uid, "fingerprint": fpr, "keyid": fpr[-16:],
                       "file": f"keys/{kind}-key.asc"}
    return homes


def sign(files, key):
    if not files:
        return
    for i in range(0, len(files), 40):
        run(["rpmsign", "--addsign", "--rpmv3", "--define", "__gpg /usr/bin/gpg",
             "--define", "_gpg_digest_algo sha256", "--define", f"_gpg_path {key['home']}", "--define", f"_gpg_name {key['uid']}"] + files[i:i + 40],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ---------------------------------------------------------------- rpm file surgery (bad packages)

def rpm_sections(data):
    """Offsets of the signature header, the header and the payload in an rpm file."""
    def header_len(off):
        magic = data[off:off + 3]
        if magic != b"\x8e\xad\xe8":
            raise SystemExit("build-vault: bad header magic")
        il, dl = struct.unpack(">II", data[off + 8:off + 16])
        return 16 + il * 16 + dl
    sig = 96
    siglen = header_len(sig)
    hdr = sig + siglen + (-siglen % 8)
    payload = hdr + header_len(hdr)
    return sig, hdr, payload


def header_entries(data, off):
    il, _dl = struct.unpack(">II", data[off + 8:off + 16])
    store = off + 16 + il * 16
    entries = {}
    for i in range(il):
        tag, typ, offset, count = struct.unpack(">IIII", data[off + 16 + i * 16:off + 32 + i * 16])
        entries[tag] = (typ, store + offset, count)
    return entries


def patch_string(buf, entries, tag, value):
    _typ, at, _count = entries[tag]
    old_end = buf.index(b"\0", at)
    if old_end - at != len(value):
        raise SystemExit(f"build-vault: tag {tag} length changed")
    buf[at:old_end] = value.encode()


def escape_dotdot(unsigned_rpm, dest):
    """Renames one payload entry of an unsigned rpm to a path escaping the root
    with ../ (same length), then fixes every digest so only the path is wrong."""
    with open(unsigned_rpm, "rb") as f:
        data = bytearray(f.read())
    sig, hdr, payload_off = rpm_sections(data)
    compressed = bytes(data[payload_off:])
    gz = compressed[:2] == b"\x1f\x8b"
    raw = bytearray(gzip.decompress(compressed) if gz else lzma.decompress(compressed))
    victim = b"./usr/share/doc/setup-2.8.14/COPYING-test-vault-setup-package-notice"
    at = raw.index(victim + b"\0")
    replacement = b"../../../../../tmp/escape-dotdot-test-vault"
    replacement += b"x" * (len(victim) - len(replacement))
    raw[at:at + len(victim)] = replacement
    new_payload = gzip.compress(bytes(raw), 9, mtime=0) if gz else lzma.compress(bytes(raw), preset=2)
    hentries = header_entries(data, hdr)
    header = data[hdr:payload_off]
    buf = bytearray(data[:payload_off])
    if 5092 in hentries:  # PAYLOADDIGEST: sha256 of the compressed payload
        patch_string(buf, hentries, 5092, hashlib.sha256(new_payload).hexdigest())
    if 5097 in hentries:  # PAYLOADDIGESTALT: sha256 of the uncompressed payload
        patch_string(buf, hentries, 5097, hashlib.sha256(bytes(raw)).hexdigest())
    header = bytes(buf[hdr:payload_off])
    sentries = header_entries(buf, sig)
    if 269 in sentries:
        patch_string(buf, sentries, 269, hashlib.sha1(header).hexdigest())
    if 273 in sentries:
        patch_string(buf, sentries, 273, hashlib.sha256(header).hexdigest())
    if 1004 in sentries:
        _typ, at_, _count = sentries[1004]
        buf[at_:at_ + 16] = hashlib.md5(header + new_payload).digest()
    if 1000 in sentries:
        _typ, at_, _count = sentries[1000]
        buf[at_:at_ + 4] = struct.pack(">I", len(header) + len(new_payload))
    if 270 in sentries:  # LONGSIGSIZE
        _typ, at_, _count = sentries[270]
        buf[at_:at_ + 8] = struct.pack(">Q", len(header) + len(new_payload))
    with open(dest, "wb") as f:
        f.write(bytes(buf) + new_payload)


def bad_packages(good_signed, unsigned_build, bad_dir, keys):
    os.makedirs(bad_dir)
    base = os.path.basename(good_signed)
    # unsigned: the same package before signing
    shutil.copy(unsigned_build, os.path.join(bad_dir, "unsigned.rpm"))
    # wrong key
    wrong = os.path.join(bad_dir, "wrong-key.rpm")
    shutil.copy(unsigned_build, wrong)
    sign([wrong], keys["other"])
    # one payload byte flipped after signing
    with open(good_signed, "rb") as f:
        data = bytearray(f.read())
    _sig, _hdr, payload = rpm_sections(data)
    flip_at = payload + (len(data) - payload) // 2
    data[flip_at] ^= 0x01
    with open(os.path.join(bad_dir, "flipped-payload.rpm"), "wb") as f:
        f.write(bytes(data))
    # truncated in the middle of the payload
    with open(good_signed, "rb") as f:
        data = f.read()
    with open(os.path.join(bad_dir, "truncated.rpm"), "wb") as f:
        f.write(data[:payload + (len(data) - payload) // 2])
    # a ../ entry, otherwise valid and signed by the test key
    esc = os.path.join(bad_dir, "escape-dotdot.rpm")
    escape_dotdot(unsigned_build, esc)
    sign([esc], keys["test"])
    return [
        {"file": "bad/unsigned.rpm", "defect": "unsigned", "basedOn": base,
         "detail": "the good package before rpmsign: digests only, no RSA/PGP signature (rpm -K: digests OK, no signature; fails with _pkgverify_level signature)"},
        {"file": "bad/wrong-key.rpm", "defect": "wrong-key", "basedOn": base,
         "keyid": keys["other"]["keyid"],
         "detail": f"signed (v3, header and header+payload) by the other key {keys['other']['keyid']} (keys/other-key.asc), not the test key (rpm -K: NOKEY)"},
        {"file": "bad/flipped-payload.rpm", "defect": "flipped-payload", "basedOn": base, "offset": flip_at,
         "detail": f"the signed good package with one bit of the payload flipped at byte {flip_at} (rpm -K: payload digest, MD5 and the header+payload signature BAD)"},
        {"file": "bad/truncated.rpm", "defect": "truncated", "basedOn": base,
         "size": payload + (len(data) - payload) // 2,
         "detail": "the signed good package cut in the middle of its payload (rpm -K fails: digests cannot be computed / BAD)"},
        {"file": "bad/escape-dotdot.rpm", "defect": "escape-dotdot", "basedOn": base,
         "entry": "../../../../../tmp/escape-dotdot-test-vault" + "x" * (
             len("./usr/share/doc/setup-2.8.14/COPYING-test-vault-setup-package-notice")
             - len("../../../../../tmp/escape-dotdot-test-vault")),
         "detail": "one cpio entry renamed to a ../ path escaping the root (same length); header digests and sizes fixed and signed by the test key, so rpm -K accepts it and only the path is wrong"},
    ]


# ---------------------------------------------------------------- repository

def comps(names):
    members = [n for n in CORE_GROUP if n in names]
    reqs = "\n".join(f'      <packagereq type="mandatory">{n}</packagereq>' for n in members)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>core</id>
    <name>Core</name>
    <description>Smallest possible installation</description>
    <default>true</default>
    <uservisible>false</uservisible>
    <packagelist>
{reqs}
    </packagelist>
  </group>
</comps>
""", members


def resolve_conflicts(pkgs):
    """rpm refuses two packages that ship one path differently (a file with
    other content, a symlink where the other has a directory, a directory with
    another mode). Within each release the first owner wins: CentOS-shaped
    (synthetic) packages first, then the repackaged host packages in name
    order; a host package's file or symlink at a taken path is dropped and its
    directory gets the first owner's mode."""
    from_host = {id(p) for p in pkgs if p.debian and p.name not in ("grub", "sudo")}
    for release in RELEASES:
        universe = [p for p in pkgs if p.group in ("shared", release)]
        ordered = ([p for p in universe if id(p) not in from_host]
                   + sorted((p for p in universe if id(p) in from_host), key=lambda p: p.name))
        seen = {}  # relative path -> (kind, mode, owner)
        for p in ordered:
            for root, dirs, files in os.walk(p.stage):
                for name in dirs + files:
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, p.stage)
                    st = os.lstat(full)
                    kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f"
                    mode = stat.S_IMODE(st.st_mode)
                    if rel not in seen:
                        seen[rel] = (kind, mode, p.name)
                        continue
                    first_kind, first_mode, owner = seen[rel]
                    if kind == "d" and first_kind == "d":
                        if mode != first_mode:
                            os.chmod(full, first_mode)
                    elif id(p) in from_host and kind != "d":
                        log(f"/{rel}: kept in {owner}, dropped from {p.name}")
                        os.unlink(full)
                    else:
                        raise SystemExit(f"build-vault: /{rel} is shipped by both {owner} and {p.name}")


def build(work, debdir):
    t0 = time.time()
    db = dpkg_db()
    deb_k, downloads = download_names()
    debs = {d: fetch(debdir, d) for d in downloads}
    trees = {d: dpkg_x(path, os.path.join(work, "debs", d)) for d, path in debs.items()}
    deb_control_cache["sudo"] = deb_control(debs["sudo"], "Depends")
    roots = list(DEBIAN_ROOTS)
    for d, path in debs.items():
        if d not in DOWNLOADS_ALONE:
            roots += dependencies(deb_control(path, "Depends"), db)
    names = closure(roots, db)
    log(f"{len(names)} Debian packages in the closure; staging")

    keys = make_keys(os.path.join(work, "keys"))
    with open(os.path.join(work, "keys", "test-key.asc")) as f:
        key_asc = f.read()

    pkgs = debian_packages(db, names, work)
    tz = next(p for p in pkgs if p.name == "tzdata")
    pkgs.remove(tz)
    pkgs += [filesystem_pkg(work), setup_pkg(work)] + small_pkgs(work)
    pkgs.append(grub_pkg(trees["grub-legacy"], candidate("grub-legacy"), work))
    pkgs.append(sudo_pkg(trees["sudo"], candidate("sudo"), db, names, work))
    pkgs.append(acpid_pkg(trees["acpid"], candidate("acpid"), work))
    pkgs.append(ntp_pkg(trees["ntpsec"], candidate("ntpsec"), work))
    pkgs += [chkconfig_pkg(work), dracut_pkg(work)] + nss_pkgs(work)
    kernel_trees = (trees[f"linux-image-{deb_k}"], trees[downloads[2]], trees[downloads[1]], trees[downloads[3]])
    for release in RELEASES:
        pkgs.append(centos_release_pkg(release, key_asc, work))
        pkgs.append(tzdata_pkg(release, tz.stage, work))
        pkgs += [p for p in kernel_pkgs(release, deb_k, kernel_trees, work) if p]
        if release in UPDATES:
            pkgs += [p for p in kernel_pkgs(release, deb_k, kernel_trees, work, update=UPDATES[release]["kernel"]) if p]
    for name, release in ONLY_IN.items():
        pkgs.append(only_in_pkg(name, release, work))
    resolve_conflicts(pkgs)
    log(f"staged {len(pkgs)} packages in {time.time() - t0:.0f}s; rpmbuild")

    pool = os.path.join(work, "pool")
    setup_unsigned = {}

    def build_one(pkg):
        path = rpmbuild(pkg, work, os.path.join(pool, pkg.group))
        if pkg.name == "setup":
            copy_to = os.path.join(work, "setup-unsigned.rpm")
            shutil.copy(path, copy_to)
            setup_unsigned["path"] = copy_to
        return pkg, path

    built = []
    # the big ones first, so the two workers finish together
    order = sorted(pkgs, key=lambda p: p.name not in ("kernel-devel", "kernel", "gcc-12", "cpp-12", "libicu72"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        for pkg, path in ex.map(build_one, order):
            built.append((pkg, path))
    shutil.rmtree(os.path.join(work, "stage"), ignore_errors=True)
    shutil.rmtree(os.path.join(work, "debs"), ignore_errors=True)
    log(f"built {len(built)} rpms at {time.time() - t0:.0f}s; signing")
    sign([p for _, p in built], keys["test"])
    log(f"signed at {time.time() - t0:.0f}s; repositories")

    facts = {"schema": 1, "releases": sorted(RELEASES), "repoPath": "vault/{release}/os/x86_64",
             "mirrorRoot": "vault", "debianKernel": deb_k, "perRelease": {}, "keys": {}, "bad": [],
             "bootstrapSeed": BOOTSTRAP_SEED, "gzipPayload": sorted(GZIP_PAYLOAD)}
    for kind, k in keys.items():
        facts["keys"][kind] = {"file": k["file"], "fingerprint": k["fingerprint"], "keyid": k["keyid"],
                               "uid": k["uid"]}
    facts["keys"]["test"]["gnupgHome"] = "keys/gnupg"
    facts["keys"]["test"]["repoFile"] = "RPM-GPG-KEY-CentOS-6-Test"
    for release in sorted(RELEASES):
        repo = os.path.join(work, "vault", release, "os", "x86_64")
        os.makedirs(os.path.join(repo, "Packages"))
        names_here = []
        for pkg, path in built:
            if pkg.group in ("shared", release):
                os.link(path, os.path.join(repo, "Packages", os.path.basename(path)))
                names_here.append(pkg)
        xml, members = comps({p.name for p in names_here})
        os.makedirs(os.path.join(work, "comps", release))
        comps_file = os.path.join(work, "comps", release, "comps.xml")
        with open(comps_file, "w") as f:
            f.write(xml)
        shutil.copy(os.path.join(work, "keys", "test-key.asc"), os.path.join(repo, "RPM-GPG-KEY-CentOS-6-Test"))
        shutil.copy(os.path.join(work, "keys", "test-key.asc"), os.path.join(repo, "RPM-GPG-KEY-CentOS-6"))
        run(["createrepo_c", "--quiet", "--no-database", "-g", comps_file, repo])
        kver = f"{KERNEL_VERSION}-{RELEASES[release]['kernel']}"
        facts["perRelease"][release] = {
            "repo": f"vault/{release}/os/x86_64",
            "redhatRelease": f"CentOS release {release} (Final)",
            "kernel": f"kernel-{kver}.x86_64", "kernelVersion": kver, "kernelRelease": f"{kver}.x86_64",
            "kernelDevel": f"kernel-devel-{kver}.x86_64" if RELEASES[release]["devel"] else None,
            "nvme": RELEASES[release]["nvme"],
            "initramfs": f"/boot/initramfs-{kver}.x86_64.img", "vmlinuz": f"/boot/vmlinuz-{kver}.x86_64",
            "coreGroup": members,
            "packageCount": len(names_here),
            "packages": sorted(p.nevra for p in names_here),
        }
        if release in UPDATES:
            urepo = os.path.join(work, "vault", release, "updates", "x86_64")
            os.makedirs(os.path.join(urepo, "Packages"))
            updates = [pkg for pkg, path in built if pkg.group == f"{release}-updates"]
            for pkg, path in built:
                if pkg.group == f"{release}-updates":
                    os.link(path, os.path.join(urepo, "Packages", os.path.basename(path)))
            run(["createrepo_c", "--quiet", "--no-database", urepo])
            ukver = f"{KERNEL_VERSION}-{UPDATES[release]['kernel']}"
            facts["perRelease"][release]["updates"] = {
                "repo": f"vault/{release}/updates/x86_64",
                "kernel": f"kernel-{ukver}.x86_64", "kernelVersion": ukver, "kernelRelease": f"{ukver}.x86_64",
                "kernelDevel": f"kernel-devel-{ukver}.x86_64" if RELEASES[release]["devel"] else None,
                "initramfs": f"/boot/initramfs-{ukver}.x86_64.img", "vmlinuz": f"/boot/vmlinuz-{ukver}.x86_64",
                "packages": sorted(p.nevra for p in updates),
            }
    facts["differences"] = {
        "kernel": {r: facts["perRelease"][r]["kernel"] for r in RELEASES},
        "kernel-devel": {r: facts["perRelease"][r]["kernelDevel"] for r in RELEASES if RELEASES[r]["devel"]},
        "centos-release": {r: f"centos-release-6-{RELEASES[r]['centos_release']}.x86_64" for r in RELEASES},
        "tzdata": {r: f"tzdata-{RELEASES[r]['tzdata']}.noarch" for r in RELEASES},
        "onlyIn": {name: release for name, release in ONLY_IN.items()},
    }
    facts["differentVersions"] = "tzdata"
    setup_signed = next(p for pkg, p in built if pkg.name == "setup")
    facts["bad"] = bad_packages(setup_signed, setup_unsigned["path"], os.path.join(work, "bad"), keys)
    os.unlink(setup_unsigned["path"])
    shutil.rmtree(pool)
    for x in ("specs", "rpmbuild"):
        shutil.rmtree(os.path.join(work, x), ignore_errors=True)
    shutil.rmtree(os.path.join(work, "comps"))
    for k in keys.values():  # rpmsign's gpg started an agent per GNUPGHOME: stop it
        subprocess.run(["gpgconf", "--homedir", k["home"], "--kill", "gpg-agent"], check=False, stderr=subprocess.DEVNULL)
    shutil.rmtree(os.path.join(work, "keys", ".other-gnupg"))
    facts["buildSeconds"] = round(time.time() - t0)
    with open(os.path.join(work, "vault.json"), "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
        f.write("\n")
    log(f"done in {time.time() - t0:.0f}s")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "inputs":
        sys.stdout.write(inputs(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
