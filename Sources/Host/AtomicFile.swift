import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The one way the tool replaces a file of its own whole: a reader sees the old
/// file or the new one, never a part of either (results, summaries, manifests,
/// remembered verifications, metadata, files written into an image).
public enum AtomicFile {
    /// Writes `data` to `path` through a temporary file in the same directory (so
    /// rename(2) is atomic): made by mkstemp (O_EXCL, so nothing planted under its
    /// name is written through), written, fsynced, given `mode`, then renamed over
    /// `path`. On any failure the temporary file is removed and `path` is as it was.
    /// The directory is not fsynced: after a crash the new name may be missing,
    /// never half of its content. Without `mode` the file gets what open(2) would
    /// give a new one (0666 less the umask): mkstemp's 0600 would hide results and
    /// summaries from the other users who read them today.
    /// - Throws: `HostError.cannotWrite` naming `path` and why.
    public static func write(_ data: Data, to path: String, mode: mode_t? = nil) throws {
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array(((directory.isEmpty ? "." : directory) + "/." + (path as NSString).lastPathComponent + ".XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw failure(path, "cannot make a temporary file in '\(directory)'") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var open = true
        do {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            try writeAll(data, to: fd, path: path)
            guard fsync(fd) == 0 else { throw failure(path, "fsync") }
            guard fchmod(fd, mode ?? (0o666 & ~processUmask)) == 0 else { throw failure(path, "fchmod") }
            open = false
            guard close(fd) == 0 else { throw failure(path, "close") }
            guard rename(temporary, path) == 0 else { throw failure(path, "rename") }
        } catch {
            if open { close(fd) }
            unlink(temporary)
            throw error
        }
    }

    static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failure(path, "write") }
                done += n
            }
        }
    }

    /// The process's umask, read from /proc/self/status (Linux 4.7+): umask(2) can only
    /// be read by setting it, which would race with other threads creating files.
    static let processUmask: mode_t = {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }
        return line.flatMap { mode_t($0.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0o022
    }()

    /// The error for a failed system call, read from errno at once.
    static func failure(_ path: String, _ what: String) -> HostError {
        HostError.cannotWrite(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
}
