import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// What the user named as TARGET, after looking at it (read-only).
public enum TargetKind: Equatable, Sendable {
    /// A whole-disk block device.
    case blockDevice(path: String, info: BlockDeviceInfo)
    /// A disk-image file, attached through a loop device; `exists` false means it will be created sparse.
    case imageFile(path: String, exists: Bool, sizeBytes: UInt64)

    public var path: String {
        switch self {
        case let .blockDevice(path, _): return path
        case let .imageFile(path, _, _): return path
        }
    }
}

/// Sizes like `8G`, `512M`, `2T` or plain bytes (binary units, as truncate and mkfs use them).
public func parseSize(_ text: String) throws -> UInt64 {
    let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var digits = text.uppercased()
    if digits.hasSuffix("IB") {
        digits.removeLast(2)
    } else if digits.hasSuffix("B") && digits.count > 1 && units[digits[digits.index(digits.endIndex, offsetBy: -2)]] != nil {
        digits.removeLast()
    }
    var multiplier: UInt64 = 1
    if let last = digits.last, let unit = units[last] { multiplier = unit; digits.removeLast() }
    guard !digits.isEmpty, digits.allSatisfy(\.isNumber) else { throw DiskError.badSize(text) }
    // All digits but more than UInt64 holds: a size, just far too big.
    guard let value = UInt64(digits) else { throw DiskError.sizeTooLarge(text, maximum: maximumTargetBytes) }
    guard value > 0 else { throw DiskError.badSize(text) }
    let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
    guard !overflow, product <= maximumTargetBytes else { throw DiskError.sizeTooLarge(text, maximum: maximumTargetBytes) }
    return product
}

/// Smallest target we accept: CentOS 6 Core plus a kernel needs about 1.2 GB.
public let minimumTargetBytes: UInt64 = 2 << 30

/// Largest target we make: ext4 without the 64bit feature (CentOS 6's e2fsprogs
/// 1.41.12 cannot read it, see Preparation.mkfs) addresses 2^32 4 KiB blocks.
public let maximumTargetBytes: UInt64 = 16 << 40

/// Looks at TARGET without changing anything.
public func inspectTarget(_ path: String) throws -> TargetKind {
    var st = stat()
    if stat(path, &st) != 0 {
        guard errno == ENOENT else { throw DiskError.notBlockDeviceOrFile(path) }
        let parent = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent.isEmpty ? "." : parent, isDirectory: &isDir), isDir.boolValue,
            !path.hasPrefix("/dev/")
        else { throw DiskError.targetMissing(path) }
        return .imageFile(path: path, exists: false, sizeBytes: 0)
    }
    switch st.st_mode & S_IFMT {
    case S_IFBLK:
        guard let name = BlockDevices.kernelName(of: path), let info = BlockDevices.info(kernelName: name) else {
            throw DiskError.notBlockDeviceOrFile(path)
        }
        if info.isPartition { throw DiskError.isPartition(path: path, disk: "/dev/\(info.parentDisk ?? "?")") }
        return .blockDevice(path: path, info: info)
    case S_IFREG:
        return .imageFile(path: path, exists: true, sizeBytes: UInt64(st.st_size))
    default:
        throw DiskError.notBlockDeviceOrFile(path)
    }
}
