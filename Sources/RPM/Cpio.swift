import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// How to extract.
public struct ExtractOptions: Sendable {
    /// Create character/block device nodes (skipped and reported by default: a
    /// bootstrap gets its /dev from the host, and mknod needs root).
    public var createDevices: Bool
    /// chown to the archive's numeric uid/gid: only possible (and done by default) as root.
    public var applyOwnership: Bool
    public init(createDevices: Bool = false, applyOwnership: Bool = geteuid() == 0) {
        self.createDevices = createDevices
        self.applyOwnership = applyOwnership
    }
}

/// What was written.
public struct ExtractReport: Sendable, Equatable {
    public var directories = 0
    public var files = 0
    public var symlinks = 0
    public var hardLinks = 0
    public var fifos = 0
    public var devices = 0
    public var bytes = 0
    /// Device nodes and sockets not created (with `createDevices` off), by path.
    public var skipped: [String] = []
    public init() {}
}

/// A cpio "newc" (070701) / "crc" (070702) reader that extracts into a root
/// directory, streaming file contents (never a whole file in memory).
///
/// Safety, checked for every entry BEFORE anything of it is written:
/// - absolute names (after the "./" prefix rpm writes) and any `..` component are refused;
/// - directory components are resolved by hand, one `lstat` at a time, with
///   chroot semantics (an absolute symlink target is relative to the root):
///   a path whose symlinks would climb above the root is refused; nothing is
///   ever opened through a symlink (files are created O_EXCL|O_NOFOLLOW under
///   a temporary name and renamed into place, which replaces a symlink rather
///   than writing through it).
public final class CpioExtractor {
    public let root: String
    public let file: String
    public let options: ExtractOptions
    public private(set) var report = ExtractReport()
    private let input: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0
    private var eof = false
    private var isRoot: Bool { options.applyOwnership }

    struct Header {
        var ino = 0, mode = 0, uid = 0, gid = 0, nlink = 0, mtime = 0, size = 0
        var devMajor = 0, devMinor = 0, rdevMajor = 0, rdevMinor = 0, nameSize = 0, check = 0
        var hasCRC = false
    }
    private struct LinkKey: Hashable { var ino: Int, major: Int, minor: Int }
    /// Hard-link names seen without data (newc stores the data with the LAST name of a set).
    private var pendingLinks: [LinkKey: (header: Header, paths: [String])] = [:]
    private var directoryTimes: [(String, Int)] = []

    /// - Parameters: root: an existing directory; input: a readable descriptor positioned at the archive.
    public init(root: String, input: Int32, file: String, options: ExtractOptions = ExtractOptions()) throws {
        guard let real = realpath(root, nil) else {
            throw RPMError.extractFailed(file: file, entry: root, reason: "target root does not exist: \(String(cString: strerror(errno)))")
        }
        self.root = String(cString: real)
        free(real)
        self.input = input
        self.file = file
        self.options = options
    }

    // MARK: buffered input

    private func fill() throws -> Bool {
        if start < end { return true }
        if eof { return false }
        start = 0
        while true {
            let r = buffer.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
            if r < 0 && errno == EINTR { continue }
            if r < 0 { throw RPMError.cpio(file: file, reason: "read error: \(String(cString: strerror(errno)))") }
            end = r
            if r == 0 { eof = true; return false }
            return true
        }
    }

    private func readExact(_ n: Int, what: String) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n)
        while out.count < n {
            guard try fill() else { throw RPMError.cpio(file: file, reason: "archive ends inside \(what) (payload truncated?)") }
            let take = min(n - out.count, end - start)
            out.append(contentsOf: buffer[start..<(start + take)])
            start += take
        }
        return out
    }

    /// Streams `n` bytes to `fd` (or drops them when fd < 0); returns the byte sum (for 070702).
    private func copy(_ n: Int, to fd: Int32, what: String) throws -> UInt32 {
        var left = n
        var sum: UInt32 = 0
        while left > 0 {
            guard try fill() else { throw RPMError.cpio(file: file, reason: "archive ends inside the data of '\(what)' (payload truncated?)") }
            let take = min(left, end - start)
            try buffer.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[start..<(start + take)])
                for b in chunk { sum = sum &+ UInt32(b) }
                guard fd >= 0 else { return }
                var done = 0
                while done < take {
                    let w = Glibc.write(fd, chunk.baseAddress! + done, take - done)
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { throw RPMError.extractFailed(file: file, entry: what, reason: "write failed: \(String(cString: strerror(errno)))") }
                    done += w
                }
            }
            start += take
            left -= take
        }
        return sum
    }

    private func skipPadding(after count: Int) throws {
        let pad = (4 - count % 4) % 4
        if pad > 0 { _ = try readExact(pad, what: "padding") }
    }

    static func parseHeader(_ b: [UInt8], file: String) throws -> Header {
        let magic = String(decoding: b[0..<6], as: UTF8.self)
        guard magic == "070701" || magic == "070702" else {
            if magic == "07070X" { throw RPMError.unsupportedPayload(file: file, reason: "rpm's large-file cpio variant (07070X) is not supported") }
            throw RPMError.cpio(
                file: file,
                reason: "bad entry magic '\(magic.unicodeScalars.map { $0.isASCII && $0.value >= 32 ? String($0) : "?" }.joined())' (not newc 070701/070702)")
        }
        var fields = [Int]()
        for i in 0..<13 {
            var v = 0
            for c in b[(6 + 8 * i)..<(14 + 8 * i)] {
                let d: Int
                switch c {
                case 48...57: d = Int(c) - 48
                case 65...70: d = Int(c) - 55
                case 97...102: d = Int(c) - 87
                default: throw RPMError.cpio(file: file, reason: "non-hex digit in an entry header")
                }
                v = v << 4 | d
            }
            fields.append(v)
        }
        var h = Header()
        (h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.size) = (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6])
        (h.devMajor, h.devMinor, h.rdevMajor, h.rdevMinor, h.nameSize, h.check) = (fields[7], fields[8], fields[9], fields[10], fields[11], fields[12])
        h.hasCRC = magic == "070702"
        return h
    }

    /// The entry's path components, or nil for the archive's "." entry. Refuses absolute names and `..`.
    static func components(of name: String, file: String) throws -> [String]? {
        var rel = Substring(name)
        if rel.hasPrefix("./") { rel = rel.dropFirst(2) } else if rel == "." { return nil }
        guard !rel.hasPrefix("/") else {
            throw RPMError.unsafeEntry(file: file, entry: name, reason: "absolute path")
        }
        let parts = rel.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard !parts.contains("..") else {
            throw RPMError.unsafeEntry(file: file, entry: name, reason: "'..' component")
        }
        return parts.isEmpty ? nil : parts
    }

    // MARK: extraction

    /// Extracts every entry up to the trailer. Throws on the first unsafe or broken entry.
    @discardableResult
    public func extract() throws -> ExtractReport {
        while true {
            let raw = try readExact(110, what: "an entry header")
            let h = try CpioExtractor.parseHeader(raw, file: file)
            guard h.nameSize >= 2, h.nameSize <= 4097 else { throw RPMError.cpio(file: file, reason: "implausible name size \(h.nameSize)") }
            let nameBytes = try readExact(h.nameSize, what: "an entry name")
            guard nameBytes.last == 0, !nameBytes.dropLast().contains(0) else {
                throw RPMError.cpio(file: file, reason: "entry name is not one NUL-terminated string")
            }
            let name = String(decoding: nameBytes.dropLast(), as: UTF8.self)
            try skipPadding(after: 110 + h.nameSize)
            if name == "TRAILER!!!" { break }
            try entry(h, name: name)
            try skipPadding(after: h.size)
        }
        try finishPendingLinks()
        for (path, mtime) in directoryTimes.reversed() { setTimes(path, mtime, follow: true) }
        return report
    }

    private func entry(_ h: Header, name: String) throws {
        let type = h.mode & Int(S_IFMT)
        guard let parts = try CpioExtractor.components(of: name, file: file) else {
            _ = try copy(h.size, to: -1, what: name)
            return
        }
        // Validate the whole directory part BEFORE creating anything.
        let (resolved, missing) = try resolve(Array(parts.dropLast()), entry: name)
        let leaf = parts.last!
        switch type {
        case Int(S_IFDIR), Int(S_IFREG), Int(S_IFLNK), Int(S_IFIFO), Int(S_IFCHR), Int(S_IFBLK), Int(S_IFSOCK):
            break
        default:
            throw RPMError.cpio(file: file, reason: "entry '\(name)' has unknown file type \(String(type, radix: 8))")
        }
        if (type == Int(S_IFCHR) || type == Int(S_IFBLK)) && !options.createDevices || type == Int(S_IFSOCK) {
            _ = try copy(h.size, to: -1, what: name)
            report.skipped.append("/" + parts.joined(separator: "/"))
            return
        }
        let parent = try makeDirectories(resolved, missing, entry: name)
        let path = parent + "/" + leaf
        switch type {
        case Int(S_IFDIR):
            try directory(h, path: path, parts: parts, name: name)
            _ = try copy(h.size, to: -1, what: name)
        case Int(S_IFREG):
            try regular(h, parent: parent, path: path, name: name)
        case Int(S_IFLNK):
            guard h.size > 0, h.size < 4096 else { throw RPMError.cpio(file: file, reason: "symlink '\(name)' has an implausible target length \(h.size)") }
            let target = try readExact(h.size, what: "the target of '\(name)'")
            guard !target.contains(0) else { throw RPMError.cpio(file: file, reason: "symlink '\(name)' target contains NUL") }
            let tmp = temporaryName(parent)
            guard symlink(String(decoding: target, as: UTF8.self), tmp) == 0 else { throw failure(name, "symlink") }
            if isRoot { _ = lchown(tmp, uid_t(h.uid), gid_t(h.gid)) }
            setTimes(tmp, h.mtime, follow: false)
            try place(tmp, at: path, name: name)
            report.symlinks += 1
        default: // fifo, devices
            _ = try copy(h.size, to: -1, what: name)
            let tmp = temporaryName(parent)
            let dev = CpioExtractor.makeDevice(UInt64(h.rdevMajor), UInt64(h.rdevMinor))
            let rc = type == Int(S_IFIFO) ? mkfifo(tmp, 0o600) : mknod(tmp, mode_t(type) | 0o600, dev)
            guard rc == 0 else { throw failure(name, type == Int(S_IFIFO) ? "mkfifo" : "mknod") }
            applyOwnerAndMode(path: tmp, h, follow: false)
            setTimes(tmp, h.mtime, follow: false)
            try place(tmp, at: path, name: name)
            if type == Int(S_IFIFO) { report.fifos += 1 } else { report.devices += 1 }
        }
    }

    private func directory(_ h: Header, path: String, parts: [String], name: String) throws {
        var st = stat()
        if lstat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFLNK {
                // An existing symlink where the archive has a directory (e.g. /lib -> usr/lib):
                // keep it, as rpm does, but only if it leads to a directory inside the root.
                let (resolved, missing) = try resolve(parts, entry: name)
                guard missing.isEmpty else {
                    throw RPMError.extractFailed(file: file, entry: name, reason: "an existing symlink stands where the directory goes and leads nowhere")
                }
                _ = resolved
                return
            }
            if (st.st_mode & S_IFMT) != S_IFDIR {
                guard unlink(path) == 0 else { throw failure(name, "unlink") }
                guard mkdir(path, 0o700) == 0 else { throw failure(name, "mkdir") }
            }
        } else {
            // Another package being extracted in parallel may have just made it.
            guard mkdir(path, 0o700) == 0 || (errno == EEXIST && lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR) else {
                throw failure(name, "mkdir")
            }
        }
        applyOwnerAndMode(path: path, h, follow: false)
        directoryTimes.append((path, h.mtime))
        report.directories += 1
    }

    private func regular(_ h: Header, parent: String, path: String, name: String) throws {
        let key = LinkKey(ino: h.ino, major: h.devMajor, minor: h.devMinor)
        if h.nlink > 1 && h.size == 0 {
            pendingLinks[key, default: (h, [])].paths.append(path)
            return
        }
        let tmp = temporaryName(parent)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure(name, "create") }
        do {
            defer { close(fd) }
            let sum = try copy(h.size, to: fd, what: name)
            if h.hasCRC && sum != UInt32(truncatingIfNeeded: h.check) {
                throw RPMError.cpio(file: file, reason: "crc mismatch on '\(name)'")
            }
            if isRoot { _ = fchown(fd, uid_t(h.uid), gid_t(h.gid)) }
            fchmod(fd, mode_t(h.mode & 0o7777)) // after chown, which would clear setuid bits
        } catch {
            unlink(tmp)
            throw error
        }
        setTimes(tmp, h.mtime, follow: false)
        try place(tmp, at: path, name: name)
        report.files += 1
        report.bytes += h.size
        if h.nlink > 1, let pending = pendingLinks.removeValue(forKey: key) {
            for other in pending.paths where other != path { try hardLink(path, other, name: name) }
        }
    }

    private func hardLink(_ existing: String, _ path: String, name: String) throws {
        var st = stat()
        if lstat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { throw RPMError.extractFailed(file: file, entry: path, reason: "a directory stands where a hard link goes") }
            unlink(path)
        }
        guard link(existing, path) == 0 else { throw failure(name, "link") }
        report.hardLinks += 1
    }

    /// Hard-link sets whose data never came (all members empty): create the first, link the rest.
    private func finishPendingLinks() throws {
        for (_, pending) in pendingLinks.sorted(by: { $0.value.paths[0] < $1.value.paths[0] }) {
            let first = pending.paths[0]
            let tmp = temporaryName((first as NSString).deletingLastPathComponent)
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw failure(first, "create") }
            if isRoot { _ = fchown(fd, uid_t(pending.header.uid), gid_t(pending.header.gid)) }
            fchmod(fd, mode_t(pending.header.mode & 0o7777))
            close(fd)
            setTimes(tmp, pending.header.mtime, follow: false)
            try place(tmp, at: first, name: first)
            report.files += 1
            for other in pending.paths.dropFirst() { try hardLink(first, other, name: other) }
        }
        pendingLinks = [:]
    }

    // MARK: path resolution

    /// Resolves directory components under the root without following any
    /// symlink out of it. Returns the real (symlink-free) components that
    /// exist and the components still to create.
    func resolve(_ parts: [String], entry: String) throws -> (resolved: [String], missing: [String]) {
        var stack: [String] = []
        var queue = ArraySlice(parts)
        var hops = 0
        while let c = queue.first {
            queue = queue.dropFirst()
            if c.isEmpty || c == "." { continue }
            if c == ".." {
                // Only symlink targets can bring `..` here (entry names with `..` are refused earlier).
                guard !stack.isEmpty else {
                    throw RPMError.unsafeEntry(file: file, entry: entry, reason: "its path goes through a symlink that leads out of the target root")
                }
                stack.removeLast()
                continue
            }
            let path = root + "/" + (stack + [c]).joined(separator: "/")
            var st = stat()
            if lstat(path, &st) != 0 {
                guard errno == ENOENT else { throw failure(entry, "lstat '\(path)'") }
                let rest = [c] + queue.filter { !$0.isEmpty && $0 != "." }
                guard !rest.contains("..") else {
                    throw RPMError.unsafeEntry(file: file, entry: entry, reason: "its path goes through a dangling symlink with '..'")
                }
                return (stack, rest)
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                stack.append(c)
            case S_IFLNK:
                hops += 1
                guard hops <= 40 else { throw RPMError.unsafeEntry(file: file, entry: entry, reason: "too many levels of symlinks") }
                var target = [CChar](repeating: 0, count: 4097)
                let n = readlink(path, &target, 4096)
                guard n > 0 else { throw failure(entry, "readlink '\(path)'") }
                let text = String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                // chroot semantics: an absolute target starts again at the root.
                if text.hasPrefix("/") { stack = [] }
                queue = ArraySlice(text.split(separator: "/", omittingEmptySubsequences: true).map(String.init)) + queue
            default:
                throw RPMError.extractFailed(file: file, entry: entry, reason: "'/\((stack + [c]).joined(separator: "/"))' exists and is not a directory")
            }
        }
        return (stack, [])
    }

    /// Creates the missing directories (0755, like cpio -d) and returns the parent's real path.
    private func makeDirectories(_ resolved: [String], _ missing: [String], entry: String) throws -> String {
        var path = root + (resolved.isEmpty ? "" : "/" + resolved.joined(separator: "/"))
        for c in missing {
            path += "/" + c
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw failure(entry, "mkdir '\(path)'") }
        }
        return path
    }

    // MARK: helpers

    /// glibc's makedev (a macro Swift cannot import).
    static func makeDevice(_ major: UInt64, _ minor: UInt64) -> dev_t {
        dev_t(((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff))
    }

    /// Process-wide, so extractors running in parallel into one root never pick the same name.
    private static let counter = Atomic<Int>(0)
    private func temporaryName(_ parent: String) -> String {
        let n = CpioExtractor.counter.wrappingAdd(1, ordering: .relaxed).newValue
        return parent + "/.centos6-ami-\(getpid())-\(n)"
    }

    /// rename(2) into place: replaces a file or symlink (never writes through it).
    private func place(_ tmp: String, at path: String, name: String) throws {
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            unlink(tmp)
            throw RPMError.extractFailed(file: file, entry: name, reason: "a directory stands where this file goes")
        }
        guard rename(tmp, path) == 0 else {
            let e = failure(name, "rename")
            unlink(tmp)
            throw e
        }
    }

    private func applyOwnerAndMode(path: String, _ h: Header, follow: Bool) {
        if isRoot { _ = lchown(path, uid_t(h.uid), gid_t(h.gid)) }
        chmod(path, mode_t(h.mode & 0o7777))
    }

    private func setTimes(_ path: String, _ mtime: Int, follow: Bool) {
        var times = [timespec(tv_sec: mtime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, follow ? 0 : AT_SYMLINK_NOFOLLOW)
    }

    private func failure(_ entry: String, _ what: String) -> RPMError {
        RPMError.extractFailed(file: file, entry: entry, reason: "\(what): \(String(cString: strerror(errno)))")
    }
}
