import Fetch
import Foundation
import Host
@testable import Repository
import TestSupport
import Testing

/// A release's metadata with several mirrors: all of it from the first mirror
/// whose repomd.xml answers; an alternative serves packages only when its
/// repomd.xml is the same (revision and checksums).
@Suite struct MirrorMetadataTests {
    /// `<dir>/<name>/6.9/os/x86_64/` holding the fixture repository, its revision replaced when asked.
    static func mirror(_ dir: String, _ name: String, revision: String? = nil) throws -> String {
        let repo = "\(dir)/\(name)/6.9/os/x86_64"
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixture.path("repo") + "/repodata", toPath: repo + "/repodata")
        if let revision {
            let path = repo + "/repodata/repomd.xml"
            let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
                of: "<revision>1500000000</revision>", with: "<revision>\(revision)</revision>")
            try FileManager.default.removeItem(atPath: path)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        return "file://\(dir)/\(name)"
    }

    @Test func deadPrimaryThenAgreeingAndDisagreeingAlternatives() throws {
        let dir = try TemporaryDirectory.make("mirrors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Self.mirror(dir, "good"), same = try Self.mirror(dir, "same"), newer = try Self.mirror(dir, "newer", revision: "1600000000")
        let dead = "file://\(dir)/dead"
        var notes: [String] = []
        let fetcher = Fetcher(cache: try DownloadCache(root: URL(fileURLWithPath: dir + "/cache")))
        let repo = try ReleaseRepository.fetch(mirrors: [dead, good, newer, same], release: "6.9", fetcher: fetcher, note: { notes.append($0) })
        #expect(repo.baseURL.absoluteString == good + "/6.9/os/x86_64/")
        #expect(repo.alternativeBaseURLs.map(\.absoluteString) == [same + "/6.9/os/x86_64/"])
        #expect(repo.repomd.revision == "1500000000")
        #expect(
            notes.contains { $0.hasPrefix("mirror failover: the metadata of 6.9/os from the alternative \(good)/6.9/os/x86_64/ (\(dead) failed: ") }, "\(notes)"
        )
        #expect(
            notes.contains { $0.contains("mirror \(newer)/6.9/os/x86_64/ is not used for 6.9/os: its repomd.xml has revision 1600000000, not 1500000000") },
            "\(notes)")
        // A package's file: the metadata mirror first, then only the agreeing alternative.
        let package = try #require(repo.packages.first)
        let remote = repo.remoteFile(package)
        #expect(remote.url.absoluteString == good + "/6.9/os/x86_64/" + package.location)
        #expect(remote.alternatives.map(\.absoluteString) == [same + "/6.9/os/x86_64/" + package.location])

        // No mirror answering: one error naming each.
        do {
            _ = try ReleaseRepository.fetch(mirrors: [dead, dead + "2"], release: "6.9", fetcher: fetcher)
            Issue.record("no mirror answered")
        } catch {
            #expect("\(error)".contains("no mirror serves it") && "\(error)".contains(dead + "2"), "\(error)")
        }
    }

    @Test func repomdAgreement() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("repo") + "/repodata/repomd.xml"))
        let a = try RepoMD.parse(data)
        #expect(a.disagreement(with: a) == nil)
        var b = a
        b.revision = "2"
        #expect(a.disagreement(with: b) == "has revision 2, not 1500000000")
        var c = a
        c.files["primary"]?.checksum = Checksum.of(Data("other".utf8), kind: .sha256)
        #expect(a.disagreement(with: c)?.hasPrefix("has other primary data") == true)
        var d = a
        d.files["primary_db"] = a.files["primary"]
        #expect(a.disagreement(with: d)?.hasPrefix("has other primary_db data") == true)
    }
}
