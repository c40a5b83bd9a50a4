import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// https:// through the host's curl, one process per file: curl does TLS and
/// redirects, we read `--include` output (every response head, then the body)
/// from a pipe, so the size limit, resume check and checksum stay ours and a
/// body over the limit is stopped by killing that one process. (No
/// `--max-filesize`: curl 7.88 applies it to error bodies too, hiding a 404,
/// and does not apply it to a body without Content-Length.)
struct CurlTransport {
    let settings: TransportSettings

    func arguments(_ url: URL, rangeStart: Int64, limit: Int64) -> [String] {
        var args = [
            "--silent", "--show-error", "--include", "--location", "--max-redirs", "5",
            // Redirects as RedirectPolicy.swift allows: never a scheme change but http→https.
            "--proto", "=https,http", "--proto-redir", RedirectPolicy.curlProtoRedir(from: url.scheme ?? "https"),
            "--connect-timeout", String(Int(settings.connectTimeout.rounded(.up))),
            // The same low-speed rule as our http client (RateWatch in FetchHTTP.swift).
            "--speed-limit", String(max(1, settings.lowSpeedLimit)),
            "--speed-time", String(Int(min(settings.idleTimeout, settings.lowSpeedTime > 0 ? settings.lowSpeedTime : settings.idleTimeout).rounded(.up))),
            "--user-agent", settings.userAgent,
            "--output", "-",
        ]
        if rangeStart > 0 { args += ["--range", "\(rangeStart)-"] }
        return args + ["--", url.absoluteString]
    }

    func get(_ url: URL, rangeStart: Int64, limit: Int64, want: (ResponseHead) throws -> BodySink?) throws -> ResponseHead {
        let curl: RunningCommand
        do {
            curl = try ProcessRunner(log: nil, environment: settings.environment)
                .start(Command("curl", arguments(url, rangeStart: rangeStart, limit: limit)), output: .pipe, error: .collect)
        } catch let error as SpawnError {
            throw FetchError.tool(name: "curl", reason: "\(error)")
        }
        let fd = curl.standardOutput
        var finished = false
        defer {
            if !finished { curl.signal(SIGKILL) }
            close(fd)
            curl.finish()
        }

        var pending = [UInt8]()
        // The last redirect curl followed: a refused one (exit 1) is named by it.
        var lastRedirect: (from: URL, to: URL)?
        var head: ResponseHead?
        var sink: BodySink?
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            guard try HTTPConnection.waitFor(fd: fd, events: Int16(POLLIN), timeout: settings.idleTimeout + settings.connectTimeout + 5) else {
                throw FetchError.connection(url: url.absoluteString, reason: "no data from curl", attempts: 1)
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; break }
            if n == 0 { break }
            if head != nil {
                if let sink { try chunk.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
                continue
            }
            pending.append(contentsOf: chunk[0..<n])
            // Parse head blocks until the final (non-1xx, non-followed-3xx) one.
            while head == nil, let blank = findBlankLine(pending) {
                guard let parsed = parseResponseHead(String(decoding: pending[0..<blank], as: UTF8.self)) else {
                    throw FetchError.protocolError(url: url.absoluteString, reason: "bad status line or headers")
                }
                pending.removeFirst(blank + 4)
                let followed = (300..<400).contains(parsed.status) && parsed.headers["location"] != nil
                if followed, let location = parsed.headers["location"] {
                    let from = lastRedirect?.to ?? url
                    lastRedirect = (from, URL(string: location, relativeTo: from)?.absoluteURL ?? from)
                }
                if (100..<200).contains(parsed.status) || followed { continue }
                head = parsed
                sink = try want(parsed)
                if let sink, !pending.isEmpty { try pending.withUnsafeBytes { try sink($0) } }
                pending = []
            }
            if head == nil && pending.count > 256 * 1024 {
                throw FetchError.protocolError(url: url.absoluteString, reason: "headers too long")
            }
        }
        let ended = curl.finish()
        let status = ended.status
        finished = true
        let message = ended.stderrText.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "curl: ", with: "")
        switch status {
        case 0:
            guard let head else { throw FetchError.protocolError(url: url.absoluteString, reason: "curl printed no response") }
            return head
        case 47:
            throw FetchError.redirects(url: url.absoluteString, count: 5)
        case 1, 3:
            if let lastRedirect, !RedirectPolicy.allows(from: lastRedirect.from, to: lastRedirect.to) {
                throw FetchError.redirectRefused(from: lastRedirect.from.absoluteString, to: lastRedirect.to.absoluteString)
            }
            throw FetchError.unsupportedURL(url: url.absoluteString)
        default:
            throw FetchError.connection(url: url.absoluteString, reason: message.isEmpty ? "curl exited with status \(status)" : message, attempts: 1)
        }
    }

    private func findBlankLine(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// file:// mirrors: read in 1 MiB blocks (so the limit and checksum apply as for http).
struct FileTransport {
    func get(_ url: URL, rangeStart: Int64, want: (ResponseHead) throws -> BodySink?) throws -> ResponseHead {
        let path = url.path
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return ResponseHead(status: 404, headers: [:])
        }
        let size = Int64(st.st_size)
        let start = rangeStart > 0 && rangeStart < size ? rangeStart : 0
        var headers = ["content-length": String(size - start)]
        if start > 0 { headers["content-range"] = "bytes \(start)-\(size - 1)/\(size)" }
        let head = ResponseHead(status: start > 0 ? 206 : 200, headers: headers)
        guard let sink = try want(head) else { return head }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FetchError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        if start > 0 { lseek(fd, off_t(start), SEEK_SET) }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            try Interruption.shared.check()
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw FetchError.io(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            try block.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return head
    }
}
