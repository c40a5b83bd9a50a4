import Disk
import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// The install and batch preflights: a run that died (SIGKILL, OOM, a crash)
/// may have left a loop device, mounts or a half-built image on this very
/// target; name the one command that cleans that up.
public enum RecoveryCheck {
    public static func deadRunLeftovers(target: TargetKind, journalDirectory: String) -> RunJournal.Record? {
        let wanted = Set([target.path, (target.path as NSString).resolvingSymlinksInPath].map(absolute))
        return RunJournal.dead(in: journalDirectory).first { record in
            record.targets.contains { wanted.contains(absolute($0)) || wanted.contains(($0 as NSString).resolvingSymlinksInPath) }
        }
    }

    public static func refuseDeadRunLeftovers(target: TargetKind, journalDirectory: String) throws {
        guard let dead = deadRunLeftovers(target: target, journalDirectory: journalDirectory) else { return }
        throw RecoveryError.deadRun(target: target.path, pid: dead.pid, journal: dead.path)
    }

    static func absolute(_ p: String) -> String {
        p.hasPrefix("/")
            ? (p as NSString).standardizingPath
            : ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(p) as NSString).standardizingPath
    }
}

public enum RecoveryError: ToolError, Equatable {
    case deadRun(target: String, pid: Int32, journal: String)

    public var failure: String {
        switch self {
        case let .deadRun(target, pid, journal):
            return "'\(target)' has leftovers of a centos6-ami run (pid \(pid)) that died without cleaning up (journal '\(journal)')"
        }
    }

    public var remedy: String? {
        switch self {
        case .deadRun: return "run 'centos6-ami cleanup --local' first"
        }
    }
}

/// `cleanup --local`: undoes what dead runs left, from their journals. Each
/// action checks the host first (is it still mounted, still attached to that
/// image, is that pid still the same process), so running it twice is harmless.
public struct LocalRecovery {
    public let runner: CommandRunner
    public let say: (String) -> Void
    /// Where processes are listed (tests may point elsewhere).
    public var procRoot = "/proc"

    public init(runner: CommandRunner, say: @escaping (String) -> Void) {
        self.runner = runner
        self.say = say
    }

    /// Cleans up every dead run in `journalDirectory`. Returns the problems left (empty: the host is clean).
    public func run(journalDirectory: String) -> (actions: Int, problems: [String]) {
        var actions = 0
        var problems: [String] = []
        for record in RunJournal.dead(in: journalDirectory) {
            say("run \(record.pid) (\(record.command.isEmpty ? "centos6-ami" : record.command)) is gone; cleaning up after it")
            let (count, failed) = recover(record)
            actions += count
            problems += failed
            if failed.isEmpty {
                unlink(record.path)
                say("  removed journal \(record.path)")
            }
        }
        return (actions, problems)
    }

    /// One dead run, in the order a normal unwind would go: processes, mounts, loop devices, files, lock.
    public func recover(_ record: RunJournal.Record) -> (actions: Int, problems: [String]) {
        var actions = 0
        var problems: [String] = []
        func act(_ text: String, _ ok: Bool, _ why: @autoclosure () -> String = "") {
            actions += 1
            if ok { say("  " + text) } else { problems.append("\(text): \(why())"); say("  failed: \(text): \(why())") }
        }
        let e = record.entries
        let roots = e.compactMap {
            if case let .root(p) = $0 { return p }; return nil
        }
        let mounts = e.compactMap {
            if case let .mount(p) = $0 { return p }; return nil
        }
        let workDirs = e.compactMap {
            if case let .workDir(p) = $0 { return p }; return nil
        }
        let scratches = e.compactMap {
            if case let .scratch(p) = $0 { return p }; return nil
        }
        let images = e.compactMap {
            if case let .image(p) = $0 { return p }; return nil
        }
        let finished = Set(
            e.compactMap {
                if case let .finished(p) = $0 { return p }; return nil
            })
        var loopImages = e.compactMap {
            if case let .loopOf(p) = $0 { return p }; return nil
        }
        loopImages += e.compactMap {
            if case let .loop(_, i) = $0 { return i }; return nil
        }

        // 1. Processes: the run's own children, then anything whose root is inside its chroots.
        var victims: [Int32] = []
        for case let .child(pid, start) in e where RunJournal.startTime(pid) == start { victims.append(pid) }
        for pid in processes(rootedUnder: roots + workDirs) where !victims.contains(pid) { victims.append(pid) }
        for pid in victims {
            let name = Mounts.procText("\(procRoot)/\(pid)/comm").trimmingCharacters(in: .whitespacesAndNewlines)
            kill(pid, SIGKILL)
            act("killed pid \(pid) (\(name))", true)
        }
        if !victims.isEmpty { waitGone(victims) }

        // 2. Mounts: everything at or under each mount point and work directory, deepest first.
        var points: [String] = []
        for base in mounts + workDirs + scratches { for p in Mounts.mountPoints(under: base) where !points.contains(p) { points.append(p) } }
        for point in points.sorted(by: { $0.count > $1.count }) {
            var result = runner.run(Preparation.unmount(point))
            if result.status != 0 && Mounts.isMountPoint(point) {
                // Busy after the kill (a lazy reference): detach it from the tree; the kernel frees it when idle.
                result = runner.run(Preparation.unmount(point, .lazy))
            }
            act("unmounted \(point)", result.status == 0 || !Mounts.isMountPoint(point), result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        // 3. Loop devices still attached to the run's image files.
        for image in Set(loopImages).sorted() {
            for device in BlockDevices.loopDevices(backing: image) {
                let result = runner.run(Command("losetup", ["-d", device]))
                act("detached \(device) (\(image))", result.status == 0, result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }

        // 4. Device nodes it made, unfinished image files, its work directories (empty ones only).
        for case let .node(path) in e where FileManager.default.fileExists(atPath: path) {
            act("removed node \(path)", unlink(path) == 0, String(cString: strerror(errno)))
        }
        for image in images where !finished.contains(image) && FileManager.default.fileExists(atPath: image) {
            act("removed unfinished image \(image)", unlink(image) == 0, String(cString: strerror(errno)))
        }
        for dir in workDirs where FileManager.default.fileExists(atPath: dir) {
            // rmdir only, never contents: something may still be mounted there.
            for sub in [dir + "/root", dir] where FileManager.default.fileExists(atPath: sub) {
                act("removed \(sub)", rmdir(sub) == 0, String(cString: strerror(errno)))
            }
        }

        for dir in scratches where FileManager.default.fileExists(atPath: dir) {
            guard Mounts.mountPoints(under: dir).isEmpty else { act("removed \(dir)", false, "something is still mounted below it"); continue }
            TemporaryDirectory.remove(dir)
            act("removed \(dir) and its contents", !FileManager.default.fileExists(atPath: dir), "it could not be removed")
        }

        // 5. The lock file, when nobody holds it any more (the kernel dropped the dead run's flock).
        for case let .lock(path) in e where FileManager.default.fileExists(atPath: path) {
            let fd = open(path, O_RDWR | O_CLOEXEC)
            if fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 {
                unlink(path)
                close(fd)
                act("removed lock \(path)", true)
            } else {
                if fd >= 0 { close(fd) }
                act("lock \(path)", false, "held by another process")
            }
        }
        // Said clean only when nothing of the run is left: checked again, not assumed.
        for left in leftovers(record) where !problems.contains(where: { $0.hasPrefix(left) }) { problems.append(left + ": still there") }
        return (actions, problems)
    }

    /// What of a run is still on the host: its live children, mounts under its mount
    /// points and directories, loop devices on its images, unfinished images, scratch directories.
    public func leftovers(_ record: RunJournal.Record) -> [String] {
        let e = record.entries
        var left: [String] = []
        for case let .child(pid, start) in e where RunJournal.startTime(pid) == start {
            let state = Mounts.procText("\(procRoot)/\(pid)/stat")
            if let close = state.lastIndex(of: ")"), !state[state.index(after: close)...].hasPrefix(" Z") { left.append("process \(pid)") }
        }
        var bases: [String] = []
        for entry in e {
            switch entry {
            case let .mount(p), let .workDir(p), let .scratch(p), let .root(p): bases.append(p)
            default: break
            }
        }
        for base in bases { for point in Mounts.mountPoints(under: base) where !left.contains("mount \(point)") { left.append("mount \(point)") } }
        var images: [String] = []
        for entry in e {
            switch entry {
            case let .loopOf(p), let .loop(_, p): images.append(p)
            default: break
            }
        }
        for image in Set(images).sorted() { for device in BlockDevices.loopDevices(backing: image) { left.append("loop device \(device) (\(image))") } }
        let finished = Set(
            e.compactMap {
                if case let .finished(p) = $0 { return p }; return nil
            })
        for case let .image(p) in e where !finished.contains(p) && FileManager.default.fileExists(atPath: p) { left.append("unfinished image \(p)") }
        for case let .scratch(p) in e where FileManager.default.fileExists(atPath: p) { left.append("scratch directory \(p)") }
        return left
    }

    /// Pids whose root directory (`/proc/PID/root`) is one of `dirs` or inside one.
    public func processes(rootedUnder dirs: [String]) -> [Int32] {
        let bases = dirs.map { ($0 as NSString).standardizingPath }
        guard !bases.isEmpty else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: procRoot)) ?? []
        return names.compactMap(Int32.init).filter { pid in
            guard pid != getpid(), let root = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(procRoot)/\(pid)/root") else { return false }
            return bases.contains { root == $0 || root.hasPrefix($0 + "/") }
        }.sorted()
    }

    func waitGone(_ pids: [Int32]) {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            // A killed child of a dead parent is reaped by init; until then it is a zombie (state Z).
            let alive = pids.filter { pid in
                let stat = Mounts.procText("\(procRoot)/\(pid)/stat")
                guard let close = stat.lastIndex(of: ")") else { return false }
                return !stat[stat.index(after: close)...].hasPrefix(" Z")
            }
            if alive.isEmpty { return }
            usleep(50_000)
        }
    }
}
