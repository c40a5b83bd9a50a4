import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Private scratch directories: made by mkdtemp (mode 0700, a name nobody can
/// predict or pre-create), removed with everything in them.
public enum TemporaryDirectory {
    /// `$TMPDIR` (else /tmp), as a directory path without a trailing slash.
    public static var base: String {
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    }

    /// A new private directory `PARENT/centos6-ami-PURPOSE.XXXXXX` (PARENT: `$TMPDIR` or /tmp).
    public static func make(_ purpose: String, in parent: String? = nil) throws -> String {
        let directory = parent ?? base
        var template = Array("\(directory)/centos6-ami-\(purpose).XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            let reason = errno == ENOENT ? "it does not exist (TMPDIR?)" : String(cString: strerror(errno))
            throw HostError.cannotWrite(path: directory, reason: "cannot make a private directory there: \(reason)")
        }
        return String(cString: made)
    }

    /// Removes `path` and everything below it, making read-only directories (a
    /// package's 0555 /proc, as a non-root user) writable first. Callers unmount
    /// anything below it first.
    /// - Important: deletes `path` and everything under it.
    public static func remove(_ path: String) {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return }
        chmod(path, 0o700)
        while let relative = enumerator.nextObject() as? String {
            let full = path + "/" + relative
            var info = stat()
            if lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { chmod(full, 0o700) }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}
