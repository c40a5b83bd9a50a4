import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// What boot-test looks at before it starts QEMU: a file or block device whose
/// first sector is an MBR (0x55 0xAA at 510) with a Linux partition (type 0x83),
/// which is what `install` writes (Disk/Preparation.swift's sfdisk script).
/// Anything else would only boot into SeaBIOS's "no bootable device" until
/// the timeout.
public enum ImageCheck {
    /// The problem with `sector` (the first 512 bytes) as a boot disk, or nil.
    public static func problem(firstSector sector: [UInt8]) -> String? {
        guard sector.count >= 512 else { return "it is shorter than one 512-byte sector" }
        guard sector[510] == 0x55, sector[511] == 0xAA else { return "it has no MBR partition table (no 0x55AA boot signature)" }
        let types = (0..<4).map { sector[446 + 16 * $0 + 4] }
        if types.contains(0xEE) { return "it has a GPT partition table (a protective MBR, type 0xee); centos6-ami images have an msdos label" }
        guard types.contains(0x83) else {
            let listed = types.filter { $0 != 0 }.map { String(format: "0x%02x", $0) }
            return "its partition table has no Linux partition (type 0x83)" + (listed.isEmpty ? "" : "; types found: " + listed.joined(separator: ", "))
        }
        return nil
    }

    /// Checks `path` (read-only); throws `VMError.notAnImage` naming what is wrong.
    public static func check(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw VMError.imageMissing(path: path) }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            throw VMError.notAnImage(path: path, reason: kind == S_IFDIR ? "it is a directory" : "it is neither a regular file nor a block device")
        }
        if kind == S_IFREG && st.st_size == 0 { throw VMError.notAnImage(path: path, reason: "it is an empty image file (0 bytes)") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VMError.imageMissing(path: path) }
        defer { close(fd) }
        var sector = [UInt8](repeating: 0, count: 512)
        let n = sector.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 512, 0) }
        if let problem = problem(firstSector: Array(sector.prefix(max(0, n)))) { throw VMError.notAnImage(path: path, reason: problem) }
    }
}
