import Foundation
import Host
import Testing
import Verdict

/// `--ena` against the test vault: one `install 6.9 --ena` of the stand-in
/// ENA tree (Tests/Fixtures/ena-standin), built once and shared by the checks;
/// the refusals are cheap (they stop before metadata is fetched).
final class ENAImage: Sendable {
    static let fixture = Integration.repoRoot.appendingPathComponent("Tests/Fixtures/ena-standin").path
    static let kver = "2.6.32-696.el6.x86_64"
    static let marker = "centos6-ami test ena loaded"

    let dir: String
    let image: String
    let workDir: String
    let versions: String
    let result: Integration.Output
    let headersOnHost: [String]

    /// Built by the first test that asks, under the lock; the others wait for it.
    private static let built = Locked<Result<ENAImage, Error>?>(nil)

    static func shared() throws -> ENAImage {
        try built.withLock { built in
            if built == nil { built = Result { try ENAImage() } }
            return built!
        }.get()
    }

    /// A copy of versions.json whose ENA pin is the stand-in's own list: the only
    /// way to change the pin is a versions file the user names (--versions).
    static func standinVersions(into dir: String) throws -> String {
        let data = try Data(contentsOf: Integration.repoRoot.appendingPathComponent("versions.json"))
        var json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var ena = json["ena"] as! [String: Any]
        var files: [String: String] = [:]
        for line in try String(contentsOfFile: fixture + "/SHA256SUMS", encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            files[String(parts[1])] = String(parts[0])
        }
        ena["files"] = files
        ena["version"] = "0.0.1"
        json["ena"] = ena
        let path = dir + "/versions-ena-standin.json"
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func reason(_ release: String) throws -> String {
        let data = try Data(contentsOf: Integration.repoRoot.appendingPathComponent("versions.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let releases = json["releases"] as! [[String: Any]]
        let entry = try #require(releases.first { $0["release"] as? String == release })
        return try #require((entry["ena"] as? [String: Any])?["reason"] as? String)
    }

    /// `<cache>/ena-build/<release>-<8 hex>` as the log names it.
    static func scratch(inLog log: String) -> String? {
        guard let range = log.range(of: SharedCache.path + #"/ena-build/6\.\d+-[0-9a-f]{8}"#, options: .regularExpression) else { return nil }
        return String(log[range])
    }

    /// Kernel headers a host build could pick up (none must exist: the proof that the build root's are used).
    static func hostKernelHeaders() -> [String] {
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        var found = ["/lib/modules/\(release)/build", "/lib/modules/\(release)/source"].filter { FileManager.default.fileExists(atPath: $0) }
        found += ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/src")) ?? []).filter { $0.hasPrefix("linux") }.map { "/usr/src/" + $0 }
        return found
    }

    private init() throws {
        try TestVault.require()
        dir = try Integration.scratchDirectory("ena")
        image = dir + "/c69-ena.img"
        workDir = dir + "/work"
        versions = try Self.standinVersions(into: dir)
        headersOnHost = Self.hostKernelHeaders()
        let server = try VaultServer()
        defer { server.stop() }
        result = try Integration.tool(
            [
                "install", "6.9", image, "--ena", "--ena-source", Self.fixture, "--versions", versions,
                "--ena-share", dir + "/ena-share",
                "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--log", dir + "/install.log",
            ],
            environment: ["CENTOS6_AMI_WORK_DIR": workDir])
    }

    /// Test-only lines at the end of rc.local of a copy mounted at `root`: after
    /// boot they print whether `modprobe ena` worked, which file it took, our
    /// module's marker in dmesg and whether it is loaded, each line starting `TAG:`.
    static func appendProbe(root: String, tag: String) throws {
        let probe = """

            # centos6-ami ENA probe (added to a copy by the integration tests)
            echo "\(tag): modprobe: $(/sbin/modprobe ena 2>&1; echo status $?)"
            echo "\(tag): modinfo: $(/sbin/modinfo -n ena 2>&1)"
            echo "\(tag): dmesg: $(dmesg | grep -o '\(marker)' | head -1)"
            echo "\(tag): loaded: $(grep -c '^ena ' /proc/modules)"

            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/etc/rc.d/rc.local"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(probe.utf8))
        try handle.close()
    }

    /// The probe's lines in a console log ("\r\n" is one Character in Swift: the "\r"s go first).
    static func probeLines(consoleLog: String, tag: String) -> [Substring] {
        let console = (try? String(contentsOfFile: consoleLog, encoding: .utf8)) ?? ""
        return String(String.UnicodeScalarView(console.unicodeScalars.filter { $0 != "\r" })).split(separator: "\n").filter { $0.contains(tag + ":") }
    }

    /// The probe's lines say `modprobe ena` loaded OUR module (its marker) from extra/.
    static func expectOurModuleLoaded(consoleLog: String, tag: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = probeLines(consoleLog: consoleLog, tag: tag)
        print("\(tag) boot:\n" + lines.joined(separator: "\n"))
        #expect(lines.contains { $0.contains("\(tag): modprobe: status 0") }, "\(lines)", sourceLocation: sourceLocation)
        #expect(
            lines.contains { $0.contains("\(tag): modinfo: /lib/modules/") && $0.hasSuffix("/extra/ena/ena.ko") }, "\(lines)", sourceLocation: sourceLocation)
        #expect(lines.contains { $0.contains("\(tag): dmesg: \(marker)") }, "the marker of OUR module: \(lines)", sourceLocation: sourceLocation)
        #expect(lines.contains { $0.contains("\(tag): loaded: 1") }, "\(lines)", sourceLocation: sourceLocation)
    }

    /// Runs `body` on a writable copy of the image, mounted with /proc (rpm needs both).
    func withMountedCopy<T>(_ body: (String) throws -> T) throws -> T {
        let copy = dir + "/copy.img"
        _ = try Integration.run("/bin/cp", ["--sparse=always", image, copy])
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let attached = try AttachedImage(copy)
        defer { attached.detach() }
        let mnt = dir + "/rw"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mnt) }
        let mount = try Integration.run("/usr/bin/mount", [attached.partition, mnt])
        guard mount.status == 0 else { throw TestFailure("cannot mount \(attached.partition): \(mount.stderr)") }
        defer { _ = try? Integration.run("/usr/bin/umount", [mnt]) }
        _ = try Integration.run("/usr/bin/mount", ["-t", "proc", "proc", mnt + "/proc"])
        defer { _ = try? Integration.run("/usr/bin/umount", [mnt + "/proc"]) }
        return try body(mnt)
    }
}

@Suite(.serialized, .enabled(if: Integration.enabled))
struct ENAInstallTests {
    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }
    func chroot(_ root: String, _ args: [String]) throws -> Integration.Output { try Integration.run("/usr/sbin/chroot", [root] + args) }

    /// `--ena` on 6.5: versions.json's reason, before metadata is fetched (6.5 is not even in the vault) and before any write.
    @Test func enaOn6_5IsRefusedWithTheReasonBeforeAnyWrite() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("ena65")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let image = dir + "/c65.img"
        let out = try Integration.tool(
            [
                "install", "6.5", image, "--ena", "--ena-source", ENAImage.fixture, "--mirror", server.mirror,
                "--gpg-key", TestVault.key, "--cache", SharedCache.path, "--log", dir + "/install.log",
            ],
            environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(out.status == 1, "\(out.stderr)")
        let reason = try ENAImage.reason("6.5")
        #expect(reason.contains("busy_poll"))
        #expect(out.stderr.contains("error: step 'ena-source' failed: ENA 2.9.1 cannot be built for CentOS 6.5: \(reason)"), "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: image), "no image created")
        #expect(try server.stats().requests == 0, "nothing fetched")
        let log = (try? String(contentsOfFile: dir + "/install.log", encoding: .utf8)) ?? ""
        #expect(!log.contains("ena-build/"), "no scratch directory made")
        try Integration.expectNothingLeft(dir, workDir: dir + "/work")
    }

    /// Usage: the ENA options need --ena (exit 64); a missing source is named (exit 1) before anything is fetched.
    @Test func enaOptionsAreChecked() throws {
        let dir = try Integration.scratchDirectory("ena-usage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for option in ["--ena-source", "--ena-share"] {
            let out = try Integration.tool(["install", "6.9", dir + "/x.img", option, dir])
            #expect(out.status == 64 && out.stderr.contains("error: \(option) needs --ena"), "\(out.stderr)")
        }
        let out = try Integration.tool(
            [
                "install", "6.9", dir + "/x.img", "--ena", "--ena-source", dir + "/missing.tar.gz", "--mirror", "http://127.0.0.1:9",
                "--cache", SharedCache.path, "--log", dir + "/install.log",
            ], environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(out.status == 1 && out.stderr.contains("ENA source: '\(dir)/missing.tar.gz' does not exist"), "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.img"))
    }

    /// One flipped byte in a common/ena_com file of the archive (the directory
    /// the driver's Makefile compiles from ../common/ena_com): named, refused
    /// before metadata, compilation or any write; the scratch directory is gone.
    @Test func aTamperedCommonEnaComFileIsRefusedBeforeCompilation() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("ena-tampered")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let versions = try ENAImage.standinVersions(into: dir)
        let top = dir + "/amzn-drivers-ena_linux_0.0.1"
        _ = try sh("mkdir -p \(top) && cp -R \(ENAImage.fixture)/kernel \(top)/")
        // One byte: 'centos6-ami' -> 'Centos6-ami' in the marker text.
        let file = top + "/kernel/linux/common/ena_com/ena_com.c"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let tampered = text.replacingOccurrences(of: "\"centos6-ami test ena\"", with: "\"Centos6-ami test ena\"")
        try #require(tampered != text)
        try tampered.write(toFile: file, atomically: true, encoding: .utf8)
        _ = try sh("cd \(dir) && tar -czf ena.tar.gz amzn-drivers-ena_linux_0.0.1")
        let server = try VaultServer()
        defer { server.stop() }
        let image = dir + "/c69.img"
        let out = try Integration.tool(
            [
                "install", "6.9", image, "--ena", "--ena-source", dir + "/ena.tar.gz", "--versions", versions,
                "--mirror", server.mirror, "--gpg-key", TestVault.key, "--cache", SharedCache.path, "--log", dir + "/install.log",
            ],
            environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(out.status == 1, "\(out.stderr)")
        #expect(out.stderr.contains("does not match the pinned sha256 list"), "\(out.stderr)")
        #expect(out.stderr.contains("different: 'kernel/linux/common/ena_com/ena_com.c'"), "\(out.stderr)")
        #expect(out.stderr.contains("(1 problem(s))"), "only the tampered file is named: \(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: image), "no image created")
        #expect(try server.stats().requests == 0, "refused before metadata")
        let log = (try? String(contentsOfFile: dir + "/install.log", encoding: .utf8)) ?? ""
        #expect(!log.contains(" make ") && !log.contains("ena-build:"), "nothing compiled")
        let scratch = try #require(ENAImage.scratch(inLog: log), "the log names the scratch directory")
        #expect(!FileManager.default.fileExists(atPath: scratch), "scratch removed: \(scratch)")
        try Integration.expectNothingLeft(dir, workDir: dir + "/work")
    }

    @Test func buildsTheStandInWithTheBuildRootsGccAndInstallsKmodEna() throws {
        let built = try ENAImage.shared()
        #expect(
            built.headersOnHost.isEmpty,
            "this host has kernel headers (\(built.headersOnHost)); the test proves the build root's are used only on a builder without them")
        #expect(built.result.status == 0, "\(built.result.stderr)")
        #expect(
            built.result.stderr.contains("ENA 0.0.1 source: all 7 files of kernel/linux/ena and kernel/linux/common/ena_com match versions.json"),
            "\(built.result.stderr)")
        let timing = built.result.stderr.split(separator: "\n").first { $0.contains("ENA 0.0.1 built for \(ENAImage.kver)") }
        #expect(timing != nil, "\(built.result.stderr)")
        print("ena install: \(timing ?? "?")")
        // A real kbuild run inside the build root, with its own gcc, against kernel-devel.
        let log = (try? String(contentsOfFile: built.dir + "/install.log", encoding: .utf8)) ?? ""
        // Both directories in the build root at their real relative paths, the
        // common objects compiled through ../common/ena_com, nothing else of the tree.
        let src = "/usr/src/centos6-ami-ena/src/kernel/linux"
        #expect(log.contains("make -C \(src)/ena -j2 BUILD_KERNEL=\(ENAImage.kver) KERNEL_BUILD_DIR=/usr/src/kernels/\(ENAImage.kver)"))
        #expect(log.contains("cp -RP \(ENAImage.fixture)/kernel/linux/common/ena_com "), "the common directory copied from the tree")
        for object in ["ena/ena_netdev.o", "ena/../common/ena_com//ena_com.o", "ena/../common/ena_com//ena_eth_com.o"] {
            #expect(log.contains("CC [M]  \(src)/\(object)"), "kbuild compiled \(object)")
        }
        #expect(log.contains("LD [M]  \(src)/ena/ena.ko"))
        #expect(!log.contains("ena_standin"), "nothing of another layout")
        #expect(built.result.stderr.contains("kmod-ena installed in the target"))
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
        #expect(Integration.mounts(under: SharedCache.path + "/ena-build").isEmpty)
        let scratch = try #require(ENAImage.scratch(inLog: log), "the log names the scratch directory")
        #expect(!FileManager.default.fileExists(atPath: scratch), "build root and scratch removed: \(scratch)")
        #expect(Integration.mounts(under: scratch).isEmpty)
        let mirror = SharedCache.path + "/mirrors/6.9-ena-" + String((scratch as NSString).lastPathComponent.dropFirst(4).prefix(4))
        #expect(!FileManager.default.fileExists(atPath: mirror), "the build root's local mirror removed: \(mirror)")
    }

    @Test func theImageHasKmodEnaAndOnlyItsFiles() throws {
        let built = try ENAImage.shared()
        try #require(built.result.status == 0)
        try built.withMountedCopy { mnt in
            let q = try chroot(mnt, ["rpm", "-q", "kmod-ena"])
            #expect(q.status == 0 && q.stdout.hasPrefix("kmod-ena-0.0.1-1.x86_64"), "\(q.stdout) \(q.stderr)")
            let files = try chroot(mnt, ["rpm", "-ql", "kmod-ena"]).stdout.split(separator: "\n").map(String.init).sorted()
            #expect(
                files == ["/etc/depmod.d/kmod-ena.conf", "/lib/modules/\(ENAImage.kver)/extra/ena", "/lib/modules/\(ENAImage.kver)/extra/ena/ena.ko"],
                "\(files)")
            let verify = try chroot(mnt, ["rpm", "-V", "kmod-ena"])
            #expect(verify.status == 0, "\(verify.stdout)")
            // vermagic = the release inside the vault's kernel-devel (Debian's, recorded by the vault's kernel package).
            let debian = try String(contentsOfFile: mnt + "/lib/modules/\(ENAImage.kver)/vault-uname-r", encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
            let vermagic = try chroot(mnt, ["modinfo", "-F", "vermagic", "/lib/modules/\(ENAImage.kver)/extra/ena/ena.ko"]).stdout
            #expect(vermagic.hasPrefix(debian + " "), "vermagic '\(vermagic)' vs kernel-devel's '\(debian)'")
            let description = try chroot(mnt, ["modinfo", "-F", "description", "/lib/modules/\(ENAImage.kver)/extra/ena/ena.ko"]).stdout
            #expect(description.contains("centos6-ami stand-in"), "our module, compiled from the stand-in")
            // The version the pinned tree builds, as amzn-drivers spells it (DRV_MODULE_GENERATION: "<pin>g").
            let version = try chroot(mnt, ["modinfo", "-F", "version", "/lib/modules/\(ENAImage.kver)/extra/ena/ena.ko"]).stdout
            #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == "0.0.1g", "modinfo version '\(version)'")
            // depmod picked ours over the kernel's in-tree ena.
            let dep = try String(contentsOfFile: mnt + "/lib/modules/\(ENAImage.kver)/modules.dep", encoding: .utf8)
            let enaLines = dep.split(separator: "\n").filter { $0.hasPrefix("ena.ko:") || $0.contains("/ena.ko:") }
            #expect(enaLines.count == 1 && enaLines[0].hasPrefix("extra/ena/ena.ko:"), "\(enaLines)")
            // Like CentOS 6's kernels, the stand-in kernel has no ena of its own: ENA comes only from kmod-ena.
            #expect(
                !FileManager.default.fileExists(atPath: mnt + "/lib/modules/\(ENAImage.kver)/kernel/drivers/net/ethernet/amazon/ena/ena.ko"),
                "the test kernel has no in-tree ena")
            let menu = try String(contentsOfFile: mnt + "/boot/grub/menu.lst", encoding: .utf8)
            #expect(menu.contains("xen_pv_hvm=enable net.ifnames=0\n"), "\(menu)")
            // Nothing of the build: no compiler, headers, sources, build root paths or package file.
            let names = try chroot(mnt, ["rpm", "-qa", "--qf", "%{NAME}\\n"]).stdout.split(separator: "\n").map(String.init)
            for tool in ["gcc", "gcc-12", "make", "rpm-build", "kernel-devel", "cpp-12", "binutils"] { #expect(!names.contains(tool), "\(tool) in the image") }
            // (The vault's rpm package carries rpmbuild itself, and filesystem owns an empty /usr/src/kernels.)
            for path in [
                "/usr/bin/gcc", "/usr/bin/make", "/usr/bin/cc", "/usr/src/kernels/\(ENAImage.kver)", "/usr/src/centos6-ami-ena", "/var/cache/yum/centos6-ami",
            ] {
                #expect(!FileManager.default.fileExists(atPath: mnt + path), "\(path) in the image")
            }
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: mnt + "/usr/src/kernels")) ?? []).isEmpty, "no kernel headers")
            let found = try sh(
                "cd \(mnt) && find . -xdev \\( -name '*.c' -o -name 'ena_netdev*' -o -name 'ena_com*' -o -name '*.o' -o -name 'kmod-ena*.rpm' -o -name '*.spec' -o -name 'cc1' \\) -print"
            ).stdout
            #expect(found.isEmpty, "\(found)")
            let mentions = try sh("grep -rls -e ena-build -e centos6-ami-ena \(mnt)/etc \(mnt)/root \(mnt)/var \(mnt)/tmp || true").stdout
            #expect(mentions.isEmpty, "build paths mentioned in: \(mentions)")
        }
    }

    /// `--ena-share` (what batch passes): a second install of the release reuses
    /// the first one's kmod-ena, with no build root and no kbuild.
    @Test func aSecondInstallOfTheReleaseReusesTheSharedBuild() throws {
        let built = try ENAImage.shared()
        try #require(built.result.status == 0)
        let share = built.dir + "/ena-share"
        let rpms = try sh("find \(share) -name 'kmod-ena-0.0.1-1.x86_64.rpm'").stdout.split(separator: "\n")
        #expect(rpms.count == 1, "the first install left its package in the share: \(rpms)")
        let server = try VaultServer()
        defer { server.stop() }
        let image = built.dir + "/second.img", workDir = built.dir + "/work2"
        let started = Date()
        let out = try Integration.tool(
            [
                "install", "6.9", image, "--ena", "--ena-source", ENAImage.fixture, "--versions", built.versions,
                "--ena-share", share, "--stop-after", "ena-build", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--log", built.dir + "/second.log",
            ],
            environment: ["CENTOS6_AMI_WORK_DIR": workDir])
        print(String(format: "ena second install up to ena-build: %.1f s", Date().timeIntervalSince(started)))
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("ENA: reusing kmod-ena built by another install of this batch (\(share)/6.9-0.0.1-"), "\(out.stderr)")
        let log = (try? String(contentsOfFile: built.dir + "/second.log", encoding: .utf8)) ?? ""
        #expect(!log.contains("make -C") && !log.contains("ENA build root:") && !log.contains("rpmbuild -bb"), "no build the second time")
        #expect(!FileManager.default.fileExists(atPath: image), "stopped before create-image")
        let scratch = try #require(ENAImage.scratch(inLog: log))
        #expect(!FileManager.default.fileExists(atPath: scratch), "scratch removed: \(scratch)")
        try Integration.expectNothingLeft(built.dir, workDir: workDir)
    }

    /// One initramfs build per install (the cache is warm by now): the kernel's %posttrans
    /// ran dracut with ec2.conf already in place, and the initramfs step kept that image.
    /// The vault's dracut records each image it writes (scripts/testvault/FIDELITY.md).
    @Test func aWarmInstallRunsDracutOnce() throws {
        let built = try ENAImage.shared()
        try #require(built.result.status == 0)
        let log = (try? String(contentsOfFile: built.dir + "/install.log", encoding: .utf8)) ?? ""
        #expect(log.contains("initramfs: kept the one kernel-2.6.32-696.el6's %posttrans built"), "the step says it kept it")
        try built.withMountedCopy { mnt in
            let runs = ((try? String(contentsOfFile: mnt + "/var/lib/dracut/test-vault-runs", encoding: .utf8)) ?? "").split(separator: "\n")
            #expect(runs == ["/boot/initramfs-\(ENAImage.kver).img \(ENAImage.kver)"], "dracut ran once: \(runs)")
            let verdict = try BootVerdict.compute(root: mnt)
            for driver in ["xen-blkfront", "xen-netfront", "nvme"] {
                #expect(verdict.drivers[driver] == .initramfs, "\(driver) in the initramfs: \(verdict.drivers)")
            }
        }
    }

    /// In the guest: `modprobe ena` loads OUR module from extra/ (its marker line), not the in-tree one.
    @Test func theGuestLoadsOurEnaModule() throws {
        let built = try ENAImage.shared()
        try #require(built.result.status == 0)
        let copy = built.dir + "/boot.img"
        _ = try sh("cp --sparse=always \(built.image) \(copy)")
        defer { try? FileManager.default.removeItem(atPath: copy); try? FileManager.default.removeItem(atPath: copy + ".console.log") }
        // Test-only lines at the end of rc.local of the copy (the built image is left as built).
        do {
            let attached = try AttachedImage(copy)
            defer { attached.detach() }
            let mnt = built.dir + "/boot-rw"
            let mounted = try sh("mkdir -p \(mnt) && mount \(attached.partition) \(mnt)")
            try #require(mounted.status == 0, "\(mounted.stderr)")
            defer { _ = try? sh("umount \(mnt); rmdir \(mnt)") }
            try ENAImage.appendProbe(root: mnt, tag: "ena-test")
        }
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnaBootTestKeyCentos6AmiStandInDriver ena@test"
        try (key + "\n").write(toFile: built.dir + "/key.pub", atomically: true, encoding: .utf8)
        let out = try Integration.tool(["boot-test", copy, "--key", built.dir + "/key.pub", "--timeout", "240"])
        #expect(out.status == 0, "\(out.stderr)")
        ENAImage.expectOurModuleLoaded(consoleLog: copy + ".console.log", tag: "ena-test")
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
    }
}
