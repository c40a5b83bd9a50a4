import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive, non-blocking flock(2) lock on a file, held until released
/// or until the process dies (the kernel drops it then, so a crash never
/// leaves a stale lock). Its file records the holder's pid for the message.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock or throws `HostError.lockHeld` naming the holder at once (no waiting).
    public static func acquire(_ path: String, holderDescription: String) throws -> FileLock {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw HostError.lockHeld(path: path, holder: holder.isEmpty ? "lock file \(path)" : "\(holder); lock file \(path)")
        }
        ftruncate(fd, 0)
        let text = "pid \(getpid()): \(holderDescription)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        return FileLock(path: path, fd: fd)
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
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
