import Foundation
@testable import RPM
import TestSupport
import Testing

@Suite struct GzipTests {
    @Test func decodesWhatGzipWritesAtEveryKindOfBlock() throws {
        var random = SystemRandomNumberGenerator()
        let noise = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &random) }  // stored blocks
        let text = Array(String(repeating: "kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko\n", count: 3000).utf8)
        let short = Array("add_drivers+=\" nvme \"\n".utf8)  // fixed Huffman codes
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
}
