import Foundation

/// Accumulates a console as it grows and says when the ready pattern appears.
/// Pure: fed chunks of bytes, no files, no clocks (the runner supplies both).
/// The pattern may arrive split over several chunks, or after a long run of
/// escape sequences; it is matched on the raw bytes as the guest wrote them.
public struct ConsoleMatcher: Sendable {
    public let pattern: [UInt8]
    public private(set) var bytes: [UInt8] = []
    /// Byte offset of the first match, once seen.
    public private(set) var matchOffset: Int?
    private var searchFrom = 0

    public init(pattern: String) {
        self.pattern = Array(pattern.utf8)
    }

    public var matched: Bool { matchOffset != nil }
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Adds newly read bytes; returns true when the pattern has been seen (now or before).
    @discardableResult
    public mutating func feed<S: Sequence>(_ chunk: S) -> Bool where S.Element == UInt8 {
        bytes.append(contentsOf: chunk)
        guard matchOffset == nil, !pattern.isEmpty else { return matched || pattern.isEmpty }
        let last = bytes.count - pattern.count
        if last >= searchFrom {
            var i = searchFrom
            while i <= last {
                if bytes[i] == pattern[0] && Array(bytes[i..<(i + pattern.count)]) == pattern {
                    matchOffset = i
                    return true
                }
                i += 1
            }
        }
        // Next time, only a match that overlaps the end of what we have is new.
        searchFrom = max(0, bytes.count - pattern.count + 1)
        return false
    }
}

/// Reads a file that another process appends to (QEMU's serial log), from
/// where it left off. A file that does not exist yet reads as empty.
public final class GrowingFile {
    public let path: String
    private var offset: UInt64 = 0
    public init(path: String) { self.path = path }

    /// The bytes appended since the last call.
    public func readNew() -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { return Data() }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: offset)
            let data = try handle.readToEnd() ?? Data()
            offset += UInt64(data.count)
            return data
        } catch {
            return Data()
        }
    }
}

/// How a wait for the ready pattern ended.
public enum WatchOutcome: Equatable, Sendable {
    /// The pattern appeared after this many seconds.
    case ready(seconds: Double)
    /// The deadline passed first.
    case timedOut
    /// `stillRunning` said the producer stopped (QEMU exited) before the pattern.
    case producerExited
    /// A signal arrived (Host's `Interruption`).
    case interrupted
    /// A failure pattern appeared first (the guest cannot get further, e.g. no root device).
    case failed(pattern: String, seconds: Double)
}

/// Polls `file` until `matcher` sees its pattern, the timeout passes, the
/// producer stops, or `interrupted` turns true. The clock starts at `start`.
/// Reads once more after the producer stopped, so its last words count.
public func watchConsole(file: GrowingFile, matcher: inout ConsoleMatcher, start: Date = Date(), timeout: TimeInterval,
                         pollInterval: TimeInterval = 0.1,
                         failures: [String] = [],
                         stillRunning: () -> Bool = { true },
                         interrupted: () -> Bool = { false }) -> WatchOutcome {
    var failureMatchers = failures.map(ConsoleMatcher.init(pattern:))
    while true {
        let running = stillRunning()
        let chunk = file.readNew()
        if matcher.feed(chunk) {
            return .ready(seconds: Date().timeIntervalSince(start))
        }
        for i in failureMatchers.indices where failureMatchers[i].feed(chunk) {
            return .failed(pattern: failures[i], seconds: Date().timeIntervalSince(start))
        }
        if !running { return .producerExited }
        if interrupted() { return .interrupted }
        if Date().timeIntervalSince(start) >= timeout { return .timedOut }
        Thread.sleep(forTimeInterval: pollInterval)
    }
}
