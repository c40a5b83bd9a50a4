import Foundation
import Host

/// Everything that can stop a target from being prepared. Messages are
/// lower-case, name the thing in quotes and say what to do.
public enum DiskError: ToolError, Equatable {
    case notRoot
    case targetMissing(String)
    case notBlockDeviceOrFile(String)
    case isPartition(path: String, disk: String)
    case mounted(path: String, mountPoint: String)
    case swap(path: String)
    case holdsRunningRoot(path: String)
    case busy(path: String, reason: String)
    /// Another centos6-ami run holds the target (maybe under another name: `holder` says which).
    case inUseByRun(path: String, holder: String)
    case hasSignature(path: String, found: String)
    case attachedToLoop(path: String, loop: String)
    case missingTools([(tool: String, package: String)])
    case badSize(String)
    case sizeTooLarge(String, maximum: UInt64)
    case sizeOfExistingFile(path: String, bytes: UInt64, requested: UInt64)
    case noSpaceForImage(path: String, filesystem: String, free: UInt64, needed: UInt64)
    case tooSmall(path: String, bytes: UInt64, minimum: UInt64)
    case yumCache(YumCacheProblem)
    case partitionNodeMissing(String)
    case vsyscallDisabled

    public static func == (a: DiskError, b: DiskError) -> Bool { a.description == b.description }

    /// What is wrong with the `--yum-cache` given.
    public enum YumCacheProblem: Sendable {
        case notRecognized(String)
        case notBlockDeviceOrDirectory(String)
        case directoryNotWritable(String)
        case notBlockDevice(String)
        case isTarget(String)
        case mounted(path: String, mountPoint: String)
        case noFilesystem(String)

        var failure: String {
            switch self {
            case let .notRecognized(text): return "'\(text)' is not tmpfs, tmpfs:SIZE, an existing block device or an existing directory"
            case let .notBlockDeviceOrDirectory(text): return "'\(text)' is neither a block device nor a directory"
            case let .directoryNotWritable(path): return "directory '\(path)' is not writable"
            case let .notBlockDevice(path): return "'\(path)' is not a block device"
            case let .isTarget(path): return "'\(path)' is the target itself"
            case let .mounted(path, mountPoint): return "'\(path)' is mounted on '\(mountPoint)'"
            case let .noFilesystem(path): return "'\(path)' has no filesystem"
            }
        }
        var remedy: String? {
            switch self {
            case .mounted: return "unmount it first"
            case let .noFilesystem(path): return "make one first (e.g. 'mkfs.ext4 \(path)')"
            default: return nil
            }
        }
    }

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case .notRoot:
            return ("centos6-ami install must run as root (it partitions, formats and mounts the target)", nil, "try 'sudo centos6-ami ...'")
        case let .targetMissing(p):
            return (
                "target '\(p)' does not exist (give a whole-disk block device such as /dev/xvdb, or an image file path ending in .img/.raw to create)", nil, nil
            )
        case let .notBlockDeviceOrFile(p):
            return ("target '\(p)' is neither a block device nor a regular image file", nil, nil)
        case let .isPartition(p, disk):
            return ("target '\(p)' is a partition", nil, "give the whole disk '\(disk)' instead")
        case let .mounted(p, mp):
            return ("target '\(p)' (or one of its partitions) is mounted on '\(mp)'", nil, "unmount it first or pick another volume")
        case let .swap(p):
            return ("target '\(p)' (or one of its partitions) is in use as swap", nil, "'swapoff' it first or pick another volume")
        case let .holdsRunningRoot(p):
            return ("target '\(p)' holds the running system's root filesystem", nil, "refusing to touch it")
        case let .busy(p, reason):
            return ("target '\(p)' is in use by something else (\(reason))", nil, "stop whatever holds it (lsof, dmsetup ls, mdadm) or pick another volume")
        case let .inUseByRun(p, holder):
            return (
                "target '\(p)' is in use by another centos6-ami run (\(holder))", nil,
                "the same disk or file counts whatever its name (symlink, hard link, loop device); wait for that run to finish or pick another target"
            )
        case let .hasSignature(p, found):
            return (
                "target '\(p)' already has \(found)", nil,
                "refusing to overwrite it (wipe it first with 'wipefs -a \(p)' if you are sure, or pick another volume)"
            )
        case let .attachedToLoop(p, loop):
            return ("image file '\(p)' is already attached to '\(loop)'", nil, "detach it ('losetup -d \(loop)') or pick another file")
        case let .missingTools(list):
            return ("missing host tools", list.map { "'\($0.tool)' (package \($0.package))" }.joined(separator: ", "), "install them and run again")
        case let .badSize(s):
            return ("size '\(s)' is not a size like 8G, 2048M or 10737418240", nil, nil)
        case let .sizeTooLarge(s, maximum):
            return ("size '\(s)' is too big", "CentOS 6's ext4 (no 64bit feature) holds at most \(maximum >> 40)T", "give a smaller size")
        case let .sizeOfExistingFile(p, bytes, requested):
            return (
                "image file '\(p)' exists with \(bytes) bytes but --size asks for \(requested)", nil,
                "an existing file is used as it is: drop --size, or remove the file to have it made with --size"
            )
        case let .noSpaceForImage(p, fs, free, needed):
            return (
                "no space left on '\(fs)' for image file '\(p)'",
                String(format: "the install writes about %.0f MB into it and the filesystem has %.0f MB free", Double(needed) / 1e6, Double(free) / 1e6),
                "free some space or put the image on another filesystem"
            )
        case let .tooSmall(p, bytes, minimum):
            return ("target '\(p)' has \(bytes) bytes", nil, "at least \(minimum) are needed for CentOS 6 (give a bigger volume or --size)")
        case let .yumCache(problem):
            return ("--yum-cache: " + problem.failure, nil, problem.remedy)
        case .vsyscallDisabled:
            return (
                "this builder runs with vsyscall=none", "every CentOS 6 binary (glibc 2.12) would crash in the chroot (exit 139)",
                "boot the builder with vsyscall=emulate or the default xonly"
            )
        case let .partitionNodeMissing(p):
            return ("partition node '\(p)' did not appear after partitioning (no udev? tried partx, blockdev --rereadpt and mknod from /sys)", nil, nil)
        }
    }
}
