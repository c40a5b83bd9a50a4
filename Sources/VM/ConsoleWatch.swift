import Foundation
#if canImport(Glibc)
    import Glibc
#endif

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
/// where it left off: by path (a file that does not exist yet reads as empty) or
/// through a descriptor of the file itself (whatever happens to the path).
public final class GrowingFile {
    public let path: String
    private let descriptor: Int32?
    private var offset: UInt64 = 0
    public init(path: String) { self.path = path; self.descriptor = nil }
    /// Reads through `descriptor` (not closed here).
    public init(descriptor: Int32) { self.path = "/proc/self/fd/\(descriptor)"; self.descriptor = descriptor }

    /// The bytes appended since the last call.
    public func readNew() -> Data {
        if let descriptor { return readNew(from: descriptor) }
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

    private func readNew(from descriptor: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return data }
            data.append(contentsOf: buffer[0..<n])
            offset += UInt64(n)
        }
    }
}

/// The console file of one boot: made new and empty by the run that reads it.
public enum ConsoleLog {
    /// The failure a boot reports when the console file was swapped under QEMU.
    public static let replacedPattern = "(the console file was replaced while the guest booted)"

    /// Replaces whatever is at `path` (an old log, a symlink) with a new empty file
    /// (0644) and returns its descriptor. Refuses, saying why, when the old one cannot
    /// go (an immutable file, a directory) or the new one cannot be made.
    public static func create(_ path: String) throws -> Int32 {
        var info = stat()
        if lstat(path, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR {
                throw VMError.console(path: path, reason: "it is a directory; name a file with --console")
            }
            if unlink(path) != 0 {
                let reason = String(cString: strerror(errno))
                throw VMError.console(
                    path: path,
                    reason:
                        "an old console log is there and cannot be replaced (\(reason); immutable? see lsattr, chattr -i); remove it or name another file with --console"
                )
            }
        }
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw VMError.console(path: path, reason: "cannot create it (\(String(cString: strerror(errno)))); name a writable place with --console")
        }
        fchmod(fd, 0o644)
        return fd
    }

    /// Whether `path` still names the file open as `descriptor`.
    public static func isSameFile(_ path: String, descriptor: Int32) -> Bool {
        var a = stat(), b = stat()
        return stat(path, &a) == 0 && fstat(descriptor, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
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
public func watchConsole(
    file: GrowingFile, matcher: inout ConsoleMatcher, start: Date = Date(), timeout: TimeInterval,
    pollInterval: TimeInterval = 0.1,
    failures: [String] = [],
    stillRunning: () -> Bool = { true },
    interrupted: () -> Bool = { false }
) -> WatchOutcome {
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
