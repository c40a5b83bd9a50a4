import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// What a target IS, independent of the name it was given: the keys its
/// locks and batch's duplicate check use. Two names share a key exactly when
/// they reach the same thing:
/// - `dev-MAJ-MIN`: a block device (every node of one disk).
/// - `inode-DEV-INO`: an existing image file (symlinks and hard links to it)
///   and the file behind a loop device (two loop devices on one file).
/// - `name-DEV-INO-HEX`: the directory entry an image file is (or will be)
///   created at, after following symlinks: the parent directory's device
///   and inode and the hex bytes of the name, so no two names collide.
public enum TargetIdentity {
    /// The identity keys of `target` (read-only look at the system).
    public static func keys(_ target: TargetKind) -> [String] {
        switch target {
        case let .blockDevice(_, info):
            var keys = ["dev-" + info.majorMinor.replacingOccurrences(of: ":", with: "-")]
            if let backing = BlockDevices.loopBacking(name: info.name) { keys.append(inodeKey(device: backing.device, inode: backing.inode)) }
            return keys
        case let .imageFile(path, _, _):
            var keys: [String] = []
            var st = stat()
            if stat(path, &st) == 0 { keys.append(inodeKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))) }
            if let name = nameKey(path) { keys.append(name) }
            return keys
        }
    }

    /// The inode key of the file at `path` now (after create-image made it), or nil.
    public static func inodeKey(ofFile path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return inodeKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    public static func inodeKey(device: UInt64, inode: UInt64) -> String { "inode-\(device)-\(inode)" }

    /// `name-DEV-INO-HEX` for a directory entry (pure).
    public static func nameKey(parentDevice: UInt64, parentInode: UInt64, name: String) -> String {
        "name-\(parentDevice)-\(parentInode)-" + name.utf8.map { String(format: "%02x", $0) }.joined()
    }

    /// The name key of where `path` leads: symlinks followed (a dangling one
    /// too, as `truncate` would follow it), then the parent directory's identity.
    static func nameKey(_ path: String) -> String? {
        var current = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        for _ in 0..<40 {
            var st = stat()
            guard lstat(current, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK,
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current)
            else { break }
            current = target.hasPrefix("/") ? target : (current as NSString).deletingLastPathComponent + "/" + target
        }
        let parent = (current as NSString).deletingLastPathComponent
        var st = stat()
        guard stat(parent.isEmpty ? "/" : parent, &st) == 0 else { return nil }
        return nameKey(parentDevice: UInt64(st.st_dev), parentInode: UInt64(st.st_ino), name: (current as NSString).lastPathComponent)
    }

    /// The lock file of one key under `directory`. A key longer than one file
    /// name may be is split into nested directories (never shortened: shortening
    /// is how two names would come to share a lock).
    public static func lockPath(key: String, directory: String) -> String {
        let limit = 200
        guard key.utf8.count > limit else { return "\(directory)/\(key).lock" }
        var parts: [String] = []
        var rest = Substring(key)
        while rest.count > limit { parts.append(String(rest.prefix(limit))); rest = rest.dropFirst(limit) }
        return "\(directory)/" + parts.map { $0 + ".d" }.joined(separator: "/") + "/\(rest).lock"
    }

    /// The lock files of `target`, in a fixed order.
    public static func lockPaths(_ target: TargetKind, directory: String) -> [String] {
        keys(target).map { lockPath(key: $0, directory: directory) }
    }
}
