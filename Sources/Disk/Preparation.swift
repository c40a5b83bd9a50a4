import Foundation
import Host

/// The commands that prepare a target, as data. Pure: the install steps run
/// them through whatever runner they were given (real, dry-run, recording).
public enum Preparation {
    /// Exactly the ext4 features CentOS 6's e2fsprogs 1.41.12 and kernel accept
    /// (README.md, the format step). `none,` first clears the host's mke2fs.conf defaults
    /// (metadata_csum, 64bit, orphan_file, metadata_csum_seed...), so the set
    /// is the same whatever the builder's e2fsprogs version.
    public static let ext4Features = [
        "has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "flex_bg",
        "sparse_super", "large_file", "huge_file", "uninit_bg", "dir_nlink", "extra_isize",
    ]

    /// sfdisk script: msdos label, one primary Linux partition from 1 MiB (sector 2048) to the end, bootable.
    public static let sfdiskScript = "label: dos\nstart=2048, type=83, bootable\n"

    /// - Important: erases DEVICE's partition table.
    public static func partition(device: String) -> Command {
        Command("sfdisk", ["--wipe", "always", "--wipe-partitions", "always", device], standardInput: Data(sfdiskScript.utf8))
    }

    /// - Important: erases PARTITION. No zero-filling at build time: lazy inode
    ///   table and journal init, no discard (every written block costs snapshot space).
    public static func mkfs(partition: String, uuid: String) -> Command {
        Command(
            "mkfs.ext4",
            [
                "-q", "-F", "-O", "none," + ext4Features.joined(separator: ","), "-I", "256", "-L", "/", "-U", uuid,
                "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", partition,
            ])
    }

    /// `noinit_itable`: the kernel must not zero the inode tables in the background either.
    /// `barrier=0`: no device cache flush per journal commit. rpm's database commits
    /// each package with fdatasync (about 200 in an install, each a flush through the
    /// loop device to the builder's disk); the build needs its writes durable once,
    /// at the end, which `flush(device:)` does after the unmount.
    public static func mountRoot(partition: String, at mountPoint: String) -> Command {
        mount(type: "ext4", options: "noatime,noinit_itable,barrier=0", partition, at: mountPoint)
    }

    /// An existing filesystem read-only for inspection: `noload` replays no journal,
    /// so not one block of the image changes.
    public static func mountForReading(partition: String, at mountPoint: String) -> Command {
        Command("mount", ["-o", "ro,noload", partition, mountPoint])
    }

    /// coreutils `sync FILE` fsyncs the file: for a block device its buffers and
    /// the device's write cache (for a loop device, the image file).
    public static func flush(device: String) -> Command { Command("sync", [device]) }

    /// The one unmount: `umount [-R|-l] POINT`.
    public static func unmount(_ mountPoint: String, _ style: UnmountStyle = .plain) -> Command {
        Command("umount", style.flags + [mountPoint])
    }

    /// Creates a sparse image file of `bytes` (no block is allocated).
    public static func createImage(path: String, bytes: UInt64) -> Command { Command("truncate", ["-s", String(bytes), path]) }

    public static func attachLoop(image: String) -> Command { Command("losetup", ["--find", "--show", "--partscan", image]) }
    public static func detachLoop(_ device: String) -> Command { Command("losetup", ["-d", device]) }

    /// Ways to make the kernel (and /dev) see a new partition, tried in order when its node is missing.
    public static func rereadPartitions(device: String, udev: Bool) -> [Command] {
        // partx -a adds partitions through BLKPG: seen needed here when the kernel's own
        // scan (partscan, BLKRRPART) silently added nothing.
        (udev ? [Command("udevadm", ["settle"])] : []) + [
            Command("blockdev", ["--rereadpt", device]), Command("partx", ["-a", device]),
            Command("partx", ["-u", device]),
        ]
    }

    /// Last resort without udev/devtmpfs: a node made from /sys/class/block/<part>/dev.
    public static func mknodPartition(path: String, majorMinor: String) -> Command? {
        let parts = majorMinor.split(separator: ":")
        guard parts.count == 2 else { return nil }
        return Command("mknod", ["-m", "0660", path, "b", String(parts[0]), String(parts[1])])
    }

    public static func fsck(partition: String) -> Command { Command("e2fsck", ["-fn", partition]) }

    /// The yum cache mounted on the target's /var/cache/yum so downloads never touch the volume.
    public static func mountYumCache(_ cache: YumCache, at mountPoint: String) -> Command {
        switch cache {
        case let .tmpfs(bytes): return tmpfs("centos6-ami-yum-cache", bytes: bytes, at: mountPoint)
        case let .device(path): return Command("mount", [path, mountPoint])
        case let .directory(path): return bind(path, at: mountPoint)
        }
    }

    // MARK: mounts of the install's trees (chroot filesystems, scratch roots, mirrors)

    /// `mount -t TYPE [-o OPTIONS] SOURCE POINT`: a filesystem of a type, from a device
    /// or, for the kernel's pseudo filesystems and tmpfs, a name that shows in mountinfo.
    public static func mount(type: String, options: String? = nil, _ source: String, at mountPoint: String) -> Command {
        Command("mount", ["-t", type] + (options.map { ["-o", $0] } ?? []) + [source, mountPoint])
    }

    /// A tmpfs named `name` (what mountinfo shows), capped at `bytes`: it takes only what is used.
    public static func tmpfs(_ name: String, bytes: UInt64, at mountPoint: String) -> Command {
        mount(type: "tmpfs", options: "size=\(bytes),mode=0755", name, at: mountPoint)
    }

    /// `/proc` of a chroot.
    public static func proc(at mountPoint: String) -> Command { mount(type: "proc", "proc", at: mountPoint) }

    /// `/sys` of a chroot.
    public static func sysfs(at mountPoint: String) -> Command { mount(type: "sysfs", "sysfs", at: mountPoint) }

    /// A private minimal /dev: a tiny tmpfs the caller fills with nodes (not a bind of the
    /// builder's /dev, which would expose its disks).
    public static func minimalDev(at mountPoint: String) -> Command {
        mount(type: "tmpfs", options: "mode=0755,size=1m,nosuid", "centos6-ami-dev", at: mountPoint)
    }

    /// A private devpts instance: the chroot's ptys are its own, not the builder's.
    public static func devpts(at mountPoint: String) -> Command {
        mount(type: "devpts", options: "newinstance,ptmxmode=0666,mode=0620,gid=5", "devpts", at: mountPoint)
    }

    /// `mount --bind [-o ro] SOURCE POINT`.
    public static func bind(_ source: String, at mountPoint: String, readOnly: Bool = false) -> Command {
        Command("mount", ["--bind"] + (readOnly ? ["-o", "ro"] : []) + [source, mountPoint])
    }

    /// `mount --rbind SOURCE POINT`: the tree with every mount below it.
    public static func recursiveBind(_ source: String, at mountPoint: String) -> Command {
        Command("mount", ["--rbind", source, mountPoint])
    }

    /// `mount --make-rslave POINT`: unmounting below the copy no longer propagates back to the source.
    public static func makeRecursiveSlave(_ mountPoint: String) -> Command {
        Command("mount", ["--make-rslave", mountPoint])
    }
}

/// How `Preparation.unmount` detaches a mount point.
public enum UnmountStyle: Sendable {
    /// `umount POINT`.
    case plain
    /// `umount -R POINT`: the point and everything mounted below it.
    case recursive
    /// `umount -l POINT`: detached from the tree now, freed by the kernel once nothing uses it.
    case lazy

    var flags: [String] {
        switch self {
        case .plain: return []
        case .recursive: return ["-R"]
        case .lazy: return ["-l"]
        }
    }
}

/// Where the target's /var/cache/yum lives during the install (`--yum-cache`).
public enum YumCache: Equatable, Sendable {
    case tmpfs(bytes: UInt64)
    case device(String)
    case directory(String)

    public static let defaultTmpfsBytes: UInt64 = 1 << 30

    /// A tmpfs cache holds nothing after its unmount.
    public var isDiscardedAtUnmount: Bool {
        if case .tmpfs = self { return true }
        return false
    }

    /// `tmpfs`, `tmpfs:SIZE`, a block device path or a directory.
    public static func parse(_ text: String) throws -> YumCache {
        if text == "tmpfs" { return .tmpfs(bytes: defaultTmpfsBytes) }
        if text.hasPrefix("tmpfs:") { return .tmpfs(bytes: try parseSize(String(text.dropFirst(6)))) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: text, isDirectory: &isDir) else {
            throw DiskError.yumCache(.notRecognized(text))
        }
        if isDir.boolValue { return .directory(text) }
        if BlockDevices.kernelName(of: text) != nil { return .device(text) }
        throw DiskError.yumCache(.notBlockDeviceOrDirectory(text))
    }

    public var summary: String {
        switch self {
        case let .tmpfs(bytes): return "tmpfs (\(bytes >> 20) MiB)"
        case let .device(p): return "device \(p)"
        case let .directory(p): return "directory \(p)"
        }
    }
}
