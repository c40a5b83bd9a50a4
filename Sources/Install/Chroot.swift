import Disk
import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// What CentOS 6 tools need inside the target while they run:
/// /proc, /sys, a minimal /dev with devpts, /etc/mtab, the builder's
/// resolv.conf. Each mount's undo goes on the stack the moment it exists.
enum Chroot {
    /// Device nodes of the minimal /dev: name, type, major, minor, mode.
    static let deviceNodes: [(String, String, Int, Int, String)] = [
        ("null", "c", 1, 3, "0666"), ("zero", "c", 1, 5, "0666"), ("full", "c", 1, 7, "0666"),
        ("random", "c", 1, 8, "0666"), ("urandom", "c", 1, 9, "0666"), ("tty", "c", 5, 0, "0666"),
        ("console", "c", 5, 1, "0600"),
    ]

    /// Mount commands for the chroot's pseudo filesystems, in order, with their mount points.
    static func mountCommands(root: String) -> [(Command, String)] {
        [
            (Preparation.proc(at: root + "/proc"), root + "/proc"),
            (Preparation.sysfs(at: root + "/sys"), root + "/sys"),
            // A private minimal /dev (not a bind of the builder's, which would expose its disks).
            (Preparation.minimalDev(at: root + "/dev"), root + "/dev"),
        ]
    }

    static func devCommands(root: String) -> [Command] {
        deviceNodes.map { Command("mknod", ["-m", $0.4, root + "/dev/" + $0.0, $0.1, String($0.2), String($0.3)]) } + [
            Command("mkdir", ["-p", root + "/dev/pts", root + "/dev/shm"]),
            Command("ln", ["-sf", "/proc/self/fd", root + "/dev/fd"]),
            Command("ln", ["-sf", "pts/ptmx", root + "/dev/ptmx"]),
            Command("ln", ["-sf", "/proc/self/fd/0", root + "/dev/stdin"]),
            Command("ln", ["-sf", "/proc/self/fd/1", root + "/dev/stdout"]),
            Command("ln", ["-sf", "/proc/self/fd/2", root + "/dev/stderr"]),
        ]
    }

    static func devptsCommand(root: String) -> Command {
        Preparation.devpts(at: root + "/dev/pts")
    }

    /// Mounts /proc, /sys, /dev and /dev/pts in the tree and pushes their undos on its
    /// stack (plus one that stops every process still running inside the chroot).
    static func enter(_ ctx: InstallContext, _ tree: RootTree) throws {
        let root = tree.root, runner = ctx.runner, cleanup = tree.cleanup
        try runner.checked(Command("mkdir", ["-p", root + "/proc", root + "/sys", root + "/dev", root + "/etc"]))
        for (command, point) in mountCommands(root: root) {
            try runner.checked(command)
            InstallSteps.pushUnmount(cleanup, point, runner: runner)
            if point.hasSuffix("/proc") {
                // Before /proc goes: nothing of the target may outlive the install.
                cleanup.push("stop processes left in \(root)") { runner.perform { killProcesses(root: root) } }
            }
        }
        for command in devCommands(root: root) { try runner.checked(command) }
        try runner.checked(devptsCommand(root: root))
        InstallSteps.pushUnmount(cleanup, root + "/dev/pts", runner: runner)
        // CentOS 6 tools (mount, dracut via new-kernel-pkg) read /etc/mtab.
        // Reads back: the target may have its own.
        if runner.isDryRun || !FileManager.default.fileExists(atPath: root + "/etc/mtab") {
            try runner.checked(Command("ln", ["-sf", "/proc/mounts", root + "/etc/mtab"]))
            cleanup.push("remove /etc/mtab link") {
                // The image's own /etc/mtab is written by rc.sysinit at boot; only our link goes (reads back).
                let ours = runner.isDryRun || (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/etc/mtab")) == "/proc/mounts"
                if ours { try runner.checked(Command("rm", ["-f", root + "/etc/mtab"])) }
            }
        }
        try copyResolvConf(ctx, tree)
    }

    /// The builder's resolv.conf, so yum inside can resolve the mirror; removed (or the
    /// package's own restored) afterwards: no builder DNS settings stay in the image.
    static func copyResolvConf(_ ctx: InstallContext, _ tree: RootTree) throws {
        let target = tree.root + "/etc/resolv.conf", saved = tree.workDir + "/resolv.conf.target"
        let runner = ctx.runner
        // Reads back: whether the target has its own.
        let hadOwn = !runner.isDryRun && FileManager.default.fileExists(atPath: target)
        if hadOwn { try runner.checked(Command("cp", ["-a", target, saved])) }
        try runner.checked(Command("cp", ["-L", "/etc/resolv.conf", target]))
        tree.cleanup.push("remove the builder's resolv.conf", manual: ["rm -f \(target)"]) {
            if hadOwn {
                try runner.checked(Command("mv", ["-f", saved, target]))
            } else {
                try runner.checked(Command("rm", ["-f", target]))
            }
        }
    }

    /// TERM, then KILL, to every process whose root is the target.
    static func killProcesses(root: String) {
        let resolvedRoot = (root as NSString).resolvingSymlinksInPath
        func inside() -> [pid_t] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap { pid_t($0) }.filter { pid in
                guard pid != getpid(), let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root") else { return false }
                return link == resolvedRoot || link.hasPrefix(resolvedRoot + "/")
            }
        }
        let first = inside()
        guard !first.isEmpty else { return }
        for pid in first { kill(pid, SIGTERM) }
        for _ in 0..<30 where !inside().isEmpty { usleep(100_000) }
        for pid in inside() { kill(pid, SIGKILL) }
        for _ in 0..<30 where !inside().isEmpty { usleep(100_000) }
    }
}
