import Foundation

/// The full log of one install (every command, its status and output) plus
/// the short progress lines on stderr. Thread-safe: batch jobs each own one.
// Unchecked: `fd` is set by init only; every write and the flags are under `lock`.
public final class Log: @unchecked Sendable {
    public let path: String?
    private var fd: Int32
    private let lock = NSLock()
    /// Set once a write to the log file failed: the run carries on without it.
    private var fileFailed = false
    private var stderrNoted = false
    private let start = Date()
    private let progress: (String) -> Void
    public let prefix: String

    /// Opens (creating 0600) the log file at `path`; nil logs nowhere (tests).
    public init(path: String?, prefix: String = "", progress: @escaping (String) -> Void = { Output.stderr($0 + "\n") }) throws {
        self.path = path
        self.prefix = prefix
        self.progress = progress
        if let path {
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        } else {
            fd = -1
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    public var elapsed: TimeInterval { Date().timeIntervalSince(start) }

    /// Writes raw text to the log file only.
    /// A failed write (a full filesystem, an I/O error) never stops the run: it warns
    /// once on stderr and the log goes quiet; the progress lines carry on.
    public func write(_ text: String) {
        guard fd >= 0 else { return }
        let text = redactCredentials(text)
        let stamp = Log.timestamp(Date())
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { "\(stamp) \($0)" }.joined(separator: "\n")
        let warning: String? = lock.withLock {
            guard !fileFailed else { return nil }
            if !stderrNoted, let reason = Output.stderrFailure {
                // The terminal went away (or stderr is a full device): say so where it can still be read.
                stderrNoted = true
                lines = "\(stamp) warning: cannot write to stderr (\(reason)); progress goes to this log only\n" + lines
            }
            let failure = Output.write(fd, Data((lines + "\n").utf8))
            guard failure != 0 else { return nil }
            fileFailed = true
            return "warning: cannot write the log '\(path ?? "")' (\(String(cString: strerror(failure)))); carrying on without it"
        }
        if let warning { progress(prefix + warning) }
    }

    /// A progress line on stderr (with elapsed time) that also goes to the log.
    public func step(_ text: String) {
        let line = String(format: "[%6.1fs] ", elapsed) + prefix + text
        write(line)
        progress(line)
    }

    /// A message for the user on stderr and in the log.
    public func say(_ text: String) {
        write(text)
        progress(prefix + text)
    }

    public static func timestamp(_ date: Date) -> String {
        UTCTime.string(date, format: "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
    }

    /// `yyyymmdd-hhmmss` in UTC, as the original's log names.
    public static func fileStamp(_ date: Date = Date()) -> String {
        UTCTime.string(date, format: "yyyyMMdd-HHmmss")
    }
}

public enum HostError: ToolError, Equatable {
    case cannotWrite(path: String, reason: String)
    case cannotRead(path: String, reason: String)
    case interrupted(signal: Int32)
    case lockHeld(path: String, holder: String)
    /// A bounded wait for a lock another process holds (`FileLock.waitForLock`) ran out.
    case lockWaitTimedOut(path: String, holder: String, seconds: Int)
    /// An environment variable of ours with a value we cannot use.
    case badSetting(name: String, value: String, expected: String)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .cannotWrite(path, reason): return ("cannot write '\(path)'", reason, nil)
        case let .cannotRead(path, reason): return ("cannot read '\(path)'", reason, nil)
        case let .interrupted(signal): return ("interrupted by signal \(signal)", nil, nil)
        case let .lockHeld(path, holder):
            return ("'\(path)' is in use by another centos6-ami run (\(holder))", nil, "wait for it to finish or pick another target")
        case let .lockWaitTimedOut(path, holder, seconds):
            return (
                "gave up after \(seconds) s waiting for the lock '\(path)', held by \(holder)", nil,
                "that process may be stuck: check on it (stop it if it is), or wait longer with \(FileLock.waitVariable)=SECONDS"
            )
        case let .badSetting(name, value, expected):
            return ("\(name)='\(value)' is not usable", "it must be \(expected)", "fix or unset it")
        }
    }
}
