import Foundation
import Testing

/// What `register` refuses before any AWS call: a results file it could not write at
/// the end, and an image boot-test would refuse (no MBR with a Linux partition, a GPT
/// label) or whose filesystem e2fsck does not find clean. The aws calls go through
/// scripts/fake-aws, which logs every call: the log must stay empty.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct RegisterGuardTests {
    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }

    func environment(_ dir: String) throws -> [String: String] {
        let realAWS = try #require(MotoServer.which("aws"), "the aws CLI is not installed")
        let path = Integration.repoRoot.appendingPathComponent("scripts/fake-aws").path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return MotoServer.awsEnvironment.merging(["PATH": path, "REAL_AWS": realAWS, "FAKE_AWS_LOG": dir + "/aws-calls"]) { $1 }
    }

    func register(_ image: String, dir: String, results: String) throws -> Integration.Output {
        try Integration.tool(
            [
                "register", "6.9", image, "--region", "ap-northeast-1", "--endpoint-url", "http://127.0.0.1:9",
                "--results", results, "--log", dir + "/register.log",
            ], environment: try environment(dir))
    }

    func awsCalls(_ dir: String) -> String { (try? String(contentsOfFile: dir + "/aws-calls", encoding: .utf8)) ?? "" }

    /// A 64 MiB image: msdos label, one Linux partition from 1 MiB, ext4 on it (as install makes it).
    func makeImage(_ path: String) throws {
        let made = try sh(
            """
            set -e
            truncate -s 64M \(path)
            printf 'label: dos\\nstart=2048, type=83, bootable\\n' | sfdisk -q \(path)
            loop=$(losetup --find --show --partscan \(path))
            trap 'losetup -d $loop' EXIT
            [ -e ${loop}p1 ] || partx -a $loop
            mkfs.ext4 -q -L / ${loop}p1
            """)
        try #require(made.status == 0, "\(made.stderr)")
    }

    @Test func aResultsFileItCannotWriteIsRefusedBeforeAnyAWSCall() throws {
        let dir = try Integration.scratchDirectory("register-guard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeImage(dir + "/c.img")
        try "{ not json".write(toFile: dir + "/results.json", atomically: true, encoding: .utf8)
        let bad = try register(dir + "/c.img", dir: dir, results: dir + "/results.json")
        #expect(bad.status != 0 && bad.stderr.contains("results.json") && bad.stderr.contains("not a centos6-ami results file"), "\(bad.stderr)")
        let missingDir = try register(dir + "/c.img", dir: dir, results: dir + "/no/such/dir/results.json")
        #expect(missingDir.status != 0 && missingDir.stderr.contains("does not exist"), "\(missingDir.stderr)")
        #expect(awsCalls(dir).isEmpty, "no AWS call: \(awsCalls(dir))")
    }

    @Test func aGPTOrBrokenImageIsRefusedBeforeAnyAWSCall() throws {
        let dir = try Integration.scratchDirectory("register-guard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gpt = dir + "/gpt.img"
        _ = try sh("truncate -s 16M \(gpt) && printf 'label: gpt\\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n' | sfdisk -q \(gpt)")
        let refused = try register(gpt, dir: dir, results: dir + "/results.json")
        #expect(refused.status != 0 && refused.stderr.contains("GPT"), "\(refused.stderr)")
        // A filesystem e2fsck finds broken: its root directory's inode cleared.
        let broken = dir + "/broken.img"
        try makeImage(broken)
        let damaged = try sh(
            """
            set -e
            loop=$(losetup --find --show --partscan \(broken))
            trap 'losetup -d $loop' EXIT
            [ -e ${loop}p1 ] || partx -a $loop
            debugfs -w -R 'clri <2>' ${loop}p1 >/dev/null 2>&1
            """)
        try #require(damaged.status == 0, "\(damaged.stderr)")
        let out = try register(broken, dir: dir, results: dir + "/results.json")
        #expect(out.status != 0 && out.stderr.contains("is not clean (e2fsck -fn"), "\(out.stderr)")
        #expect(awsCalls(dir).isEmpty, "no AWS call: \(awsCalls(dir))")
        #expect(try Integration.loopDevices(backedBy: dir).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/results.json"))
    }
}
