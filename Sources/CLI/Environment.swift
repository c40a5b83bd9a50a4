import Foundation
import Host
import Install

/// The tool's own environment variables, read from the command's environment in one place:
/// a command takes what it needs from here into its options, not from the process.
struct ToolEnvironment {
    /// `CENTOS6_AMI_WORK_DIR`: parent of the runs' private directories and journals (tests give each run its own).
    var workDirectory: String
    /// `CENTOS6_AMI_VERSIONS`: a versions.json to read instead of the embedded one (as `--versions`).
    var versionsFile: String?
    /// `CENTOS6_AMI_SYSFS_ROOT`: tests point it at a fake sysfs that gives a loop device an EBS volume's NVMe serial.
    var sysfsRoot: String
    /// `CENTOS6_AMI_MIRROR_PASSWORD`: a mirror password the batch summary redacted, for `batch --continue`.
    var mirrorPassword: String?
    /// `CENTOS6_AMI_LOCK_WAIT`: seconds to wait for a cache lock another run holds, or why the value is refused.
    var lockWait: Result<TimeInterval, HostError>

    static let defaultWorkDirectory = "/run/centos6-ami"

    init(_ environment: [String: String]) {
        workDirectory = environment["CENTOS6_AMI_WORK_DIR"] ?? Self.defaultWorkDirectory
        versionsFile = environment["CENTOS6_AMI_VERSIONS"]
        sysfsRoot = environment["CENTOS6_AMI_SYSFS_ROOT"] ?? "/sys"
        mirrorPassword = environment[BatchSummary.passwordVariable]
        lockWait = FileLock.waitLimit(environment: environment)
    }
}

extension Console {
    /// The tool's own variables of this command's environment.
    var tool: ToolEnvironment { ToolEnvironment(environment) }
}
