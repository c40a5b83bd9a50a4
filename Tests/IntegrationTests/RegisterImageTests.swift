import AMI
import Foundation
import Install
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// `register VERSION IMAGE.img`: the built 6.9 test image goes into a snapshot through the
/// EBS direct APIs of moto_server (on 127.0.0.1, behind scripts/sigv4-proxy.py, which checks
/// every signature and logs each PutSnapshotBlock), then becomes an AMI.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct RegisterImageTests {
    /// The aws calls go through scripts/fake-aws (which logs them), then the real CLI; the blocks go from the tool itself.
    func environment(_ dir: String, _ extra: [String: String] = [:]) throws -> [String: String] {
        let realAWS = try #require(MotoServer.which("aws"), "the aws CLI is not installed")
        let path = Integration.repoRoot.appendingPathComponent("scripts/fake-aws").path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return MotoServer.awsEnvironment.merging(["PATH": path, "REAL_AWS": realAWS, "FAKE_AWS_LOG": dir + "/aws-calls"]) { $1 }.merging(extra) { $1 }
    }

    /// The calls the tool made, as argument lists.
    func calls(_ dir: String) -> [[String]] {
        let text = (try? String(contentsOfFile: dir + "/aws-calls", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).dropLast().map(String.init) }
    }

    func value(_ flag: String, _ args: [String]) -> String? {
        guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
        return args[i + 1]
    }

    /// The indices of the image's 512 KiB blocks that hold a non-zero byte, counted by reading every byte (Python).
    func nonZeroBlocks(_ image: String) throws -> [Int] {
        let python = try #require(MotoServer.which("python3"))
        let script = """
            import sys
            zero = bytes(524288); i = 0
            with open(sys.argv[1], "rb") as f:
                while True:
                    b = f.read(524288)
                    if not b: break
                    if b != zero[:len(b)]: print(i)
                    i += 1
            """
        let out = try Integration.run(python, ["-c", script, image])
        try #require(out.status == 0, "\(out.stderr)")
        return out.stdout.split(separator: "\n").compactMap { Int($0) }
    }

    func snapshots(_ moto: MotoServer, build: String) throws -> [[String: Any]] {
        let out = try moto.ec2(["describe-snapshots", "--owner-ids", "self", "--filters", "Name=tag:centos6-ami:build-id,Values=\(build)"])
        return out["Snapshots"] as? [[String: Any]] ?? []
    }

    @Test func theBuiltImageBecomesASnapshotOfExactlyItsNonZeroBlocksAndAnAMI() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("register-image")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let proxy = try SigV4Proxy(upstream: moto, directory: dir)
        defer { proxy.stop() }
        let mtime = try FileManager.default.attributesOfItem(atPath: built.image)[.modificationDate] as? Date

        let out = try Integration.tool(
            [
                "register", "6.9", built.image, "--build-id", "it-img", "--upload-jobs", "8", "--endpoint-url", proxy.endpoint,
                "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register.log",
            ],
            environment: try environment(dir))
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("blocks of 512 KiB hold data"), "\(out.stderr)")
        #expect(out.stderr.contains("upload: "), "a progress line")
        let results = try ResultsFile.load(path: dir + "/results.json")
        let record = try #require(results.amis.first)
        #expect(results.amis.count == 1)
        #expect(record.release == "6.9" && record.buildId == "it-img" && record.variant == .plain)
        #expect(out.stdout == "ap-northeast-1\t\(record.amiId)\t\(record.name)\n")
        let snapshot = record.snapshotId

        // The snapshot holds exactly the image's non-zero blocks, each sent once.
        let expected = try nonZeroBlocks(built.image)
        #expect(expected.count > 100, "a built image has data")
        let listed = try #require(try moto.ebs(["list-snapshot-blocks", "--snapshot-id", snapshot])["Blocks"] as? [[String: Any]])
        let listedIndices = listed.compactMap { ($0["BlockIndex"] as? NSNumber)?.intValue }
        #expect(listedIndices.sorted() == expected, "ListSnapshotBlocks lists exactly the non-zero 512 KiB blocks")
        let log = calls(dir)
        #expect(!log.contains { $0.count > 1 && $0[1] == "put-snapshot-block" }, "no aws process per block")
        let puts = proxy.puts
        #expect(puts.count == expected.count, "no block sent twice, none sent that is all zeros")
        #expect(puts.allSatisfy { $0.status == "201" && $0.signature == "ok" }, "each accepted, signed as botocore signs it")
        #expect(puts.allSatisfy { $0.dataLength == "524288" && $0.algorithm == "SHA256" && $0.bodyLength == 524_288 && $0.checksumOK == true })

        // A sample of blocks read back equals the file's bytes (first, last and three between).
        let file = try #require(FileHandle(forReadingAtPath: built.image))
        defer { try? file.close() }
        let tokens = Dictionary(
            listed.compactMap { b -> (Int, String)? in
                guard let i = (b["BlockIndex"] as? NSNumber)?.intValue, let t = b["BlockToken"] as? String else { return nil }
                return (i, t)
            }, uniquingKeysWith: { a, _ in a })
        let sample = [expected.first!, expected[expected.count / 4], expected[expected.count / 2], expected[3 * expected.count / 4], expected.last!]
        for index in sample {
            let got = dir + "/block-\(index)"
            let answer = try moto.ebs([
                "get-snapshot-block", "--snapshot-id", snapshot, "--block-index", String(index), "--block-token", tokens[index] ?? "", got,
            ])
            try file.seek(toOffset: UInt64(index) * 524_288)
            let want = file.readData(ofLength: 524_288)
            #expect(FileManager.default.contents(atPath: got) == want, "block \(index) reads back as the file's bytes")
            #expect(answer["Checksum"] as? String == EBSChecksum.base64(EBSChecksum.digest(want)))
        }

        // StartSnapshot: 8 GiB (the image's size), tagged; CompleteSnapshot: the count and the LINEAR aggregate.
        let start = try #require(log.first { $0.count > 1 && $0[0] == "ebs" && $0[1] == "start-snapshot" })
        #expect(value("--volume-size", start) == "8")
        #expect(value("--tags", start)?.contains("\"Key\":\"centos6-ami:build-id\",\"Value\":\"it-img\"") == true)
        let complete = try #require(log.first { $0.count > 1 && $0[0] == "ebs" && $0[1] == "complete-snapshot" })
        #expect(value("--changed-blocks-count", complete) == String(expected.count))
        #expect(value("--checksum-aggregation-method", complete) == "LINEAR")
        var digests: [Int: [UInt8]] = [:]
        for put in puts {
            if let i = put.block, let c = put.checksum, let d = Data(base64Encoded: c) { digests[i] = [UInt8](d) }
        }
        #expect(value("--checksum", complete) == EBSChecksum.aggregate(digests))
        let tagged = try snapshots(moto, build: "it-img")
        #expect(tagged.map { $0["SnapshotId"] as? String } == [snapshot], "tagged, findable by build id")

        // The build's manifest: its path in the results file, its sha256 in a tag of the snapshot and the AMI.
        let manifest = built.dir + "/c69.manifest.json"
        #expect(record.manifest == manifest)
        let manifestSum = try Integration.run("/usr/bin/sha256sum", [manifest]).stdout.split(separator: " ").first.map(String.init) ?? "?"
        let snapTags = (tagged.first?["Tags"] as? [[String: String]]) ?? []
        #expect(snapTags.contains { $0["Key"] == "centos6-ami:manifest-sha256" && $0["Value"] == manifestSum }, "\(snapTags)")
        let tagCalls = log.filter { $0.count > 1 && $0[1] == "create-tags" && $0.contains(record.amiId) }
        #expect(tagCalls.contains { value("--tags", $0)?.contains(manifestSum) == true })
        let withPackages = try Integration.tool(["table", "--from", dir + "/results.json", "--packages"])
        let count = (try? JSONDecoder().decode(BuildManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifest))))?.packages.count ?? -1
        #expect(withPackages.stdout.contains("| CentOS 6.9  |  \(record.amiId)  | \(count) |"), "\(withPackages.stdout)")

        // The build's SPDX SBOM: its path in the results file, its sha256 in a tag of the snapshot and the AMI.
        let sbom = built.dir + "/c69.spdx.json"
        #expect(record.sbom == sbom)
        let sbomSum = try Integration.run("/usr/bin/sha256sum", [sbom]).stdout.split(separator: " ").first.map(String.init) ?? "?"
        #expect(snapTags.contains { $0["Key"] == "centos6-ami:sbom-sha256" && $0["Value"] == sbomSum }, "\(snapTags)")
        #expect(tagCalls.contains { value("--tags", $0)?.contains(sbomSum) == true })
        // A record without a manifest: table --packages counts the SBOM's packages, the same number.
        var noManifest = results
        noManifest.amis[0].manifest = nil
        try noManifest.encoded().write(to: URL(fileURLWithPath: dir + "/results-sbom-only.json"))
        let fromSBOM = try Integration.tool(["table", "--from", dir + "/results-sbom-only.json", "--packages"])
        #expect(fromSBOM.stdout.contains("| CentOS 6.9  |  \(record.amiId)  | \(count) |"), "\(fromSBOM.stdout)")

        // RegisterImage with that snapshot and the usual flags; the root volume defaults to the snapshot's 8 GiB.
        let registration = try #require(log.first { $0.count > 1 && $0[0] == "ec2" && $0[1] == "register-image" })
        #expect(value("--architecture", registration) == "x86_64")
        #expect(value("--virtualization-type", registration) == "hvm")
        #expect(value("--boot-mode", registration) == "legacy-bios")
        #expect(value("--imds-support", registration) == "v2.0")
        #expect(value("--root-device-name", registration) == "/dev/sda1")
        #expect(!registration.contains("--ena-support"))
        let mapping = try #require(value("--block-device-mappings", registration))
        #expect(mapping == #"[{"DeviceName":"/dev/sda1","Ebs":{"DeleteOnTermination":true,"SnapshotId":"\#(snapshot)","VolumeSize":8,"VolumeType":"gp3"}}]"#)
        let images = try #require(try moto.ec2(["describe-images", "--image-ids", record.amiId])["Images"] as? [[String: Any]])
        #expect(images.first?["Name"] as? String == record.name)

        let table = try Integration.tool(["table", "--from", dir + "/results.json"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("| CentOS 6.9  |  \(record.amiId)  |"), "\(table.stdout)")

        // Read-only throughout: the image is unchanged and nothing stays mounted.
        #expect(try FileManager.default.attributesOfItem(atPath: built.image)[.modificationDate] as? Date == mtime)
        #expect(Integration.mounts(under: "/tmp/centos6-ami-image-check").isEmpty)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func aBlockThatFailsDeletesTheSnapshotAndTheErrorNamesTheStepAndTheBlock() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("register-image-fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let blocks = try nonZeroBlocks(built.image)
        let failing = blocks[12] // after some blocks were sent
        let proxy = try SigV4Proxy(upstream: moto, directory: dir, faults: ["--fail-block", String(failing)])
        defer { proxy.stop() }
        let out = try Integration.tool(
            [
                "register", "6.9", built.image, "--build-id", "it-img-fail", "--upload-jobs", "2", "--endpoint-url", proxy.endpoint,
                "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register.log",
            ],
            environment: try environment(dir))
        #expect(out.status == 1)
        let offset = failing * 524_288
        #expect(
            out.stderr.contains(
                "error: step 'upload-image' failed: block \(failing) (offset \(offset)) was not accepted after 4 tries: PutSnapshotBlock answered HTTP 500 InternalServerException"
            ), "\(out.stderr)")
        #expect(out.stderr.contains("injected by scripts/sigv4-proxy.py"))
        #expect(out.stderr.contains("deleted what this run created: snapshot 'snap-"), "\(out.stderr)")
        let log = calls(dir)
        let puts = proxy.puts
        #expect(puts.filter { $0.block == failing }.count == 4, "tried 4 times")
        #expect(puts.count >= 13 && puts.count < blocks.count, "blocks before it were sent; the upload stopped")
        #expect(!log.contains { $0.count > 1 && ($0[1] == "complete-snapshot" || $0[1] == "register-image") })
        #expect(try snapshots(moto, build: "it-img-fail").isEmpty, "the snapshot is gone")
        #expect(!FileManager.default.fileExists(atPath: dir + "/results.json"), "nothing recorded")
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func theManifestListsExactlyTheImagesRpmDatabaseWithTheCacheBlobsChecksums() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let path = built.dir + "/c69.manifest.json"
        #expect(built.result.stderr.contains("manifest: \(path) ("), "install names it")
        let manifest = try JSONDecoder().decode(BuildManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(manifest.release == "6.9" && manifest.kernel == "2.6.32-696.el6")
        // 6.9 without --ena: the install's verdict (Xen only) and no ENA.
        #expect(manifest.bootVerdict == "xen" && manifest.enaVersion == nil, "\(String(describing: manifest.bootVerdict))")
        #expect(manifest.mirror.hasPrefix("http://127.0.0.1:"))
        #expect(!manifest.toolVersion.isEmpty)
        let repomd = try String(contentsOfFile: TestVault.repo("6.9") + "/repodata/repomd.xml", encoding: .utf8)
        let revision = repomd.range(of: #"(?<=<revision>)[^<]+"#, options: .regularExpression).map { String(repomd[$0]) }
        #expect(manifest.repomdRevision == revision && revision != nil)

        // The image's own rpm database (the stand-in's rpm reads it; copied out so nothing is written to the image).
        let db = try Integration.scratchDirectory("manifest-rpmdb")
        defer { try? FileManager.default.removeItem(atPath: db) }
        try built.withMountedReadOnly { mnt in
            let copy = try Integration.run("/bin/cp", ["-a", mnt + "/var/lib/rpm/.", db])
            try #require(copy.status == 0, "\(copy.stderr)")
        }
        let query = try Integration.run("/usr/bin/rpm", ["--dbpath", db, "-qa", "--qf", "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"])
        try #require(query.status == 0, "\(query.stderr)")
        // gpg-pubkey is the imported key, not a package.
        let inDatabase = InstalledPackage.parse(query.stdout).map(\.nevra)
        #expect(inDatabase.count > 100)
        #expect(manifest.packages.map(\.nevra).sorted() == inDatabase.sorted(), "exactly the rpm database's packages")

        // Each sha256 is the verified cache blob's (recomputed here), each signed by the test vault's key.
        let blobs = manifest.packages.map { SharedCache.path + "/blobs/sha256/" + ($0.sha256 ?? "missing") }
        let sums = try Integration.run("/usr/bin/sha256sum", blobs)
        #expect(sums.status == 0, "every package has its blob in the cache: \(sums.stderr)")
        let lines = sums.stdout.split(separator: "\n").map { $0.split(separator: " ", maxSplits: 1).map(String.init) }
        #expect(lines.count == manifest.packages.count)
        for (package, line) in zip(manifest.packages, lines) {
            #expect(line.first == package.sha256, "\(package.nevra)")
        }
        let key = try Integration.run("/usr/bin/gpg", ["--homedir", db, "--with-colons", "--import-options", "show-only", "--import", TestVault.key])
        let keyID = key.stdout.split(separator: "\n").first { $0.hasPrefix("pub:") }?.split(separator: ":", omittingEmptySubsequences: false)[4].lowercased()
        #expect(keyID?.count == 16)
        #expect(manifest.packages.allSatisfy { $0.signingKeyID == keyID }, "signed by the vault's key")
        #expect(manifest.packages.allSatisfy { $0.location?.hasPrefix("Packages/") == true })
    }
}
