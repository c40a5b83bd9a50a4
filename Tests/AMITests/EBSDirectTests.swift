import Foundation
import Testing
@testable import AMI
import Host
#if canImport(Glibc)
    import Glibc
#endif

@Suite struct EBSBlockTests {
    let mib: Int64 = 1 << 20

    @Test func candidateBlocksCoverEveryExtentOnceAndStopAtTheFileEnd() {
        let b = EBSBlocks.blockSize
        // One byte in block 0; blocks 2-3 exactly; an extent ending inside block 5 and one starting there; beyond EOF ignored.
        let extents: [Range<Int64>] = [4 * b + 100..<5 * b + 1, 0..<1, 2 * b..<4 * b, 5 * b + 10..<5 * b + 20, 10 * b..<20 * b]
        #expect(EBSBlocks.candidateBlocks(dataExtents: extents, fileSize: 10 * b) == [0, 2, 3, 4, 5])
        #expect(EBSBlocks.candidateBlocks(dataExtents: [], fileSize: 10 * b) == [])
        // A short file's last partial block counts.
        #expect(EBSBlocks.candidateBlocks(dataExtents: [0..<(b + 7)], fileSize: b + 7) == [0, 1])
    }

    @Test func volumeSizeIsTheImageRoundedUpToGiB() {
        let gib: Int64 = 1 << 30
        #expect(EBSBlocks.volumeSizeGiB(bytes: 0) == 1)
        #expect(EBSBlocks.volumeSizeGiB(bytes: 1) == 1)
        #expect(EBSBlocks.volumeSizeGiB(bytes: gib) == 1)
        #expect(EBSBlocks.volumeSizeGiB(bytes: gib + 1) == 2)
        #expect(EBSBlocks.volumeSizeGiB(bytes: 8 * gib) == 8)
        #expect(EBSBlocks.volumeSizeGiB(bytes: 1_572_864_000) == 2)
    }

    @Test func zeroCheck() {
        var bytes = [UInt8](repeating: 0, count: Int(EBSBlocks.blockSize))
        #expect(bytes.withUnsafeBytes { EBSBlocks.isAllZero($0) })
        bytes[bytes.count - 1] = 1
        #expect(!bytes.withUnsafeBytes { EBSBlocks.isAllZero($0) })
        bytes[bytes.count - 1] = 0
        bytes[0] = 0x80
        #expect(!bytes.withUnsafeBytes { EBSBlocks.isAllZero($0) })
    }

    /// A sparse file: data in blocks 0 and 100 (partly), explicit zeros in block 5 (a data extent, all zero), a hole elsewhere.
    static func makeSparseFile(size: Int64) throws -> String {
        let path = NSTemporaryDirectory() + "/ebs-scan-\(UUID().uuidString).img"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, off_t(size)) == 0)
        func write(_ bytes: [UInt8], at offset: Int64) { _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) } }
        write([0xEB, 0x63, 0x90], at: 0)
        write([UInt8](repeating: 0, count: Int(EBSBlocks.blockSize)), at: 5 * EBSBlocks.blockSize)
        write([UInt8](repeating: 7, count: 4096), at: 100 * EBSBlocks.blockSize + 8192)
        return path
    }

    @Test func scanFindsTheNonZeroBlocksOfASparseFile() throws {
        let size: Int64 = 200 * EBSBlocks.blockSize + 123
        let path = try Self.makeSparseFile(size: size)
        defer { unlink(path) }
        let scan = try EBSBlocks.scan(path: path)
        #expect(scan.size == size)
        #expect(scan.blocks == [0, 100])
        #expect(scan.zeroBlocksSkipped >= 1, "the explicitly written zero block is a data extent, not sent")
        #expect(scan.volumeSizeGiB == 1)
        // The extents SEEK_DATA reports leave the holes out (the file is sparse on this filesystem).
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let extents = try EBSBlocks.dataExtents(fd: fd, size: size)
        #expect(extents.reduce(Int64(0)) { $0 + ($1.upperBound - $1.lowerBound) } < size / 10)
    }

    @Test func scanRefusesWhatIsNotAFile() {
        #expect(throws: AMIError.imageUnreadable(path: "/nonexistent/x.img", reason: "No such file or directory")) {
            try EBSBlocks.scan(path: "/nonexistent/x.img")
        }
        #expect(throws: AMIError.imageUnreadable(path: "/tmp", reason: "not a regular file")) { try EBSBlocks.scan(path: "/tmp") }
    }
}

@Suite struct EBSChecksumTests {
    // Reference values from Python's hashlib: b64(sha256(block)) and b64(sha256(d0 + d1)) of the raw digests.
    let one = Data(repeating: 1, count: 524_288), two = Data(repeating: 2, count: 524_288)

    @Test func blockChecksumIsBase64SHA256() {
        #expect(EBSChecksum.base64(EBSChecksum.digest(one)) == "M6FQvOsTwamSIx5ltPrRaBUhL8Bs20CJltMu6yzvnrs=")
        #expect(EBSChecksum.base64(EBSChecksum.digest(two)) == "Ioxb8/mw3beyMReNfgZ6/5ZqGRsfzT7Q4uNx7KM/zfw=")
    }

    @Test func linearAggregateHashesTheRawDigestsInBlockIndexOrder() {
        let d1 = EBSChecksum.digest(one), d2 = EBSChecksum.digest(two)
        #expect(EBSChecksum.aggregate([3: d1, 9: d2]) == "fccGN1xyY7l5uqsw58BLULbsU8thbz9pDvzr9oCk5yk=")
        #expect(EBSChecksum.aggregate([9: d1, 3: d2]) == "mKjXmpJh/aJ92b+JQBuwr3zEC+Zmi3I1WqSaC5e2STk=", "order is by block index")
        #expect(EBSChecksum.bytes(hex: "00ff10") == [0, 255, 16])
    }

    @Test func argumentLists() {
        #expect(
            EBSArgs.completeSnapshot(snapshotID: "snap-1", changedBlocks: 7, checksum: "x=") == [
                "--snapshot-id", "snap-1", "--changed-blocks-count", "7", "--checksum", "x=", "--checksum-algorithm", "SHA256",
                "--checksum-aggregation-method", "LINEAR",
            ])
        #expect(
            EBSArgs.startSnapshot(volumeSizeGiB: 8, description: "d", tags: [Tag("k", "v")]) == [
                "--volume-size", "8", "--description", "d", "--tags", #"[{"Key":"k","Value":"v"}]"#, "--timeout", "60",
            ])
        let command = AWSContext(region: "us-east-1", endpointURL: "http://127.0.0.1:5000").ebs("list-snapshot-blocks", ["--snapshot-id", "s"])
        #expect(
            command.arguments == [
                "ebs", "list-snapshot-blocks", "--snapshot-id", "s", "--output", "json", "--region", "us-east-1",
                "--endpoint-url", "http://127.0.0.1:5000",
            ])
    }

    @Test func progressLine() {
        #expect(UploadProgress(blocksDone: 0, blocksTotal: 700, seconds: 0).line == "upload: 0/700 blocks, 0.0/367.0 MB, 0.0 MB/s, ETA ?")
        #expect(UploadProgress(blocksDone: 100, blocksTotal: 700, seconds: 10).line == "upload: 100/700 blocks, 52.4/367.0 MB, 5.2 MB/s, ETA 60 s")
        #expect(AMIError.callFailed(call: "ebs complete-snapshot", detail: "x").description == "'aws ebs complete-snapshot' failed: x")
        #expect(AMIError.callFailed(call: "create-snapshot", detail: "x").description == "'aws ec2 create-snapshot' failed: x")
    }
}

@Suite(.serialized) struct EBSUploadTests {
    func options(_ fake: FakeEC2, clock: FakeClock) -> RegisterOptions {
        var o = RegisterOptions.forTests(buildID: "b-1", clock: clock)
        o.upload.jobs = 3
        o.makeBlockSender = { _ in fake }
        o.manifestPath = "/srv/c69.manifest.json"
        o.manifestSHA256 = String(repeating: "ab", count: 32)
        o.sbomPath = "/srv/c69.spdx.json"
        o.sbomSHA256 = String(repeating: "cd", count: 32)
        return o
    }

    @Test func anImageFileBecomesASnapshotOfItsNonZeroBlocksThenAnAMI() throws {
        let size: Int64 = 3 * (1 << 30) + 5 // rounds up to 4 GiB
        let path = try EBSBlockTests.makeSparseFile(size: size)
        defer { unlink(path) }
        let fake = FakeEC2(), clock = FakeClock()
        let checked = Locked<[String]>([])
        var o = options(fake, clock: clock)
        o.readable = path
        o.readImage = { path in
            checked.withLock { $0.append(path) }
            return ImageReading(bootsOn: "xen", nitro: false, summary: "Xen only")
        }
        let result = try AMIRegistrar.register(target: .image(path), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
        #expect(checked.value == [path], "the image check ran once, first")
        let ops = fake.operations
        #expect(ops.first == "describe-images" && ops[1] == "start-snapshot")
        #expect(fake.blockPuts.sorted() == [0, 100])
        #expect(Array(ops.drop { $0 != "complete-snapshot" }.prefix(2)) == ["complete-snapshot", "describe-snapshots"])
        let snap = result.primary.snapshotId
        let sent = try #require(fake.blocks[snap])
        #expect(Set(sent.keys) == [0, 100])
        // What was sent is the file's bytes, each with its checksum; the completion has the count and the aggregate.
        let file = try #require(FileHandle(forReadingAtPath: path))
        var digests: [Int: [UInt8]] = [:]
        for (index, (data, checksum)) in sent {
            try file.seek(toOffset: UInt64(index) * UInt64(EBSBlocks.blockSize))
            #expect(data == file.readData(ofLength: Int(EBSBlocks.blockSize)))
            digests[index] = EBSChecksum.digest(data)
            #expect(checksum == EBSChecksum.base64(digests[index]!))
        }
        #expect(fake.completions[snap]?.0 == 2)
        #expect(fake.completions[snap]?.1 == EBSChecksum.aggregate(digests))
        #expect(fake.snapshots[snap]?.size == 4)
        #expect(fake.snapshots[snap]?.tags.contains(Tag(TagKey.manifestSHA256, String(repeating: "ab", count: 32))) == true)
        #expect(fake.snapshots[snap]?.tags.contains(Tag(TagKey.sbomSHA256, String(repeating: "cd", count: 32))) == true)
        let register = fake.runner.commands.first { $0.arguments[1] == "register-image" }!.arguments
        let mapping = register[register.firstIndex(of: "--block-device-mappings")! + 1]
        #expect(mapping.contains("\"VolumeSize\":4") && mapping.contains(snap))
        #expect(result.primary.manifest == "/srv/c69.manifest.json")
        #expect(result.primary.sbom == "/srv/c69.spdx.json")
    }

    @Test func aBlockThatKeepsFailingDeletesTheSnapshotAndNamesTheBlock() throws {
        let path = try EBSBlockTests.makeSparseFile(size: 200 * EBSBlocks.blockSize)
        defer { unlink(path) }
        let fake = FakeEC2(), clock = FakeClock()
        fake.failBlocks = [100]
        var o = options(fake, clock: clock)
        o.upload.attempts = 3
        do {
            _ = try AMIRegistrar.register(target: .image(path), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
            Issue.record("register succeeded")
        } catch let error as StepFailed {
            let text = error.description
            #expect(
                text.hasPrefix(
                    "step 'upload-image' failed: block 100 (offset 52428800) was not accepted after 3 tries: PutSnapshotBlock answered HTTP 500 InternalServerException: injected"
                ), "\(text)")
            #expect(text.contains("deleted what this run created: snapshot 'snap-"))
        }
        #expect(fake.blockPuts.filter { $0 == 100 }.count == 3, "block 100 three times")
        #expect(fake.blockPuts.count == 4, "block 0 once, block 100 three times")
        #expect(clock.sleeps == [1, 2], "backoff between tries")
        #expect(fake.snapshots.isEmpty, "the pending snapshot was deleted")
        #expect(!fake.operations.contains("complete-snapshot"))
        #expect(!fake.operations.contains("register-image"))
    }

    @Test func aTooSmallVolumeSizeOrAFailedCheckStopsBeforeAnyCall() throws {
        let path = try EBSBlockTests.makeSparseFile(size: 3 * (1 << 30))
        defer { unlink(path) }
        let fake = FakeEC2(), clock = FakeClock()
        var o = options(fake, clock: clock)
        o.volumeSize = 2
        #expect(throws: AMIError.imageTooBig(requested: 2, needed: 3)) {
            try AMIRegistrar.register(target: .image(path), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
        }
        o.volumeSize = nil
        o.readable = path
        o.readImage = { _ in throw AMIError.imageCheckFailed(image: "x", check: "hygiene", reason: "stray files") }
        #expect(throws: AMIError.imageCheckFailed(image: "x", check: "hygiene", reason: "stray files")) {
            try AMIRegistrar.register(target: .image(path), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
        }
        #expect(fake.operations.isEmpty)
    }
}

@Suite struct PackageColumnTests {
    @Test func theTableCanCarryEachAMIsPackageCount() {
        let entries = [
            AMIEntry(release: "6.9", region: "r", variant: "ena", id: "ami-2", packages: 185),
            AMIEntry(release: "6.9", region: "r", variant: "plain", id: "ami-1", packages: 184),
            AMIEntry(release: "6.10", region: "r", variant: "plain", id: "ami-3"),
        ]
        #expect(
            AMITable.markdown(entries, packages: true) == """
                Region: r

                | version  | AMI ID | packages |
                | ------------- | ------------- | ------------- |
                | CentOS 6.9  |  ami-1, ami-2 (*1) | 184, 185 |
                | CentOS 6.10  |  ami-3  | ? |

                \(AMITable.footnote)
                """)
        #expect(!AMITable.markdown(entries).contains("packages"), "the seed README's form by default")
    }

    @Test func aRecordKeepsItsManifestPath() throws {
        var record = AMIRecord(release: "6.9", region: "r", variant: .plain, amiId: "ami-1", snapshotId: "snap-1", name: "n", date: "d", buildId: "b")
        record.manifest = "/srv/c69.manifest.json"
        record.sbom = "/srv/c69.spdx.json"
        let file = ResultsFile(amis: [record])
        #expect(try ResultsFile.decode(file.encoded(), path: "x").amis.first?.manifest == "/srv/c69.manifest.json")
        #expect(try ResultsFile.decode(file.encoded(), path: "x").amis.first?.sbom == "/srv/c69.spdx.json")
    }
}
