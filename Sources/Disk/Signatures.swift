import Foundation

/// Recognises partition tables and filesystem signatures in the first bytes
/// of a device, without any tool: the preflight's own check, with `blkid -p`
/// as a second opinion where it exists.
public enum Signatures {
    /// How many leading bytes `detect` needs.
    public static let probeLength = 70 * 1024

    /// Names of what was found ("an msdos partition table", "an ext4 filesystem"...), empty when blank.
    public static func detect(_ bytes: [UInt8]) -> [String] {
        func at(_ offset: Int, _ magic: [UInt8]) -> Bool {
            offset + magic.count <= bytes.count && Array(bytes[offset..<(offset + magic.count)]) == magic
        }
        var found: [String] = []
        if at(512, Array("EFI PART".utf8)) {
            found.append("a gpt partition table")
        } else if at(510, [0x55, 0xAA]) {
            found.append("an msdos partition table or boot sector")
        }
        if at(1080, [0x53, 0xEF]) { found.append("an ext2/3/4 filesystem") }
        if at(0, Array("XFSB".utf8)) { found.append("an xfs filesystem") }
        if at(0, [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]) { found.append("a LUKS header") }
        if at(512, Array("LABELONE".utf8)) { found.append("an LVM physical volume") }
        if at(4086, Array("SWAPSPACE2".utf8)) || at(4086, Array("SWAP-SPACE".utf8)) { found.append("a swap signature") }
        if at(65600, Array("_BHRfS_M".utf8)) { found.append("a btrfs filesystem") }
        if at(32769, Array("CD001".utf8)) { found.append("an iso9660 filesystem") }
        return found
    }

    /// Reads the leading bytes of a file or device.
    public static func readProbe(_ path: String) -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: probeLength)).map { Array($0) } ?? []
    }
}
