import Foundation
import Testing

/// Target preparation on real loop devices: prepare an 8 GiB image-file target,
/// every preflight refusal leaves the bytes unchanged, signals clean up,
/// a second concurrent run fails fast on the lock.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct PrepareTargetTests {
    /// A private work dir per test, so leftover checks see only this test's mounts.
    func environment(_ workDir: String) -> [String: String] { ["CENTOS6_AMI_WORK_DIR": workDir] }

    /// The scope: everything up to the mounted, empty target, from the local
    /// vault (the package steps come first: nothing is written before they pass).
    func prepare(_ server: VaultServer) -> [String] {
        ["--mirror", server.mirror, "--gpg-key", TestVault.key, "--cache", SharedCache.path, "--stop-after", "mount-yum-cache"]
    }

    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }

    func firstMiBSum(_ path: String) throws -> String {
        try sh("head -c 1048576 \(path) | sha256sum").stdout
    }

    /// Attaches an image as a loop device owned by the test; detached by `detach`.
    func attach(_ image: String, partscan: Bool = true) throws -> String {
        let out = try Integration.run("/usr/sbin/losetup", ["--find", "--show"] + (partscan ? ["--partscan"] : []) + [image])
        #expect(out.status == 0, "\(out.stderr)")
        let loop = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitForNode(loop + "p1", disk: loop, expected: partscan && (try sh("sfdisk -d \(image) 2>/dev/null | grep -q start=").status == 0))
        return loop
    }

    /// No udev here: devtmpfs makes partition nodes a moment later (or partx does).
    func waitForNode(_ node: String, disk: String, expected: Bool) throws {
        guard expected else { return }
        for attempt in 0..<50 where !FileManager.default.fileExists(atPath: node) {
            if attempt == 5 || attempt == 15 { _ = try sh("partx -a \(disk)") }
            usleep(100_000)
        }
        #expect(FileManager.default.fileExists(atPath: node), "\(node) never appeared")
    }

    func detach(_ loop: String) { _ = try? Integration.run("/usr/sbin/losetup", ["-d", loop]) }

    func expectNothingLeft(_ dir: String, workDir: String, except ownLoop: String? = nil) throws {
        try Integration.expectNothingLeft(dir, workDir: workDir, except: ownLoop)
    }

    @Test func preparesAnEightGiBImageExactlyAsCentOS6Needs() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("prepare")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/c69.img", workDir = dir + "/work"
        let server = try VaultServer()
        defer { server.stop() }
        let result = try Integration.tool(["install", "6.9", image, "--log", dir + "/install.log"] + prepare(server), environment: environment(workDir))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("log: \(dir)/install.log"))
        try expectNothingLeft(dir, workDir: workDir)

        let size = try FileManager.default.attributesOfItem(atPath: image)[.size] as? UInt64
        #expect(size == 8 << 30)
        let table = try Integration.run("/usr/sbin/sfdisk", ["-d", image]).stdout
        #expect(table.contains("label: dos"))
        #expect(table.contains("\(image)1 : start=        2048, size=    16775168, type=83, bootable"), "\(table)")

        let loop = try attach(image)
        defer { detach(loop) }
        let part = loop + "p1"
        let header = try Integration.run("/usr/sbin/dumpe2fs", ["-h", part]).stdout
        let features =
            header.split(separator: "\n").first { $0.hasPrefix("Filesystem features:") }?
            .split(separator: ":")[1].split(separator: " ").map(String.init) ?? []
        #expect(
            Set(features) == [
                "has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "flex_bg",
                "sparse_super", "large_file", "huge_file", "uninit_bg", "dir_nlink", "extra_isize",
            ])
        #expect(header.contains("Inode size:\t          256"))
        #expect(header.contains("Filesystem volume name:   /\n"))
        let blkid = try Integration.run("/usr/sbin/blkid", ["-o", "export", part]).stdout
        #expect(blkid.contains("LABEL=/\n") && blkid.contains("TYPE=ext4"))
        #expect(!blkid.contains("UUID=0b7e0f2a"), "a fresh UUID, not a fixed one")
        #expect(try Integration.run("/usr/sbin/e2fsck", ["-fn", part]).status == 0)
        // The log holds every command with its status.
        let log = try String(contentsOfFile: dir + "/install.log", encoding: .utf8)
        #expect(log.contains("$ mkfs.ext4") && log.contains("exit 0"))
    }

    @Test func eachPreflightRefusalLeavesTheBytesUnchanged() throws {
        let dir = try Integration.scratchDirectory("refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workDir = dir + "/work"
        let image = dir + "/disk.img"
        _ = try sh("truncate -s 3G \(image)")
        let loop = try attach(image)
        defer { detach(loop) }

        let server = try VaultServer()
        defer { server.stop() }
        func refuse(_ target: String, _ expected: String, extra given: [String] = [], wrapper: [String] = [], file: String? = nil) throws {
            // Not root: the vault's key is unreadable to nobody, and root is what is checked.
            let extra = given + (wrapper.first == "/usr/bin/setpriv" ? [] : prepare(server))
            let watched = file ?? loop
            let before = try firstMiBSum(watched)
            let out =
                wrapper.isEmpty
                ? try Integration.tool(["install", "6.9", target] + extra, environment: environment(workDir))
                : try Integration.run(
                    wrapper[0], Array(wrapper.dropFirst()) + [Integration.binary, "install", "6.9", target] + extra,
                    environment: environment(workDir))
            #expect(out.status == 1, "\(target): \(out.stderr)")
            #expect(out.stderr.contains(expected), "wanted '\(expected)', got: \(out.stderr)")
            #expect(try firstMiBSum(watched) == before, "bytes of \(watched) changed")
            try expectNothingLeft(dir, workDir: workDir, except: loop)
        }

        // Blank loop device, but not root.
        try refuse(loop, "must run as root", wrapper: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        // Unknown version.
        let unknown = try Integration.tool(["install", "6.11", loop] + prepare(server), environment: environment(workDir))
        #expect(unknown.status == 64 && unknown.stderr.contains("valid releases: 6.0, 6.1"))
        // Missing target, not a block device or image file.
        try refuse("/dev/centos6-ami-no-such-disk", "does not exist", file: image)
        try refuse("/dev/null", "neither a block device nor a regular image file", file: image)
        // A host tool missing: sfdisk hidden in a private mount namespace.
        try refuse(
            loop, "missing host tools: 'sfdisk'",
            wrapper: [
                "/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                "mount --bind /dev/null /usr/sbin/sfdisk && exec \"$@\"", "sh",
            ])
        // Held open exclusively by something else.
        let holder = try BackgroundProcess(
            "/usr/bin/python3", ["-c", "import os,sys,time; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_EXCL); print('held', flush=True); time.sleep(30)", loop])
        defer { holder.signal(SIGKILL); _ = holder.wait(timeout: 5) }
        let deadline = Date().addingTimeInterval(5)
        while !holder.stdout.contains("held") && Date() < deadline { usleep(50_000) }
        try refuse(loop, "in use by something else")
        holder.signal(SIGKILL)
        _ = holder.wait(timeout: 5)

        // Swap.
        _ = try sh("mkswap \(loop) >/dev/null && swapon \(loop)")
        let swapOn = try sh("grep -q '^\(loop) ' /proc/swaps").status == 0
        if swapOn {
            try refuse(loop, "in use as swap")
            _ = try sh("swapoff \(loop)")
        } else {
            // swapon is refused in some sandboxes; the signature still stops us.
            try refuse(loop, "a swap signature")
        }
        _ = try sh("wipefs -a -q \(loop)")

        // A filesystem signature on the whole disk.
        _ = try sh("mkfs.ext4 -q -F \(loop)")
        try refuse(loop, "already has an ext2/3/4 filesystem; refusing to overwrite it (wipe it first with 'wipefs -a \(loop)'")
        _ = try sh("wipefs -a -q \(loop)")

        // A partition table; then its partition; then that partition mounted.
        _ = try sh("printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk -q \(loop)")
        try waitForNode(loop + "p1", disk: loop, expected: true)
        try refuse(loop, "already has an msdos partition table")
        let part = loop + "p1"
        try refuse(part, "is a partition; give the whole disk '\(loop)'")
        _ = try sh("mkfs.ext4 -q -F \(part) && mkdir -p \(dir)/mnt && mount \(part) \(dir)/mnt")
        defer { _ = try? sh("umount \(dir)/mnt") }
        try refuse(loop, "is mounted on '\(dir)/mnt'")
        _ = try sh("umount \(dir)/mnt")

        // An image file that already carries a table, and one attached to a loop device.
        try refuse(image, "already attached to '\(loop)'", file: image)
    }

    @Test func aSecondRunOnTheSameTargetFailsFastOnTheLock() throws {
        let dir = try Integration.scratchDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/c69.img", workDir = dir + "/work"
        let server = try VaultServer()
        defer { server.stop() }
        let first = try BackgroundProcess(
            Integration.binary, ["install", "6.9", image, "--hold", "30"] + prepare(server),
            environment: environment(workDir))
        #expect(first.waitFor("holding", timeout: 60), "\(first.stderr)")
        let started = Date()
        let second = try Integration.tool(["install", "6.9", image] + prepare(server), environment: environment(workDir))
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(second.status == 1)
        #expect(second.stderr.contains("in use by another centos6-ami run") && second.stderr.contains("/run/lock/centos6-ami/"), "\(second.stderr)")
        first.signal(SIGINT)
        #expect(first.wait(timeout: 60) == 130)
        try expectNothingLeft(dir, workDir: workDir)
    }

    @Test func sigintWhileFormattingAndWhileMountedCleansUp() throws {
        let dir = try Integration.scratchDirectory("sigint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workDir = dir + "/work"
        // A mkfs.ext4 that takes its time, first on PATH, so the signal lands mid-format.
        let bin = dir + "/slowbin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try "#!/bin/sh\nsleep 30\nexec /usr/sbin/mkfs.ext4 \"$@\"\n".write(toFile: bin + "/mkfs.ext4", atomically: true, encoding: .utf8)
        _ = try sh("chmod +x \(bin)/mkfs.ext4")

        let server = try VaultServer()
        defer { server.stop() }
        let formatting = try BackgroundProcess(
            Integration.binary, ["install", "6.9", dir + "/a.img"] + prepare(server),
            environment: environment(workDir).merging(["PATH": bin + ":" + (Integration.environment["PATH"] ?? "/usr/bin:/bin")]) { $1 })
        #expect(formatting.waitFor("format:", timeout: 60), "\(formatting.stderr)")
        usleep(300_000)
        formatting.signal(SIGINT)
        #expect(formatting.wait(timeout: 60) == 130, "\(formatting.stderr)")
        #expect(formatting.stderr.contains("interrupted"))
        try expectNothingLeft(dir, workDir: workDir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/a.img"), "the unfinished image is removed")

        let mounted = try BackgroundProcess(
            Integration.binary, ["install", "6.9", dir + "/b.img", "--hold", "60"] + prepare(server),
            environment: environment(workDir))
        #expect(mounted.waitFor("holding", timeout: 60), "\(mounted.stderr)")
        #expect(!Integration.mounts(under: workDir).isEmpty, "it really was mounted")
        mounted.signal(SIGINT)
        #expect(mounted.wait(timeout: 60) == 130, "\(mounted.stderr)")
        try expectNothingLeft(dir, workDir: workDir)
    }
}
