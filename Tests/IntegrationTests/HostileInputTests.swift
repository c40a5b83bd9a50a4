import Disk
import Foundation
import Host
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// Careless and hostile input, run through the real binary as root: a second
/// name for a target in use, a fake tool in the current directory, a mirror
/// that trickles, files too small to be a disk, a full filesystem, an
/// unwritable summary, a password in the mirror URL. Each asserts the message,
/// the exit code and that nothing was left (loop devices, mounts, locks, files).
@Suite(.serialized, .enabled(if: Integration.enabled))
struct HostileInputTests {
    static let lockDirectory = "/run/lock/centos6-ami"

    struct Scratch {
        let dir: String
        var workDir: String { dir + "/work" }
        var environment: [String: String] { ["CENTOS6_AMI_WORK_DIR": workDir] }
        func path(_ name: String) -> String { dir + "/" + name }
    }

    func fresh(_ name: String) throws -> Scratch { try TestVault.require(); return Scratch(dir: try Integration.scratchDirectory(name)) }

    func options(_ s: Scratch, mirror: String) -> [String] {
        ["--mirror", mirror, "--gpg-key", TestVault.key, "--cache", s.path("cache")]
    }

    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }

    /// A loop device on `file` (no partition table: AttachedImage would wait for one), detached by name.
    final class Loop {
        let device: String
        init(_ file: String) throws {
            let out = try Integration.run("/usr/sbin/losetup", ["--find", "--show", file])
            guard out.status == 0 else { throw TestFailure("losetup \(file): \(out.stderr)") }
            device = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        private var attached = true
        func detach() { if attached { _ = try? Integration.run("/usr/sbin/losetup", ["-d", device]); attached = false } }
        deinit { detach() }
    }

    /// No lock file of `targets` is left in the lock directory.
    func expectNoLocks(_ targets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for target in targets {
            guard let kind = try? inspectTarget(target) else { continue }
            for lock in TargetIdentity.lockPaths(kind, directory: Self.lockDirectory) {
                #expect(!FileManager.default.fileExists(atPath: lock), "lock left: \(lock) for \(target)", sourceLocation: sourceLocation)
            }
        }
    }

    func expectRefused(_ out: Integration.Output, _ s: Scratch, status: Int32 = 1, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        #expect(out.status == status, "exit \(out.status): \(out.stderr)", sourceLocation: sourceLocation)
        for word in words { #expect(out.stderr.contains(word), "wanted '\(word)' in: \(out.stderr)", sourceLocation: sourceLocation) }
        try Integration.expectNothingLeft(s.dir, workDir: s.workDir, sourceLocation: sourceLocation)
    }

    // 1. One image under two names.
    @Test func aSecondNameForATargetInUseIsRefusedNamingBoth() throws {
        let s = try fresh("hostile-names")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let image = s.path("c.img"), link = s.path("clink.img"), hard = s.path("chard.img")
        #expect(try sh("truncate -s 3G \(image) && ln -s c.img \(link) && ln \(image) \(hard)").status == 0)
        let opts = options(s, mirror: "http://127.0.0.1:9")
        let holder = try BackgroundProcess(
            Integration.binary, ["install", "6.9", image, "--stop-after", "preflight", "--hold", "15", "--log", s.path("a.log")] + opts,
            environment: s.environment)
        #expect(holder.waitFor("holding for", timeout: 20), "\(holder.stderr)")
        // Both second names at once, without --log: also shows each run gets its own log.
        let second = try BackgroundProcess(Integration.binary, ["install", "6.9", link] + opts, environment: s.environment)
        let third = try BackgroundProcess(Integration.binary, ["install", "6.9", hard] + opts, environment: s.environment)
        for (run, name) in [(second, link), (third, hard)] {
            #expect(run.wait(timeout: 30) == 1, "\(run.stderr)")
            #expect(run.stderr.contains("error: step 'preflight' failed: target '\(name)' is in use by another centos6-ami run"), "\(run.stderr)")
            #expect(run.stderr.contains("centos6-ami install 6.9 \(image)"), "the holder's name is given: \(run.stderr)")
        }
        let logs = [second, third].map { run in run.stderr.split(separator: "\n").first { $0.hasPrefix("log: ") }.map { String($0.dropFirst(5)) } ?? "" }
        #expect(logs[0] != logs[1] && logs.allSatisfy { $0.hasPrefix("/var/log/centos6-ami/install-6.9-") }, "\(logs)")
        for log in logs where !log.isEmpty { try? FileManager.default.removeItem(atPath: log) }
        // A loop device on the same file is the same target too.
        let attached = try Loop(image)
        let viaLoop = try Integration.tool(["install", "6.9", attached.device, "--log", s.path("loop.log")] + opts, environment: s.environment)
        attached.detach()
        #expect(viaLoop.status == 1 && viaLoop.stderr.contains("is in use by another centos6-ami run"), "\(viaLoop.stderr)")
        #expect(holder.wait(timeout: 30) == 0, "\(holder.stderr)")
        expectNoLocks([image, link, hard])
        try Integration.expectNothingLeft(s.dir, workDir: s.workDir)
    }

    @Test func twoLoopDevicesOnOneFileAreOneTargetAndLockNamesDoNotCollide() throws {
        let s = try fresh("hostile-loops")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let image = s.path("c.img")
        #expect(try sh("truncate -s 3G \(image) && mkdir \(s.dir)/a").status == 0)
        let first = try Loop(image), second = try Loop(image)
        defer { first.detach(); second.detach() }
        let opts = options(s, mirror: "http://127.0.0.1:9")
        let holder = try BackgroundProcess(
            Integration.binary, ["install", "6.9", first.device, "--stop-after", "preflight", "--hold", "10", "--log", s.path("a.log")] + opts,
            environment: s.environment)
        #expect(holder.waitFor("holding for", timeout: 20), "\(holder.stderr)")
        let refused = try Integration.tool(["install", "6.9", second.device, "--log", s.path("b.log")] + opts, environment: s.environment)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(
            refused.stderr.contains("target '\(second.device)' is in use by another centos6-ami run") && refused.stderr.contains(first.device),
            "\(refused.stderr)")
        // The old lock named a_b.img and a/b.img alike; they are two targets.
        let flat = try BackgroundProcess(
            Integration.binary, ["install", "6.9", s.path("a_b.img"), "--stop-after", "preflight", "--hold", "5", "--log", s.path("c.log")] + opts,
            environment: s.environment)
        #expect(flat.waitFor("holding for", timeout: 20), "\(flat.stderr)")
        let nested = try Integration.tool(
            ["install", "6.9", s.path("a/b.img"), "--stop-after", "preflight", "--log", s.path("d.log")] + opts, environment: s.environment)
        #expect(nested.status == 0, "\(nested.stderr)")
        #expect(flat.wait(timeout: 30) == 0 && holder.wait(timeout: 30) == 0, "\(flat.stderr) \(holder.stderr)")
        expectNoLocks([image, first.device, second.device, s.path("a_b.img"), s.path("a/b.img")])
        first.detach(); second.detach()
        try Integration.expectNothingLeft(s.dir, workDir: s.workDir)
        // batch's duplicate check: a hard link and a symlink are the file itself.
        #expect(try sh("ln \(image) \(s.dir)/hard.img && ln -s c.img \(s.dir)/link.img").status == 0)
        for other in ["hard.img", "link.img"] {
            let batch = try Integration.tool(["batch", "6.8=\(image)", "6.9=\(s.path(other))", "--dry-run", "--summary", s.path("s.json")])
            #expect(batch.status == 1, "\(batch.stderr)")
            #expect(batch.stderr.contains("'\(image)' and '\(s.path(other))' are the same file"), "\(batch.stderr)")
        }
    }

    // 2. A program from the current directory never runs.
    @Test func aFakeToolInTheCurrentDirectoryNeverRuns() throws {
        let s = try fresh("hostile-cwd")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        for tool in ["sha1sum", "sha256sum", "gpgv", "xz"] {
            try "#!/bin/sh\ntouch \(s.dir)/ran-\(tool)\nexit 0\n".write(toFile: s.path(tool), atomically: true, encoding: .utf8)
            chmod(s.path(tool), 0o755)
        }
        let args = (["install", "6.9", s.path("n.img"), "--dry-run"] + options(s, mirror: server.mirror)).map(shellQuote).joined(separator: " ")
        let out = try sh("cd \(shellQuote(s.dir)) && PATH=. exec \(shellQuote(Integration.binary)) \(args)")
        #expect(out.status == 0, "\(out.stderr)")
        let ran = try FileManager.default.contentsOfDirectory(atPath: s.dir).filter { $0.hasPrefix("ran-") }
        #expect(ran.isEmpty, "ran from the current directory: \(ran)")
        // Really missing: the preflight names it and its package, before anything is written.
        let missing = try Integration.run(
            "/usr/bin/unshare",
            [
                "--mount", "--propagation", "private", "/bin/sh", "-c",
                "mount --bind /dev/null /usr/bin/sha1sum && cd \"$0\" && exec \"$@\"", s.dir,
                Integration.binary, "install", "6.9", s.path("n.img"), "--log", s.path("m.log"),
            ] + options(s, mirror: server.mirror),
            environment: s.environment)
        try expectRefused(missing, s, mentions: ["missing host tools: 'sha1sum' (package coreutils)"])
        #expect(!FileManager.default.fileExists(atPath: s.path("n.img")))
        expectNoLocks([s.path("n.img")])
    }

    // 3. A mirror that trickles.
    @Test func aTricklingMirrorFailsOnTimeNamingTheURL() throws {
        let s = try fresh("hostile-trickle")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        // One byte a second: never idle long enough for the idle timeout.
        try server.control(#"{"faults": [{"path": "/6.9/os/x86_64/repodata/repomd.xml", "throttle_bps": 1}]}"#)
        for extra in [["--dry-run"], ["--log", s.path("t.log")]] {
            let started = Date()
            let out = try Integration.tool(
                ["install", "6.9", s.path("t.img"), "--speed-limit", "100", "--speed-time", "3"] + extra + options(s, mirror: server.mirror),
                environment: s.environment)
            let seconds = Date().timeIntervalSince(started)
            try expectRefused(
                out, s,
                mentions: ["cannot download '\(server.mirror)/6.9/os/x86_64/repodata/repomd.xml'", "slower than 100 bytes/s for 3 s", "gave up after 3."])
            #expect(seconds < 15, "took \(seconds) s")
            #expect(!FileManager.default.fileExists(atPath: s.path("t.img")))
        }
        expectNoLocks([s.path("t.img")])
    }

    // 4. Existing image files too small; --size with an existing file.
    @Test func imageFilesTooSmallAndSizeMismatchAreRefusedBeforeAnyDownload() throws {
        let s = try fresh("hostile-small")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        try server.resetStats()
        for (name, content) in [("six.img", "abcdef"), ("zero.img", "")] {
            let path = s.path(name)
            FileManager.default.createFile(atPath: path, contents: Data(content.utf8))
            let out = try Integration.tool(
                ["install", "6.9", path, "--log", s.path(name + ".log")] + options(s, mirror: server.mirror), environment: s.environment)
            try expectRefused(out, s, mentions: ["target '\(path)' has \(content.count) bytes; at least \(minimumTargetBytes) are needed"])
            #expect((try? String(contentsOfFile: path, encoding: .utf8)) == content, "the file is untouched")
            expectNoLocks([path])
        }
        let sized = s.path("three.img")
        #expect(try sh("truncate -s 3G \(sized)").status == 0)
        let mismatch = try Integration.tool(
            ["install", "6.9", sized, "--size", "4G", "--log", s.path("m.log")] + options(s, mirror: server.mirror), environment: s.environment)
        try expectRefused(mismatch, s, mentions: ["image file '\(sized)' exists with 3221225472 bytes but --size asks for 4294967296"])
        // batch refuses the same before any install starts.
        let batch = try Integration.tool(
            ["batch", "6.9=\(sized)", "6.8=\(s.path("six.img"))", "--size", "4G", "--summary", s.path("s.json"), "--log-dir", s.path("logs")]
                + options(s, mirror: server.mirror), environment: s.environment)
        try expectRefused(
            batch, s,
            mentions: [
                "6.9 -> \(sized): image file '\(sized)' exists with 3221225472 bytes but --size asks for 4294967296",
                "6.8 -> \(s.path("six.img")): target '\(s.path("six.img"))' has 6 bytes",
            ])
        #expect(!FileManager.default.fileExists(atPath: s.path("logs")) && !FileManager.default.fileExists(atPath: s.path("s.json")))
        #expect(try server.stats().requests == 0, "nothing was downloaded")
        let equal = try Integration.tool(
            ["install", "6.9", sized, "--size", "3G", "--stop-after", "preflight", "--log", s.path("p.log")] + options(s, mirror: server.mirror),
            environment: s.environment)
        #expect(equal.status == 0, "\(equal.stderr)")
        expectNoLocks([sized])
    }

    // 5. No room where the image file lives.
    @Test func aSmallFilesystemIsRefusedSayingNoSpace() throws {
        let s = try fresh("hostile-tmpfs")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let small = s.path("small")
        #expect(try sh("mkdir \(small) && mount -t tmpfs -o size=64M centos6-ami-test-small \(small)").status == 0)
        defer { _ = try? sh("umount \(small)") }
        let server = try VaultServer()
        defer { server.stop() }
        try server.resetStats()
        let image = small + "/t.img"
        let started = Date()
        let out = try Integration.tool(["install", "6.9", image, "--log", s.path("t.log")] + options(s, mirror: server.mirror), environment: s.environment)
        try expectRefused(out, s, mentions: ["no space left on '\(small)' for image file '\(image)'", "MB free"])
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(!FileManager.default.fileExists(atPath: image))
        #expect(try server.stats().requests < 10, "only the metadata was fetched, no package")
        expectNoLocks([image])
        // ENOSPC in the middle of the run (here the download cache fills up) names the filesystem and the step.
        let tiny = s.path("tiny")
        #expect(try sh("mkdir \(tiny) && mount -t tmpfs -o size=4M centos6-ami-test-tiny \(tiny)").status == 0)
        defer { _ = try? sh("umount \(tiny)") }
        let full = try Integration.tool(
            [
                "install", "6.9", s.path("u.img"), "--log", s.path("u.log"), "--mirror", server.mirror, "--gpg-key", TestVault.key,
                "--cache", tiny + "/cache",
            ], environment: s.environment)
        try expectRefused(full, s, mentions: ["step 'download' failed: no space left on '\(tiny)'"])
        #expect(!FileManager.default.fileExists(atPath: s.path("u.img")))
        expectNoLocks([s.path("u.img")])
        #expect(try sh("umount \(small) && umount \(tiny)").status == 0)
        #expect(Integration.mounts(under: s.dir).isEmpty)
    }

    // 6. batch cannot write its summary.
    @Test func batchRefusesAnUnwritableSummaryBeforeAnyInstall() throws {
        let s = try fresh("hostile-summary")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let ro = s.path("ro")
        #expect(try sh("mkdir \(ro) && mount -t tmpfs -o ro,size=1M centos6-ami-test-ro \(ro)").status == 0)
        defer { _ = try? sh("umount \(ro)") }
        let started = Date()
        let out = try Integration.tool(
            ["batch", "6.9=\(s.path("x.img"))", "--summary", ro + "/s.json", "--log-dir", s.path("logs")] + options(s, mirror: "http://127.0.0.1:9"),
            environment: s.environment)
        try expectRefused(out, s, mentions: ["cannot write the batch summary '\(ro)/s.json'", "Read-only file system"])
        #expect(!out.stderr.contains("summary: \(ro)"), "never claims it was written")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(!FileManager.default.fileExists(atPath: s.path("x.img")) && !FileManager.default.fileExists(atPath: s.path("logs")), "no install started")
        expectNoLocks([s.path("x.img")])
        #expect(try sh("umount \(ro)").status == 0)
    }

    // 7. boot-test on what is no image (the unit suite covers the messages; here as root, as run for real).
    @Test func bootTestRefusesANonImageWithoutStartingQEMU() throws {
        let s = try fresh("hostile-boot")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        FileManager.default.createFile(atPath: s.path("six.img"), contents: Data("abcdef".utf8))
        for (target, words) in [(s.path("six.img"), "shorter than one 512-byte sector"), (s.dir, "it is a directory")] {
            let started = Date()
            let out = try Integration.tool(["boot-test", target, "--timeout", "30"])
            try expectRefused(out, s, mentions: ["is not a disk image centos6-ami made", words])
            #expect(Date().timeIntervalSince(started) < 5)
        }
        #expect(!FileManager.default.fileExists(atPath: s.path("six.img.console.log")))
    }

    // 8. A password in the mirror URL.
    @Test func aPasswordInTheMirrorURLIsNeverPrintedOrLogged() throws {
        let s = try fresh("hostile-secret")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let mirror = "http://builder:s3cret-pw@127.0.0.1:\(server.port)"
        let plan = try Integration.tool(["install", "6.9", s.path("p.img"), "--dry-run"] + options(s, mirror: mirror), environment: s.environment)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("builder:***@127.0.0.1"), "\(plan.stdout.prefix(2000))")
        #expect(!(plan.stdout + plan.stderr).contains("s3cret"))
        let run = try Integration.tool(
            ["install", "6.9", s.path("p.img"), "--stop-after", "fetch-metadata", "--log", s.path("p.log")] + options(s, mirror: mirror),
            environment: s.environment)
        #expect(run.status == 0, "\(run.stderr)")
        let log = try String(contentsOfFile: s.path("p.log"), encoding: .utf8)
        #expect(!(run.stdout + run.stderr + log).contains("s3cret"))
        try Integration.expectNothingLeft(s.dir, workDir: s.workDir)
        expectNoLocks([s.path("p.img")])
    }

    // 9. One exit-code rule, through the binary.
    @Test func exitCodesFollowOneRule() throws {
        let s = try fresh("hostile-exit")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let target = s.path("e.img")
        let usage: [([String], String)] = [
            (["install", "6.11", target], "unknown release '6.11'"),
            (["install", "6.9.1", target], "unknown release '6.9.1'"),
            (["install", "6.9", target, "--size", "99999999T"], "size '99999999T' is too big"),
            (["install", "6.9", target, "--size", "1G"], "--size must be at least 2G"),
            (["install", "6.9", target, "--versions", s.path("none.json")], "--versions '\(s.path("none.json"))' is not a readable file"),
            (["install", "6.9", target, "--gpg-key", s.path("none.asc")], "--gpg-key '\(s.path("none.asc"))' is not a readable file"),
            (["install", "6.9", target, "--cache", "/a", "--cache", "/b"], "option '--cache' is given twice"), // --mirror may repeat (alternatives)
            (["batch", "6.9=\(target)", "--summary", "a.json", "--summary", "b.json"], "option '--summary' is given twice"),
        ]
        for (args, message) in usage {
            let out = try Integration.tool(args, environment: s.environment)
            try expectRefused(out, s, status: 64, mentions: ["error: \(message)", "usage: centos6-ami \(args[0])"])
        }
        // The world: a target that cannot be a disk.
        FileManager.default.createFile(atPath: target, contents: Data("abcdef".utf8))
        let world = try Integration.tool(
            ["install", "6.9", target, "--log", s.path("w.log")] + options(s, mirror: "http://127.0.0.1:9"), environment: s.environment)
        try expectRefused(world, s, status: 1, mentions: ["has 6 bytes"])
        expectNoLocks([target])
    }
}
