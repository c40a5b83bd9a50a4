import Foundation
import Templates
import Testing

/// A user's first `yum update kernel` on a 6.9 --ena image (a copy of the
/// shared ENAImage), from the test vault's 6.9 updates repository: the kernel
/// package's scriptlets (weak-modules, new-kernel-pkg, dracut: see
/// scripts/testvault/files) must leave a default entry for the new kernel
/// with our kernel arguments, an initramfs with the EC2 drivers, and our ENA
/// module reachable through weak-updates; then the new entry boots and loads it.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct KernelUpdateTests {
    static let newKver = "2.6.32-696.30.1.el6.x86_64"

    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }
    func chroot(_ root: String, _ args: [String]) throws -> Integration.Output { try Integration.run("/usr/sbin/chroot", [root] + args) }

    /// The title/kernel lines of grub.conf's entries and the default index.
    static func entries(_ conf: String) -> (defaultIndex: Int, entries: [(title: String, kernel: String)]) {
        var index = 0
        var entries: [(title: String, kernel: String)] = []
        for raw in conf.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("default=") { index = Int(line.dropFirst("default=".count)) ?? -1 }
            if line.hasPrefix("title ") { entries.append((String(line.dropFirst("title ".count)), "")) }
            if line.hasPrefix("kernel "), !entries.isEmpty { entries[entries.count - 1].kernel = String(line.dropFirst("kernel ".count)) }
        }
        return (index, entries)
    }

    /// The vault's 6.9 updates repository: only the newer kernel, which carries
    /// weak-modules, new-kernel-pkg and its symvers, with scriptlets in CentOS 6's order.
    @Test func theVaultHasA69UpdatesRepositoryWithTheNewerKernel() throws {
        try TestVault.require()
        let repo = TestVault.root + "/6.9/updates/x86_64"
        let packages = try FileManager.default.contentsOfDirectory(atPath: repo + "/Packages")
        // As CentOS 6.9's updates repository: each kernel with its kernel-devel.
        #expect(packages.sorted() == ["kernel-\(Self.newKver).rpm", "kernel-devel-\(Self.newKver).rpm"], "\(packages)")
        #expect(FileManager.default.fileExists(atPath: repo + "/repodata/repomd.xml"))
        let rpm = repo + "/Packages/kernel-\(Self.newKver).rpm"
        let files = try Integration.run("/usr/bin/rpm", ["-qpl", rpm]).stdout
        for f in ["/usr/sbin/weak-modules", "/usr/sbin/new-kernel-pkg", "/boot/symvers-\(Self.newKver).gz", "/boot/vmlinuz-\(Self.newKver)"] {
            #expect(files.contains(f + "\n"), "\(f) in the kernel package")
        }
        let scripts = try Integration.run("/usr/bin/rpm", ["-qp", "--scripts", rpm]).stdout
        let weak = try #require(scripts.range(of: "/sbin/weak-modules --add-kernel \(Self.newKver)"), "\(scripts)")
        let nkp = try #require(scripts.range(of: "/sbin/new-kernel-pkg --package kernel --mkinitrd --dracut --depmod --install \(Self.newKver)"), "\(scripts)")
        #expect(weak.lowerBound < nkp.lowerBound, "weak-modules runs before new-kernel-pkg, as CentOS 6's kernel.spec")
        let data = try Data(contentsOf: URL(fileURLWithPath: Integration.vaultBuildDir + "/vault.json"))
        let facts = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        let updates = ((facts["perRelease"] as? [String: [String: Any]])?["6.9"]?["updates"] as? [String: Any]) ?? [:]
        #expect(updates["kernelRelease"] as? String == Self.newKver && updates["repo"] as? String == "vault/6.9/updates/x86_64", "\(updates)")
        #expect(updates["kernelDevel"] as? String == "kernel-devel-\(Self.newKver)", "\(updates)")
    }

    @Test func yumUpdateKernelMakesTheNewKernelTheDefaultWithOurArgumentsAndENAThroughWeakUpdates() throws {
        let built = try ENAImage.shared()
        try #require(built.result.status == 0, "\(built.result.stderr)")
        let old = ENAImage.kver, new = Self.newKver
        let copy = built.dir + "/kernel-update.img"
        _ = try sh("cp --sparse=always \(built.image) \(copy)")
        defer { try? FileManager.default.removeItem(atPath: copy); try? FileManager.default.removeItem(atPath: copy + ".console.log") }
        do {
            let attached = try AttachedImage(copy)
            defer { attached.detach() }
            let mnt = built.dir + "/update-rw"
            let mounted = try sh("mkdir -p \(mnt) && mount \(attached.partition) \(mnt) && mount -t proc proc \(mnt)/proc && mount --bind /dev \(mnt)/dev")
            defer { _ = try? sh("umount \(mnt)/dev; umount \(mnt)/proc; umount \(mnt); rmdir \(mnt)") }
            try #require(mounted.status == 0, "\(mounted.stderr)")
            let before = try String(contentsOfFile: mnt + "/boot/grub/grub.conf", encoding: .utf8)
            let (oldDefault, oldEntries) = Self.entries(before)
            let oldKernel = try #require(oldEntries.count > oldDefault ? oldEntries[oldDefault].kernel : nil, "\(before)")
            let oldArgs = oldKernel.split(separator: " ").dropFirst().joined(separator: " ")
            #expect(oldArgs.contains("net.ifnames=0") && oldArgs.contains("console=ttyS0,115200") && oldArgs.contains("root=LABEL=/"), "\(oldArgs)")

            // The image's own [updates] repository (CentOS-Base.repo), pointed at this run's server.
            let server = try VaultServer()
            defer { server.stop() }
            let yum = try chroot(
                mnt,
                [
                    "/usr/bin/yum", "-y", "--disablerepo=*", "--enablerepo=updates",
                    "--setopt=updates.baseurl=\(server.mirror)/6.9/updates/x86_64/", "update", "kernel",
                ])
            print("yum update kernel:\n" + yum.stdout + yum.stderr)
            try #require(yum.status == 0, "\(yum.stdout)\n\(yum.stderr)")
            let rpms = try chroot(mnt, ["/usr/bin/rpm", "-q", "kernel"]).stdout
            #expect(rpms.contains("kernel-\(old)") && rpms.contains("kernel-\(new)"), "both kernels installed: \(rpms)")

            // grub.conf is still the file; menu.lst and /etc/grub.conf still lead to it.
            let conf = try String(contentsOfFile: mnt + "/boot/grub/grub.conf", encoding: .utf8)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: mnt + "/boot/grub/menu.lst") == "grub.conf")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: mnt + "/etc/grub.conf") == "../boot/grub/grub.conf")
            let (newDefault, newEntries) = Self.entries(conf)
            try #require(newEntries.count == 2 && newDefault == 0, "\(conf)")
            #expect(newEntries[0].title == "CentOS (\(new))", "\(conf)")
            #expect(newEntries[0].kernel == "/boot/vmlinuz-\(new) " + oldArgs, "the new default keeps our arguments: \(conf)")
            #expect(newEntries[1].kernel == oldKernel, "the old entry stays: \(conf)")
            #expect(conf.contains("\tinitrd /boot/initramfs-\(new).img\n"), "\(conf)")

            // ena.ko of the new kernel: weak-updates -> the old kernel's extra/ (kABI checked against symvers).
            let weak = "/lib/modules/\(new)/weak-updates/ena/ena.ko"
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: mnt + weak) == "/lib/modules/\(old)/extra/ena/ena.ko")
            let resolved = try chroot(mnt, ["/sbin/modinfo", "-k", new, "-n", "ena"])
            #expect(resolved.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == weak, "\(resolved.stdout)\(resolved.stderr)")
            let dep = try String(contentsOfFile: mnt + "/lib/modules/\(new)/modules.dep", encoding: .utf8)
            #expect(dep.contains("weak-updates/ena/ena.ko:"), "depmod ran for the new kernel")

            // Its initramfs holds the drivers the EC2 configuration asks for.
            let initrd = mnt + "/boot/initramfs-\(new).img"
            #expect(FileManager.default.fileExists(atPath: initrd))
            let list = try sh("zcat \(initrd) | cpio -t --quiet").stdout
            for driver in DracutEC2.drivers(nvme: true) {
                #expect(
                    list.contains("/\(driver).ko") || list.contains("/\(driver.replacingOccurrences(of: "-", with: "_")).ko"), "\(driver) in the new initramfs")
            }

            // Test-only probe at the end of rc.local of the copy.
            try ENAImage.appendProbe(root: mnt, tag: "update-test")
        }

        // boot-test boots the NEW entry: grub echoes it on the serial console.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKernelUpdateBootTestKeyCentos6Ami update@test"
        try (key + "\n").write(toFile: built.dir + "/update-key.pub", atomically: true, encoding: .utf8)
        let out = try Integration.tool(["boot-test", copy, "--key", built.dir + "/update-key.pub", "--timeout", "240"])
        #expect(out.status == 0, "\(out.stderr)")
        let console = (try? String(contentsOfFile: copy + ".console.log", encoding: .utf8)) ?? ""
        let plain = String(String.UnicodeScalarView(console.unicodeScalars.filter { $0 != "\r" }))
        #expect(plain.contains("Booting 'CentOS (\(new))'\n"), "grub boots the new entry")
        #expect(plain.contains("\nkernel /boot/vmlinuz-\(new) ro root=LABEL=/ "), "grub echoes the new kernel line")
        let lines = ENAImage.probeLines(consoleLog: copy + ".console.log", tag: "update-test")
        print("kernel update boot:\n" + lines.joined(separator: "\n"))
        #expect(lines.contains { $0.contains("update-test: modprobe: status 0") }, "\(lines)")
        #expect(lines.contains { $0.contains("update-test: modinfo: /lib/modules/") && $0.hasSuffix("/weak-updates/ena/ena.ko") }, "\(lines)")
        #expect(lines.contains { $0.contains("update-test: dmesg: \(ENAImage.marker)") }, "the marker of OUR module: \(lines)")
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
    }

    /// `install 6.9 --updates --ena`: the updates repository's kernel is installed directly
    /// (the GA kernel not at all), ENA is built against its kernel-devel (which 6.9's
    /// updates repository carries for each of its kernels), grub.conf's only entry boots
    /// it with its initramfs, and in that boot `modprobe ena` loads our module.
    @Test func installWithUpdatesAndENABuildsForTheNewerKernelAndItLoadsThere() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("updates")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/c69-updates.img", new = Self.newKver
        let versions = try ENAImage.standinVersions(into: dir)
        let server = try VaultServer()
        let out = try Integration.tool(
            [
                "install", "6.9", image, "--updates", "--ena", "--ena-source", ENAImage.fixture, "--versions", versions,
                "--minimal", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--log", dir + "/install.log",
            ],
            environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        server.stop()
        try #require(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("kernel-2.6.32-696.30.1.el6 from the updates repository"), "\(out.stderr)")
        #expect(out.stderr.contains("ENA 0.0.1 built for \(new)"), "\(out.stderr)")
        #expect(
            (out.stdout + out.stderr).contains("kernel:           2.6.32-696.30.1.el6\n"), "the summary names the installed kernel: \(out.stdout)\(out.stderr)")
        let log = (try? String(contentsOfFile: dir + "/install.log", encoding: .utf8)) ?? ""
        #expect(log.contains("BUILD_KERNEL=\(new) KERNEL_BUILD_DIR=/usr/src/kernels/\(new)"), "kbuild against the updates kernel's tree")
        do {
            let attached = try AttachedImage(image, readOnly: true)
            defer { attached.detach() }
            let mnt = dir + "/ro"
            let mounted = try sh("mkdir -p \(mnt) && mount -o ro,noload \(attached.partition) \(mnt)")
            defer { _ = try? sh("umount \(mnt); rmdir \(mnt)") }
            try #require(mounted.status == 0, "\(mounted.stderr)")
            let kernels = try chroot(mnt, ["/usr/bin/rpm", "-q", "kernel"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(kernels == "kernel-\(new)", "only the updates kernel: \(kernels)")
            let conf = try String(contentsOfFile: mnt + "/boot/grub/grub.conf", encoding: .utf8)
            let (index, entries) = Self.entries(conf)
            #expect(index == 0 && entries.count == 1 && entries[0].kernel.hasPrefix("/boot/vmlinuz-\(new) ro root=LABEL=/ "), "\(conf)")
            #expect(entries.first?.kernel.contains("net.ifnames=0") == true, "\(conf)")
            #expect(conf.contains("initrd /boot/initramfs-\(new).img"), "\(conf)")
            #expect(FileManager.default.fileExists(atPath: mnt + "/boot/initramfs-\(new).img"))
            #expect(FileManager.default.fileExists(atPath: mnt + "/lib/modules/\(new)/extra/ena/ena.ko"))
            let dep = (try? String(contentsOfFile: mnt + "/lib/modules/\(new)/modules.dep", encoding: .utf8)) ?? ""
            #expect(dep.contains("extra/ena/ena.ko:"), "ena.ko reachable through modules.dep")
            #expect(!FileManager.default.fileExists(atPath: mnt + "/usr/src/kernels/\(new)"), "kernel-devel stays in the build root")
        }
        let copy = dir + "/boot.img"
        _ = try sh("cp --sparse=always \(image) \(copy)")
        do {
            let attached = try AttachedImage(copy)
            defer { attached.detach() }
            let mnt = dir + "/rw"
            let mounted = try sh("mkdir -p \(mnt) && mount \(attached.partition) \(mnt)")
            try #require(mounted.status == 0, "\(mounted.stderr)")
            defer { _ = try? sh("umount \(mnt); rmdir \(mnt)") }
            try ENAImage.appendProbe(root: mnt, tag: "updates-ena")
        }
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUpdatesInstallBootTestKeyCentos6Ami updates@test"
        try (key + "\n").write(toFile: dir + "/key.pub", atomically: true, encoding: .utf8)
        let boot = try Integration.tool(["boot-test", copy, "--key", dir + "/key.pub", "--timeout", "240"])
        #expect(boot.status == 0, "\(boot.stderr)")
        let console = (try? String(contentsOfFile: copy + ".console.log", encoding: .utf8)) ?? ""
        let plain = String(String.UnicodeScalarView(console.unicodeScalars.filter { $0 != "\r" }))
        #expect(plain.contains("\nkernel /boot/vmlinuz-\(new) ro root=LABEL=/ "), "grub boots the updates kernel")
        ENAImage.expectOurModuleLoaded(consoleLog: copy + ".console.log", tag: "updates-ena")
        try Integration.expectNothingLeft(dir, workDir: dir + "/work")
    }
}
