@testable import Fetch
import Foundation
import TestSupport
import Testing
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// The downloader against scripts/testvault/vault-server.py on 127.0.0.1
/// (no root needed): every fault the install must survive or report clearly.
@Suite(.serialized) struct FetchTests {
    @Test func downloadsInParallelWithKeepAliveAndVerifies() throws {
        let fixture = try FetchFixture()
        let names = (0..<24).map { "pkg\($0).rpm" }
        for (i, name) in names.enumerated() { try fixture.add(name, size: 1000 + i * 7919) }
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        var reports: [FetchProgress] = []
        let reportLock = NSLock()
        let fetcher = Fetcher(cache: try fixture.cache(), maxConnections: 4, retries: 2, options: quickOptions()) { p in
            reportLock.withLock { reports.append(p) }
        }
        let files = names.map { fixture.remote($0, server: server) }
        let paths = try fetcher.fetch(files)
        #expect(paths.count == names.count)
        for (name, path) in zip(names, paths) {
            #expect(try Data(contentsOf: path) == fixture.files[name]!)
            #expect(path.lastPathComponent == Checksum.of(fixture.files[name]!, kind: .sha256).hex)
        }
        let total = fixture.files.values.reduce(Int64(0)) { $0 + Int64($1.count) }
        #expect(fetcher.stats.downloadedBytes == total)
        #expect(fetcher.stats.downloadedFiles == names.count)
        // Keep-alive: 24 files over at most 4 connections.
        let serverStats = try server.stats()
        #expect(serverStats["requests"] as? Int == names.count)
        // (+1: the connection of the stats request itself.)
        #expect((serverStats["connections"] as? Int ?? 99) <= 4 + 1)
        #expect(fetcher.stats.connections <= 4)
        #expect(reports.last?.bytesDone == total)
        #expect(reports.last?.filesDone == names.count)
        #expect(fixture.cacheEntries().allSatisfy { !$0.contains(".partial") })
    }

    @Test func cacheHitDownloadsNothing() throws {
        let fixture = try FetchFixture()
        for i in 0..<5 { try fixture.add("p\(i).rpm", size: 20_000 + i) }
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let files = (0..<5).map { fixture.remote("p\($0).rpm", server: server) }
        _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch(files)
        let requestsBefore = try server.stats()["requests"] as? Int
        let second = Fetcher(cache: try fixture.cache(), options: quickOptions())
        let paths = try second.fetch(files)
        #expect(second.stats.downloadedBytes == 0)
        #expect(second.stats.cachedFiles == 5)
        #expect(second.stats.cachedBytes == files.reduce(0) { $0 + $1.size })
        #expect(try server.stats()["requests"] as? Int == requestsBefore)
        #expect(paths.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
    }

    @Test func notFoundIsAClearErrorAndNotRetried() throws {
        let fixture = try FetchFixture()
        try fixture.add("there.rpm", size: 100)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let missing = RemoteFile(
            url: server.url("/Packages/missing-1.0-1.el6.x86_64.rpm"), size: 100, checksum: fixture.remote("there.rpm", server: server).checksum)
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 3, options: quickOptions())
        do {
            _ = try fetcher.fetch([missing])
            Issue.record("a 404 must fail")
        } catch let error as FetchError {
            #expect(error == .notFound(url: missing.url.absoluteString))
            #expect("\(error)".contains("'\(missing.url.absoluteString)' was not found on the mirror (404)"))
        }
        #expect(try server.pathStats("/Packages/missing-1.0-1.el6.x86_64.rpm").requests == 1)
        #expect(fetcher.stats.retries == 0)
        #expect(fixture.cacheEntries().isEmpty)
    }

    @Test func serverErrorIsRetriedThenSucceeds() throws {
        let (fixture, server, path) = try FetchFixture.serving("flaky.rpm", size: 50_000, fault: #""status": 500, "times": 2"#)
        defer { server.stop() }
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 3, options: quickOptions())
        let out = try fetcher.fetch([fixture.remote("flaky.rpm", server: server)])
        #expect(try Data(contentsOf: out[0]) == fixture.files["flaky.rpm"]!)
        #expect(fetcher.stats.retries == 2)
        let stats = try server.pathStats(path)
        #expect(stats.statuses == ["500": 2, "200": 1])
    }

    @Test func serverErrorForeverGivesUpAfterBoundedRetries() throws {
        let (fixture, server, path) = try FetchFixture.serving("broken.rpm", size: 5_000, fault: #""status": 503"#)
        defer { server.stop() }
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 2, options: quickOptions())
        #expect(throws: FetchError.httpStatus(url: server.url(path).absoluteString, status: 503, attempts: 3)) {
            _ = try fetcher.fetch([fixture.remote("broken.rpm", server: server)])
        }
        #expect(try server.pathStats(path).requests == 3)
    }

    @Test func cutConnectionIsResumedWithRange() throws {
        let (fixture, server, path) = try FetchFixture.serving("big.rpm", size: 3_000_000, fault: #""cut_after": 1000000, "times": 1"#)
        defer { server.stop() }
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 2, options: quickOptions())
        let out = try fetcher.fetch([fixture.remote("big.rpm", server: server)])
        #expect(try Data(contentsOf: out[0]) == fixture.files["big.rpm"]!)
        #expect(fetcher.stats.resumes == 1)
        #expect(fetcher.stats.retries == 1)
        let stats = try server.pathStats(path)
        #expect(stats.statuses == ["200": 1, "206": 1])
        // Only the missing part was fetched again.
        #expect(stats.bytes == 3_000_000)
        #expect(fetcher.stats.downloadedBytes == 3_000_000)
    }

    @Test func cutConnectionIsRestartedWhenRangeIsUnsupported() throws {
        let (fixture, server, path) = try FetchFixture.serving(
            "big.rpm", size: 2_000_000, fault: #""cut_after": 700000, "times": 1"#, settings: #""range": false"#)
        defer { server.stop() }
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 2, options: quickOptions())
        let out = try fetcher.fetch([fixture.remote("big.rpm", server: server)])
        #expect(try Data(contentsOf: out[0]) == fixture.files["big.rpm"]!)
        #expect(try server.pathStats(path).statuses == ["200": 2])
        #expect(try server.pathStats(path).bytes == 2_700_000)
    }

    @Test func partialFromAnEarlierRunIsResumed() throws {
        let fixture = try FetchFixture()
        let path = try fixture.add("half.rpm", size: 400_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let cache = try fixture.cache()
        let remote = fixture.remote("half.rpm", server: server)
        try fixture.files["half.rpm"]!.prefix(150_000).write(to: cache.partialPath(for: remote.checksum))
        let fetcher = Fetcher(cache: cache, options: quickOptions())
        let out = try fetcher.fetch([remote])
        #expect(try Data(contentsOf: out[0]) == fixture.files["half.rpm"]!)
        #expect(try server.pathStats(path).statuses == ["206": 1])
        #expect(fetcher.stats.downloadedBytes == 250_000)
        #expect(cache.partialFiles().isEmpty)
    }

    @Test func corruptResumedPartialIsRetriedFromScratch() throws {
        let fixture = try FetchFixture()
        let path = try fixture.add("stale.rpm", size: 300_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let cache = try fixture.cache()
        let remote = fixture.remote("stale.rpm", server: server)
        try Data(repeating: 7, count: 100_000).write(to: cache.partialPath(for: remote.checksum))
        let out = try Fetcher(cache: cache, options: quickOptions()).fetch([remote])
        #expect(try Data(contentsOf: out[0]) == fixture.files["stale.rpm"]!)
        #expect(try server.pathStats(path).statuses == ["206": 1, "200": 1])
    }

    @Test func checksumMismatchIsFatalAndLeavesNothing() throws {
        let (fixture, server, path) = try FetchFixture.serving("tampered.rpm", size: 80_000, fault: #""corrupt_at": 4242"#)
        defer { server.stop() }
        var corrupted = fixture.files["tampered.rpm"]!
        corrupted[4242] ^= 0xFF
        let remote = fixture.remote("tampered.rpm", server: server)
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 3, options: quickOptions())
        do {
            _ = try fetcher.fetch([remote])
            Issue.record("a checksum mismatch must fail")
        } catch let error as FetchError {
            let actual = Checksum.of(corrupted, kind: .sha256)
            #expect(
                error
                    == .checksumMismatch(
                        url: remote.url.absoluteString, file: "tampered.rpm", expected: remote.checksum.description, actual: actual.description))
            let text = "\(error)"
            #expect(text.contains("'tampered.rpm'") && text.contains(remote.checksum.hex) && text.contains(actual.hex))
        }
        #expect(try server.pathStats(path).requests == 1) // not retried
        #expect(fixture.cacheEntries().isEmpty)
    }

    @Test func sha1ChecksumsFromOldRepos() throws {
        let fixture = try FetchFixture()
        try fixture.add("old.rpm", size: 12_345)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let remote = fixture.remote("old.rpm", server: server, kind: .sha1)
        let out = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([remote])
        #expect(out[0].path == fixture.cacheRoot.path + "/blobs/sha1/" + remote.checksum.hex)
        #expect(try Data(contentsOf: out[0]) == fixture.files["old.rpm"]!)
    }

    @Test func endlessBodyIsCutAtTheSizeLimit() throws {
        let (fixture, server, path) = try FetchFixture.serving("endless.rpm", size: 100_000, fault: #""endless": true"#)
        defer { server.stop() }
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 3, options: quickOptions())
        let start = Date()
        #expect(throws: FetchError.tooLarge(url: server.url(path).absoluteString, limit: 100_000)) {
            _ = try fetcher.fetch([fixture.remote("endless.rpm", server: server)])
        }
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(fetcher.stats.downloadedBytes <= 100_000)
        #expect(try server.pathStats(path).requests == 1)
        #expect(fixture.cacheEntries().isEmpty)
    }

    /// repomd.xml entries may lack `<size>`: the size is then only a limit.
    @Test func sizeThatIsOnlyALimit() throws {
        let fixture = try FetchFixture()
        try fixture.add("filelists.xml.gz", size: 7_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        var bound = fixture.remote("filelists.xml.gz", server: server)
        bound.size = 64 << 20
        #expect(throws: FetchError.sizeMismatch(url: bound.url.absoluteString, expected: 64 << 20, actual: 7_000)) {
            _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([bound])
        }
        bound.sizeIsExact = false
        let out = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([bound])
        #expect(try Data(contentsOf: out[0]) == fixture.files["filelists.xml.gz"]!)
        bound.size = 6_999
        bound.checksum = Checksum.of(Data("q".utf8), kind: .sha256)
        #expect(throws: FetchError.tooLarge(url: bound.url.absoluteString, limit: 6_999)) {
            _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([bound])
        }
    }

    @Test func fetchSmallHonoursItsLimit() throws {
        let fixture = try FetchFixture()
        try FileManager.default.createDirectory(atPath: fixture.mirror + "/repodata", withIntermediateDirectories: true)
        let repomd = Data("<repomd/>\n".utf8)
        try repomd.write(to: URL(fileURLWithPath: fixture.mirror + "/repodata/repomd.xml"))
        let primary = try fixture.add("primary.xml.gz", size: 30_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let fetcher = Fetcher(cache: try fixture.cache(), options: quickOptions())
        #expect(try fetcher.fetchSmall(url: server.url("/repodata/repomd.xml"), expected: nil, sizeLimit: 1 << 20) == repomd)
        #expect(fetcher.stats.uncheckedBytes == Int64(repomd.count))
        #expect(throws: FetchError.tooLarge(url: server.url("/repodata/repomd.xml").absoluteString, limit: 5)) {
            _ = try fetcher.fetchSmall(url: server.url("/repodata/repomd.xml"), expected: nil, sizeLimit: 5)
        }
        // With a checksum it goes through the cache: the second time is a hit.
        let sum = Checksum.of(fixture.files["primary.xml.gz"]!, kind: .sha256)
        #expect(try fetcher.fetchSmall(url: server.url(primary), expected: sum, sizeLimit: 1 << 20) == fixture.files["primary.xml.gz"]!)
        #expect(try fetcher.fetchSmall(url: server.url(primary), expected: sum, sizeLimit: 1 << 20) == fixture.files["primary.xml.gz"]!)
        #expect(try server.pathStats(primary).requests == 1)
    }

    @Test func mirrorDownIsAClearErrorAfterBoundedRetries() throws {
        let fixture = try FetchFixture()
        try fixture.add("x.rpm", size: 10)
        // A port nobody listens on: one that was free a moment ago.
        let port = try freePort()
        let url = URL(string: "http://127.0.0.1:\(port)/Packages/x.rpm")!
        let data = fixture.files["x.rpm"]!
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 3, options: quickOptions())
        let start = Date()
        do {
            _ = try fetcher.fetch([RemoteFile(url: url, size: 10, checksum: Checksum.of(data, kind: .sha256))])
            Issue.record("a dead mirror must fail")
        } catch let error as FetchError {
            guard case let .connection(failed, reason, attempts) = error else { Issue.record("unexpected \(error)"); return }
            #expect(failed == url.absoluteString)
            #expect(reason.contains("Connection refused"))
            #expect(attempts == 4)
            #expect("\(error)".contains("gave up after 4 attempts"))
        }
        #expect(fetcher.stats.retries == 3)
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func concurrentFetchesOfOneBlobDownloadOnce() throws {
        // Slow enough that both jobs are inside fetch at the same moment.
        let (fixture, server, path) = try FetchFixture.serving("shared.rpm", size: 2_000_000, fault: #""delay_ms": 400"#)
        defer { server.stop() }
        let remote = fixture.remote("shared.rpm", server: server)
        let fetchers = (0..<4).map { _ in Fetcher(cache: try! fixture.cache(), options: quickOptions()) }
        let shared = Locked([URL?](repeating: nil, count: fetchers.count))
        DispatchQueue.concurrentPerform(iterations: fetchers.count) { i in
            let out = try? fetchers[i].fetch([remote])
            shared.withLock { $0[i] = out?.first }
        }
        let results = shared.value
        #expect(try server.pathStats(path).requests == 1)
        #expect(Set(results.compactMap { $0 }).count == 1)
        #expect(results.allSatisfy { $0 != nil })
        #expect(fetchers.map(\.stats.downloadedFiles).reduce(0, +) == 1)
        #expect(fetchers.map(\.stats.cachedFiles).reduce(0, +) == 3)
        #expect(try Data(contentsOf: results[0]!) == fixture.files["shared.rpm"]!)
    }

    /// Another process (another batch job) holds the blob's lock and puts the
    /// blob in place: we wait for it, then find the blob and download nothing.
    @Test func waitsForAnotherProcessHoldingTheLock() throws {
        let fixture = try FetchFixture()
        let path = try fixture.add("other.rpm", size: 50_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let cache = try fixture.cache()
        let remote = fixture.remote("other.rpm", server: server)
        let blob = cache.path(for: remote.checksum).path
        let holder = try startTool(
            Command(
                "/usr/bin/flock",
                [cache.lockPath(for: remote.checksum), "/bin/sh", "-c", "sleep 0.8; cp \"$0\" \"$1.tmp\" && mv \"$1.tmp\" \"$1\"", fixture.mirror + path, blob])
        )
        defer { if holder.isRunning { holder.signal(SIGKILL) }; holder.wait() }
        usleep(300_000)
        let fetcher = Fetcher(cache: cache, options: quickOptions())
        let start = Date()
        let out = try fetcher.fetch([remote])
        #expect(Date().timeIntervalSince(start) > 0.3)
        #expect(out[0].path == blob)
        #expect(fetcher.stats.downloadedBytes == 0)
        #expect(fetcher.stats.cachedFiles == 1)
        #expect(try server.pathStats(path).requests == 0)
    }

    /// A process that holds a blob's lock and never lets go: the waiter says
    /// which lock and which process (pid and command line, from /proc/locks)
    /// and gives up after the configured wait with an error naming both.
    @Test func aStuckLockHolderIsNamedAndTheWaitIsBounded() throws {
        let fixture = try FetchFixture()
        try fixture.add("stuck.rpm", size: 5_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let notices = Locked([String]())
        let cache = try DownloadCache(
            root: URL(fileURLWithPath: fixture.dir + "/cache"), lockWait: 1.5, lockNotice: { text in notices.withLock { $0.append(text) } })
        let remote = fixture.remote("stuck.rpm", server: server)
        let lock = cache.lockPath(for: remote.checksum)
        let holder = try startTool(Command("/usr/bin/flock", ["--close", lock, "/bin/sleep", "4"]))
        // SIGKILL to its process group: the sleep goes too.
        defer { if holder.isRunning { holder.signal(SIGKILL) }; holder.wait() }
        for _ in 0..<100 where FileLock.holders(of: lock).isEmpty { usleep(20_000) }
        #expect(FileLock.holders(of: lock) == [holder.pid])
        let start = Date()
        do {
            _ = try Fetcher(cache: cache, options: quickOptions()).fetch([remote])
            Issue.record("a lock held for ever must end the wait")
        } catch let HostError.lockWaitTimedOut(path, holderText, seconds) {
            #expect(path == lock)
            #expect(holderText.contains("pid \(holder.pid) (/usr/bin/flock --close \(lock) /bin/sleep 4)"), "\(holderText)")
            #expect(seconds == 2)
            #expect(HostError.lockWaitTimedOut(path: path, holder: holderText, seconds: seconds).description.contains("CENTOS6_AMI_LOCK_WAIT"))
        }
        let waited = Date().timeIntervalSince(start)
        #expect(waited >= 1.4 && waited < 5, "\(waited) s")
        let said = notices.withLock { $0 }
        #expect(said.count == 1)
        #expect(said.first?.contains("waiting for the lock '\(lock)', held by pid \(holder.pid)") == true, "\(said)")
        #expect(try server.pathStats("/Packages/stuck.rpm").requests == 0)
    }

    @Test func fileMirrorsAreCopiedAndVerified() throws {
        let fixture = try FetchFixture()
        try fixture.add("local.rpm", size: 3_000_000)
        let data = fixture.files["local.rpm"]!
        let good = RemoteFile(
            url: URL(fileURLWithPath: fixture.mirror + "/Packages/local.rpm"), size: Int64(data.count), checksum: Checksum.of(data, kind: .sha256))
        let fetcher = Fetcher(cache: try fixture.cache(), options: quickOptions())
        let out = try fetcher.fetch([good])
        #expect(try Data(contentsOf: out[0]) == data)
        let missing = RemoteFile(
            url: URL(fileURLWithPath: fixture.mirror + "/Packages/nope.rpm"), size: 1, checksum: Checksum.of(Data("x".utf8), kind: .sha256))
        #expect(throws: FetchError.notFound(url: missing.url.absoluteString)) { _ = try fetcher.fetch([missing]) }
        var wrongSum = good
        wrongSum.checksum = Checksum.of(Data("x".utf8), kind: .sha256)
        #expect(throws: FetchError.self) { _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([wrongSum]) }
        var wrongSize = good
        wrongSize.size = 10
        wrongSize.checksum = Checksum.of(Data("y".utf8), kind: .sha256)
        #expect(throws: FetchError.sizeMismatch(url: good.url.absoluteString, expected: 10, actual: Int64(data.count))) {
            _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([wrongSize])
        }
        #expect(fixture.cacheEntries() == ["sha256/" + good.checksum.hex])
    }

    @Test func redirectsAreFollowed() throws {
        let fixture = try FetchFixture()
        try fixture.add("moved.rpm", size: 4_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        try server.control(#"{"add_faults": [{"path": "/old/moved.rpm", "redirect": "/Packages/moved.rpm"}, {"path": "/loop", "redirect": "/loop"}]}"#)
        var remote = fixture.remote("moved.rpm", server: server)
        remote.url = server.url("/old/moved.rpm")
        let fetcher = Fetcher(cache: try fixture.cache(), options: quickOptions())
        let out = try fetcher.fetch([remote])
        #expect(try Data(contentsOf: out[0]) == fixture.files["moved.rpm"]!)
        #expect(try server.pathStats("/Packages/moved.rpm").requests == 1)
        remote.url = server.url("/loop")
        remote.checksum = Checksum.of(Data("z".utf8), kind: .sha256)
        #expect(throws: FetchError.redirects(url: remote.url.absoluteString, count: 6)) { _ = try fetcher.fetch([remote]) }
    }

    @Test func redirectPolicyKeepsTheSchemeOrUpgrades() {
        let http = URL(string: "http://a/x")!, https = URL(string: "https://a/x")!, file = URL(string: "file:///etc/passwd")!
        #expect(RedirectPolicy.allows(from: http, to: http))
        #expect(RedirectPolicy.allows(from: http, to: https))
        #expect(RedirectPolicy.allows(from: https, to: https))
        #expect(!RedirectPolicy.allows(from: https, to: http))
        #expect(!RedirectPolicy.allows(from: http, to: file))
        #expect(!RedirectPolicy.allows(from: https, to: file))
        #expect(!RedirectPolicy.allows(from: http, to: URL(string: "ftp://a/x")!))
        #expect(RedirectPolicy.curlProtoRedir(from: "https") == "=https")
        #expect(RedirectPolicy.curlProtoRedir(from: "http") == "=http,https")
        #expect(
            CurlTransport(settings: TransportSettings(connectTimeout: 1, idleTimeout: 1, userAgent: "t", environment: [:]))
                .arguments(https, rangeStart: 0, limit: 1).joined(separator: " ").contains("--proto-redir =https "))
    }

    /// A redirect that changes scheme (to file:, https to http) is refused by
    /// our http client and by curl, naming both URLs; http to https is followed.
    @Test func redirectsThatChangeSchemeAreRefused() throws {
        let fixture = try FetchFixture()
        try fixture.add("moved.rpm", size: 4_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        let tls = try makeLoopbackCertificate(in: fixture.dir)
        let secure = try FetchTestServer(root: fixture.mirror, tls: tls)
        defer { secure.stop() }
        let target = fixture.mirror + "/Packages/moved.rpm"
        let upgraded = secure.url("/Packages/moved.rpm").absoluteString
        let downgraded = server.url("/Packages/moved.rpm").absoluteString
        try server.control(
            #"{"add_faults": [{"path": "/to-file.rpm", "redirect": "file://\#(target)"}, {"path": "/to-https.rpm", "redirect": "\#(upgraded)"}]}"#)
        try secure.control(#"{"add_faults": [{"path": "/to-http.rpm", "redirect": "\#(downgraded)"}]}"#)
        var options = quickOptions()
        options.environment["CURL_CA_BUNDLE"] = tls.cert
        var remote = fixture.remote("moved.rpm", server: server)

        remote.url = server.url("/to-file.rpm")
        #expect(throws: FetchError.redirectRefused(from: remote.url.absoluteString, to: "file://" + target)) {
            _ = try Fetcher(cache: try fixture.cache(), options: options).fetch([remote])
        }
        remote.url = secure.url("/to-http.rpm")
        #expect(throws: FetchError.redirectRefused(from: remote.url.absoluteString, to: downgraded)) {
            _ = try Fetcher(cache: try fixture.cache(), options: options).fetch([remote])
        }
        #expect(try server.pathStats("/Packages/moved.rpm").requests == 0)
        #expect(fixture.cacheEntries().isEmpty)

        remote.url = server.url("/to-https.rpm")
        let out = try Fetcher(cache: try fixture.cache(), options: options).fetch([remote])
        #expect(try Data(contentsOf: out[0]) == fixture.files["moved.rpm"]!)
        #expect(try secure.pathStats("/Packages/moved.rpm").requests == 1)
        #expect(FetchError.redirectRefused(from: "https://a/x", to: "http://a/x").description.contains("'https://a/x' redirected to 'http://a/x'"))
    }

    /// https goes through the host's curl: same verification, limits, resume and errors.
    @Test func httpsThroughCurl() throws {
        let fixture = try FetchFixture()
        try fixture.add("secure.rpm", size: 900_000)
        let endless = try fixture.add("endless.rpm", size: 50_000)
        let cut = try fixture.add("cut.rpm", size: 600_000)
        let tls = try makeLoopbackCertificate(in: fixture.dir)
        let server = try FetchTestServer(root: fixture.mirror, tls: tls)
        defer { server.stop() }
        try server.control(
            #"{"add_faults": [{"path": "\#(endless)", "endless": true}, {"path": "\#(cut)", "cut_after": 200000, "times": 1}, {"path": "/Packages/flaky.rpm", "status": 503, "times": 1}]}"#
        )
        var options = quickOptions()
        options.environment["CURL_CA_BUNDLE"] = tls.cert
        let fetcher = Fetcher(cache: try fixture.cache(), retries: 2, options: options)
        let out = try fetcher.fetch([fixture.remote("secure.rpm", server: server), fixture.remote("cut.rpm", server: server)])
        #expect(try Data(contentsOf: out[0]) == fixture.files["secure.rpm"]!)
        #expect(try Data(contentsOf: out[1]) == fixture.files["cut.rpm"]!)
        #expect(try server.pathStats(cut).statuses == ["200": 1, "206": 1])
        #expect(fetcher.stats.resumes == 1)
        let missing = RemoteFile(url: server.url("/Packages/none.rpm"), size: 5, checksum: Checksum.of(Data("a".utf8), kind: .sha256))
        #expect(throws: FetchError.notFound(url: missing.url.absoluteString)) { _ = try fetcher.fetch([missing]) }
        let start = Date()
        #expect(throws: FetchError.tooLarge(url: server.url(endless).absoluteString, limit: 50_000)) {
            _ = try fetcher.fetch([fixture.remote("endless.rpm", server: server)])
        }
        #expect(Date().timeIntervalSince(start) < 5)
        // An untrusted certificate is a connection error naming the problem.
        let strict = Fetcher(cache: try fixture.cache(), retries: 0, options: quickOptions())
        var other = fixture.remote("secure.rpm", server: server)
        other.checksum = Checksum.of(Data("b".utf8), kind: .sha256)
        do {
            _ = try strict.fetch([other])
            Issue.record("an untrusted certificate must fail")
        } catch let error as FetchError {
            guard case let .connection(url, reason, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(url == other.url.absoluteString)
            #expect(reason.contains("certificate"))
        }
        #expect(fixture.cacheEntries().allSatisfy { !$0.contains(".partial") })
    }

    /// Many https files: one curl process per batch reuses its connection; a cut
    /// body, a 503 and an over-size body inside a batch still get their per-file
    /// resume, retry and limit.
    @Test func httpsBatchesReuseConnections() throws {
        let fixture = try FetchFixture()
        var names: [String] = []
        for i in 0..<30 {
            let name = String(format: "pkg-%02d.rpm", i)
            _ = try fixture.add(name, size: 20_000 + i * 1000, seed: UInt64(i + 7))
            names.append(name)
        }
        let cut = "/Packages/pkg-05.rpm", flaky = "/Packages/pkg-09.rpm"
        let tls = try makeLoopbackCertificate(in: fixture.dir)
        let server = try FetchTestServer(root: fixture.mirror, tls: tls)
        defer { server.stop() }
        try server.control(#"{"add_faults": [{"path": "\#(cut)", "cut_after": 5000, "times": 1}, {"path": "\#(flaky)", "status": 503, "times": 1}]}"#)
        var options = quickOptions()
        options.environment["CURL_CA_BUNDLE"] = tls.cert
        let fetcher = Fetcher(cache: try fixture.cache(), maxConnections: 2, retries: 2, options: options)
        let out = try fetcher.fetch(names.map { fixture.remote($0, server: server) })
        for (name, path) in zip(names, out) { #expect(try Data(contentsOf: path) == fixture.files[name]!, "\(name)") }
        #expect(try server.pathStats(cut).statuses == ["200": 1, "206": 1])
        #expect(try server.pathStats(flaky).statuses == ["503": 1, "200": 1])
        let connections = try #require(try server.stats()["connections"] as? Int)
        // One per file would be at least 32 (30 files, 2 retries); batches (7, 5, 4, 3, then 2s over
        // 2 workers) need about 11, plus the retries and this test's own control requests.
        #expect(connections < 20, "\(connections) TLS connections for 30 files")
        #expect(fixture.cacheEntries().allSatisfy { !$0.contains(".partial") })

        // An endless body inside a batch: curl is stopped at the limit, promptly.
        let more = try (0..<6).map { i -> String in
            let name = "more-\(i).rpm"
            _ = try fixture.add(name, size: 10_000, seed: UInt64(100 + i))
            return name
        }
        let endless = try fixture.add("endless.rpm", size: 40_000)
        try server.control(#"{"add_faults": [{"path": "\#(endless)", "endless": true}]}"#)
        let start = Date()
        #expect(throws: FetchError.tooLarge(url: server.url(endless).absoluteString, limit: 40_000)) {
            _ = try Fetcher(cache: try fixture.cache(), maxConnections: 1, retries: 0, options: options)
                .fetch((["endless.rpm"] + more).map { fixture.remote($0, server: server) })
        }
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(!fixture.cacheEntries().contains { $0.contains(".partial") && $0.contains(Checksum.of(fixture.files["endless.rpm"]!, kind: .sha256).hex) })
    }

    @Test func parsesResponseHeads() throws {
        let head = try #require(parseResponseHead("HTTP/1.1 302 Found\r\nLocation: /other/x.rpm\r\nContent-Length: 0"))
        #expect(head.status == 302)
        #expect(head.headers["location"] == "/other/x.rpm")
        #expect(head.contentLength == 0)
        let partial = try #require(parseResponseHead("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-199/200"))
        #expect(partial.rangeStart == 100)
        #expect(partial.rangeTotal == 200)
        #expect(parseResponseHead("garbage") == nil)
    }

    @Test func proxySelection() {
        let env = ["http_proxy": "http://proxy.example:3128", "no_proxy": ".internal,example.org"]
        let proxy = httpProxy(for: "archive.kernel.org", environment: env)
        #expect(proxy?.host == "proxy.example" && proxy?.port == 3128)
        #expect(httpProxy(for: "127.0.0.1", environment: env) == nil)
        #expect(httpProxy(for: "mirror.internal", environment: env) == nil)
        #expect(httpProxy(for: "vault.example.org", environment: env) == nil)
        #expect(httpProxy(for: "archive.kernel.org", environment: [:]) == nil)
    }
}

/// A mirror that trickles: the low-speed rule, with the clock passed in.
@Suite struct RateWatchTests {
    @Test func oneByteEveryFiveSecondsFailsAtTheEndOfTheWindow() {
        var watch = RateWatch(limit: 1000, window: 30, now: 100)
        var failure: String?
        var t = 100.0
        while failure == nil && t < 200 {
            t += 5
            failure = watch.record(1, now: t)
        }
        #expect(t == 130, "the default window ends it after 30 s, within a minute")
        #expect(failure == "slower than 1000 bytes/s for 30 s (6 bytes in the last 30.0 s; gave up after 30.0 s)")
    }

    @Test func aSteadyTransferPassesWindowAfterWindow() {
        var watch = RateWatch(limit: 100, window: 3, now: 0)
        for second in 1...20 { #expect(watch.record(150, now: Double(second)) == nil) }
        // Silence then counts against the next window.
        #expect(watch.record(0, now: 24) != nil)
    }

    @Test func progressSaysWhenATransferStalled() {
        var progress = FetchProgress(bytesDone: 1_000_000, bytesTotal: 2_000_000, filesDone: 1, filesTotal: 2, bytesPerSecond: 0)
        #expect(!progress.line.contains("stalled"))
        progress.stalledSeconds = 12
        #expect(progress.line.hasSuffix(", stalled: no data for 12 s"))
    }
}
