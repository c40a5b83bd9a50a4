import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// https:// with connection reuse and no TLS code of ours: one curl process
/// fetches a batch of files one after another over one kept-alive connection
/// (curl reuses it across the `next` sections of its config), writing every
/// response (`--include`) to one pipe, each followed by a `--write-out` line
/// carrying a random marker, the status and curl's exit code for that file.
///
/// A batch only PREFETCHES into the blobs' resumable partial files, under
/// their locks; then each file goes through `Fetcher`'s normal path, which
/// finds the partial complete and checks size and checksum before admitting
/// it, or resumes and retries what the batch did not finish (a failed
/// transfer, an error status, a killed curl). So per-file status, retries,
/// resume and verification stay in one place. The size limit is checked on
/// every block: a body over it makes us kill curl at once (the rest of the
/// batch falls back to the per-file path), and the partial is discarded.
/// curl is registered with `Interruption` (through `Spawner`) and our reads
/// poll with a short timeout, so ^C stops a batch as fast as one file.
struct CurlBatch {
    struct Item {
        let url: URL
        let checksum: Checksum
        /// Exact size, and so the limit.
        let size: Int64
        /// The partial file (its lock is held by the caller).
        let partial: String
    }

    let settings: TransportSettings
    let marker: [UInt8]

    init(settings: TransportSettings) {
        self.settings = settings
        let nonce = (0..<4).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 16) }.joined()
        marker = Array("\n--centos6-ami-\(nonce) ".utf8)
    }

    /// curl's config (read from stdin): one section per file, `next` between them.
    func config(_ items: [Item], offsets: [Int64]) -> String {
        func quoted(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let markerText = String(decoding: marker.dropFirst(), as: UTF8.self)
        var sections: [String] = []
        for (item, offset) in zip(items, offsets) {
            var lines = [
                "silent", "show-error", "include", "location", "max-redirs = 5",
                // Redirects as RedirectPolicy.swift allows: never a scheme change but http→https.
                "proto = \"=https,http\"", "proto-redir = \"\(RedirectPolicy.curlProtoRedir(from: item.url.scheme ?? "https"))\"",
                "connect-timeout = \(Int(settings.connectTimeout.rounded(.up)))",
                // The same low-speed rule as the per-file curl (FetchCurl.swift) and our http client.
                "speed-limit = \(max(1, settings.lowSpeedLimit))",
                "speed-time = \(Int(min(settings.idleTimeout, settings.lowSpeedTime > 0 ? settings.lowSpeedTime : settings.idleTimeout).rounded(.up)))",
                "user-agent = \(quoted(settings.userAgent))",
                "output = \"-\"",
                "write-out = \(quoted("\\n" + markerText + "%{http_code} %{exitcode}\\n"))",
            ]
            if offset > 0 { lines.append("range = \"\(offset)-\"") }
            lines.append("url = \(quoted(item.url.absoluteString))")
            sections.append(lines.joined(separator: "\n"))
        }
        return sections.joined(separator: "\nnext\n") + "\n"
    }

    /// What the batch did for one file.
    enum Outcome: Equatable {
        /// The body reached the partial file and curl reported success (the caller still verifies).
        case fetched
        /// Left to the per-file path (error status, transfer failure, not reached).
        case notDone
        /// Over its size: the partial was discarded.
        case tooLarge
    }

    /// Fetches `items` into their partial files. `counted` is told every body block's size.
    func run(_ items: [Item], counted: (Int) -> Void) throws -> [Outcome] {
        var outcomes = [Outcome](repeating: .notDone, count: items.count)
        let offsets = items.map { item -> Int64 in
            var st = stat()
            guard stat(item.partial, &st) == 0 else { return 0 }
            return Int64(st.st_size) < item.size ? Int64(st.st_size) : 0
        }
        // The config on stdin, written by the runner while we read.
        let curl: RunningCommand
        do {
            curl = try ProcessRunner(log: nil, environment: settings.environment)
                .start(Command("curl", ["--config", "-"], standardInput: Data(config(items, offsets: offsets).utf8)), output: .pipe)
        } catch let error as SpawnError {
            throw FetchError.tool(name: "curl", reason: "\(error)")
        }
        let fd = curl.standardOutput
        defer {
            curl.signal(SIGKILL)
            close(fd)
            curl.finish()
        }

        var index = 0
        var pending: [UInt8] = []
        var inBody = false
        var partialFD: Int32 = -1
        var written: Int64 = 0
        var bodyOK = false
        func closePartial() { if partialFD >= 0 { close(partialFD); partialFD = -1 } }
        defer { closePartial() }
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)

        /// Opens the partial for a final head; nil body target means "discard".
        func startBody(_ head: ResponseHead) {
            let item = items[index], offset = offsets[index]
            bodyOK = false
            guard head.status == 200 || head.status == 206 else { return }
            if head.status == 206 { guard offset > 0, head.rangeStart == offset else { return } }
            if let length = head.contentLength, length + (head.status == 206 ? offset : 0) != item.size { return }
            partialFD = open(item.partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            guard partialFD >= 0 else { return }
            if head.status == 200 { ftruncate(partialFD, 0); written = 0 } else { written = offset }
            lseek(partialFD, off_t(written), SEEK_SET)
            bodyOK = true
        }

        /// Body bytes of the current file. Returns false when it went over its size.
        func body(_ bytes: ArraySlice<UInt8>) -> Bool {
            guard bodyOK, !bytes.isEmpty else { return true }
            let item = items[index]
            if written + Int64(bytes.count) > item.size { return false }
            let ok = bytes.withUnsafeBytes { raw -> Bool in
                var done = 0
                while done < raw.count {
                    let n = write(partialFD, raw.baseAddress! + done, raw.count - done)
                    if n < 0 { if errno == EINTR { continue }; return false }
                    done += n
                }
                return true
            }
            if !ok { bodyOK = false; return true }
            written += Int64(bytes.count)
            counted(bytes.count)
            return true
        }

        func markerIndex(_ bytes: [UInt8]) -> Int? {
            guard bytes.count >= marker.count else { return nil }
            var i = 0
            while i <= bytes.count - marker.count {
                if bytes[i] == marker[0] && Array(bytes[i..<(i + marker.count)]) == marker { return i }
                i += 1
            }
            return nil
        }

        while index < items.count {
            // Parse what we have.
            var progressed = true
            while progressed && index < items.count {
                progressed = false
                if !inBody {
                    // A transfer that never got a response: only the marker line.
                    if let m = markerIndex(pending), m == 0 || findBlank(pending).map({ m < $0 }) == true {
                        guard let end = pending[(m + marker.count)...].firstIndex(of: 10) else { break }
                        pending.removeSubrange(0...end)
                        index += 1
                        progressed = true
                        continue
                    }
                    guard let blank = findBlank(pending) else { break }
                    guard let head = parseResponseHead(String(decoding: pending[0..<blank], as: UTF8.self)) else {
                        return outcomes // unreadable output: everything left goes the per-file way
                    }
                    pending.removeSubrange(0..<(blank + 4))
                    let followed = (300..<400).contains(head.status) && head.headers["location"] != nil
                    if (100..<200).contains(head.status) || followed { progressed = true; continue }
                    startBody(head)
                    inBody = true
                    progressed = true
                } else if let m = markerIndex(pending) {
                    guard body(pending[0..<m]) else {
                        closePartial(); unlink(items[index].partial); outcomes[index] = .tooLarge
                        return outcomes
                    }
                    guard let end = pending[(m + marker.count)...].firstIndex(of: 10) else {
                        pending.removeSubrange(0..<m)
                        break
                    }
                    let fields = String(decoding: pending[(m + marker.count)..<end], as: UTF8.self).split(separator: " ")
                    pending.removeSubrange(0...end)
                    closePartial()
                    let status = fields.first.flatMap { Int($0) } ?? 0
                    let exit = fields.count > 1 ? Int(fields[1]) ?? 1 : 1
                    if bodyOK && exit == 0 && (status == 200 || status == 206) && written == items[index].size {
                        outcomes[index] = .fetched
                    }
                    inBody = false
                    index += 1
                    progressed = true
                } else {
                    // Keep a tail that could be the start of the marker.
                    let keep = min(pending.count, marker.count - 1)
                    guard body(pending[0..<(pending.count - keep)]) else {
                        closePartial(); unlink(items[index].partial); outcomes[index] = .tooLarge
                        return outcomes
                    }
                    pending.removeSubrange(0..<(pending.count - keep))
                }
            }
            if index >= items.count { break }
            // Poll briefly so a signal is noticed within 200 ms; curl's own speed limit ends a stalled transfer.
            guard try HTTPConnection.waitFor(fd: fd, events: Int16(POLLIN), timeout: settings.idleTimeout + settings.connectTimeout + 5) else {
                return outcomes
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; break }
            if n == 0 { break }
            pending.append(contentsOf: chunk[0..<n])
            if !inBody && pending.count > 256 * 1024 && findBlank(pending) == nil { break }
        }
        return outcomes
    }

    private func findBlank(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}
