import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// What one run holds on the host, written down the moment it takes it (or
/// just before, for things whose name is known only afterwards), so that a run
/// killed with SIGKILL, by the OOM killer or by a crash can be cleaned up by
/// `centos6-ami cleanup --local`. One append-only text file per run under
/// `<work directory>/journal/`, removed when the run ends having undone
/// everything itself. Each undo in cleanup checks the host first, so an entry
/// for something already released is harmless.
// Unchecked: `fd` is only used and changed under `lock`.
public final class RunJournal: @unchecked Sendable {
    public enum Entry: Equatable, Sendable {
        /// An image file this run creates: removed unless `finished` follows.
        case image(String)
        /// The image is complete: keep it.
        case finished(String)
        /// Any loop device backed by this file is this run's.
        case loopOf(String)
        /// A loop device attached to the file.
        case loop(device: String, image: String)
        /// A mount point: it and everything mounted below it are this run's.
        case mount(String)
        /// A private directory (removed with rmdir once nothing is mounted in it).
        case workDir(String)
        /// A private scratch directory of the run's own (a boot copy, a QMP socket, files
        /// copied out of an image): removed with its contents once nothing is mounted below it.
        case scratch(String)
        /// A directory processes chroot into: what still runs there is killed.
        case root(String)
        /// A device node this run made with mknod.
        case node(String)
        /// The target's lock file.
        case lock(String)
        /// A block device target (for the preflight's notice of a dead run's leftovers).
        case target(String)
        /// A child process (pid and its start time, so a reused pid is never killed).
        case child(pid: Int32, start: UInt64)

        var line: String {
            switch self {
            case let .image(p): return "image\t\(p)"
            case let .finished(p): return "finished\t\(p)"
            case let .loopOf(p): return "loop-of\t\(p)"
            case let .loop(d, i): return "loop\t\(d)\t\(i)"
            case let .mount(p): return "mount\t\(p)"
            case let .workDir(p): return "work-dir\t\(p)"
            case let .scratch(p): return "scratch\t\(p)"
            case let .root(p): return "root\t\(p)"
            case let .node(p): return "node\t\(p)"
            case let .lock(p): return "lock\t\(p)"
            case let .target(p): return "target\t\(p)"
            case let .child(pid, start): return "child\t\(pid)\t\(start)"
            }
        }

        static func parse(_ line: Substring) -> Entry? {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 2 else { return nil }
            switch (f[0], f.count) {
            case ("image", 2): return .image(f[1])
            case ("finished", 2): return .finished(f[1])
            case ("loop-of", 2): return .loopOf(f[1])
            case ("loop", 3): return .loop(device: f[1], image: f[2])
            case ("mount", 2): return .mount(f[1])
            case ("work-dir", 2): return .workDir(f[1])
            case ("scratch", 2): return .scratch(f[1])
            case ("root", 2): return .root(f[1])
            case ("node", 2): return .node(f[1])
            case ("lock", 2): return .lock(f[1])
            case ("target", 2): return .target(f[1])
            case ("child", 3):
                guard let pid = Int32(f[1]), let start = UInt64(f[2]) else { return nil }
                return .child(pid: pid, start: start)
            default: return nil
            }
        }
    }

    /// A journal read back: whose it is and what it holds.
    public struct Record: Equatable, Sendable {
        public var path: String
        public var pid: Int32
        public var start: UInt64
        public var command: String
        public var entries: [Entry]

        /// The run's process is gone (or its pid now belongs to another process).
        public func isDead(startTime: (Int32) -> UInt64? = RunJournal.startTime) -> Bool { startTime(pid) != start }

        /// Paths this run worked on: images, loop devices, block device targets.
        public var targets: [String] {
            entries.compactMap {
                switch $0 {
                case let .image(p), let .loopOf(p), let .target(p): return p
                case let .loop(d, _): return d
                default: return nil
                }
            }
        }
    }

    public let path: String
    private var fd: Int32
    private let lock = NSLock()

    /// Creates this process's journal in `directory` (0700), first line: pid, start time, command.
    public init(directory: String, command: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let pid = getpid()
        path = "\(directory)/\(pid).journal"
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        let header = "run\t\(pid)\t\(RunJournal.startTime(pid) ?? 0)\t\(command.replacingOccurrences(of: "\n", with: " "))\n"
        let failure = Output.write(fd, Data(header.utf8))
        guard failure == 0 else {
            close(fd); unlink(path)
            throw HostError.cannotWrite(path: path, reason: String(cString: strerror(failure)))
        }
    }

    /// Appends one entry. A journal that cannot be written is not a reason to stop the run.
    public func record(_ entry: Entry) {
        let line = RunJournal.absolute(entry).line
        lock.withLock {
            guard fd >= 0 else { return }
            Output.write(fd, Data((line + "\n").utf8))
        }
    }

    /// `cleanup --local` runs from anywhere: relative paths are made absolute here.
    static func absolute(_ entry: Entry) -> Entry {
        func abs(_ p: String) -> String {
            p.hasPrefix("/") ? p : ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(p) as NSString).standardizingPath
        }
        switch entry {
        case let .image(p): return .image(abs(p))
        case let .finished(p): return .finished(abs(p))
        case let .loopOf(p): return .loopOf(abs(p))
        case let .loop(d, i): return .loop(device: d, image: abs(i))
        case let .mount(p): return .mount(abs(p))
        case let .workDir(p): return .workDir(abs(p))
        case let .scratch(p): return .scratch(abs(p))
        case let .root(p): return .root(abs(p))
        case let .node(p): return .node(abs(p))
        case let .lock(p): return .lock(abs(p))
        case let .target(p): return .target(abs(p))
        case .child: return entry
        }
    }

    /// The run undid everything itself: the journal goes.
    public func remove() {
        lock.withLock {
            guard fd >= 0 else { return }
            close(fd); fd = -1
            unlink(path)
        }
    }

    /// The run ends with something left on the host (--keep-on-error, a failed undo):
    /// the journal stays for `cleanup --local`.
    public func closeKeeping() {
        lock.withLock {
            guard fd >= 0 else { return }
            close(fd); fd = -1
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The journal directory under a work directory (`/run/centos6-ami` by default).
    public static func directory(workDirectory: String) -> String { workDirectory + "/journal" }

    /// Parses a journal's text; nil when the header is missing or damaged.
    public static func parse(_ text: String, path: String) -> Record? {
        var lines = text.split(separator: "\n")
        guard let header = lines.first else { return nil }
        let h = header.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard h.count >= 3, h[0] == "run", let pid = Int32(h[1]), let start = UInt64(h[2]) else { return nil }
        lines.removeFirst()
        return Record(path: path, pid: pid, start: start, command: h.count > 3 ? h[3] : "", entries: lines.compactMap(Entry.parse))
    }

    /// Every readable journal in `directory`, oldest pid first.
    public static func all(in directory: String) -> [Record] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".journal") }
        return names.compactMap { name in
            let path = directory + "/" + name
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return parse(text, path: path)
        }.sorted { $0.pid < $1.pid }
    }

    /// Journals of runs whose process is gone.
    public static func dead(in directory: String) -> [Record] { all(in: directory).filter { $0.isDead() } }

    /// Field 22 of /proc/PID/stat (clock ticks since boot): with the pid, names one process for good.
    public static func startTime(_ pid: Int32) -> UInt64? {
        let text = Mounts.procText("/proc/\(pid)/stat")
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
