import Foundation
@testable import RPM
import TestSupport
import Testing

@Suite struct GzipTests {
    @Test func decodesWhatGzipWritesAtEveryKindOfBlock() throws {
        var random = SystemRandomNumberGenerator()
        let noise = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &random) } // stored blocks
        let text = Array(String(repeating: "kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko\n", count: 3000).utf8)
        let short = Array("add_drivers+=\" nvme \"\n".utf8) // fixed Huffman codes
        for data in [noise, text, short, noise + text, []] {
            for level in ["-1", "-9"] {
                #expect(try Gzip.decompress(try hostGzip(data, level: level)) == data, "\(data.count) bytes at \(level)")
            }
        }
    }

    @Test func concatenatedMembersAndGarbage() throws {
        let a = Array("first\n".utf8), b = Array("second\n".utf8)
        #expect(try Gzip.decompress(try hostGzip(a) + hostGzip(b)) == a + b, "members concatenated, as gzip -dc")
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(Array("070701 not gzip".utf8)) }
        var cut = try hostGzip(Array(String(repeating: "x y z ", count: 5000).utf8))
        cut.removeLast(cut.count / 2)
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(cut) }
    }

    /// A gzip bomb (64 MiB of zeros from a few KB, members concatenated) is
    /// refused at the limit, as the stream passes it; the limit itself passes.
    @Test func outputPastTheLimitIsRefused() throws {
        let member = try hostGzip([UInt8](repeating: 0, count: 1 << 20))
        var bomb: [UInt8] = []
        for _ in 0..<64 { bomb += member }
        let start = Date()
        #expect(throws: Gzip.Failure.tooLarge(limit: 4 << 20)) {
            try Gzip.decompress(bomb, limit: 4 << 20)
        }
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(
            Gzip.Failure.tooLarge(limit: 4 << 20).description
                == "the data decompresses to more than \(4 << 20) bytes; refused (corrupt or hostile: a gzip bomb)")
        #expect(try Gzip.decompress(member, limit: 1 << 20).count == 1 << 20)
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(member, limit: (1 << 20) - 1) }
        let noise = try hostGzip((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }, level: "-1")
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(noise, limit: 1000) }
    }
}
