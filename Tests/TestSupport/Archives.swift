import Foundation
import Host
import Testing

/// Builds newc archives in memory, entry by entry.
public struct NewcArchive {
    public var bytes: [UInt8] = []
    /// 070702 entries with a checksum instead of 070701.
    public var crc = false
    public init() {}
    public mutating func add(
        _ name: String, mode: Int, data: [UInt8] = [], ino: Int = 0, nlink: Int = 1, mtime: Int = 1_500_000_000, check: Int? = nil, rdev: (Int, Int) = (0, 0)
    ) {
        let nameBytes = Array(name.utf8) + [0]
        let sum = check ?? (crc ? data.reduce(0) { ($0 + Int($1)) & 0xffffffff } : 0)
        let fields = [ino, mode, 0, 0, nlink, mtime, data.count, 0, 0, rdev.0, rdev.1, nameBytes.count, sum]
        var header = crc ? "070702" : "070701"
        for f in fields { header += String(format: "%08X", f) }
        bytes += Array(header.utf8) + nameBytes
        while bytes.count % 4 != 0 { bytes.append(0) }
        bytes += data
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
    public mutating func file(_ name: String, _ text: String, mode: Int = 0o644) { add(name, mode: 0o100000 | mode, data: Array(text.utf8)) }
    public mutating func dir(_ name: String, mode: Int = 0o755) { add(name, mode: 0o040000 | mode) }
    public mutating func symlink(_ name: String, _ target: String) { add(name, mode: 0o120777, data: Array(target.utf8)) }
    public mutating func trailer() { add("TRAILER!!!", mode: 0) }
}

/// gzip through the host's gzip (the format CentOS 6's dracut writes), for fixtures only.
public func hostGzip(_ data: [UInt8], level: String = "-9") throws -> [UInt8] {
    let dir = try TemporaryDirectory.make("gz")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let file = dir + "/data"
    try Data(data).write(to: URL(fileURLWithPath: file))
    #expect(runTool(Command("gzip", [level, "-n", file])).status == 0)
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: file + ".gz")))
}
