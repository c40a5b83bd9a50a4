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
            throw HostError.cannotWrite(path: directory, reason: failure(errno, fromEnvironment: parent == nil))
        }
        return String(cString: made)
    }

    /// Why a private directory could not be made, naming TMPDIR when it came from there. Pure.
    static func failure(_ code: Int32, fromEnvironment: Bool) -> String {
        let what = fromEnvironment ? "TMPDIR (or /tmp when unset)" : "it"
        switch code {
        case ENOENT: return "cannot make a private directory there: \(what) does not exist; set TMPDIR to an existing directory"
        case ENOSPC: return "cannot make a private directory there: no space left (ENOSPC); free space or set TMPDIR elsewhere"
        case EACCES, EROFS: return "cannot make a private directory there: \(what) is not writable (\(String(cString: strerror(code)))); set TMPDIR elsewhere"
        default: return "cannot make a private directory there: \(String(cString: strerror(code)))"
        }
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
