import AMI
import Disk
import Foundation
import Host
import Install
import VM
import Verdict
#if canImport(Glibc)
    import Glibc
#endif

/// Looks into a built image without changing a byte of it: boot-test's key
/// check, `inspect` and `register`'s hygiene gate.
enum ReadOnlyImage {
    /// Mounts partition 1 of an image file (through a read-only loop device) or of a
    /// block device read-only without journal replay (`ro,noload`), runs `body` on
    /// the mount point, and undoes everything before returning.
    /// `checkPartition` runs on partition 1's device before it is mounted.
    static func with<T>(
        _ image: String, log: Log, journal: RunJournal? = nil, checkPartition: ((String, CommandRunner) throws -> Void)? = nil,
        _ body: (String) throws -> T
    ) throws -> T {
        // An empty file or one with no Linux partition is said at once, before any loop device.
        try ImageCheck.check(image)
        let runner = ProcessRunner(log: log)
        let cleanup = CleanupStack(log: log)
        runner.isUnwinding = true // read-only checks: let them run even after a ^C
        defer { cleanup.unwind() }
        let work = try TemporaryDirectory.make("ro")
        journal?.record(.workDir(work))
        cleanup.push("remove \(work)") {
            rmdir(work + "/root"); rmdir(work)
        }
        var disk = image
        if case .imageFile = try inspectTarget(image) {
            journal?.record(.loopOf(image))
            disk = try runner.checked(Command("losetup", ["--find", "--show", "--read-only", "--partscan", image])).stdoutText
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let loop = disk
            cleanup.push("detach \(loop)") { _ = runner.run(Preparation.detachLoop(loop)) }
        }
        let partition = BlockDevices.partitionPath(disk: disk, number: 1)
        if try PartitionNode.ensure(partition: partition, disk: disk, runner: runner) {
            journal?.record(.node(partition))
            cleanup.push("remove node \(partition)") { try? FileManager.default.removeItem(atPath: partition) }
        }
        let mountPoint = work + "/root"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try checkPartition?(partition, runner)
        journal?.record(.mount(mountPoint))
        try runner.checked(Preparation.mountForReading(partition: partition, at: mountPoint))
        cleanup.push("unmount \(mountPoint)") { _ = runner.run(Preparation.unmount(mountPoint)) }
        return try body(mountPoint)
    }

    /// `e2fsck -fn` (read-only: it changes nothing) must find the filesystem clean: a
    /// broken one is refused before it reaches a snapshot. Exit 0 only; e2fsck's last
    /// lines name the problem.
    static func requireCleanFilesystem(_ partition: String, runner: CommandRunner) throws {
        let result = runner.run(Command("e2fsck", ["-fn", partition]))
        guard result.status == 0 else {
            let tail = (result.stdoutText + result.stderrText).split(separator: "\n").suffix(3).joined(separator: " / ")
            throw AMIError.filesystemNotClean(partition: partition, status: result.status, detail: tail)
        }
    }

    /// The hygiene findings of an image or device.
    static func hygiene(_ image: String, log: Log, journal: RunJournal? = nil) throws -> [HygieneFinding] {
        try with(image, log: log, journal: journal) { Hygiene.findings(root: $0) }
    }
}
