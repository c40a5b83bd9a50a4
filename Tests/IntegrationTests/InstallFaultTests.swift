import Foundation
import Testing

/// The package steps' faults: each ends with a clear error, exit 1 (130 for signals),
/// and nothing mounted or attached. Every test has its own download cache, so
/// packages really travel (the shared cache would hide the faults).
@Suite(.serialized, .enabled(if: Integration.enabled))
struct InstallFaultTests {
    struct Run {
        let dir: String
        var workDir: String { dir + "/work" }
        var image: String { dir + "/t.img" }
        func arguments(mirror: String, extra: [String] = []) -> [String] {
            ["install", "6.9", image, "--mirror", mirror, "--gpg-key", TestVault.key, "--cache", dir + "/cache"] + extra
        }
        var environment: [String: String] { ["CENTOS6_AMI_WORK_DIR": workDir] }
    }

    func fresh(_ name: String) throws -> Run { try TestVault.require(); return Run(dir: try Integration.scratchDirectory(name)) }

    func install(_ run: Run, mirror: String, extra: [String] = []) throws -> Integration.Output {
        try Integration.tool(run.arguments(mirror: mirror, extra: extra), environment: run.environment)
    }

    func expectFailure(_ out: Integration.Output, _ run: Run, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(out.status == 1, "exit \(out.status): \(out.stderr)", sourceLocation: sourceLocation)
        for word in words { #expect(out.stderr.contains(word), "wanted '\(word)' in: \(out.stderr)", sourceLocation: sourceLocation) }
        try Integration.expectNothingLeft(run.dir, workDir: run.workDir, sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: run.image), "no half-written image", sourceLocation: sourceLocation)
    }

    static let bashPath = "/6.9/os/x86_64/Packages/bash-*"

    @Test func mirrorDown() throws {
        let run = try fresh("fault-down")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        try expectFailure(try install(run, mirror: "http://127.0.0.1:9"), run, mentions: ["127.0.0.1:9", "repomd.xml"])
    }

    @Test func a404OnAPackage() throws {
        let run = try fresh("fault-404")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        try server.control(#"{"faults": [{"path": "\#(Self.bashPath)", "status": 404}]}"#)
        try expectFailure(try install(run, mirror: server.mirror), run, mentions: ["bash-", "404"])
    }

    @Test func transientFaultsAreRetriedOrResumed() throws {
        let run = try fresh("fault-retry")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        try server.control(
            #"{"faults": [{"path": "\#(Self.bashPath)", "status": 500, "times": 2}, {"path": "/6.9/os/x86_64/Packages/coreutils-*", "cut_after": 20000, "times": 1}]}"#
        )
        let out = try install(run, mirror: server.mirror, extra: ["--stop-after", "verify-packages"])
        #expect(out.status == 0, "\(out.stderr)")
        try Integration.expectNothingLeft(run.dir, workDir: run.workDir)
    }

    @Test func aChecksumMismatch() throws {
        let run = try fresh("fault-sum")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        try server.control(#"{"faults": [{"path": "\#(Self.bashPath)", "corrupt_at": 5000}]}"#)
        try expectFailure(try install(run, mirror: server.mirror), run, mentions: ["bash-", "checksum"])
    }

    @Test func aBodyThatNeverEnds() throws {
        let run = try fresh("fault-endless")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        try server.control(#"{"faults": [{"path": "\#(Self.bashPath)", "endless": true}]}"#)
        try expectFailure(try install(run, mirror: server.mirror), run, mentions: ["bash-"])
    }

    /// A copy of the 6.9 repository (hard links) with `setup` replaced by a bad
    /// package and the metadata made anew, so the checksums match and only the
    /// package itself is wrong.
    func repositoryWithBadSetup(_ bad: String, in dir: String) throws -> String {
        let root = dir + "/badvault", repo = root + "/6.9/os/x86_64"
        let source = TestVault.repo("6.9")
        let comps = try FileManager.default.contentsOfDirectory(atPath: source + "/repodata").first { $0.hasSuffix("-comps.xml") }
        guard let comps else { throw TestFailure("no comps.xml in \(source)/repodata") }
        let script = """
            set -e
            mkdir -p \(repo)/Packages
            cp -al \(source)/Packages/. \(repo)/Packages/
            rm -f \(repo)/Packages/setup-*.rpm
            cp \(TestVault.bad(bad)) \(repo)/Packages/setup-2.8.14-23.el6.noarch.rpm
            cp \(source)/repodata/\(comps) \(dir)/comps.xml
            createrepo_c -q -g \(dir)/comps.xml \(repo)
            """
        let out = try Integration.run("/bin/sh", ["-c", script])
        guard out.status == 0 else { throw TestFailure("making the bad repository failed: \(out.stderr)") }
        return root
    }

    @Test(arguments: [("unsigned", "setup"), ("wrong-key", "setup"), ("flipped-payload", "setup"), ("truncated", "setup")])
    func aBadPackageIsRefusedBeforeAnythingIsWritten(_ bad: String, _ package: String) throws {
        let run = try fresh("fault-\(bad)")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer(root: try repositoryWithBadSetup(bad, in: run.dir))
        defer { server.stop() }
        let out = try install(run, mirror: server.mirror)
        try expectFailure(out, run, mentions: ["verify-packages", package])
        #expect(!out.stderr.contains("format:"), "refused before the target was touched")
    }

    @Test func anEntryEscapingTheRootIsRefused() throws {
        let run = try fresh("fault-escape")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer(root: try repositoryWithBadSetup("escape-dotdot", in: run.dir))
        defer { server.stop() }
        let out = try install(run, mirror: server.mirror)
        // `setup` is not in rpm's own closure, so the target's rpm (not our extractor) is
        // the one that meets the entry: it installs only the files its signed header
        // lists and refuses an archive entry the header does not name.
        try expectFailure(out, run, mentions: ["setup-2.8.14-23.el6"])
        #expect(out.stderr.contains("../") || out.stderr.lowercased().contains("archive file not in header"), "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/escape-dotdot-test-vaultxxxxxxxxxxxxxxxxxxxxxxxxx"))
    }

    @Test func sigintDuringDownloads() throws {
        let run = try fresh("fault-int-dl")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer(delayMs: 200)
        defer { server.stop() }
        let job = try BackgroundProcess(Integration.binary, run.arguments(mirror: server.mirror), environment: run.environment)
        #expect(job.waitFor("download:", timeout: 60), "\(job.stderr)")
        usleep(500_000)
        job.signal(SIGINT)
        #expect(job.wait(timeout: 60) == 130, "\(job.stderr)")
        try Integration.expectNothingLeft(run.dir, workDir: run.workDir)
        #expect(!FileManager.default.fileExists(atPath: run.image))
    }

    @Test func sigintDuringTheChrootYum() throws {
        let run = try fresh("fault-int-yum")
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        var arguments = run.arguments(mirror: server.mirror)
        arguments[arguments.firstIndex(of: run.dir + "/cache")!] = SharedCache.path
        let job = try BackgroundProcess(Integration.binary, arguments, environment: run.environment)
        #expect(job.waitFor("install-packages:", timeout: 240), "\(job.stderr)")
        usleep(1_000_000)
        job.signal(SIGINT)
        #expect(job.wait(timeout: 120) == 130, "\(job.stderr)")
        try Integration.expectNothingLeft(run.dir, workDir: run.workDir)
        #expect(!FileManager.default.fileExists(atPath: run.image))
    }
}
