import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive, non-blocking flock(2) lock on a file, held until released
/// or until the process dies (the kernel drops it then, so a crash never
/// leaves a stale lock). Its file records the holder's pid for the message.
// Unchecked: `fd` changes only in release(), called once by the lock's owner.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    /// Unlink the lock file on release (target locks: nothing is left in the lock directory).
    private let removeOnRelease: Bool
    /// Directories made for a nested lock path, removed again (when empty) on release.
    private let removableDirectories: [String]

    private init(path: String, fd: Int32, removeOnRelease: Bool = false, removableDirectories: [String] = []) {
        self.path = path
        self.fd = fd
        self.removeOnRelease = removeOnRelease
        self.removableDirectories = removableDirectories
    }

    /// Takes the lock or throws `HostError.lockHeld` naming the holder at once (no waiting).
    /// With `removeOnRelease` the file is unlinked when released; a taker checks the file
    /// it locked is still the one at `path` (else the releaser unlinked it meanwhile: retry).
    /// `base` is the lock directory: directories between it and `path` are made and, with
    /// `removeOnRelease`, removed again when empty.
    public static func acquire(_ path: String, holderDescription: String, removeOnRelease: Bool = false, base: String? = nil) throws -> FileLock {
        let dir = (path as NSString).deletingLastPathComponent
        var nested: [String] = []
        if let base, dir.hasPrefix(base + "/") {
            var d = dir
            while d.count > base.count { nested.append(d); d = (d as NSString).deletingLastPathComponent }
        }
        var fd: Int32 = -1
        for _ in 0..<100 {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 && errno == ENOENT { continue } // a releaser removed the directory meanwhile
            guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw HostError.lockHeld(path: path, holder: holder.isEmpty ? "lock file \(path)" : "\(holder); lock file \(path)")
            }
            var mine = stat(), there = stat()
            if fstat(fd, &mine) == 0, stat(path, &there) == 0, mine.st_ino == there.st_ino, mine.st_dev == there.st_dev { break }
            close(fd)
            fd = -1
        }
        guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: "the lock file kept being replaced") }
        ftruncate(fd, 0)
        let text = "pid \(getpid()): \(holderDescription)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        return FileLock(path: path, fd: fd, removeOnRelease: removeOnRelease, removableDirectories: nested)
    }

    /// Who holds the lock at `path` now (its holder line), or nil when nobody does or
    /// there is no such file. Takes nothing: a shared try-lock, released at once.
    public static func holder(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { flock(fd, LOCK_UN); return nil }
        let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return text.isEmpty ? "lock file \(path)" : "\(text); lock file \(path)"
    }

    /// Waiting variant, for short critical sections: `waitForLock`'s bounded wait.
    public static func wait(_ path: String, timeout: TimeInterval = FileLock.defaultWait, notice: ((String) -> Void)? = nil) throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        do { try waitForLock(fd: fd, path: path, timeout: timeout, notice: notice) } catch { close(fd); throw error }
        return FileLock(path: path, fd: fd)
    }

    // MARK: - Bounded waits

    /// The environment variable that bounds a wait on a shared lock (the
    /// download cache's per-file locks), in seconds.
    public static let waitVariable = "CENTOS6_AMI_LOCK_WAIT"
    /// 30 minutes: another process holding a cache lock is downloading that
    /// file, and the low-speed limit ends a stalled transfer long before this;
    /// so a wait this long means the holder is stuck, not slow.
    public static let defaultWait: TimeInterval = 1800
    /// After this long a waiter says once what it waits for (who holds it).
    public static let noticeAfter: TimeInterval = 5

    /// `CENTOS6_AMI_LOCK_WAIT` from `environment`: seconds (≥ 0, fractions allowed),
    /// `defaultWait` when unset or empty; the problem when malformed.
    public static func waitLimit(environment: [String: String]) -> Result<TimeInterval, HostError> {
        guard let text = environment[waitVariable]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return .success(defaultWait) }
        guard let seconds = TimeInterval(text), seconds.isFinite, seconds >= 0 else {
            return .failure(.badSetting(name: waitVariable, value: text, expected: "a number of seconds (0 or more) to wait for a lock another process holds"))
        }
        return .success(seconds)
    }

    /// Takes an exclusive flock on `fd` (the open lock file `path`), polling a
    /// non-blocking flock every 50 ms so that SIGINT is noticed while waiting.
    /// After `noticeAfter` seconds `notice` is told once which lock and which
    /// process holds it; after `timeout` seconds it gives up with
    /// `HostError.lockWaitTimedOut` naming both.
    public static func waitForLock(fd: Int32, path: String, timeout: TimeInterval, notice: ((String) -> Void)? = nil) throws {
        let start = Date()
        var noticed = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw HostError.cannotWrite(path: path, reason: "cannot lock: \(String(cString: strerror(errno)))")
            }
            try Interruption.shared.check()
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                throw HostError.lockWaitTimedOut(path: path, holder: describeHolders(of: path), seconds: Int(timeout.rounded()))
            }
            if !noticed, waited >= min(noticeAfter, timeout / 2), let notice {
                noticed = true
                notice(
                    "waiting for the lock '\(path)', held by \(describeHolders(of: path)) (giving up after \(Int(timeout.rounded())) s; \(waitVariable) sets that)"
                )
            }
            usleep(UInt32(min(50_000, max(1_000, (timeout - waited) * 1e6))))
        }
    }

    /// Who holds a lock on `path`, for a message: `pid 123 (curl -o ...)`,
    /// several joined with `, `, or `an unknown process` (it may have just let go).
    public static func describeHolders(of path: String) -> String {
        let pids = holders(of: path)
        guard !pids.isEmpty else { return "an unknown process (none listed in /proc/locks now)" }
        return pids.map { pid in
            let command = commandLine(of: pid)
            return "pid \(pid)" + (command.isEmpty ? "" : " (\(command))")
        }.joined(separator: ", ")
    }

    /// The processes holding a lock (flock or POSIX) on the file `path`, from the
    /// kernel's own table, /proc/locks: right even when the lock file records
    /// nothing (the download cache's never do) or a stale holder.
    public static func holders(of path: String) -> [Int32] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        let dev = UInt64(st.st_dev)
        // glibc's gnu_dev_major/minor, which Swift does not import (they are macros).
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        return lockHolders(procLocks: Mounts.procText("/proc/locks"), major: major, minor: minor, inode: UInt64(st.st_ino))
    }

    /// The holder pids in /proc/locks text for one file (device numbers and
    /// inode), waiters (`->` lines) left out. Lines look like
    /// `3: FLOCK  ADVISORY  WRITE 4242 fd:01:1315 0 EOF`: MAJ:MIN in hex, the inode in decimal.
    public static func lockHolders(procLocks: String, major: UInt64, minor: UInt64, inode: UInt64) -> [Int32] {
        var found: [Int32] = []
        for line in procLocks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, !fields.contains("->") else { continue }
            let id = fields[5].split(separator: ":")
            guard id.count == 3, UInt64(id[0], radix: 16) == major, UInt64(id[1], radix: 16) == minor, UInt64(id[2]) == inode,
                let pid = Int32(fields[4]), !found.contains(pid)
            else { continue }
            found.append(pid)
        }
        return found
    }

    /// A process's command line, NULs as spaces, cut to 160 characters ("" when gone).
    static func commandLine(of pid: Int32) -> String {
        let raw = Mounts.procText("/proc/\(pid)/cmdline")
        let text = raw.split(separator: "\u{0}").joined(separator: " ")
        return text.count > 160 ? String(text.prefix(157)) + "..." : text
    }

    public func release() {
        guard fd >= 0 else { return }
        if removeOnRelease {
            // Unlinked while still held, so a waiting taker sees the change and retries.
            unlink(path)
            for dir in removableDirectories { rmdir(dir) }
        }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
