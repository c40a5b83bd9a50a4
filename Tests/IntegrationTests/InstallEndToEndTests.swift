import Foundation
import Host
import Testing

/// One full install of 6.9 from the loopback vault, built once per run and
/// shared by the package and configuration checks (the expensive part of CI).
final class InstalledImage: Sendable {
    let dir: String
    let image: String
    let workDir: String
    let result: Integration.Output
    let serverStats: (requests: Int, bytes: Int64)

    /// Built by the first test that asks, under the lock; the others wait for it.
    private static let built = Locked<Result<InstalledImage, Error>?>(nil)

    static func shared() throws -> InstalledImage {
        try built.withLock { built in
            if built == nil { built = Result { try InstalledImage() } }
            return built!
        }.get()
    }

    private init() throws {
        try TestVault.require()
        dir = try Integration.scratchDirectory("e2e")
        image = dir + "/c69.img"
        workDir = dir + "/work"
        let server = try VaultServer()
        defer { server.stop() }
        // Under a strict umask: the image's modes must be CentOS 6's all the same.
        result = try Integration.run(
            "/bin/sh",
            [
                "-c", "umask 077 && exec \"$0\" \"$@\"", Integration.binary,
                "install", "6.9", image, "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--log", dir + "/install.log",
            ],
            environment: MotoServer.awsEnvironment.merging(["CENTOS6_AMI_WORK_DIR": workDir]) { $1 })
        serverStats = try server.stats()
    }

    /// Runs `body` with the image's partition mounted read-only; always unmounts and detaches.
    func withMountedReadOnly<T>(_ body: (String) throws -> T) throws -> T {
        let attached = try AttachedImage(image, readOnly: true)
        defer { attached.detach() }
        let mnt = dir + "/ro-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mnt) }
        let mount = try Integration.run("/usr/bin/mount", ["-o", "ro,noload", attached.partition, mnt])
        guard mount.status == 0 else { throw TestFailure("cannot mount \(attached.partition) read-only: \(mount.stderr)") }
        defer { _ = try? Integration.run("/usr/bin/umount", [mnt]) }
        return try body(mnt)
    }
}

@Suite(.serialized, .enabled(if: Integration.enabled))
struct InstallEndToEndTests {
    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }

    @Test func installsTheReleaseFromTheVaultAndUnwinds() throws {
        let built = try InstalledImage.shared()
        #expect(built.result.status == 0, "\(built.result.stderr)")
        #expect(built.result.stderr.contains("CentOS 6.9 installed on \(built.image)"))
        #expect(built.result.stderr.contains("kernel:           2.6.32-696.el6"))
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
        // The target preparation's checks (PrepareTargetTests) still hold after a full install.
        let table = try Integration.run("/usr/sbin/sfdisk", ["-d", built.image]).stdout
        #expect(table.contains("\(built.image)1 : start=        2048, size=    16775168, type=83, bootable"), "\(table)")
        do {
            let attached = try AttachedImage(built.image, readOnly: true)
            defer { attached.detach() }
            let header = try Integration.run("dumpe2fs", ["-h", attached.partition]).stdout
            let features =
                header.split(separator: "\n").first { $0.hasPrefix("Filesystem features:") }?
                .split(separator: ":")[1].split(separator: " ").map(String.init) ?? []
            #expect(
                Set(features) == [
                    "has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "flex_bg",
                    "sparse_super", "large_file", "huge_file", "uninit_bg", "dir_nlink", "extra_isize",
                ])
            #expect(header.contains("Inode size:\t          256") && header.contains("Filesystem volume name:   /\n"))
            #expect(try Integration.run("e2fsck", ["-fn", attached.partition]).status == 0)
        }
        let allocated = try sh("du -B1 \(built.image) | cut -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let used = try built.withMountedReadOnly { mnt in try sh("du -sxB1 \(mnt) | cut -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        print("install 6.9: image allocated \(allocated) bytes, installed tree (du) \(used) bytes")
        #expect((Double(allocated) ?? 0) < (Double(used) ?? 0) * 1.3, "the volume holds little beyond the installed tree")
    }

    @Test func grubIsInTheMBRWithStage1_5EmbeddedAfterIt() throws {
        let built = try InstalledImage.shared()
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: built.image))
        defer { try? handle.close() }
        let bytes = [UInt8](try handle.read(upToCount: 20 * 512) ?? Data())
        #expect(bytes[510] == 0x55 && bytes[511] == 0xAA)
        #expect(String(decoding: bytes[0..<512], as: UTF8.self).contains("GRUB"), "stage1 in the MBR")
        let stage15 = try built.withMountedReadOnly { mnt in try Data(contentsOf: URL(fileURLWithPath: mnt + "/boot/grub/e2fs_stage1_5")) }
        // `embed` copies e2fs_stage1_5 to the sectors after the MBR (only its install-location fields change).
        let embedded = Array(bytes[1024..<(1024 + 1024)]), file = Array(stage15[512..<1536])
        let same = zip(embedded, file).filter { $0 == $1 }.count
        #expect(same > 1000, "sectors 2-3 hold e2fs_stage1_5 (\(same)/1024 bytes equal)")
    }

    @Test func theTargetIsAConsistentSystem() throws {
        let built = try InstalledImage.shared()
        // rpm needs a writable database: check a copy, in a chroot with /proc.
        let copy = built.dir + "/copy.img"
        _ = try sh("cp --sparse=always \(built.image) \(copy)")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let attached = try AttachedImage(copy)
        defer { attached.detach() }
        let mnt = built.dir + "/rw"
        let mounted = try sh("mkdir -p \(mnt) && mount \(attached.partition) \(mnt) && mount -t proc proc \(mnt)/proc")
        #expect(mounted.status == 0, "\(mounted.stderr)")
        defer { _ = try? sh("umount \(mnt)/proc; umount \(mnt); rmdir \(mnt)") }
        let qa = try Integration.run("/usr/sbin/chroot", [mnt, "rpm", "-qa", "--qf", "%{NAME}\\n"])
        #expect(qa.status == 0, "\(qa.stderr)")
        let names = qa.stdout.split(separator: "\n").map(String.init)
        #expect(names.count == Set(names).count, "every package once")
        for wanted in ["yum", "rpm", "bash", "coreutils", "centos-release", "kernel", "xfsprogs", "grub", "openssh-server", "sudo", "initscripts"] {
            #expect(names.contains(wanted), "\(wanted) installed")
        }
        #expect(!names.contains("postfix"), "postfix excluded")
        let kernel = try Integration.run("/usr/sbin/chroot", [mnt, "rpm", "-q", "kernel"]).stdout
        #expect(kernel.trimmingCharacters(in: .whitespacesAndNewlines) == "kernel-2.6.32-696.el6.x86_64")
        let verify = try Integration.run("/usr/sbin/chroot", [mnt, "rpm", "-Va"])
        let missing = verify.stdout.split(separator: "\n").filter { $0.hasPrefix("missing") && !$0.contains(" %ghost ") }
        #expect(missing.isEmpty, "rpm -V reports missing files: \(missing.prefix(20))")
        #expect(try String(contentsOfFile: mnt + "/etc/yum/vars/releasever", encoding: .utf8) == "6.9\n")
    }

    @Test func theImageIsConfiguredAndCarriesNoBuilderLeftovers() throws {
        let built = try InstalledImage.shared()
        try built.withMountedReadOnly { mnt in
            let fm = FileManager.default
            func text(_ path: String) -> String { (try? String(contentsOfFile: mnt + path, encoding: .utf8)) ?? "" }
            func mode(_ path: String) -> Int { ((try? fm.attributesOfItem(atPath: mnt + path))?[.posixPermissions] as? Int) ?? -1 }
            // CentOS 6's boot layout: grub.conf is the file (what new-kernel-pkg edits), menu.lst and /etc/grub.conf link to it.
            #expect(
                text("/boot/grub/grub.conf").contains(
                    "kernel /boot/vmlinuz-2.6.32-696.el6.x86_64 ro root=LABEL=/ console=tty0 console=ttyS0,115200 xen_pv_hvm=enable\n"))
            #expect(text("/boot/grub/grub.conf").contains("\nserial --unit=0 --speed=115200\nterminal --timeout=0 serial console\n"))
            #expect((try? fm.destinationOfSymbolicLink(atPath: mnt + "/boot/grub/grub.conf")) == nil, "grub.conf is a file")
            #expect((try? fm.destinationOfSymbolicLink(atPath: mnt + "/boot/grub/menu.lst")) == "grub.conf")
            #expect((try? fm.destinationOfSymbolicLink(atPath: mnt + "/etc/grub.conf")) == "../boot/grub/grub.conf")
            #expect(text("/etc/sysconfig/kernel").contains("\nUPDATEDEFAULT=yes\n") && text("/etc/sysconfig/kernel").contains("\nDEFAULTKERNEL=kernel\n"))
            #expect(
                text("/etc/fstab").split(separator: "\n").contains {
                    $0.hasPrefix("LABEL=/ ") && $0.contains("ext4") && $0.contains("defaults,noatime") && $0.hasSuffix("1 1")
                })
            #expect(text("/etc/selinux/config").contains("SELINUX=disabled"))
            #expect(text("/etc/ssh/sshd_config").contains("\nPasswordAuthentication no"))
            #expect(text("/etc/sudoers.d/ec2-user") == "ec2-user ALL=(ALL) NOPASSWD:ALL\n")
            #expect(mode("/etc/sudoers.d/ec2-user") == 0o440 && mode("/etc/sudoers.d") == 0o750)
            #expect(mode("/etc/rc.d/rc.local") == 0o755)
            // Built under umask 077 (InstalledImage): the modes are those of umask 022.
            let modes = [
                "/etc/fstab": 0o644, "/etc/dracut.conf.d": 0o755, "/etc/dracut.conf.d/ec2.conf": 0o644, "/boot/grub": 0o755,
                "/boot/grub/grub.conf": 0o600, "/etc/yum/vars/releasever": 0o644, "/home/ec2-user": 0o700, "/var/lib/rpm": 0o755,
                "/etc/sysconfig/network-scripts/ifcfg-eth0": 0o644, "/etc/ntp.conf": 0o644, "/tmp": 0o1777,
            ]
            for (path, want) in modes.sorted(by: { $0.key < $1.key }) {
                #expect(mode(path) == want, "\(path): \(String(mode(path), radix: 8)), want \(String(want, radix: 8))")
            }
            #expect(text("/etc/yum.repos.d/CentOS-Base.repo").contains("baseurl=http://archive.kernel.org/centos-vault/$releasever/os/$basearch/"))
            // ec2-user exists with a locked password; root locked too.
            let shadow = text("/etc/shadow").split(separator: "\n")
            #expect(shadow.contains { $0.hasPrefix("ec2-user:!") }, "ec2-user locked")
            #expect(shadow.contains { $0.hasPrefix("root:!") || $0.hasPrefix("root:*") }, "root locked")
            // Hygiene.
            let hostKeys = ((try? fm.contentsOfDirectory(atPath: mnt + "/etc/ssh")) ?? []).filter { $0.hasPrefix("ssh_host_") }
            #expect(hostKeys.isEmpty, "\(hostKeys)")
            let secrets = try sh(
                "cd \(mnt) && find . -xdev \\( -name authorized_keys -o -name known_hosts -o -name '.*_history' -o -name 'id_rsa' -o -name 'id_ed25519' -o -name 'id_ecdsa' -o -name 'id_dsa' \\) -print"
            ).stdout
            #expect(secrets.isEmpty, "\(secrets)")
            #expect(!fm.fileExists(atPath: mnt + "/etc/udev/rules.d/70-persistent-net.rules"))
            #expect(!fm.fileExists(atPath: mnt + "/var/lib/yum/uuid"))
            let logs = try sh("find \(mnt)/var/log -type f -size +0 -print").stdout
            #expect(logs.isEmpty, "logs not truncated: \(logs)")
            #expect(((try? fm.contentsOfDirectory(atPath: mnt + "/tmp")) ?? ["?"]).isEmpty, "/tmp empty")
            let cache = try sh("find \(mnt)/var/cache/yum -mindepth 1 -print").stdout
            #expect(cache.isEmpty, "yum cache on the volume: \(cache)")
            #expect(
                !fm.fileExists(atPath: mnt + "/etc/resolv.conf")
                    || text("/etc/resolv.conf") != ((try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""))
            #expect(!fm.fileExists(atPath: mnt + "/var/cache/yum/centos6-ami"), "no builder work files")
        }
    }

    /// The end-to-end bar: the built image boots, takes the launch key from IMDSv2
    /// and gives it to ec2-user. boot-test boots a copy of its own (kept with
    /// --keep-copy): the image comes out byte-identical.
    @Test func bootTestPassesAndEc2UserHoldsTheKey() throws {
        let booted = try BootedCopy.shared()
        let built = booted.built
        let out = booted.result
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("boot-test passed: login: after"), "\(out.stderr)")
        #expect(booted.shaBefore == booted.shaAfter, "boot-test changed its input")
        print("boot-test input sha256 before \(booted.shaBefore.prefix(16))..., after \(booted.shaAfter.prefix(16))...")
        let console = (try? String(contentsOfFile: booted.console, encoding: .utf8)) ?? ""
        #expect(console.contains("CentOS release 6.9 (Final)"))
        // grub.conf's serial/terminal lines: grub itself talks on ttyS0 and echoes the entry and kernel it boots.
        let plain = String(String.UnicodeScalarView(console.unicodeScalars.filter { $0 != "\r" }))
        #expect(plain.contains("Booting 'CentOS 6.9'\n"), "grub's menu on the serial console")
        #expect(plain.contains("\nkernel /boot/vmlinuz-2.6.32-696.el6.x86_64 ro root=LABEL=/ "), "grub echoes the kernel line it boots")
        // Read back independently from the booted copy: exactly the key, mode 0600; the image has none.
        for (image, expectKey) in [(booted.copy, true), (built.image, false)] {
            let attached = try AttachedImage(image, readOnly: true)
            defer { attached.detach() }
            let mnt = built.dir + "/boot-ro"
            _ = try sh("mkdir -p \(mnt) && mount -o ro,noload \(attached.partition) \(mnt)")
            defer { _ = try? sh("umount \(mnt); rmdir \(mnt)") }
            let keys = try? String(contentsOfFile: mnt + "/home/ec2-user/.ssh/authorized_keys", encoding: .utf8)
            if expectKey {
                #expect(keys == booted.key + "\n")
                let mode = try sh("stat -c '%a' \(mnt)/home/ec2-user/.ssh/authorized_keys").stdout
                #expect(mode.hasPrefix("600"), "\(mode)")
            } else {
                #expect(keys == nil, "the image itself was never booted")
            }
        }
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
    }

    @Test func aSecondInstallDownloadsNothing() throws {
        _ = try InstalledImage.shared()
        let dir = try Integration.scratchDirectory("second")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let out = try Integration.tool(
            [
                "install", "6.9", dir + "/again.img", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--stop-after", "verify-packages",
            ],
            environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("packages: 0 downloaded (0.0 MB)"), "\(out.stderr)")
        let stats = try server.stats()
        // Only repomd.xml (it has no checksum of its own, so it is always fetched).
        #expect(stats.requests == 1, "requests: \(stats.requests)")
        print("second install of 6.9: \(stats.requests) request(s), \(stats.bytes) bytes from the mirror")
    }
}
