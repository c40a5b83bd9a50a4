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
            if fd < 0 && errno == ENOENT { continue }  // a releaser removed the directory meanwhile
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

    /// Blocking variant, for short critical sections (the download cache).
    public static func wait(_ path: String) throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { let e = errno; close(fd); throw HostError.cannotWrite(path: path, reason: String(cString: strerror(e))) }
        }
        return FileLock(path: path, fd: fd)
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
