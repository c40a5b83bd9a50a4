import Disk
import Foundation
import Host
import Versions

/// The typed state the steps share: options, the runner, the log, the
/// cleanup stack and what earlier steps made (device, partition, mounts).
public final class InstallContext: @unchecked Sendable {
    public let options: InstallOptions
    public let release: VersionsFile.Release
    public let versions: VersionsFile
    public let runner: CommandRunner
    public let log: Log
    public let cleanup: CleanupStack

    public var target: TargetKind?
    /// The whole-disk device being written: the block device, or the loop device of an image file.
    public var device = ""
    public var partition = ""
    /// Private directory for this target's mounts.
    public var workDir = ""
    public var root: String { workDir + "/root" }
    public var filesystemUUID = ""
    /// Cleanup-stack mark below which entries outlive the unmount step (loop device, lock).
    public var deviceMark = 0
    public var lock: FileLock?

    public init(options: InstallOptions, versions: VersionsFile, runner: CommandRunner, log: Log) throws {
        self.options = options
        self.versions = versions
        self.release = try versions.require(options.release)
        self.runner = runner
        self.log = log
        self.cleanup = CleanupStack(log: log)
    }

    public var dryRun: Bool { runner.isDryRun }

    /// Prints a note in the dry-run plan (a comment line), or logs it.
    public func note(_ text: String) {
        if let printer = runner as? DryRunPrinter { printer.note(text) } else { log.write("note: \(text)") }
    }
}
