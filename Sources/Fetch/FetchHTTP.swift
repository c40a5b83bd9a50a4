import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

// The transports behind `Fetcher`: plain HTTP/1.1 over our own sockets,
// https through the host's curl, and file:// mirrors.
//
// Why our own HTTP/1.1 client for http:// (the vault mirror yum inside the
// target uses, archive.kernel.org, is plain http, and so is the test vault):
// - URLSession (FoundationNetworking, libcurl underneath) was tried first.
//   On this toolchain `URLSessionTask.cancel()` does not stop a fast body:
//   against a never-ending body it kept delivering data for 9 s and 1.2 GB
//   after cancel, so the per-file size limit could not be enforced promptly.
// - The curl CLI with `--parallel` reuses connections, but curl 7.88's
//   `--max-filesize` does not stop a body without Content-Length (checked:
//   it read 4 GiB of an endless body and exited 0), per-file status has to be
//   scraped from `--write-out`, and a kill to enforce a limit takes every
//   other transfer of the batch down with it.
// - A small blocking client, one persistent connection per worker thread,
//   gives exact control: the limit is checked on every read, a stale
//   keep-alive connection is retried at once, SIGINT is noticed within
//   200 ms, and Range resume is a header.
// https:// goes through one curl process per file (body on a pipe we read,
// so the limit is enforced by killing that one process): no TLS code of ours.

/// What a server said before the body.
struct ResponseHead {
    var status: Int
    /// Header names lower-cased; repeated headers keep the last value.
    var headers: [String: String]
    var contentLength: Int64? { headers["content-length"].flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } }
    /// The first byte offset of a 206 answer (`Content-Range: bytes START-END/TOTAL`).
    var rangeStart: Int64? {
        guard let value = headers["content-range"], value.hasPrefix("bytes ") else { return nil }
        return Int64(value.dropFirst(6).prefix { $0.isNumber })
    }
    /// TOTAL of `Content-Range`, when known.
    var rangeTotal: Int64? {
        guard let value = headers["content-range"], let slash = value.lastIndex(of: "/") else { return nil }
        return Int64(value[value.index(after: slash)...])
    }
}

/// Receives a body chunk by chunk; throwing aborts the transfer (the connection is dropped).
typealias BodySink = (UnsafeRawBufferPointer) throws -> Void

/// Timeouts and identity for every transport.
struct TransportSettings: Sendable {
    var connectTimeout: TimeInterval
    var idleTimeout: TimeInterval
    var userAgent: String
    var environment: [String: String]
    /// A response slower than this many bytes per second over `lowSpeedTime` fails.
    var lowSpeedLimit: Int = 1000
    var lowSpeedTime: TimeInterval = 30
}

/// curl's `--speed-limit`/`--speed-time` for our own client: a response that
/// delivers fewer than `limit` bytes per second over a whole `window` fails,
/// so a server trickling a byte now and then (which never trips the idle
/// timeout) cannot hold a transfer forever. Pure: the clock is passed in.
struct RateWatch: Equatable {
    let limit: Int
    let window: TimeInterval
    let started: TimeInterval
    private(set) var windowStart: TimeInterval
    private(set) var windowBytes: Int64 = 0

    init(limit: Int, window: TimeInterval, now: TimeInterval) {
        self.limit = limit
        self.window = window
        self.started = now
        self.windowStart = now
    }

    /// Counts `bytes` received at `now`; the reason when the window ended too slow.
    mutating func record(_ bytes: Int, now: TimeInterval) -> String? {
        windowBytes += Int64(bytes)
        let span = now - windowStart
        guard limit > 0, window > 0, span >= window else { return nil }
        if Double(windowBytes) < Double(limit) * span {
            return String(
                format: "slower than %d bytes/s for %.0f s (%lld bytes in the last %.1f s; gave up after %.1f s)",
                limit, window, windowBytes, span, now - started)
        }
        windowStart = now
        windowBytes = 0
        return nil
    }
}

/// Parses one header block (`HTTP/1.1 200 OK\r\nName: value\r\n...`), without the final blank line.
func parseResponseHead(_ text: String) -> ResponseHead? {
    let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
    guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/") else { return nil }
    let words = statusLine.split(separator: " ", maxSplits: 2)
    guard words.count >= 2, let status = Int(words[1]), (100...599).contains(status) else { return nil }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() where !line.isEmpty {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return ResponseHead(status: status, headers: headers)
}

/// One TCP connection, reused across requests to the same host (keep-alive).
final class HTTPConnection {
    let key: String
    private(set) var fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    private var start = 0
    private var end = 0
    let idleTimeout: TimeInterval
    let settings: TransportSettings
    /// Requests served so far on this connection.
    var served = 0
    /// The speed of the current request (`beginRequest`).
    private var rate: RateWatch

    private init(key: String, fd: Int32, settings: TransportSettings) {
        self.key = key
        self.fd = fd
        self.idleTimeout = settings.idleTimeout
        self.settings = settings
        self.rate = RateWatch(limit: settings.lowSpeedLimit, window: settings.lowSpeedTime, now: Date().timeIntervalSinceReferenceDate)
    }

    /// Starts the speed and elapsed-time accounting of one request.
    func beginRequest() {
        rate = RateWatch(limit: settings.lowSpeedLimit, window: settings.lowSpeedTime, now: Date().timeIntervalSinceReferenceDate)
    }

    private var elapsed: String { String(format: "%.1f s", Date().timeIntervalSinceReferenceDate - rate.started) }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// Connects (non-blocking connect polled in 200 ms slices, so SIGINT is noticed).
    static func open(host: String, port: Int, key: String, settings: TransportSettings, url: String) throws -> HTTPConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw FetchError.connection(url: url, reason: "cannot resolve host '\(host)': \(String(cString: gai_strerror(rc)))", attempts: 1)
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let ai = node {
            node = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 || errno == EINPROGRESS {
                do {
                    if try waitFor(fd: fd, events: Int16(POLLOUT), timeout: settings.connectTimeout) {
                        var err: Int32 = 0
                        var len = socklen_t(MemoryLayout<Int32>.size)
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                        if err == 0 { return HTTPConnection(key: key, fd: fd, settings: settings) }
                        lastError = "connection to \(host) port \(port) failed: \(String(cString: strerror(err)))"
                    } else {
                        lastError = "connection to \(host) port \(port) timed out after \(Int(settings.connectTimeout)) s"
                    }
                } catch {
                    Glibc.close(fd)
                    throw error
                }
            } else {
                lastError = "connection to \(host) port \(port) failed: \(String(cString: strerror(errno)))"
            }
            Glibc.close(fd)
        }
        throw FetchError.connection(url: url, reason: lastError, attempts: 1)
    }

    /// Polls in 200 ms slices up to `timeout`, checking for SIGINT; false on timeout.
    static func waitFor(fd: Int32, events: Int16, timeout: TimeInterval) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            try Interruption.shared.check()
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&pfd, 1, 200)
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return true } // let the read/write report the error
            if Date() >= deadline { return false }
        }
    }

    func send(_ data: [UInt8], url: String) throws {
        var offset = 0
        while offset < data.count {
            guard try HTTPConnection.waitFor(fd: fd, events: Int16(POLLOUT), timeout: idleTimeout) else {
                throw FetchError.connection(url: url, reason: "sending the request timed out", attempts: 1)
            }
            let n = data[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw FetchError.connection(url: url, reason: "sending the request failed: \(String(cString: strerror(errno)))", attempts: 1)
            }
            offset += n
        }
    }

    /// Reads more bytes into the buffer; returns false at EOF.
    private func fill(url: String) throws -> Bool {
        if start == end { start = 0; end = 0 }
        if end == buffer.count {
            if start > 0 {
                buffer.withUnsafeMutableBytes { p in
                    _ = memmove(p.baseAddress!, p.baseAddress! + start, end - start)
                }
                end -= start; start = 0
            } else {
                buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count))
            }
        }
        while true {
            // Never wait past the end of the speed window: a silent server fails on time too.
            let windowLeft = rate.window > 0 && rate.limit > 0 ? max(0.2, rate.windowStart + rate.window - Date().timeIntervalSinceReferenceDate) : idleTimeout
            guard try HTTPConnection.waitFor(fd: fd, events: Int16(POLLIN), timeout: min(idleTimeout, windowLeft)) else {
                if let slow = rate.record(0, now: Date().timeIntervalSinceReferenceDate) { throw FetchError.tooSlow(url: url, reason: slow) }
                if min(idleTimeout, windowLeft) < idleTimeout { continue }
                throw FetchError.connection(url: url, reason: "no data from the server for \(Int(idleTimeout)) s (after \(elapsed))", attempts: 1)
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + end, $0.count - end, 0) }
            if n > 0 {
                end += n
                if let slow = rate.record(n, now: Date().timeIntervalSinceReferenceDate) { throw FetchError.tooSlow(url: url, reason: slow) }
                return true
            }
            if n == 0 { return false }
            if errno == EAGAIN || errno == EINTR { continue }
            throw FetchError.connection(url: url, reason: "reading from the server failed: \(String(cString: strerror(errno)))", attempts: 1)
        }
    }

    /// Reads the header block. `nil` when the connection closed before a single byte (a stale keep-alive).
    func readHead(url: String) throws -> ResponseHead? {
        // Bytes after `start` already searched (relative: `fill` may move the buffer).
        var scanned = 0
        while true {
            // Look for CRLFCRLF in what we have.
            if end - start >= 4 {
                var i = start + max(0, scanned - 3)
                while i + 3 < end {
                    if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
                        let text = String(decoding: buffer[start..<i], as: UTF8.self)
                        start = i + 4
                        guard let head = parseResponseHead(text) else {
                            throw FetchError.protocolError(url: url, reason: "bad status line or headers")
                        }
                        return head
                    }
                    i += 1
                }
                scanned = end - start
            }
            if end - start > 64 * 1024 { throw FetchError.protocolError(url: url, reason: "headers longer than 64 KiB") }
            let hadBytes = end > start
            guard try fill(url: url) else {
                if !hadBytes { return nil }
                throw FetchError.connection(url: url, reason: "connection closed in the middle of the response headers", attempts: 1)
            }
        }
    }

    /// Hands up to `limit` buffered-or-read bytes to `sink`; returns the count (0 at EOF).
    private func pass(upTo limit: Int64, url: String, sink: BodySink?) throws -> Int {
        if start == end { guard try fill(url: url) else { return 0 } }
        let n = min(Int64(end - start), limit)
        let count = Int(n)
        if let sink {
            try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)])) }
        }
        start += count
        return count
    }

    private func readLine(url: String) throws -> String {
        while true {
            if let i = buffer[start..<end].firstIndex(of: 10) {
                let line = String(decoding: buffer[start..<i], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                start = i + 1
                return line
            }
            if end - start > 8192 { throw FetchError.protocolError(url: url, reason: "chunk header too long") }
            guard try fill(url: url) else {
                throw FetchError.connection(url: url, reason: "connection closed in the middle of a chunked body", attempts: 1)
            }
        }
    }

    /// Reads the body as framed by `head` into `sink` (nil = discard).
    /// Returns whether the connection can carry another request.
    func readBody(head: ResponseHead, url: String, sink: BodySink?) throws -> Bool {
        let connectionClose = head.headers["connection"]?.lowercased().contains("close") ?? false
        if head.status == 204 || head.status == 304 || (100..<200).contains(head.status) { return !connectionClose }
        if head.headers["transfer-encoding"]?.lowercased().contains("chunked") ?? false {
            while true {
                let sizeLine = try readLine(url: url)
                guard let size = Int64(sizeLine.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "", radix: 16), size >= 0 else {
                    throw FetchError.protocolError(url: url, reason: "bad chunk size '\(sizeLine.prefix(20))'")
                }
                if size == 0 {
                    while try !readLine(url: url).isEmpty {} // trailers
                    return !connectionClose
                }
                var left = size
                while left > 0 {
                    let n = try pass(upTo: left, url: url, sink: sink)
                    if n == 0 { throw FetchError.connection(url: url, reason: "connection closed in the middle of a chunked body", attempts: 1) }
                    left -= Int64(n)
                }
                _ = try readLine(url: url)
            }
        }
        if let length = head.contentLength {
            var left = length
            while left > 0 {
                let n = try pass(upTo: left, url: url, sink: sink)
                if n == 0 {
                    throw FetchError.connection(url: url, reason: "connection closed after \(length - left) of \(length) bytes", attempts: 1)
                }
                left -= Int64(n)
            }
            return !connectionClose
        }
        // No length: the body ends when the server closes the connection.
        while try pass(upTo: Int64.max, url: url, sink: sink) > 0 {}
        return false
    }
}

/// The HTTP proxy for `host`, from http_proxy/HTTP_PROXY unless no_proxy matches; never for loopback.
func httpProxy(for host: String, environment: [String: String]) -> (host: String, port: Int)? {
    guard let value = environment["http_proxy"] ?? environment["HTTP_PROXY"], !value.isEmpty,
        let proxy = URL(string: value.contains("://") ? value : "http://" + value), let proxyHost = proxy.host
    else { return nil }
    let lower = host.lowercased()
    if lower == "localhost" || lower.hasPrefix("127.") || lower == "::1" { return nil }
    let noProxy = (environment["no_proxy"] ?? environment["NO_PROXY"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    for entry in noProxy where !entry.isEmpty {
        if entry == "*" { return nil }
        let suffix = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
        if lower == suffix || lower.hasSuffix("." + suffix) { return nil }
    }
    return (proxyHost, proxy.port ?? 80)
}

/// A worker's persistent connection (one per worker thread, reused across files).
final class HTTPClient {
    private var connection: HTTPConnection?
    let settings: TransportSettings
    /// Called when a new TCP connection is opened (for the stats).
    var onConnect: () -> Void = {}

    init(settings: TransportSettings) { self.settings = settings }

    func closeConnection() { connection?.close(); connection = nil }

    /// GETs `url` (from byte `rangeStart` when > 0). `want` sees the head and
    /// returns a sink for the body, or nil to discard it. Returns the head.
    func get(_ url: URL, rangeStart: Int64, want: (ResponseHead) throws -> BodySink?) throws -> ResponseHead {
        guard let host = url.host, !host.isEmpty else { throw FetchError.unsupportedURL(url: url.absoluteString) }
        let port = url.port ?? 80
        let proxy = httpProxy(for: host, environment: settings.environment)
        let target: String
        if proxy != nil {
            target = url.absoluteString
        } else {
            var path = url.path.isEmpty ? "/" : (url.absoluteURL.path)
            // Keep the original percent-encoding of the path.
            if let components = URLComponents(url: url, resolvingAgainstBaseURL: false) {
                path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
                if let query = components.percentEncodedQuery { path += "?" + query }
            }
            target = path
        }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        var request =
            "GET \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: \(settings.userAgent)\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n"
        if rangeStart > 0 { request += "Range: bytes=\(rangeStart)-\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        let key = proxy.map { "\($0.host):\($0.port)" } ?? "\(host):\(port)"

        // A reused keep-alive connection may have been closed by the server
        // meanwhile: if it fails before a single response byte, retry once on
        // a fresh one (not counted as a retry).
        for fresh in [false, true] {
            if fresh || connection?.key != key || connection?.fd ?? -1 < 0 {
                closeConnection()
                connection = try HTTPConnection.open(
                    host: proxy?.host ?? host, port: proxy?.port ?? port, key: key, settings: settings, url: url.absoluteString)
                onConnect()
            }
            let conn = connection!
            conn.beginRequest()
            let reused = conn.served > 0
            let head: ResponseHead?
            do {
                try conn.send(bytes, url: url.absoluteString)
                head = try conn.readHead(url: url.absoluteString)
            } catch let error as FetchError {
                closeConnection()
                if reused && !fresh { continue }
                throw error
            }
            guard var head else {
                closeConnection()
                if reused && !fresh { continue }
                throw FetchError.connection(url: url.absoluteString, reason: "the server closed the connection without answering", attempts: 1)
            }
            while (100..<200).contains(head.status) {
                guard let next = try conn.readHead(url: url.absoluteString) else {
                    closeConnection()
                    throw FetchError.connection(url: url.absoluteString, reason: "the server closed the connection without answering", attempts: 1)
                }
                head = next
            }
            conn.served += 1
            do {
                let sink = try want(head)
                if sink == nil, let length = head.contentLength, length > 64 * 1024 {
                    // Not worth draining a large unwanted body: drop the connection.
                    closeConnection()
                    return head
                }
                let keep = try conn.readBody(head: head, url: url.absoluteString, sink: sink)
                if !keep { closeConnection() }
            } catch {
                closeConnection()
                throw error
            }
            return head
        }
        throw FetchError.connection(url: url.absoluteString, reason: "the server closed the connection without answering", attempts: 1)
    }
}
