import Foundation
import Host
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// The installed 6.9 image booted once by `boot-test` with `--keep-copy`: the image
/// itself must come out byte-identical, the kept copy holds what the boot left.
final class BootedCopy: Sendable {
    let built: InstalledImage
    let copy: String
    let console: String
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEndToEndBootTestKeyCentos6Ami e2e@test"
    let result: Integration.Output
    let shaBefore: String
    let shaAfter: String

    /// Built by the first test that asks, under the lock; the others wait for it.
    private static let booted = Locked<Result<BootedCopy, Error>?>(nil)

    static func shared() throws -> BootedCopy {
        try booted.withLock { booted in
            if booted == nil { booted = Result { try BootedCopy() } }
            return booted!
        }.get()
    }

    static func sha256(_ path: String) throws -> String {
        let out = try Integration.run("/usr/bin/sha256sum", [path])
        guard out.status == 0 else { throw TestFailure("sha256sum \(path): \(out.stderr)") }
        return String(out.stdout.prefix(64))
    }

    private init() throws {
        built = try InstalledImage.shared()
        guard built.result.status == 0 else { throw TestFailure("the shared install failed: \(built.result.stderr)") }
        copy = built.dir + "/booted-copy.img"
        console = built.dir + "/boot.console.log"
        try (key + "\n").write(toFile: built.dir + "/key.pub", atomically: true, encoding: .utf8)
        shaBefore = try BootedCopy.sha256(built.image)
        let started = Date()
        result = try Integration.tool([
            "boot-test", built.image, "--key", built.dir + "/key.pub", "--timeout", "240",
            "--keep-copy", copy, "--console", console,
        ])
        print(String(format: "boot-test of the installed 6.9 image (copy included): %.1f s", Date().timeIntervalSince(started)))
        shaAfter = try BootedCopy.sha256(built.image)
    }
}

@Suite(.serialized, .enabled(if: Integration.enabled))
struct ReliabilityTests {
    // MARK: boot-test never touches its input; the hygiene gate

    /// `register` of the booted copy, through a loop device named with `--device`, is
    /// refused before any AWS request; `--allow-dirty` proceeds; the pristine image passes.
    @Test func registerRefusesABootedCopyBeforeAnyAWSRequest() throws {
        let booted = try BootedCopy.shared()
        try #require(booted.result.status == 0, "\(booted.result.stderr)")
        let dir = try Integration.scratchDirectory("hygiene")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let volume = try moto.createVolume()
        try moto.http("POST", "/moto-api/recorder/start-recording")
        func register(_ device: String, _ extra: [String] = []) throws -> Integration.Output {
            try Integration.tool(
                [
                    "register", "6.9", volume, "--device", device, "--endpoint-url", moto.endpoint, "--region", "ap-northeast-1",
                    "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register-\(UUID().uuidString.prefix(4)).log",
                ] + extra)
        }
        // moto creates its recording file with the first request it records.
        func actions() throws -> [String] {
            FileManager.default.fileExists(atPath: moto.recording) ? try moto.recordedRequests().compactMap { $0["Action"] } : []
        }

        let dirty = try AttachedImage(booted.copy, readOnly: true)
        defer { dirty.detach() }
        let refused = try register(dirty.loop)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("error: '\(dirty.loop)' holds what a boot or a person left behind; refusing to snapshot it:"), "\(refused.stderr)")
        #expect(refused.stderr.contains("  /home/ec2-user/.ssh/authorized_keys: an authorized_keys file"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--allow-dirty registers it anyway"))
        let before = try actions()
        #expect(before.isEmpty, "no AWS request before the refusal: \(before)")

        // inspect lists the same findings.
        let inspect = try Integration.tool(["inspect", booted.copy])
        #expect(inspect.status == 1)
        for line in refused.stderr.split(separator: "\n") where line.hasPrefix("  /") {
            #expect(inspect.stdout.contains(line), "inspect lacks \(line): \(inspect.stdout)")
        }
        print("hygiene findings of the booted copy:\n\(inspect.stdout)")

        let allowed = try register(dirty.loop, ["--allow-dirty", "--build-id", "it-dirty"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stderr.contains("WARNING: --allow-dirty: registering '\(dirty.loop)'"))
        let made = try actions()
        #expect(made.contains("CreateSnapshot") && made.contains("RegisterImage"), "\(made)")
        dirty.detach()

        // The image as installed (and as boot-test left it) is clean: it registers without the flag.
        let pristine = try Integration.tool(["inspect", booted.built.image])
        #expect(pristine.status == 0, "\(pristine.stdout)")
        #expect(pristine.stdout.contains("hygiene: clean"))
        let clean = try AttachedImage(booted.built.image, readOnly: true)
        defer { clean.detach() }
        let registered = try register(clean.loop, ["--build-id", "it-clean"])
        #expect(registered.status == 0, "\(registered.stderr)")
        #expect(registered.stderr.contains("hygiene: '\(clean.loop)' is clean"))

        // A bare volume id cannot be read here: a warning, not a silent pass.
        let unchecked = try Integration.tool(
            [
                "register", "6.9", volume, "--endpoint-url", "http://127.0.0.1:9", "--region", "ap-northeast-1",
                "--results", dir + "/r2.json", "--log", dir + "/unchecked.log", "--timeout", "0.01",
            ],
            environment: ["AWS_MAX_ATTEMPTS": "1"])
        #expect(unchecked.stderr.contains("warning: '\(volume)' cannot be read from this host, so it was not checked"), "\(unchecked.stderr)")
        clean.detach()
        try Integration.expectNothingLeft(booted.built.dir, workDir: booted.built.workDir)
    }

    /// A device target is copied too: its bytes are the same after the boot.
    @Test func bootTestOfADeviceBootsACopyAndLeavesTheDeviceAsItWas() throws {
        let booted = try BootedCopy.shared()
        let built = booted.built
        let attached = try AttachedImage(built.image) // read-write: booting it in place would show
        defer { attached.detach() }
        let out = try Integration.tool([
            "boot-test", attached.loop, "--key", built.dir + "/key.pub", "--timeout", "240",
            "--console", built.dir + "/device-console.log",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("copying \(attached.loop) to /var/tmp/centos6-ami-boot."), "\(out.stderr)")
        #expect(out.stderr.contains("boot-test passed: login: after"))
        // The device's bytes are its backing file's (hashing the sparse file is fast, the 8 GiB device is not).
        attached.detach()
        #expect(try BootedCopy.sha256(built.image) == booted.shaBefore, "boot-test changed the device")
        let copy = out.stderr.components(separatedBy: "copying \(attached.loop) to ").dropFirst().first?.components(separatedBy: " (").first ?? ""
        #expect(copy.hasSuffix("/boot-copy.img") && !FileManager.default.fileExists(atPath: copy), "the throwaway copy '\(copy)' is removed")
        #expect(!FileManager.default.fileExists(atPath: (copy as NSString).deletingLastPathComponent), "and its directory")
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
    }

    // MARK: crash recovery

    func startInstall(_ dir: String, _ extra: [String], server: VaultServer) throws -> BackgroundProcess {
        try BackgroundProcess(
            Integration.binary,
            [
                "install", "6.9", dir + "/k.img", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--log", dir + "/install.log",
            ] + extra,
            environment: MotoServer.awsEnvironment.merging(["CENTOS6_AMI_WORK_DIR": dir + "/work"]) { $1 })
    }

    func journalText(_ dir: String) -> String {
        let journals = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/work/journal")) ?? []).filter { $0.hasSuffix(".journal") }
        return journals.map { (try? String(contentsOfFile: dir + "/work/journal/" + $0, encoding: .utf8)) ?? "" }.joined()
    }

    /// SIGKILL, then `cleanup --local`: every trace of the run is gone.
    func killAndRecover(
        _ install: BackgroundProcess, dir: String, point: String,
        beforeCleanup: () throws -> Void = {}, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let journal = journalText(dir)
        #expect(journal.contains("\nmount\t") || point.contains("attach-loop"), "\(point): journal \(journal.prefix(600))", sourceLocation: sourceLocation)
        let lockPath = journal.split(separator: "\n").first { $0.hasPrefix("lock\t") }.map { String($0.dropFirst(5)) }
        #expect(lockPath != nil, "\(point): the lock is in the journal", sourceLocation: sourceLocation)
        install.signal(SIGKILL)
        _ = install.wait(timeout: 30)
        #expect(
            !(try Integration.loopDevices(backedBy: dir)).isEmpty, "\(point): the kill left a loop device (else this proves nothing)",
            sourceLocation: sourceLocation)
        try beforeCleanup()
        let started = Date()
        let out = try Integration.tool(["cleanup", "--local"], environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        print(String(format: "kill -9 %@: cleanup --local in %.2f s:\n%@", point, Date().timeIntervalSince(started), out.stdout))
        #expect(out.status == 0, "\(point): \(out.stdout)\n\(out.stderr)", sourceLocation: sourceLocation)
        #expect(out.stdout.contains("the host is clean"), sourceLocation: sourceLocation)
        try Integration.expectNothingLeft(dir, workDir: dir + "/work", sourceLocation: sourceLocation)
        if let lockPath { #expect(!FileManager.default.fileExists(atPath: lockPath), "\(point): lock \(lockPath) left", sourceLocation: sourceLocation) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/k.img"), "\(point): unfinished image left", sourceLocation: sourceLocation)
        #expect(journalText(dir).isEmpty, "\(point): journal left", sourceLocation: sourceLocation)
        let again = try Integration.tool(["cleanup", "--local"], environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(again.status == 0 && again.stdout.contains("nothing to do"), "\(again.stdout)", sourceLocation: sourceLocation)
    }

    /// Pid of a process whose root is inside `workDir` and whose command line holds `word`.
    func chrootProcess(under workDir: String, matching word: String) -> Int32? {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let root = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root"),
                root.hasPrefix(workDir + "/")
            else { continue }
            let cmd = Integration.procText("/proc/\(pid)/cmdline").replacingOccurrences(of: "\0", with: " ")
            if cmd.contains(word) { return pid }
        }
        return nil
    }

    @Test func killedAfterAttachLoopOrMountIsRecoveredByCleanupLocal() throws {
        try TestVault.require()
        let server = try VaultServer()
        defer { server.stop() }
        for step in ["attach-loop", "mount"] {
            let dir = try Integration.scratchDirectory("kill-\(step)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let install = try startInstall(dir, ["--stop-after", step, "--hold", "600"], server: server)
            #expect(install.waitFor("holding for", timeout: 300), "\(install.stderr)")
            try killAndRecover(install, dir: dir, point: "after \(step)") {
                guard step == "attach-loop" else { return }
                // The next install on that image (and batch) name the one command that recovers.
                let next = try Integration.tool(
                    [
                        "install", "6.9", dir + "/k.img", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                        "--cache", SharedCache.path, "--log", dir + "/next.log",
                    ],
                    environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
                #expect(next.status == 1)
                #expect(next.stderr.contains("died without cleaning up") && next.stderr.contains("run 'centos6-ami cleanup --local' first"), "\(next.stderr)")
                let batch = try Integration.tool(
                    [
                        "batch", "6.9=\(dir)/k.img", "--dry-run", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                        "--cache", SharedCache.path, "--summary", dir + "/summary.json",
                    ],
                    environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
                #expect(batch.status == 1)
                #expect(batch.stderr.contains("run 'centos6-ami cleanup --local' first"), "\(batch.stderr)")
            }
        }
    }

    @Test func killedDuringTheChrootsYumOrTheBootloaderIsRecoveredByCleanupLocal() throws {
        try TestVault.require()
        let server = try VaultServer()
        defer { server.stop() }
        do {
            let dir = try Integration.scratchDirectory("kill-yum")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let install = try startInstall(dir, [], server: server)
            #expect(install.waitFor("install-packages:", timeout: 300), "\(install.stderr)")
            var yum: Int32?
            let deadline = Date().addingTimeInterval(120)
            while yum == nil && Date() < deadline && install.process.isRunning {
                yum = chrootProcess(under: dir + "/work", matching: "yum") ?? chrootProcess(under: dir + "/work", matching: "dnf")
                if yum == nil { usleep(20_000) }
            }
            try #require(yum != nil, "no yum in the chroot seen: \(install.stderr)")
            try killAndRecover(install, dir: dir, point: "during the chroot's yum") {
                print("yum in the chroot: pid \(yum!), still there after the kill: \(FileManager.default.fileExists(atPath: "/proc/\(yum!)/root"))")
            }
        }
        do {
            let dir = try Integration.scratchDirectory("kill-grub")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let install = try startInstall(dir, [], server: server)
            #expect(install.waitFor("install-bootloader:", timeout: 400), "\(install.stderr)")
            // The kill lands while the target's grub runs in the chroot when we catch it (it runs about a second).
            var grub: Int32?
            let deadline = Date().addingTimeInterval(20)
            while grub == nil && Date() < deadline && !install.stderr.contains("] clean:") {
                grub = chrootProcess(under: dir + "/work", matching: "grub")
                if grub == nil { usleep(5_000) }
            }
            print("install-bootloader: grub in the chroot \(grub.map { "caught, pid \($0)" } ?? "not caught; killed during the step")")
            try killAndRecover(install, dir: dir, point: "during install-bootloader")
        }
    }

    // MARK: no self-inflicted crash

    @Test func aLogFilesystemThatFillsUpAndStderrOnDevFullDoNotCrashTheInstall() throws {
        try TestVault.require()
        let server = try VaultServer()
        defer { server.stop() }
        do {
            let dir = try Integration.scratchDirectory("tiny-log")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let logfs = dir + "/logfs"
            try FileManager.default.createDirectory(atPath: logfs, withIntermediateDirectories: true)
            try #require(try Integration.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", logfs]).status == 0)
            defer { _ = try? Integration.run("/usr/bin/umount", [logfs]) }
            let out = try Integration.tool(
                [
                    "install", "6.9", dir + "/t.img", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                    "--cache", SharedCache.path, "--log", logfs + "/install.log", "--stop-after", "install-packages",
                ],
                environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
            #expect(out.status == 0 || out.status == 1, "exit \(out.status): \(out.stderr)")
            #expect(out.stderr.components(separatedBy: "cannot write the log").count == 2, "one warning: \(out.stderr)")
            #expect(out.stderr.contains("No space left on device"))
            print(
                "install with --log on a 64 KiB tmpfs: exit \(out.status); log file \((try? FileManager.default.attributesOfItem(atPath: logfs + "/install.log")[.size]) ?? "?") bytes"
            )
            try Integration.expectNothingLeft(dir, workDir: dir + "/work")
            #expect(journalText(dir).isEmpty)
        }
        do {
            let dir = try Integration.scratchDirectory("dev-full")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let args = [
                "install", "6.9", dir + "/f.img", "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", SharedCache.path, "--log", dir + "/install.log", "--stop-after", "bootstrap",
            ]
            let out = try Integration.run(
                "/bin/sh", ["-c", "exec \"$0\" \"$@\" 2>/dev/full", Integration.binary] + args,
                environment: MotoServer.awsEnvironment.merging(["CENTOS6_AMI_WORK_DIR": dir + "/work"]) { $1 })
            #expect(out.status == 0 || out.status == 1, "exit \(out.status) (132 was the trap)")
            let log = (try? String(contentsOfFile: dir + "/install.log", encoding: .utf8)) ?? ""
            #expect(log.contains("warning: cannot write to stderr (No space left on device)"), "\(log.suffix(2000))")
            #expect(log.contains("stopping after step 'bootstrap' as asked"))
            try Integration.expectNothingLeft(dir, workDir: dir + "/work")
            #expect(journalText(dir).isEmpty)
        }
        do {
            let dir = try Integration.scratchDirectory("huge")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            func install(_ size: String) throws -> Integration.Output {
                try Integration.tool(
                    [
                        "install", "6.9", dir + "/huge.img", "--size", size, "--mirror", server.mirror, "--gpg-key", TestVault.key,
                        "--cache", SharedCache.path, "--log", dir + "/install-\(size).log",
                    ],
                    environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
            }
            // 100T: refused before anything is written (CentOS 6's ext4 holds at most 16T).
            let refused = try install("100T")
            #expect(refused.status == 64 || refused.status == 1, "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/huge.img"))
            // 16T passes that rule, but the builder's ext4 (4 KiB blocks) holds files only below 16 TiB:
            // truncate fails with "File too large" after creating an empty file, which must go too.
            let out = try install("16T")
            #expect(out.status == 1)
            #expect(out.stderr.contains("File too large"), "\(out.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/huge.img"), "no empty image left for the next run to accept")
            try Integration.expectNothingLeft(dir, workDir: dir + "/work")
        }
    }
}
