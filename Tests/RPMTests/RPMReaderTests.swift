import Foundation
@testable import RPM
@testable import Signature
import TestSupport
import Testing

@Suite struct RPMReaderTests {
    @Test(arguments: Fixture.genuine.map(\.file))
    func genuineHeadersParse(_ file: String) throws {
        let facts = Fixture.genuine.first { $0.file == file }!
        let rpm = try RPMFile(path: Fixture.genuinePath(file))
        #expect(rpm.name == facts.name)
        #expect(rpm.version == facts.version)
        #expect(rpm.release == facts.release)
        #expect(rpm.arch == "x86_64")
        #expect(rpm.epoch == nil)
        #expect(rpm.payloadCompressor == "xz")
        #expect(rpm.payloadFormat == "cpio")
        #expect(rpm.fileSize == facts.size)
        // The main header ends exactly where the header-only file ends: the payload would start there.
        #expect(rpm.payloadOffset == facts.size)
        // SIZE is header+payload of the full package: full size minus lead and signature header.
        #expect(rpm.signedSize == facts.fullSize - rpm.header.range.lowerBound)
        #expect(rpm.signature.entries.map(\.tag) == [62, 268, 269, 1000, 1002, 1004, 1007])
        for tag in [SigTag.rsaHeader, SigTag.pgp] {
            let packet = try #require(try rpm.signaturePacket(tag))
            #expect(packet.version == 3)
            #expect(OpenPGP.publicKeyAlgorithm(packet.publicKeyAlgorithm) == "RSA")
            #expect(OpenPGP.hashAlgorithm(packet.hashAlgorithm) == "SHA1")
            #expect(packet.keyID == "0946fca2c105b9de")
        }
        #expect(rpm.md5?.count == 16)
        #expect(rpm.sha1Header?.count == 40)
        #expect(rpm.sha256Header == nil)
        // The file list is consistent: every entry has a mode, and arrays line up.
        let files = rpm.files
        #expect(!files.isEmpty)
        #expect(files.allSatisfy { $0.path.hasPrefix("/") && $0.mode != 0 })
        #expect(files.count == rpm.header.strings(Tag.baseNames).count)
        #expect(rpm.requires.contains { $0.name.hasPrefix("rpmlib(PayloadIsXz)") })
        #expect(rpm.provides.contains { $0.name == facts.name && $0.flags == Dependency.equal && $0.version == "\(facts.version)-\(facts.release)" })
    }

    @Test func genuineFileListsMatchKnownPaths() throws {
        let snappy = try RPMFile(path: Fixture.genuinePath("snappy-1.1.0-1.el6.x86_64.header-only.rpm"))
        let link = try #require(snappy.files.first { $0.path == "/usr/lib64/libsnappy.so.1" })
        #expect(link.linkTo == "libsnappy.so.1.1.4")
        #expect(link.mode & 0o170000 == 0o120000)
        #expect(snappy.fileNames.contains("/usr/lib64/libsnappy.so.1.1.4"))
        #expect(snappy.files.allSatisfy { $0.user == "root" && $0.group == "root" })
        let proxy = try RPMFile(path: Fixture.genuinePath("libproxy-bin-0.3.0-4.el6_3.x86_64.header-only.rpm"))
        #expect(proxy.fileNames.contains("/usr/bin/proxy"))
    }

    @Test(arguments: Fixture.genuine.map(\.file))
    func headerOnlyPayloadIsAClearError(_ file: String) throws {
        let rpm = try RPMFile(path: Fixture.genuinePath(file))
        #expect(throws: RPMError.self) { try rpm.checkPayloadPresent() }
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            try Payload.extractUnverified(rpm, into: dir, options: ExtractOptions(), log: nil)
            Issue.record("extracting a header-only file succeeded")
        } catch let error as RPMError {
            guard case .payloadMissing = error else { Issue.record("unexpected error \(error)"); return }
            #expect(error.description.contains("payload missing or truncated"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func builtPackageFields() throws {
        let rpm = try RPMFile(path: Fixture.path("tinyfix-signed.rpm"))
        #expect(rpm.nevra == "tinyfix-1.2-3.el6.x86_64")
        #expect(rpm.payloadCompressor == "xz")
        #expect(
            rpm.fileNames == [
                "/etc/tinyfix", "/etc/tinyfix/tiny.conf", "/usr/bin/tiny", "/usr/bin/tiny-link", "/usr/bin/tiny-suid",
                "/usr/share/tinyfix", "/usr/share/tinyfix/a", "/usr/share/tinyfix/b",
            ])
        let suid = try #require(rpm.files.first { $0.path == "/usr/bin/tiny-suid" })
        #expect(suid.mode == 0o104755)
        #expect(rpm.files.first { $0.path == "/usr/bin/tiny-link" }?.linkTo == "../share/tinyfix/a")
        #expect(rpm.files.first { $0.path == "/etc/tinyfix/tiny.conf" }?.digest.count == 64)
        let requires = rpm.requires.filter { !$0.name.hasPrefix("rpmlib(") }
        #expect(requires.contains(Dependency(name: "tinylib", flags: Dependency.greater | Dependency.equal, version: "1.0")))
        #expect(requires.contains { $0.name == "tinylib" && $0.flags & Dependency.prereqMask != 0 })
        #expect(requires.contains { $0.name == "/bin/sh" })
        #expect(rpm.provides.contains(Dependency(name: "tiny-tool", flags: Dependency.equal, version: "1.2")))
        let lib = try RPMFile(path: Fixture.path("repo/Packages/tinylib-1.0-1.el6.noarch.rpm"))
        #expect(lib.epoch == 1)
        #expect(lib.payloadCompressor == "gzip")
        #expect(lib.evr == EVR(epoch: 1, version: "1.0", release: "1.el6"))
        try rpm.checkPayloadPresent()
    }

    @Test func notAnRPM() throws {
        #expect(throws: RPMError.self) { try RPMFile(data: Data("hello, world".utf8)) }
        #expect(throws: RPMError.self) { try RPMFile(data: Data()) }
        #expect(throws: RPMError.self) { try RPMFile(path: "/nonexistent/x.rpm") }
    }

    /// Random truncations and bit flips: every outcome is a parse or an RPMError, never a crash or hang.
    @Test func fuzzTruncationsAndBitFlips() throws {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let inputs =
            Fixture.genuine.map { [UInt8](FileManager.default.contents(atPath: Fixture.genuinePath($0.file))!) }
            + [[UInt8](FileManager.default.contents(atPath: Fixture.path("tinyfix-signed.rpm"))!)]
        var parsed = 0, refused = 0
        for round in 0..<1500 {
            var bytes = inputs[round % inputs.count]
            if round % 3 == 0 {
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
            } else {
                // Flips concentrated on the structures (lead, index, first part of the stores).
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let limit = min(bytes.count, round % 2 == 0 ? 1600 : bytes.count)
                    let i = Int.random(in: 0..<limit, using: &rng)
                    bytes[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                }
            }
            do {
                let rpm = try RPMFile(data: Data(bytes))
                // Exercise every accessor on whatever parsed.
                _ = (rpm.name, rpm.version, rpm.release, rpm.arch, rpm.files, rpm.requires, rpm.provides, rpm.payloadDigest)
                for tag in [SigTag.rsaHeader, SigTag.pgp] { _ = try? rpm.signaturePacket(tag) }
                parsed += 1
            } catch is RPMError {
                refused += 1
            }
        }
        #expect(parsed > 0 && refused > 0)
    }

    @Test func headerBoundsAreChecked() throws {
        // A minimal header whose one STRING entry has no NUL inside the store.
        var bytes = RPMHeader.magic + [0, 0, 0, 0] + [0, 0, 0, 1] + [0, 0, 0, 4]
        bytes += [0, 0, 0x03, 0xe8] + [0, 0, 0, 6] + [0, 0, 0, 0] + [0, 0, 0, 1]
        bytes += Array("abcd".utf8)
        #expect(throws: RPMError.self) { try RPMHeader(source: DataSource(bytes), at: 0, file: "x", what: "header") }
        bytes[bytes.count - 1] = 0
        let h = try RPMHeader(source: DataSource(bytes), at: 0, file: "x", what: "header")
        #expect(h.string(1000) == "abc")
        #expect(h.integers(1000).isEmpty)
        #expect(h.binary(1000) == nil)
        #expect(h.range == 0..<36)
        // An INT32 array claiming more elements than the store holds.
        var big = RPMHeader.magic + [0, 0, 0, 0] + [0, 0, 0, 1] + [0, 0, 0, 4]
        big += [0, 0, 0x03, 0xe8] + [0, 0, 0, 4] + [0, 0, 0, 0] + [0, 0, 0, 2] + [0, 0, 0, 1]
        #expect(throws: RPMError.self) { try RPMHeader(source: DataSource(big), at: 0, file: "x", what: "header") }
    }
}
