import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Paths read from an image (a built root filesystem, mounted or copied out), confined
/// to that root: every symlink on the way, the last one included, is resolved inside
/// the root, so neither an absolute link (`authorized_keys -> /etc/shadow`) nor `..`
/// (`initrd /../../../etc/shadow` in grub.conf) leads to the builder's own files.
/// What is read is for the tool to judge; callers name such files, never echo them.
public enum ImageRoot {
    /// Symlinks followed at most (the kernel's limit).
    public static let maxLinks = 40

    /// `path` as seen from inside `root`, every symlink resolved there; nil after too many links.
    public static func resolve(_ path: String, inRoot root: String) -> String? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            if component == ".." { _ = resolved.popLast(); continue }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: root + candidate) {
                links += 1
                guard links <= maxLinks else { return nil }
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
            } else {
                resolved.append(component)
            }
        }
        return "/" + resolved.joined(separator: "/")
    }

    /// The host path of `path` inside `root` (symlinks resolved inside it); nil after too many links.
    public static func hostPath(_ path: String, in root: String) -> String? {
        guard let inside = resolve(path, inRoot: root) else { return nil }
        return inside == "/" ? root : root + inside
    }

    /// The bytes of the regular file at `path` inside `root`, at most `limit` of them:
    /// nil when it is absent, not a regular file, larger than `limit`, or unreadable.
    public static func contents(_ path: String, in root: String, limit: Int = 64 << 20) -> Data? {
        guard let host = hostPath(path, in: root) else { return nil }
        let fd = open(host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) <= limit else { return nil }
        guard let data = try? handle.read(upToCount: limit + 1), data.count <= limit else { return nil }
        return data
    }

    /// `contents` as UTF-8 text (invalid bytes replaced).
    public static func text(_ path: String, in root: String, limit: Int = 16 << 20) -> String? {
        contents(path, in: root, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The mode bits (and owner) of the file at `path` inside `root` without following its last link; nil when absent.
    public static func status(_ path: String, in root: String) -> stat? {
        let name = (path as NSString).lastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != "..",
            let parent = hostPath((path as NSString).deletingLastPathComponent, in: root)
        else { return nil }
        var info = stat()
        return lstat(parent + "/" + name, &info) == 0 ? info : nil
    }

    /// The names in the directory at `path` inside `root` (empty when it is none).
    public static func list(_ path: String, in root: String) -> [String] {
        guard let host = hostPath(path, in: root) else { return [] }
        return (try? FileManager.default.contentsOfDirectory(atPath: host)) ?? []
    }
}
