import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// A host tool the install runs, and the package that usually provides it
/// (Debian/Ubuntu name first, then RHEL/Amazon Linux).
public struct HostTool: Equatable, Sendable {
    public var name: String
    public var package: String
    public init(_ name: String, _ package: String) { self.name = name; self.package = package }
}

/// Everything the preflight looks at, gathered read-only before the first
/// write. The checks themselves are a pure function of it.
public struct PreflightFacts: Sendable {
    public var isRoot: Bool
    public var target: TargetKind
    public var mounts: [MountEntry]
    /// Kernel names of devices in /proc/swaps.
    public var swapNames: [String]
    /// major:minor of the device holding the running root filesystem.
    public var rootMajorMinor: String?
    /// major:minor of the target's partitions, by kernel name.
    public var partitionMajorMinors: [String: String]
    public var exclusiveOpenFailure: String?
    public var signatures: [String]
    public var loopAttachments: [String]
    public var missingTools: [HostTool]
    /// The builder's kernel command line (/proc/cmdline).
    public var kernelCommandLine: String = ""

    public init(
        isRoot: Bool, target: TargetKind, mounts: [MountEntry] = [], swapNames: [String] = [], rootMajorMinor: String? = nil,
        partitionMajorMinors: [String: String] = [:], exclusiveOpenFailure: String? = nil, signatures: [String] = [],
        loopAttachments: [String] = [], missingTools: [HostTool] = []
    ) {
        self.isRoot = isRoot
        self.target = target
        self.mounts = mounts
        self.swapNames = swapNames
        self.rootMajorMinor = rootMajorMinor
        self.partitionMajorMinors = partitionMajorMinors
        self.exclusiveOpenFailure = exclusiveOpenFailure
        self.signatures = signatures
        self.loopAttachments = loopAttachments
        self.missingTools = missingTools
    }
}

public enum Preflight {
    /// Tools every install runs on the builder.
    public static let requiredTools: [HostTool] = [
        HostTool("sfdisk", "fdisk / util-linux"),
        HostTool("partx", "util-linux"),
        HostTool("blockdev", "util-linux"),
        HostTool("mkfs.ext4", "e2fsprogs"),
        HostTool("e2fsck", "e2fsprogs"),
        HostTool("mount", "mount / util-linux"),
        HostTool("umount", "mount / util-linux"),
        HostTool("chroot", "coreutils"),
        HostTool("gpgv", "gpgv / gnupg2"),
        HostTool("xz", "xz-utils / xz"),
        HostTool("gzip", "gzip"),
        // The checksums of the download cache and the key fingerprint.
        HostTool("sha256sum", "coreutils"),
        HostTool("sha1sum", "coreutils"),
        // Plain file work on the builder and in the target from the outside.
        HostTool("cp", "coreutils"),
        HostTool("mv", "coreutils"),
        HostTool("rm", "coreutils"),
        HostTool("ln", "coreutils"),
        HostTool("mkdir", "coreutils"),
        HostTool("rmdir", "coreutils"),
        HostTool("chmod", "coreutils"),
        HostTool("chown", "coreutils"),
        HostTool("mknod", "coreutils"),
        HostTool("cat", "coreutils"),
        HostTool("sync", "coreutils"),
    ]
    /// Needed only for an https mirror (the http client is our own).
    public static let httpsTools: [HostTool] = [HostTool("curl", "curl")]
    /// Needed only with --ena (the source archive; the build itself runs in the build root).
    public static let enaTools: [HostTool] = [HostTool("tar", "tar"), HostTool("env", "coreutils")]
    /// Needed only for image-file targets.
    public static let loopTools: [HostTool] = [HostTool("losetup", "mount / util-linux"), HostTool("truncate", "coreutils")]

    /// The checks, in order; the first failure is the one reported.
    public static func errors(_ facts: PreflightFacts) -> [DiskError] {
        var errors: [DiskError] = []
        if !facts.isRoot { errors.append(.notRoot) }
        if vsyscallDisabled(facts.kernelCommandLine) { errors.append(.vsyscallDisabled) }
        if !facts.missingTools.isEmpty { errors.append(.missingTools(facts.missingTools.map { ($0.name, $0.package) })) }
        let path = facts.target.path
        switch facts.target {
        case let .blockDevice(_, info):
            let ours = Set([info.majorMinor] + facts.partitionMajorMinors.values)
            if let root = facts.rootMajorMinor, ours.contains(root) { errors.append(.holdsRunningRoot(path: path)) }
            if let mount = facts.mounts.first(where: { ours.contains($0.majorMinor) }) {
                errors.append(.mounted(path: path, mountPoint: mount.mountPoint))
            }
            let names = Set([info.name] + info.partitions)
            if facts.swapNames.contains(where: names.contains) { errors.append(.swap(path: path)) }
            if !info.holders.isEmpty { errors.append(.busy(path: path, reason: "held by \(info.holders.joined(separator: ", "))")) }
            if let reason = facts.exclusiveOpenFailure { errors.append(.busy(path: path, reason: reason)) }
            if info.sizeBytes < minimumTargetBytes { errors.append(.tooSmall(path: path, bytes: info.sizeBytes, minimum: minimumTargetBytes)) }
        case let .imageFile(_, exists, size):
            if let loop = facts.loopAttachments.first { errors.append(.attachedToLoop(path: path, loop: loop)) }
            if exists, let reason = facts.exclusiveOpenFailure { errors.append(.busy(path: path, reason: reason)) }
            // The same rule as for block devices: an existing file is the disk, it must be big enough.
            if exists && size < minimumTargetBytes { errors.append(.tooSmall(path: path, bytes: size, minimum: minimumTargetBytes)) }
        }
        if !facts.signatures.isEmpty { errors.append(.hasSignature(path: path, found: facts.signatures.joined(separator: " and "))) }
        return errors
    }

    /// glibc 2.12 (CentOS 6) calls the legacy vsyscall page; `vsyscall=none` removes it.
    public static func vsyscallDisabled(_ commandLine: String) -> Bool {
        commandLine.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains { $0 == "vsyscall=none" }
    }

    /// Reads the facts for `target` from the running system (read-only).
    public static func gather(target: TargetKind, tools: [HostTool]) -> PreflightFacts {
        let mounts = Mounts.current()
        let swaps = BlockDevices.swapDevices(Mounts.procText("/proc/swaps"))
            .compactMap { BlockDevices.kernelName(of: $0) }
        let root = mounts.last { $0.mountPoint == "/" }?.majorMinor
        var facts = PreflightFacts(isRoot: geteuid() == 0, target: target, mounts: mounts, swapNames: swaps, rootMajorMinor: root)
        facts.kernelCommandLine = Mounts.procText("/proc/cmdline")
        // The PATH every child runs with, so a tool found here is the tool that runs.
        let path = Spawner.toolSearchPath(ProcessInfo.processInfo.environment)
        facts.missingTools = tools.filter { ProcessRunner.locate($0.name, path: path) == nil }
        switch target {
        case let .blockDevice(devicePath, info):
            for part in info.partitions { facts.partitionMajorMinors[part] = BlockDevices.info(kernelName: part)?.majorMinor }
            facts.exclusiveOpenFailure = BlockDevices.exclusiveOpenFailure(devicePath)
            facts.signatures = Signatures.detect(Signatures.readProbe(devicePath) ?? [])
        case let .imageFile(filePath, exists, _):
            facts.loopAttachments = BlockDevices.loopDevices(backing: filePath)
            if exists { facts.signatures = Signatures.detect(Signatures.readProbe(filePath) ?? []) }
        }
        return facts
    }

    /// `--size` with an image file that exists: refused unless it is that file's size
    /// (the file is used as it is, never resized).
    public static func sizeOptionError(target: TargetKind, requested: UInt64, given: Bool) -> DiskError? {
        guard given, case let .imageFile(path, true, size) = target, size != requested else { return nil }
        return .sizeOfExistingFile(path: path, bytes: size, requested: requested)
    }

    /// Bytes the install writes into an image (not its sparse size): the unpacked
    /// packages plus a quarter for the rpm database, yum's history, directories and
    /// block rounding, plus 128 MiB of filesystem metadata (journal, inode tables,
    /// bitmaps that mkfs and the first mount write).
    public static func bytesWritten(installedBytes: UInt64) -> UInt64 {
        installedBytes + installedBytes / 4 + (128 << 20)
    }

    /// The free-space check for an image file: nil when `freeBytes` (what the
    /// filesystem holding it has for us) covers what the install writes, less what
    /// the file already holds.
    public static func spaceError(imagePath: String, filesystem: String, freeBytes: UInt64, needed: UInt64, alreadyAllocated: UInt64) -> DiskError? {
        let missing = needed > alreadyAllocated ? needed - alreadyAllocated : 0
        guard freeBytes < missing else { return nil }
        return .noSpaceForImage(path: imagePath, filesystem: filesystem, free: freeBytes, needed: missing)
    }

    /// Free bytes for an unprivileged-reserve-respecting writer (statvfs f_bavail) of the
    /// filesystem holding `path`, and that filesystem's mount point.
    public static func freeSpace(at path: String) -> (bytes: UInt64, mountPoint: String)? {
        var vfs = statvfs()
        guard statvfs(path, &vfs) == 0 else { return nil }
        var st = stat()
        let mountPoint: String
        if stat(path, &st) == 0 {
            let majorMinor = "\(BlockDevices.major(st.st_dev)):\(BlockDevices.minor(st.st_dev))"
            mountPoint = Mounts.current().last { $0.majorMinor == majorMinor }?.mountPoint ?? path
        } else {
            mountPoint = path
        }
        return (UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize), mountPoint)
    }
}
