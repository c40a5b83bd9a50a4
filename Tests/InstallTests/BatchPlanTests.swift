@testable import Disk
import Foundation
@testable import Install
import Testing
import Versions

@Suite struct BatchPlanTests {
    let known = ["6.0", "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "6.7", "6.8", "6.9", "6.10"]

    @Test func releaseListsAndRangesFollowTheTable() throws {
        #expect(try BatchPlan.expandReleases("6.8,6.9", known: known) == ["6.8", "6.9"])
        #expect(try BatchPlan.expandReleases("6.0-6.10", known: known) == known)
        // 6.10 sorts after 6.9 in the table, not between 6.1 and 6.2 as text would.
        #expect(try BatchPlan.expandReleases("6.8-6.10", known: known) == ["6.8", "6.9", "6.10"])
        #expect(try BatchPlan.expandReleases("6.0-6.2, 6.9", known: known) == ["6.0", "6.1", "6.2", "6.9"])
        #expect(try BatchPlan.expandReleases("6.9,6.8", known: known) == ["6.9", "6.8"], "the order given is kept")
    }

    @Test(arguments: [
        ("6.11", "unknown release '6.11'"),
        ("6.9-6.8", "runs backwards"),
        ("6.8,,6.9", "empty release"),
        ("6.8,6.7-6.9", "'6.8' is listed twice"),
        ("5.11-6.2", "unknown release '5.11'"),
    ])
    func badReleaseListsAreUsageErrors(_ text: String, _ message: String) {
        #expect {
            try BatchPlan.expandReleases(text, known: known)
        } throws: { error in
            guard case let BatchError.usage(text) = error else { return false }
            return text.contains(message)
        }
    }

    @Test func pairsMayRepeatAReleaseButNeedATarget() throws {
        let jobs = try BatchPlan.parsePairs(["6.8=a.img", "6.8=b.img", "6.10=/dev/xvdf"], known: known)
        #expect(jobs == [BatchJob(release: "6.8", target: "a.img"), BatchJob(release: "6.8", target: "b.img"), BatchJob(release: "6.10", target: "/dev/xvdf")])
        #expect(throws: BatchError.usage("'6.8' is not RELEASE=TARGET (e.g. 6.9=/dev/xvdf)")) { try BatchPlan.parsePairs(["6.8"], known: known) }
        #expect(throws: BatchError.usage("'6.8=' names no target")) { try BatchPlan.parsePairs(["6.8="], known: known) }
        #expect(throws: (any Error).self) { try BatchPlan.parsePairs(["7.0=x.img"], known: known) }
    }

    @Test func targetsPairInOrderOrMakeOneImagePerReleaseInADirectory() throws {
        let listed = try BatchPlan.pairTargets(releases: ["6.8", "6.9"], targets: ["/dev/xvdf", "/dev/xvdg"]) { _ in false }
        #expect(listed == [BatchJob(release: "6.8", target: "/dev/xvdf"), BatchJob(release: "6.9", target: "/dev/xvdg")])
        let inDir = try BatchPlan.pairTargets(releases: ["6.8", "6.10"], targets: ["/srv/img/"]) { $0 == "/srv/img/" }
        #expect(inDir == [BatchJob(release: "6.8", target: "/srv/img/centos6-6.8.img"), BatchJob(release: "6.10", target: "/srv/img/centos6-6.10.img")])
        #expect {
            try BatchPlan.pairTargets(releases: ["6.8", "6.9", "6.10"], targets: ["/dev/xvdf", "/dev/xvdg"]) { _ in false }
        } throws: { error in
            "\(error)".contains("3 release(s) (6.8, 6.9, 6.10) but 2 target(s)")
        }
        #expect(BatchPlan.splitTargets(["a.img,b.img", " c.img ,", "d.img"]) == ["a.img", "b.img", "c.img", "d.img"])
    }

    @Test func defaultJobsFollowCoresMemoryAndCount() {
        let gib: UInt64 = 1 << 30
        #expect(BatchPlan.defaultJobs(cores: 2, memoryBytes: 24 * gib, count: 4) == 2)
        #expect(BatchPlan.defaultJobs(cores: 16, memoryBytes: 8 * gib, count: 11) == 4, "one per 2 GiB")
        #expect(BatchPlan.defaultJobs(cores: 16, memoryBytes: 64 * gib, count: 3) == 3, "never more than the installs")
        #expect(BatchPlan.defaultJobs(cores: 4, memoryBytes: gib, count: 4) == 1, "at least one")
    }

    @Test func twoNamesOfOneTargetAreOneTarget() throws {
        let info = BlockDeviceInfo(name: "xvdf", majorMinor: "202:80", isPartition: false, parentDisk: nil, partitions: [], sizeBytes: 8 << 30, holders: [])
        let a = BatchPlan.identity(.blockDevice(path: "/dev/xvdf", info: info))
        let b = BatchPlan.identity(.blockDevice(path: "/dev/disk/by-id/nvme-Amazon_vol1", info: info))
        #expect(a == b)
        let dir = NSTemporaryDirectory() + "c6-batch-ident-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/img", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/img/c.img", contents: Data(count: 512))
        try FileManager.default.linkItem(atPath: dir + "/img/c.img", toPath: dir + "/img/hard.img")
        let f1 = BatchPlan.identity(.imageFile(path: dir + "/img/a.img", exists: false, sizeBytes: 0))
        let f2 = BatchPlan.identity(.imageFile(path: dir + "/img/../img/./a.img", exists: false, sizeBytes: 0))
        let f3 = BatchPlan.identity(.imageFile(path: dir + "/img/b.img", exists: false, sizeBytes: 0))
        let c = BatchPlan.identity(.imageFile(path: dir + "/img/c.img", exists: true, sizeBytes: 512))
        let hard = BatchPlan.identity(.imageFile(path: dir + "/img/hard.img", exists: true, sizeBytes: 512))
        #expect(f1 == f2 && f1 != f3)
        #expect(BatchPlan.duplicate(identities: [a, f1, f3, f2])! == (1, 3))
        #expect(BatchPlan.duplicate(identities: [a, f1, f3]) == nil)
        #expect(BatchPlan.duplicate(identities: [c, f1, hard])! == (0, 2), "a hard link is the same file")
    }

    @Test func continueRerunsExactlyTheInstallsThatDidNotSucceed() {
        let rows = [
            row("6.8", "/i/a.img", InstallResult.ok),
            row("6.8", "/i/b.img", InstallResult.failed),
            row("6.9", "/i/c.img", InstallResult.interrupted),
            row("6.9", "/i/d.img", InstallResult.notRun),
        ]
        let summary = BatchSummary(started: "t", seconds: 1, jobs: 2, installArguments: [], results: rows)
        #expect(
            BatchPlan.retry(summary) == [
                BatchJob(release: "6.8", target: "/i/b.img"), BatchJob(release: "6.9", target: "/i/c.img"), BatchJob(release: "6.9", target: "/i/d.img"),
            ])
        // The re-run replaces exactly those rows; the earlier success stays.
        let merged = BatchPlan.merge(
            rows, rerun: [row("6.8", "/i/b.img", InstallResult.ok), row("6.9", "/i/c.img", InstallResult.ok), row("6.9", "/i/d.img", InstallResult.failed)])
        #expect(merged.map(\.result) == [InstallResult.ok, InstallResult.ok, InstallResult.ok, InstallResult.failed])
        #expect(merged[0] == rows[0])
    }

    /// The summary file keeps no mirror password (arguments and errors alike);
    /// --continue takes it again from the environment or the command line.
    @Test func summaryKeepsNoPasswordAndContinueTakesItAgain() throws {
        var bad = row("6.9", "/i/a.img", InstallResult.failed)
        bad.error = "cannot download 'https://user:s3cret@mirror.example/6.9/os/x86_64/repodata/repomd.xml': timed out"
        let mirror = "https://user:s3cret@mirror.example/vault"
        let summary = BatchSummary(started: "t", seconds: 1, jobs: 1, installArguments: ["--mirror", mirror, "--gpg-key", "/k.asc"], results: [bad])
        let path = NSTemporaryDirectory() + "batch-summary-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try summary.write(to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("s3cret"), "\(text)")
        let saved = try BatchSummary.read(path: path)
        #expect(saved.installArguments == ["--mirror", "https://user:***@mirror.example/vault", "--gpg-key", "/k.asc"])
        #expect(saved.results[0].error?.contains("https://user:***@mirror.example/6.9/") == true)

        // From the environment (percent-encoded as userinfo needs)...
        #expect(
            try BatchSummary.continueArguments(saved: saved.installArguments, given: [], password: "s3cret")
                == ["--mirror", mirror, "--gpg-key", "/k.asc"])
        #expect(
            try BatchSummary.continueArguments(saved: saved.installArguments, given: [], password: "p@ss:w/rd")
                == ["--mirror", "https://user:p%40ss%3Aw%2Frd@mirror.example/vault", "--gpg-key", "/k.asc"])
        // ... or the options given again; with neither, an error naming both ways.
        #expect(try BatchSummary.continueArguments(saved: saved.installArguments, given: ["--mirror", mirror], password: nil) == ["--mirror", mirror])
        do {
            _ = try BatchSummary.continueArguments(saved: saved.installArguments, given: [], password: nil)
            Issue.record("a redacted password without a replacement must be refused")
        } catch {
            #expect("\(error)".contains("CENTOS6_AMI_MIRROR_PASSWORD") && "\(error)".contains("https://user:***@mirror.example/vault"), "\(error)")
        }
        #expect(try BatchSummary.continueArguments(saved: ["--mirror", "http://x"], given: [], password: nil) == ["--mirror", "http://x"])
    }

    func row(_ release: String, _ target: String, _ result: String) -> InstallResult {
        InstallResult(release: release, target: target, kernel: "2.6.32-696.el6", ena: false, result: result, seconds: 1)
    }

    @Test func progressLinesOfTheChildAreParsed() {
        #expect(
            BatchProgress.parse("[  12.3s] [4/19] download: every package into the cache")
                == BatchProgress(elapsed: 12.3, index: 4, total: 19, step: "download"))
        #expect(BatchProgress.parse("[   0.0s] [1/23] preflight: check root") == BatchProgress(elapsed: 0, index: 1, total: 23, step: "preflight"))
        #expect(BatchProgress.parse("[ 101.5s] cleaning up after failure") == nil)
        #expect(BatchProgress.parse("error: step 'download' failed: 404") == nil)
        #expect(BatchProgress.parse("log: /var/log/x.log") == nil)
    }

    @Test func summaryTableAndJSONCarryEveryColumn() throws {
        var ok = row("6.9", "/i/c.img", InstallResult.ok)
        ok.bytesOnVolume = 612_345_678
        ok.log = "/var/log/centos6-ami/batch-1-6.9.log"
        ok.seconds = 52.25
        ok.ena = true
        ok.bootsOn = "xen,nitro"
        var bad = row("6.8", "/i/a.img", InstallResult.failed)
        bad.kernel = "2.6.32-642.el6"
        bad.error = "step 'download' failed: kernel-2.6.32-642.el6.x86_64.rpm: HTTP 404"
        bad.log = "/var/log/centos6-ami/batch-2-6.8.log"
        let summary = BatchSummary(
            started: "2026-11-29T01:00:00.000Z", seconds: 60.5, jobs: 2, installArguments: ["--mirror", "http://x"], results: [ok, bad])
        let table = summary.renderTable().split(separator: "\n").map(String.init)
        #expect(table[0].hasPrefix("RELEASE  TARGET    KERNEL          ENA  BOOTS ON   RESULT  TIME    BYTES ON VOLUME  LOG"), "\(table[0])")
        #expect(table[1] == "6.9      /i/c.img  2.6.32-696.el6  yes  xen,nitro  ok      52.2 s  612345678        /var/log/centos6-ami/batch-1-6.9.log")
        #expect(table[2] == "6.8      /i/a.img  2.6.32-642.el6  no   -          failed  1.0 s   -                /var/log/centos6-ami/batch-2-6.8.log")
        #expect(table[3] == "6.8 -> /i/a.img: failed: step 'download' failed: kernel-2.6.32-642.el6.x86_64.rpm: HTTP 404")
        #expect(table[4] == "1 of 2 installs succeeded in 60.5 s (2 at a time)")
        #expect(!summary.succeeded)
        // JSON round trip through a file, as --continue reads it.
        let path = NSTemporaryDirectory() + "batch-summary-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try summary.write(to: path)
        #expect(try BatchSummary.read(path: path) == summary)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let first = (object?["results"] as? [[String: Any]])?.first
        #expect(Set(first?.keys.map { $0 } ?? []) == ["release", "target", "kernel", "ena", "result", "seconds", "bytesOnVolume", "log", "bootsOn"])
        #expect(throws: (any Error).self) { try BatchSummary.read(path: path + ".missing") }
    }

    @Test func mappingIsPrintedOneLinePerInstall() {
        let text = BatchPlan.renderMapping([BatchJob(release: "6.10", target: "/dev/xvdf"), BatchJob(release: "6.5", target: "/i/b.img")], ena: [true, false])
        #expect(text == "  6.10 -> /dev/xvdf  (with ENA)\n  6.5  -> /i/b.img")
    }
}

@Suite struct MirrorListTests {
    @Test func givenMirrorsReplaceVersionsJSONs() throws {
        let mirrors = try VersionsFile.embedded().mirrors
        #expect(InstallOptions.mirrorList(given: [], versions: mirrors) == [mirrors.download] + mirrors.downloadAlternatives)
        #expect(InstallOptions.mirrorList(given: ["http://a", "http://b", "http://a"], versions: mirrors) == ["http://a", "http://b"])
    }
}
