import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// What sysfs says about one block device.
public struct BlockDeviceInfo: Equatable, Sendable {
    /// Kernel name (`xvdb`, `nvme1n1`, `loop3`, `xvdb1`).
    public var name: String
    public var majorMinor: String
    public var isPartition: Bool
    /// For a partition, its disk's kernel name.
    public var parentDisk: String?
    public var partitions: [String]
    public var sizeBytes: UInt64
    /// Device-mapper, md or similar users of this device (/sys/class/block/X/holders).
    public var holders: [String]

    public init(name: String, majorMinor: String, isPartition: Bool, parentDisk: String?, partitions: [String], sizeBytes: UInt64, holders: [String]) {
        self.name = name
        self.majorMinor = majorMinor
        self.isPartition = isPartition
        self.parentDisk = parentDisk
        self.partitions = partitions
        self.sizeBytes = sizeBytes
        self.holders = holders
    }
}

/// Block-device facts read from /sys and /proc, and partition naming.
public enum BlockDevices {
    /// Partition `number` of `disk`: `xvdb` → `xvdb1`, `nvme1n1` → `nvme1n1p1`, `loop3` → `loop3p1`
    /// (a disk name ending in a digit takes a `p`).
    public static func partitionPath(disk: String, number: Int) -> String {
        let last = disk.last.map { $0.isNumber } ?? false
        // Loop devices always take "p" (also the dry-run's placeholder /dev/loopN).
        return disk + (last || disk.hasPrefix("/dev/loop") ? "p" : "") + String(number)
    }

    /// The device's kernel name from a path, following symlinks (`/dev/disk/by-id/...`).
    public static func kernelName(of path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFBLK else { return nil }
        let link = "/sys/dev/block/\(major(st.st_rdev)):\(minor(st.st_rdev))"
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
        return (target as NSString).lastPathComponent
    }

    public static func major(_ dev: dev_t) -> UInt32 { UInt32((dev >> 8) & 0xfff) | UInt32((dev >> 32) & ~0xfff) }
    public static func minor(_ dev: dev_t) -> UInt32 { UInt32(dev & 0xff) | UInt32((dev >> 12) & ~0xff) }

    public static func info(kernelName name: String) -> BlockDeviceInfo? {
        let base = "/sys/class/block/\(name)"
        guard let dev = read("\(base)/dev") else { return nil }
        let isPartition = FileManager.default.fileExists(atPath: "\(base)/partition")
        var parent: String?
        if isPartition, let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: base) {
            parent = ((resolved as NSString).deletingLastPathComponent as NSString).lastPathComponent
        }
        let children = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/block/\(name)")) ?? []
        let partitions = children.filter { $0.hasPrefix(name) && FileManager.default.fileExists(atPath: "/sys/block/\(name)/\($0)/partition") }.sorted()
        let sectors = UInt64(read("\(base)/size") ?? "0") ?? 0
        let holders = (try? FileManager.default.contentsOfDirectory(atPath: "\(base)/holders")) ?? []
        return BlockDeviceInfo(
            name: name, majorMinor: dev, isPartition: isPartition, parentDisk: parent,
            partitions: partitions, sizeBytes: sectors * 512, holders: holders.sorted())
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Device paths in /proc/swaps.
    public static func swapDevices(_ text: String) -> [String] {
        text.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Loop devices whose backing file is `path` (read from /sys, no command needed).
    public static func loopDevices(backing path: String) -> [String] {
        let real = (path as NSString).resolvingSymlinksInPath
        var st = stat()
        // By identity when the file exists: a hard link or symlink to an attached file is attached too.
        let file: (UInt64, UInt64)? = stat(path, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/block")) ?? []
        return names.filter { $0.hasPrefix("loop") }.sorted().compactMap { name in
            if let file, let backing = loopBacking(name: name) {
                return backing.device == file.0 && backing.inode == file.1 ? "/dev/\(name)" : nil
            }
            guard let backing = read("/sys/block/\(name)/loop/backing_file") else { return nil }
            let cleaned = backing.hasSuffix(" (deleted)") ? String(backing.dropLast(10)) : backing
            return cleaned == real ? "/dev/\(name)" : nil
        }
    }

    /// The device and inode of the file behind loop device `name` (LOOP_GET_STATUS64,
    /// as `losetup -O BACK-INO` reads it), or nil when it is no attached loop device.
    public static func loopBacking(name: String) -> (device: UInt64, inode: UInt64)? {
        guard name.hasPrefix("loop"), read("/sys/block/\(name)/loop/backing_file") != nil else { return nil }
        let fd = open("/dev/\(name)", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            // struct loop_info64 (linux/loop.h): lo_device and lo_inode are its first two u64 fields; 232 bytes in all.
            var info = [UInt64](repeating: 0, count: 29)
            let loopGetStatus64: UInt = 0x4C05
            if info.withUnsafeMutableBytes({ ioctl(fd, loopGetStatus64, $0.baseAddress!) }) == 0 { return (info[0], info[1]) }
        }
        // No node to ask: the backing file's path, if it still leads to it.
        guard let path = read("/sys/block/\(name)/loop/backing_file"), !path.hasSuffix(" (deleted)") else { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Tries an exclusive open: the kernel refuses it (EBUSY) while the device
    /// or a partition is mounted, used by device-mapper/md, or opened O_EXCL elsewhere.
    /// Returns the reason when busy.
    public static func exclusiveOpenFailure(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC)
        if fd >= 0 { close(fd); return nil }
        let e = errno
        return e == EBUSY ? "the kernel refuses an exclusive open: EBUSY" : "cannot open it: \(String(cString: strerror(e)))"
    }
}
