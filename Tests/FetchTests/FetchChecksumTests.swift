@testable import Fetch
import Host
import Foundation
import TestSupport
import Testing

@Suite struct FetchChecksumTests {
    @Test func knownVectors() throws {
        // FIPS 180-4 examples.
        #expect(Checksum.of(Data("abc".utf8), kind: .sha256).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Checksum.of(Data(), kind: .sha256).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Checksum.of(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), kind: .sha256).hex
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Checksum.of(Data("abc".utf8), kind: .sha1).hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(Checksum.of(Data(), kind: .sha1).hex == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    /// Incremental hashing with awkward chunk sizes equals the host's sha256sum/sha1sum.
    @Test(arguments: [Checksum.Kind.sha256, .sha1])
    func matchesHostTools(kind: Checksum.Kind) throws {
        let fixture = try FetchFixture()
        for size in [0, 1, 55, 56, 63, 64, 65, 1000, 100_003] {
            let name = "f\(size)"
            try fixture.add(name, size: size)
            let path = fixture.mirror + "/Packages/" + name
            let tool = kind == .sha256 ? "/usr/bin/sha256sum" : "/usr/bin/sha1sum"
            let output = runTool(Command(tool, [path])).stdoutText
            let expected = String(output.prefix { $0 != " " })
            let data = fixture.files[name]!
            var hasher = ChecksumHasher(kind: kind)
            var offset = 0
            var step = 1
            while offset < data.count {
                let end = min(data.count, offset + step)
                hasher.update(data[offset..<end])
                offset = end
                step = step * 3 + 1
            }
            #expect(hasher.finish().hex == expected, "size \(size)")
            // In one go: the host's libcrypto (curl's libssl3 brings it), the same digest as ours.
            #expect(Checksum.of(data, kind: kind).hex == expected, "size \(size)")
            #expect(try Checksum.of(file: path, kind: kind).hex == expected)
        }
    }

    @Test func inMemoryDigestsAreTheHostLibcryptos() {
        #expect(Checksum.usesHostLibcrypto, "libcrypto.so.3 (libssl3, which curl needs) is on every builder")
    }

    @Test func parsesMetadataTypes() throws {
        let sha = try Checksum(metadataType: "sha", value: "A9993E364706816ABA3E25717850C26C9CD0D89D")
        #expect(sha.kind == .sha1)
        #expect(sha.hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(try Checksum(metadataType: "sha256", value: String(repeating: "0", count: 64)).kind == .sha256)
        #expect(throws: FetchError.self) { try Checksum(metadataType: "md5", value: "00") }
        #expect(throws: FetchError.self) { try Checksum(.sha256, hex: "xyz") }
        do {
            _ = try Checksum(metadataType: "md5", value: "00")
        } catch {
            #expect("\(error)".contains("unsupported checksum type"))
        }
    }

    @Test func cacheLayoutAndStore() throws {
        let fixture = try FetchFixture()
        let cache = try fixture.cache()
        let data = Data("hello cache".utf8)
        let sum = Checksum.of(data, kind: .sha256)
        #expect(!cache.contains(sum))
        let path = try cache.store(data, as: sum)
        #expect(path.path == fixture.cacheRoot.path + "/blobs/sha256/" + sum.hex)
        #expect(cache.contains(sum, size: Int64(data.count)))
        #expect(!cache.contains(sum, size: 3))
        #expect(try Data(contentsOf: path) == data)
        // Blobs are read-only so a hard link into a local mirror cannot change them.
        let mode = try FileManager.default.attributesOfItem(atPath: path.path)[.posixPermissions] as? Int
        #expect(mode == 0o444)
        #expect(throws: FetchError.self) { try cache.store(Data("other".utf8), as: sum) }
        let meta = try cache.metadataDirectory(release: "6.9", mirror: URL(string: "http://127.0.0.1:1/")!)
        #expect(meta.path.hasPrefix(fixture.cacheRoot.path + "/metadata/6.9-"))
        #expect(try cache.metadataDirectory(release: "6.9", mirror: URL(string: "http://vault.centos.org/")!) != meta)
    }

    @Test func progressLine() {
        let p = FetchProgress(bytesDone: 37_500_000, bytesTotal: 120_000_000, filesDone: 41, filesTotal: 150, bytesPerSecond: 11_200_000)
        #expect(p.line == "41/150 files, 37.5/120.0 MB (31%), 11.2 MB/s")
    }
}
