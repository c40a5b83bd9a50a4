@testable import Fetch
import Foundation
import Host
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// The downloader against the built test vault served by
/// scripts/testvault/vault-server.py on 127.0.0.1: a release's whole package
/// set, the warm-cache rerun, and two processes sharing one cache (batch).
/// No root needed; a missing vault or driver is a failure, not a skip.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct FetchIntegrationTests {
    static var vaultRoot: String { Integration.vaultBuildDir + "/vault" }

    /// Every package of a release as (relative path, RemoteFile) against `base`.
    static func packageSet(release: String, base: URL, first limit: Int = Int.max) throws -> [RemoteFile] {
        let dir = "\(release)/os/x86_64/Packages"
        let names = try FileManager.default.contentsOfDirectory(atPath: vaultRoot + "/" + dir).filter { $0.hasSuffix(".rpm") }.sorted()
        #expect(names.count > 20, "the test vault's \(release) has too few packages")
        return try names.prefix(limit).map { name in
            let path = vaultRoot + "/\(dir)/\(name)"
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
            return RemoteFile(url: base.appendingPathComponent("\(dir)/\(name)"), size: size, checksum: try Checksum.of(file: path, kind: .sha256))
        }
    }

    @Test func wholeReleaseThenWarmCacheDownloadsNothing() throws {
        #expect(FileManager.default.fileExists(atPath: Self.vaultRoot + "/6.9/os/x86_64/Packages"), "test vault not built at \(Self.vaultRoot)")
        let server = try VaultServer(root: Self.vaultRoot)
        defer { server.stop() }
        let files = try Self.packageSet(release: "6.9", base: URL(string: server.mirror + "/")!)
        let total = files.reduce(Int64(0)) { $0 + $1.size }
        let cacheDir = try Integration.scratchDirectory("fetch-cache")
        defer { try? FileManager.default.removeItem(atPath: cacheDir) }
        let cache = try DownloadCache(root: URL(fileURLWithPath: cacheDir))

        let first = Fetcher(cache: cache, maxConnections: 8)
        let paths = try first.fetch(files)
        #expect(first.stats.downloadedBytes == total)
        #expect(first.stats.downloadedFiles == files.count)
        #expect(try server.stats() == (requests: files.count, bytes: total))
        for (file, path) in zip(files, paths) {
            #expect(path.path == cacheDir + "/blobs/sha256/" + file.checksum.hex)
        }
        #expect(cache.partialFiles().isEmpty)

        try server.resetStats()
        let second = Fetcher(cache: cache, maxConnections: 8)
        _ = try second.fetch(files)
        #expect(second.stats.downloadedBytes == 0)
        #expect(second.stats.cachedBytes == total)
        #expect(try server.stats() == (requests: 0, bytes: Int64(0)))
    }

    /// SIGINT in the middle of a transfer: the driver stops within a second
    /// with 130, the partial file stays in the cache, and the next run
    /// resumes it with a Range request instead of starting over.
    @Test func interruptLeavesAResumablePartial() throws {
        let driver = URL(fileURLWithPath: Integration.binary).deletingLastPathComponent().appendingPathComponent("fetch-bench").path
        #expect(FileManager.default.isExecutableFile(atPath: driver), "fetch-bench not built beside \(Integration.binary) (swift build builds it)")
        let server = try VaultServer(root: Self.vaultRoot)
        defer { server.stop() }
        let dir = Self.vaultRoot + "/6.9/os/x86_64/Packages"
        let sized = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".rpm") }.map { name -> (String, Int64) in
            (name, (try FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? NSNumber)?.int64Value ?? 0)
        }
        guard let (name, size) = sized.filter({ $0.1 > 1_000_000 }).min(by: { $0.1 < $1.1 }) else {
            Issue.record("the test vault's 6.9 has no package over 1 MB"); return
        }
        let big = RemoteFile(
            url: URL(string: server.mirror + "/")!.appendingPathComponent("6.9/os/x86_64/Packages/" + name), size: size,
            checksum: try Checksum.of(file: dir + "/" + name, kind: .sha256))
        let path = String(big.url.path)
        try server.control(#"{"add_faults": [{"path": "\#(path)", "throttle_bps": 400000, "times": 1}]}"#)
        let work = try Integration.scratchDirectory("fetch-int")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try "\(path.dropFirst()) \(big.size) \(big.checksum.hex)\n".write(toFile: work + "/list", atomically: true, encoding: .utf8)
        let arguments = ["--base", URL(string: server.mirror + "/")!.absoluteString, "--list", work + "/list", "--cache", work + "/cache"]
        let job = try startTool(Command(driver, arguments))
        defer { if job.isRunning { kill(job.pid, SIGKILL); job.wait() } }
        usleep(1_200_000)
        #expect(job.isRunning)
        let sent = Date()
        kill(job.pid, SIGINT)
        let status = job.wait(timeout: 5)
        #expect(Date().timeIntervalSince(sent) < 1.0, "the downloader must stop promptly on SIGINT")
        #expect(status == 130)
        let cache = try DownloadCache(root: URL(fileURLWithPath: work + "/cache"))
        #expect(!cache.contains(big.checksum))
        let partials = cache.partialFiles()
        #expect(partials.count == 1)
        let kept = (try? FileManager.default.attributesOfItem(atPath: partials.first?.path ?? "")[.size] as? NSNumber)?.int64Value ?? 0
        #expect(kept > 100_000 && kept < big.size)

        // Let the server's throttled thread notice the closed connection before zeroing its counters.
        usleep(500_000)
        try server.resetStats()
        let rerun = try Integration.run(driver, arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(cache.contains(big.checksum, size: big.size))
        #expect(cache.partialFiles().isEmpty)
        let (requests, bytes) = try server.stats()
        #expect(requests == 1)
        #expect(bytes == big.size - kept, "kept \(kept) of \(big.size)")
    }

    /// Two processes (two batch jobs, 6.8 and 6.9) on one cache at the same
    /// moment: every distinct package is fetched once, no torn blob.
    @Test func twoProcessesShareOneCache() throws {
        let driver = URL(fileURLWithPath: Integration.binary).deletingLastPathComponent().appendingPathComponent("fetch-bench").path
        #expect(FileManager.default.isExecutableFile(atPath: driver), "fetch-bench not built beside \(Integration.binary) (swift build builds it)")
        let server = try VaultServer(root: Self.vaultRoot)
        defer { server.stop() }
        // Slow requests so that both jobs contend for the shared packages.
        try server.control(#"{"delay_ms": 10}"#)
        let work = try Integration.scratchDirectory("fetch-two")
        defer { try? FileManager.default.removeItem(atPath: work) }
        var distinct: [Checksum: Int64] = [:]
        var lists: [String] = []
        for release in ["6.8", "6.9"] {
            // The first 80 by name of each release: mostly the same packages, some differing (keeps CI time down).
            let files = try Self.packageSet(release: release, base: URL(string: server.mirror + "/")!, first: 80)
            for f in files { distinct[f.checksum] = f.size }
            let list = work + "/\(release).list"
            let prefix = URL(string: server.mirror + "/")!.absoluteString
            try files.map { "\($0.url.absoluteString.dropFirst(prefix.count)) \($0.size) \($0.checksum.hex)" }.joined(separator: "\n").write(
                toFile: list, atomically: true, encoding: .utf8)
            lists.append(list)
        }
        let jobs = try lists.map { list in
            try startTool(
                Command(
                    driver, ["--base", URL(string: server.mirror + "/")!.absoluteString, "--list", list, "--cache", work + "/cache", "--connections", "6"]),
                error: .descriptor(2))
        }
        defer { for job in jobs where job.isRunning { kill(job.pid, SIGKILL) } }
        #expect(jobs.map { $0.wait() } == [0, 0])
        let (requests, bytes) = try server.stats()
        #expect(distinct.count < 160, "the two releases should share packages")
        #expect(requests == distinct.count)
        #expect(bytes == distinct.values.reduce(0, +))
        let cache = try DownloadCache(root: URL(fileURLWithPath: work + "/cache"))
        for (sum, size) in distinct {
            #expect(cache.contains(sum, size: size))
            #expect(try Checksum.of(file: cache.path(for: sum).path, kind: .sha256) == sum)
        }
        #expect(cache.partialFiles().isEmpty)
    }
}
