import Fetch
import Foundation
import Host
import RPM
@testable import Repository
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// Repository metadata is decompressed as a counted stream: a small file that
/// unpacks to 1 GiB (a gzip or xz bomb) is refused at repomd's open-size, or
/// at the hard cap without one, quickly and without the memory it asks for.
@Suite(.serialized) struct DecompressionBombTests {
    static let mib = 1 << 20

    /// `count` concatenated members of one compressed MiB of zeros: `gzip -dc`
    /// and `xz -dc` unpack them all, so 1024 of them are 1 GiB from about 1 MB.
    static func bomb(tool: String, mebibytes count: Int) throws -> Data {
        let out = try HostPipe.collect(Command(tool, ["-9c"]), inputFile: nil, inputData: Data(count: mib))
        #expect(out.0.status == 0, "\(tool) -9c: \(out.0.standardError)")
        var data = Data()
        for _ in 0..<count { data.append(out.1) }
        return data
    }

    /// VmHWM of this process in bytes (the peak resident set since the last reset).
    static func peakRSS() -> Int {
        let status = Mounts.procText("/proc/self/status")
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kb * 1024
    }

    /// Resets VmHWM to the current RSS (Linux: `5` to clear_refs), so the peak
    /// measured after is this test's, not an earlier one's. False when not allowed.
    static func resetPeak() -> Bool {
        (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
    }

    @Test(arguments: ["gzip", "xz"])
    func bombWithASmallOpenSizeIsRefusedAtOnce(tool: String) throws {
        let bomb = try Self.bomb(tool: tool, mebibytes: 1024)
        #expect(bomb.count < 2 * Self.mib, "\(bomb.count) bytes")
        let file = RepoDataFile(
            type: "primary", location: "repodata/bomb-primary.xml.\(tool == "gzip" ? "gz" : "xz")",
            checksum: Checksum.of(bomb, kind: .sha256), size: bomb.count, openSize: 4096)
        let measured = Self.resetPeak()
        #expect(measured || geteuid() != 0, "root can reset VmHWM through /proc/self/clear_refs")
        let before = Self.peakRSS()
        let start = Date()
        do {
            _ = try Metadata.loadPrimary(bomb, file: file)
            Issue.record("a \(tool) bomb was accepted")
        } catch let error as RepositoryError {
            #expect(error.description.contains("repodata/bomb-primary.xml"), "the error names the file: \(error)")
            #expect(error.description.contains("more than the 4096 bytes repomd.xml's open-size gives"), "\(error)")
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 5, "refused after \(seconds) s")
        if measured {
            let grown = Self.peakRSS() - before
            #expect(grown < 64 * Self.mib, "peak RSS grew by \(grown >> 20) MiB")
        }
    }

    /// No open-size (or a huge one): the hard cap ends it, naming the file.
    @Test func bombWithoutOpenSizeStopsAtTheCap() throws {
        let bomb = try Self.bomb(tool: "gzip", mebibytes: 1024)
        let start = Date()
        for openSize in [nil, Int.max / 2] as [Int?] {
            let file = RepoDataFile(
                type: "group", location: "repodata/comps.xml.gz", checksum: Checksum.of(bomb, kind: .sha256), size: bomb.count, openSize: openSize)
            #expect(throws: RepositoryError.metadata(file: "repodata/comps.xml.gz", reason: Metadata.tooLargeReason(limit: 8 * Self.mib, openSize: openSize))) {
                _ = try Metadata.decompressChecked(bomb, name: "repodata/comps.xml.gz", open: file, cap: 8 * Self.mib)
            }
        }
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(Metadata.decompressionLimit(openSize: nil) == Metadata.maxDecompressedBytes)
        #expect(Metadata.decompressionLimit(openSize: 100) == 100)
        #expect(Metadata.decompressionLimit(openSize: Int.max) == Metadata.maxDecompressedBytes)
        // Exactly open-size bytes still pass; the size check then compares as before.
        let good = try Self.bomb(tool: "gzip", mebibytes: 2)
        let exact = RepoDataFile(type: "primary", location: "p.gz", checksum: Checksum.of(good, kind: .sha256), size: good.count, openSize: 2 * Self.mib)
        #expect(try Metadata.decompressChecked(good, name: "p.gz", open: exact).count == 2 * Self.mib)
    }

    /// The whole way a release's metadata comes in: a mirror (file://) whose
    /// repomd gives the bomb's true size and checksum but the real open-size.
    @Test func releaseWithABombPrimaryIsRefused() throws {
        let dir = try TemporaryDirectory.make("bomb-mirror")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let repo = dir + "/6.9/os/x86_64"
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixture.path("repo") + "/repodata", toPath: repo + "/repodata")
        let bomb = try Self.bomb(tool: "gzip", mebibytes: 1024)
        try bomb.write(to: URL(fileURLWithPath: repo + "/repodata/primary.xml.gz"))
        var repomd = try String(contentsOfFile: repo + "/repodata/repomd.xml", encoding: .utf8)
        repomd = repomd.replacingOccurrences(of: "23a7cea1c8332eef67c632f2ad269181519b78beabee891d4e3b8f6dc6cd6506", with: Checksum.of(bomb, kind: .sha256).hex)
            .replacingOccurrences(of: "<size>813</size>", with: "<size>\(bomb.count)</size>")
        try FileManager.default.removeItem(atPath: repo + "/repodata/repomd.xml")
        try repomd.write(toFile: repo + "/repodata/repomd.xml", atomically: true, encoding: .utf8)
        let fetcher = Fetcher(cache: try DownloadCache(root: URL(fileURLWithPath: dir + "/cache")))
        let start = Date()
        do {
            _ = try ReleaseRepository.fetch(mirror: "file://" + dir, release: "6.9", fetcher: fetcher)
            Issue.record("the bomb was accepted")
        } catch {
            #expect("\(error)".contains("repodata/primary.xml.gz") && "\(error)".contains("2549 bytes repomd.xml's open-size"), "\(error)")
        }
        #expect(Date().timeIntervalSince(start) < 10)
    }
}
