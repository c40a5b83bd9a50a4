import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// A file named by repository metadata: where to get it, how big it is and
/// what it must hash to. The size is the per-file limit: a body longer than
/// it is aborted (a broken or hostile mirror cannot fill the disk).
public struct RemoteFile: Hashable, Sendable {
    public var url: URL
    /// The size from the metadata: the download limit, and (when
    /// `sizeIsExact`) the exact length, checked against Content-Length before
    /// the body is read and used to resume a partial file.
    public var size: Int64
    public var checksum: Checksum
    /// False when `size` is only an upper bound (e.g. a repomd.xml entry
    /// without `<size>`): then the server's length is accepted up to `size`
    /// and the checksum alone decides.
    public var sizeIsExact: Bool
    /// The same file on other mirrors, tried in order when `url` cannot serve
    /// it (`Fetcher`'s failover). The checksum pins the content, so any mirror will do.
    public var alternatives: [URL]
    public init(url: URL, size: Int64, checksum: Checksum, sizeIsExact: Bool = true, alternatives: [URL] = []) {
        self.url = url
        self.size = size
        self.checksum = checksum
        self.sizeIsExact = sizeIsExact
        self.alternatives = alternatives
    }
}

/// Where a batch of downloads stands, for a progress line.
public struct FetchProgress: Sendable, Equatable {
    /// Bytes done, counting cache hits as done.
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var filesDone: Int
    public var filesTotal: Int
    /// Network bytes per second since the batch started (cache hits excluded).
    public var bytesPerSecond: Double
    /// Seconds since the last byte arrived, when that is long enough to say (0 otherwise).
    public var stalledSeconds: Int = 0

    /// `412/1024 files, 37.5/120.0 MB (31%), 11.2 MB/s`: one line, no newline.
    public var line: String {
        let percent = bytesTotal > 0 ? Int(Double(bytesDone) * 100 / Double(bytesTotal)) : 100
        return String(
            format: "%d/%d files, %.1f/%.1f MB (%d%%), %.1f MB/s", filesDone, filesTotal,
            Double(bytesDone) / 1e6, Double(bytesTotal) / 1e6, percent, bytesPerSecond / 1e6)
            + (stalledSeconds > 0 ? ", stalled: no data for \(stalledSeconds) s" : "")
    }
}

/// What a `Fetcher` did so far (all batches).
public struct FetchStats: Sendable, Equatable {
    /// Body bytes received from mirrors for content-addressed files (including
    /// bytes thrown away by a restart). A second install of a release: 0.
    public var downloadedBytes: Int64 = 0
    /// Bytes of files that were already in the cache (or fetched meanwhile by another job).
    public var cachedBytes: Int64 = 0
    public var downloadedFiles = 0
    public var cachedFiles = 0
    /// Body bytes of fetches without a checksum (repomd.xml), never cached.
    public var uncheckedBytes: Int64 = 0
    /// Attempts repeated after a connection error or a 5xx.
    public var retries = 0
    /// Transfers continued from a partial file with a Range request.
    public var resumes = 0
    /// TCP connections opened by the http client (keep-alive keeps this low).
    public var connections = 0
    /// Files served by an alternative mirror: their first URL failed (or its mirror had failed before).
    public var failovers = 0
    public init() {}
}

/// Tunables with sensible defaults; tests shorten the timeouts and backoff.
public struct FetchOptions: Sendable {
    /// First backoff delay; doubles on each retry (with ±25 % jitter) up to `maxBackoff`.
    public var backoff: TimeInterval = 0.5
    public var maxBackoff: TimeInterval = 8
    public var connectTimeout: TimeInterval = 15
    /// A transfer with no byte for this long is an error (retried).
    public var idleTimeout: TimeInterval = 30
    /// A response slower than `lowSpeedLimit` bytes/s over `lowSpeedTime` seconds
    /// fails at once, not retried (curl's --speed-limit/--speed-time): one byte
    /// every 5 s ends after 30 s, not never.
    public var lowSpeedLimit: Int = 1000
    public var lowSpeedTime: TimeInterval = 30
    /// Minimum interval between two progress callbacks.
    public var progressInterval: TimeInterval = 0.1
    public var userAgent = "centos6-ami (yum-compatible downloader)"
    /// For curl and the http_proxy/no_proxy variables.
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Told each time a file comes from an alternative mirror (which one, and why
    /// not the first): the install log says which mirror served what.
    public var note: (@Sendable (String) -> Void)?
    public init() {}
}

/// The downloader: fetches files into the `DownloadCache`, several at a time.
///
/// - Parallel: `maxConnections` worker threads, each with one persistent
///   HTTP/1.1 connection (keep-alive across files); the largest files start first.
/// - Retries: connection errors, short bodies, 5xx, 408 and 429 are retried
///   `retries` times with exponential backoff; 404 and other 4xx are not.
/// - Limits: a body longer than the metadata's size is aborted (`tooLarge`).
/// - Resumable: a partial file (`<cache>/blobs/<kind>/.<hex>.partial`) is
///   continued with `Range: bytes=N-` when the server answers 206, and
///   restarted when it answers 200; after a checksum mismatch on a resumed
///   file it is downloaded once more from scratch before the mismatch is fatal.
/// - Verified: the complete file is hashed (host sha256sum/sha1sum); only a file whose size and
///   checksum match is moved into the cache, atomically. A mismatch leaves
///   nothing in the cache.
/// - Interruptible: workers check `Interruption.shared` at least every 200 ms
///   and throw `HostError.interrupted`. Partial files are LEFT in the cache
///   (never on the target) so the next run resumes them; they are verified
///   like any other download before use.
/// - Shared: safe to use from several threads and alongside other processes
///   using the same cache (see `DownloadCache`).
// Unchecked: the counters and progress state are only touched under `lock`; the rest is immutable.
public final class Fetcher: @unchecked Sendable {
    public let cache: DownloadCache
    public let maxConnections: Int
    public let retries: Int
    public let options: FetchOptions
    private let progress: ((FetchProgress) -> Void)?

    private let lock = NSLock()
    private var _stats = FetchStats()
    private var batch = BatchCounters()
    private var lastProgress = Date.distantPast
    private var lastSent: FetchProgress?
    /// Mirrors (scheme://host:port) that failed a transfer after every retry:
    /// later files try them last, so a dead mirror costs its retries once, not per file.
    private var downOrigins: Set<String> = []

    private struct BatchCounters {
        var start = Date()
        var bytesTotal: Int64 = 0
        var filesTotal = 0
        var bytesDone: Int64 = 0
        var filesDone = 0
        var networkBytes: Int64 = 0
        /// When the last body byte (or the batch start) was seen: for the stalled note.
        var lastByte = Date()
    }

    /// - Parameters:
    ///   - maxConnections: parallel transfers (and so connections per mirror); 1...64.
    ///   - retries: extra attempts after a retryable failure.
    ///   - progress: called from worker threads (serialised, at most every
    ///     `options.progressInterval`, and once at the end of each batch).
    public init(
        cache: DownloadCache, maxConnections: Int = 8, retries: Int = 4, options: FetchOptions = FetchOptions(), progress: ((FetchProgress) -> Void)? = nil
    ) {
        self.cache = cache
        self.maxConnections = max(1, min(64, maxConnections))
        self.retries = max(0, retries)
        self.options = options
        self.progress = progress
    }

    public var stats: FetchStats { lock.withLock { _stats } }

    private var settings: TransportSettings {
        TransportSettings(
            connectTimeout: options.connectTimeout, idleTimeout: options.idleTimeout, userAgent: options.userAgent, environment: options.environment,
            lowSpeedLimit: options.lowSpeedLimit, lowSpeedTime: options.lowSpeedTime)
    }

    // MARK: - Public API

    /// Fetches every file into the cache (hits cost nothing) and returns the
    /// cache path of each, in input order. Files with the same checksum are
    /// fetched once. On the first failure no new transfer starts; the error is
    /// thrown once the running ones end (they are still cached if good).
    /// Throws `FetchError` or `HostError.interrupted`.
    public func fetch(_ files: [RemoteFile]) throws -> [URL] {
        var unique: [Checksum: RemoteFile] = [:]
        for file in files where unique[file.checksum] == nil { unique[file.checksum] = file }
        // Largest first: the long transfers overlap the many small ones.
        let queue = unique.values.sorted { $0.size != $1.size ? $0.size > $1.size : $0.url.absoluteString < $1.url.absoluteString }
        lock.withLock {
            batch = BatchCounters(start: Date(), bytesTotal: queue.reduce(0) { $0 + $1.size }, filesTotal: queue.count)
            lastProgress = .distantPast
            lastSent = nil
        }

        let units = Fetcher.workUnits(queue, workers: min(maxConnections, queue.count))
        let results = Locked<[Checksum: URL]>([:])
        // On the first failure no new unit starts; while waiting, say so when no byte has come for a while (a stalled mirror).
        defer { report(force: true) }
        try Parallel.forEach(units.count, workers: maxConnections, whileWaiting: { reportStall() }) { [self] items in
            let client = HTTPClient(settings: settings)
            client.onConnect = { [self] in lock.withLock { _stats.connections += 1 } }
            defer { client.closeConnection() }
            items.forEach { index in
                let unit = units[index]
                try Interruption.shared.check()
                if Fetcher.isHTTPS(unit[0]) { try prefetchHTTPS(unit) }
                for item in unit {
                    try Interruption.shared.check()
                    let path = try obtainFromAnyMirror(item, client: client)
                    results.withLock { $0[item.checksum] = path }
                }
            }
        }
        let paths = results.value
        return try files.map { file in
            // Every file either has a path or an error above; a gap would be a bug, never a trap mid-install.
            guard let path = paths[file.checksum] else { throw FetchError.io(path: file.url.absoluteString, reason: "the download finished without a result") }
            return path
        }
    }

    /// What one worker takes at a time, in queue order: one file, or for https a
    /// batch for one curl process (FetchCurlBatch.swift). Shrinking batches keep the
    /// workers' ends close together; never single files while two remain.
    static func workUnits(_ queue: [RemoteFile], workers: Int) -> [[RemoteFile]] {
        var units: [[RemoteFile]] = []
        var next = 0
        while next < queue.count {
            var taken = [queue[next]]
            next += 1
            if isHTTPS(taken[0]) {
                let batchSize = min(24, max(2, (queue.count - next + 1) / (workers * 2)))
                while taken.count < batchSize, next < queue.count, isHTTPS(queue[next]) {
                    taken.append(queue[next])
                    next += 1
                }
            }
            units.append(taken)
        }
        return units
    }

    static func isHTTPS(_ file: RemoteFile) -> Bool { file.url.scheme?.lowercased() == "https" && file.sizeIsExact }

    /// Fills the partial files of the https `files` not yet cached through one
    /// curl process (connection reuse); each then goes the normal way, which
    /// verifies a complete partial and resumes or retries an incomplete one.
    /// Blobs another thread or process is fetching are left alone.
    private func prefetchHTTPS(_ files: [RemoteFile]) throws {
        var items: [CurlBatch.Item] = []
        var locks: [Int32] = []
        defer { for fd in locks { cache.unlock(fd) } }
        // A mirror that failed outright is left to the per-file path, which goes to the alternatives.
        let down = lock.withLock { downOrigins }
        for file in files where !cache.contains(file.checksum, size: file.size) && !(Fetcher.origin(of: file.url).map(down.contains) ?? false) {
            guard let fd = cache.tryLock(file.checksum) else { continue }
            locks.append(fd)
            items.append(CurlBatch.Item(url: file.url, checksum: file.checksum, size: file.size, partial: cache.partialPath(for: file.checksum).path))
        }
        guard items.count > 1 else { return } // one file: the per-file path is the same work
        let outcomes = try CurlBatch(settings: settings).run(items) { [self] n in
            lock.withLock {
                _stats.downloadedBytes += Int64(n)
                batch.networkBytes += Int64(n)
                batch.lastByte = Date()
                batch.bytesDone += Int64(n)
            }
            report(force: false)
        }
        if let index = outcomes.firstIndex(of: .tooLarge) {
            throw FetchError.tooLarge(url: items[index].url.absoluteString, limit: items[index].size)
        }
    }

    /// Small files such as repository metadata, returned in memory.
    /// With `expected`, the file goes through the cache like a package (a hit
    /// downloads nothing; a mismatch is fatal). Without (repomd.xml has no
    /// checksum of its own) it is fetched every time and counted in
    /// `stats.uncheckedBytes`. Either way at most `sizeLimit` bytes are accepted.
    public func fetchSmall(url: URL, expected: Checksum?, sizeLimit: Int64 = 8 << 20) throws -> Data {
        let client = HTTPClient(settings: settings)
        client.onConnect = { [self] in lock.withLock { _stats.connections += 1 } }
        defer { client.closeConnection() }
        if let expected {
            let path = try obtain(url: url, checksum: expected, size: nil, limit: sizeLimit, client: client)
            do { return try Data(contentsOf: path) } catch { throw FetchError.io(path: path.path, reason: error.localizedDescription) }
        }
        let sink = MemorySink()
        try withRetries(url: url) { attempt in
            sink.reset()
            _ = try transfer(url: url, resumeFrom: 0, limit: sizeLimit, expectedSize: nil, client: client, sink: sink, counted: \.uncheckedBytes)
        }
        return sink.data
    }

    // MARK: - Mirror failover

    /// The cached path of `file`, from its URL or, when that mirror cannot serve
    /// it (`isMirrorFailure`), from each alternative in turn; mirrors that failed
    /// outright earlier go last. Says (`options.note`) which alternative served
    /// it and why. With every mirror failing: the only error, or all of them.
    private func obtainFromAnyMirror(_ file: RemoteFile, client: HTTPClient) throws -> URL {
        // A cache hit comes from no mirror: nothing to fail over or to note.
        if cache.contains(file.checksum, size: file.sizeIsExact ? file.size : nil) { return hit(file.checksum) }
        let candidates = mirrorOrder([file.url] + file.alternatives)
        var failures: [(url: URL, error: FetchError)] = []
        for url in candidates {
            do {
                let path = try obtain(url: url, checksum: file.checksum, size: file.sizeIsExact ? file.size : nil, limit: file.size, client: client)
                if url != file.url {
                    lock.withLock { _stats.failovers += 1 }
                    options.note?(Fetcher.failoverNote(file: file, servedBy: url, failures: failures))
                }
                return path
            } catch let error as FetchError where Fetcher.isMirrorFailure(error) && candidates.count > 1 {
                if Fetcher.isMirrorDown(error), let origin = Fetcher.origin(of: url) { lock.withLock { _ = downOrigins.insert(origin) } }
                failures.append((url, error))
            }
        }
        throw failures.count == 1
            ? failures[0].error : FetchError.noMirror(file: file.url.lastPathComponent, failures: failures.map { "\($0.url.absoluteString): \($0.error)" })
    }

    /// `urls` with those on a mirror known to be down moved to the end (kept in order otherwise).
    private func mirrorOrder(_ urls: [URL]) -> [URL] {
        guard urls.count > 1 else { return urls }
        let down = lock.withLock { downOrigins }
        let isDown = { (url: URL) in Fetcher.origin(of: url).map(down.contains) ?? false }
        return urls.filter { !isDown($0) } + urls.filter(isDown)
    }

    /// `scheme://host:port` of a URL (`file` for file: URLs): what a mirror is, for the down list.
    static func origin(of url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased() else { return nil }
        if scheme == "file" { return "file" }
        return "\(scheme)://\(url.host ?? ""):\(url.port.map(String.init) ?? "")"
    }

    /// An error that says this mirror cannot serve this file (DNS, connect,
    /// timeout, 5xx, 404, a short, long or corrupt body, a refused redirect):
    /// another mirror may. Not our own cache's trouble or a missing tool.
    static func isMirrorFailure(_ error: FetchError) -> Bool {
        switch error {
        case .io, .tool, .badChecksum, .noMirror: return false
        default: return true
        }
    }

    /// A failure that says the whole mirror is unwell, not one file missing.
    static func isMirrorDown(_ error: FetchError) -> Bool {
        switch error {
        case .connection, .tooSlow, .protocolError: return true
        case let .httpStatus(_, status, _): return status >= 500
        default: return false
        }
    }

    /// `mirror failover: 'bash.rpm' from http://b/6.9/os/x86_64/Packages/bash.rpm (http://a/...: not found (404))`.
    /// With no failure of its own, the first URL was skipped: its mirror had failed before.
    static func failoverNote(file: RemoteFile, servedBy url: URL, failures: [(url: URL, error: FetchError)]) -> String {
        "mirror failover: '\(file.url.lastPathComponent)' from the alternative \(url.absoluteString) ("
            + (failures.isEmpty
                ? "\(file.url.absoluteString) skipped: its mirror failed earlier"
                : failures.map { "\($0.url.absoluteString) failed: \($0.error)" }.joined(separator: "; ")) + ")"
    }

    // MARK: - One file

    /// The cached path of a blob, downloading it under its lock when absent.
    private func obtain(url: URL, checksum: Checksum, size: Int64?, limit: Int64, client: HTTPClient) throws -> URL {
        if cache.contains(checksum, size: size) { return hit(checksum) }
        return try cache.withLock(checksum) {
            // Another thread, process or batch job may have fetched it while we waited.
            if cache.contains(checksum, size: size) { return hit(checksum) }
            return try download(url: url, checksum: checksum, size: size, limit: limit, client: client)
        }
    }

    private func hit(_ checksum: Checksum) -> URL {
        let path = cache.path(for: checksum)
        var st = stat()
        let size = stat(path.path, &st) == 0 ? Int64(st.st_size) : 0
        lock.withLock {
            _stats.cachedBytes += size
            _stats.cachedFiles += 1
            batch.bytesDone += size
            batch.filesDone += 1
        }
        report(force: false)
        return path
    }

    /// Downloads into the partial file (resuming it), verifies, admits. Caller holds the blob lock.
    private func download(url: URL, checksum: Checksum, size: Int64?, limit: Int64, client: HTTPClient) throws -> URL {
        let partial = cache.partialPath(for: checksum)
        var freshRetryDone = false
        while true {
            let sink = try FileSink(path: partial.path, kind: checksum.kind, limit: size ?? limit)
            var resumed = false
            do {
                try withRetries(url: url) { _ in
                    try sink.prepare()
                    if sink.offset > 0 && (size == nil || sink.offset < size!) {
                        resumed = true
                        lock.withLock { _stats.resumes += 1 }
                    }
                    if let size, sink.offset == size { return } // complete from an earlier run; verify below
                    _ = try transfer(
                        url: url, resumeFrom: sink.offset, limit: size ?? limit, expectedSize: size, client: client, sink: sink, counted: \.downloadedBytes)
                }
            } catch {
                sink.close()
                // Content errors make the partial file worthless; transport errors keep it for a resume.
                if let fetchError = error as? FetchError, !fetchError.isRetryable { sink.discard() } else if sink.offset == 0 { sink.discard() }
                throw error
            }
            let actual = try sink.finish()
            if let size, sink.offset != size {
                sink.discard()
                throw FetchError.sizeMismatch(url: url.absoluteString, expected: size, actual: sink.offset)
            }
            guard actual == checksum else {
                sink.discard()
                if resumed && !freshRetryDone {
                    // The old part may have been the bad one: once more from scratch.
                    freshRetryDone = true
                    continue
                }
                throw FetchError.checksumMismatch(
                    url: url.absoluteString, file: url.lastPathComponent, expected: checksum.description, actual: actual.description)
            }
            let path = try cache.admit(partial, as: checksum)
            lock.withLock {
                _stats.downloadedFiles += 1
                batch.filesDone += 1
            }
            report(force: false)
            return path
        }
    }

    /// Runs `body` until it succeeds, retrying retryable `FetchError`s with
    /// exponential backoff; the final error carries the attempt count.
    private func withRetries(url: URL, _ body: (Int) throws -> Void) throws {
        var attempt = 1
        while true {
            do {
                try body(attempt)
                return
            } catch let error as FetchError where error.isRetryable {
                guard attempt <= retries else { throw error.withAttempts(attempt) }
                lock.withLock { _stats.retries += 1 }
                let base = min(options.maxBackoff, options.backoff * pow(2, Double(attempt - 1)))
                try sleepInterruptibly(base * Double.random(in: 0.75...1.25))
                attempt += 1
            }
        }
    }

    private func sleepInterruptibly(_ seconds: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            try Interruption.shared.check()
            usleep(UInt32(max(1000, min(50_000, deadline.timeIntervalSinceNow * 1e6))))
        }
    }

    /// One attempt: GET (following redirects) into `sink` from `resumeFrom`.
    /// Throws for any status but 200/206; resets the sink when the server restarts the body.
    private func transfer(
        url: URL, resumeFrom: Int64, limit: Int64, expectedSize: Int64?, client: HTTPClient, sink: Sink, counted: WritableKeyPath<FetchStats, Int64>
    ) throws -> ResponseHead {
        var current = url
        for _ in 0...5 {
            let want: (ResponseHead) throws -> BodySink? = { [self] head in
                guard head.status == 200 || head.status == 206 else { return nil }
                if head.status == 206 {
                    guard resumeFrom > 0, head.rangeStart == resumeFrom else {
                        throw FetchError.protocolError(
                            url: current.absoluteString, reason: "unexpected partial content starting at \(head.rangeStart.map(String.init) ?? "?")")
                    }
                    if let total = head.rangeTotal, let expectedSize, total != expectedSize {
                        throw FetchError.sizeMismatch(url: current.absoluteString, expected: expectedSize, actual: total)
                    }
                } else {
                    if resumeFrom > 0 { try sink.restart() } // no Range support: from the start
                    if let length = head.contentLength {
                        if let expectedSize, length != expectedSize {
                            throw FetchError.sizeMismatch(url: current.absoluteString, expected: expectedSize, actual: length)
                        }
                        if length > limit { throw FetchError.tooLarge(url: current.absoluteString, limit: limit) }
                    }
                }
                return { [self] bytes in
                    if Interruption.shared.isInterrupted { try Interruption.shared.check() }
                    guard sink.offset + Int64(bytes.count) <= limit else {
                        throw FetchError.tooLarge(url: current.absoluteString, limit: limit)
                    }
                    try sink.write(bytes)
                    lock.withLock {
                        _stats[keyPath: counted] += Int64(bytes.count)
                        batch.networkBytes += Int64(bytes.count)
                        batch.lastByte = Date()
                        batch.bytesDone += Int64(bytes.count)
                    }
                    report(force: false)
                }
            }
            let head: ResponseHead
            switch current.scheme?.lowercased() {
            case "http": head = try client.get(current, rangeStart: resumeFrom, want: want)
            case "https": head = try CurlTransport(settings: settings).get(current, rangeStart: resumeFrom, limit: limit, want: want)
            case "file": head = try FileTransport().get(current, rangeStart: resumeFrom, want: want)
            default: throw FetchError.unsupportedURL(url: current.absoluteString)
            }
            switch head.status {
            case 200, 206:
                if let expectedSize, sink.offset < expectedSize {
                    throw FetchError.connection(
                        url: current.absoluteString, reason: "the transfer ended after \(sink.offset) of \(expectedSize) bytes", attempts: 1)
                }
                return head
            case 301, 302, 303, 307, 308:
                guard let location = head.headers["location"], let next = URL(string: location, relativeTo: current)?.absoluteURL else {
                    throw FetchError.protocolError(url: current.absoluteString, reason: "redirect without a usable Location")
                }
                guard RedirectPolicy.allows(from: current, to: next) else {
                    throw FetchError.redirectRefused(from: current.absoluteString, to: next.absoluteString)
                }
                current = next
            case 404, 410:
                throw FetchError.notFound(url: current.absoluteString)
            case 416:
                // Our partial file is longer than the server's file: start over.
                try sink.restart()
                throw FetchError.connection(url: current.absoluteString, reason: "the server refused to resume (416); restarting", attempts: 1)
            default:
                throw FetchError.httpStatus(url: current.absoluteString, status: head.status, attempts: 1)
            }
        }
        throw FetchError.redirects(url: url.absoluteString, count: 6)
    }

    /// A progress report saying the transfer stalled (no byte for 5 s or more).
    private func reportStall() {
        guard let progress else { return }
        let snapshot: FetchProgress? = lock.withLock {
            let quiet = Int(Date().timeIntervalSince(batch.lastByte))
            guard quiet >= 5 else { return nil }
            let elapsed = max(0.001, Date().timeIntervalSince(batch.start))
            var made = FetchProgress(
                bytesDone: batch.bytesDone, bytesTotal: batch.bytesTotal, filesDone: batch.filesDone, filesTotal: batch.filesTotal,
                bytesPerSecond: Double(batch.networkBytes) / elapsed)
            made.stalledSeconds = quiet
            return made
        }
        if let snapshot { progress(snapshot) }
    }

    private func report(force: Bool) {
        guard let progress else { return }
        let snapshot: FetchProgress? = lock.withLock {
            let now = Date()
            guard force || now.timeIntervalSince(lastProgress) >= options.progressInterval else { return nil }
            lastProgress = now
            let elapsed = max(0.001, now.timeIntervalSince(batch.start))
            let made = FetchProgress(
                bytesDone: batch.bytesDone, bytesTotal: batch.bytesTotal, filesDone: batch.filesDone, filesTotal: batch.filesTotal,
                bytesPerSecond: Double(batch.networkBytes) / elapsed)
            // The closing report repeats nothing already said (a caller may print a newline when done).
            if force, let last = lastSent, last.filesDone == made.filesDone, last.bytesDone == made.bytesDone { return nil }
            lastSent = made
            return made
        }
        if let snapshot { progress(snapshot) }
    }
}

/// The work list shared by `fetch`'s worker threads (guarded by `lock`).
// Unchecked: every field is read and written under `lock`.
extension FetchError {
    /// The same error, saying how many attempts were made.
    func withAttempts(_ attempts: Int) -> FetchError {
        switch self {
        case let .connection(url, reason, _): return .connection(url: url, reason: reason, attempts: attempts)
        case let .httpStatus(url, status, _): return .httpStatus(url: url, status: status, attempts: attempts)
        default: return self
        }
    }
}

// MARK: - Sinks

/// Where a body goes: a resumable file or memory.
class Sink {
    var offset: Int64 { 0 }
    func write(_ bytes: UnsafeRawBufferPointer) throws {}
    /// Drops what was written (the server restarted the body).
    func restart() throws {}
}

final class MemorySink: Sink {
    private(set) var data = Data()
    override var offset: Int64 { Int64(data.count) }
    override func write(_ bytes: UnsafeRawBufferPointer) throws { data.append(contentsOf: bytes) }
    override func restart() throws { data = Data() }
    func reset() { data = Data() }
}

/// The partial file of one blob. `prepare()` (re)opens it before each
/// attempt, continuing what an earlier attempt or run left; `finish()` hashes
/// the complete file with the host tool.
final class FileSink: Sink {
    let path: String
    let kind: Checksum.Kind
    let limit: Int64
    private var fd: Int32 = -1
    private var written: Int64 = 0
    override var offset: Int64 { written }

    init(path: String, kind: Checksum.Kind, limit: Int64) throws {
        self.path = path
        self.kind = kind
        self.limit = limit
    }

    deinit { close() }

    func prepare() throws {
        close()
        written = 0
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FetchError.io(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        fstat(fd, &st)
        if Int64(st.st_size) > limit {
            ftruncate(fd, 0)
            return
        }
        written = Int64(st.st_size)
        lseek(fd, off_t(written), SEEK_SET)
    }

    override func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FetchError.io(path: path, reason: "cannot write the download: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        written += Int64(bytes.count)
    }

    override func restart() throws {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw FetchError.io(path: path, reason: String(cString: strerror(errno)))
        }
        written = 0
    }

    /// The checksum of everything written (closes the file).
    func finish() throws -> Checksum {
        close()
        return try Checksum.of(file: path, kind: kind)
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    func discard() {
        close()
        unlink(path)
    }
}
