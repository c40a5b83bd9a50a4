import Foundation

/// One line of /proc/self/mountinfo.
public struct MountEntry: Equatable, Sendable {
    public var majorMinor: String
    public var root: String
    public var mountPoint: String
    public var fsType: String
    public var source: String

    public init(majorMinor: String, root: String, mountPoint: String, fsType: String, source: String) {
        self.majorMinor = majorMinor
        self.root = root
        self.mountPoint = mountPoint
        self.fsType = fsType
        self.source = source
    }
}

/// The mounts table, read from /proc/self/mountinfo. Undo actions read it
/// before unmounting, so unwinding twice is harmless.
public enum Mounts {
    /// Parses mountinfo text (octal escapes such as `\040` decoded).
    public static func parse(_ text: String) -> [MountEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 10, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { return nil }
            return MountEntry(
                majorMinor: fields[2], root: unescape(fields[3]), mountPoint: unescape(fields[4]),
                fsType: fields[dash + 1], source: unescape(fields[dash + 2]))
        }
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = ""
        var chars = Array(s)
        var i = 0
        while i < chars.count {
            if chars[i] == "\\", i + 3 < chars.count, let code = Int(String(chars[(i + 1)...(i + 3)]), radix: 8) {
                out.append(Character(UnicodeScalar(UInt8(code))))
                i += 4
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        chars.removeAll()
        return out
    }

    public static func current() -> [MountEntry] {
        // Read to EOF: String(contentsOfFile:) does one read(), and procfs hands
        // out about a page per read, so mounts past the first 4 KiB were missed.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/mountinfo") else { return [] }
        defer { try? handle.close() }
        return parse(String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self))
    }

    public static func isMountPoint(_ path: String) -> Bool {
        let target = normalize(path)
        return current().contains { $0.mountPoint == target }
    }

    /// Mount points at or under `path`, deepest first (the order to unmount them).
    public static func mountPoints(under path: String) -> [String] {
        let base = normalize(path)
        return current().map(\.mountPoint).filter { $0 == base || $0.hasPrefix(base + "/") }.sorted { $0.count > $1.count }
    }

    static func normalize(_ path: String) -> String {
        var p = (path as NSString).standardizingPath
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }
}
