import Foundation
import SBOM
import Testing

/// The SBOMs of a built image, checked by the formats' reference validators (pinned in
/// scripts/test-requirements.txt): pyspdxtools for SPDX 2.3, cyclonedx-python-lib's strict
/// JSON validator (scripts/validate-cyclonedx.py) for CycloneDX 1.5. They reuse the run's
/// shared 6.9 image (InstalledImage) and --ena image (ENAImage): no install of their own.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct SBOMIntegrationTests {
    static let cycloneDXValidator = Integration.repoRoot.appendingPathComponent("scripts/validate-cyclonedx.py").path

    /// Both validators on both files; each failure says which file and why.
    static func expectValid(spdx: String, cyclonedx: String) throws {
        let s = try Integration.run("pyspdxtools", ["-i", spdx])
        #expect(s.status == 0, "pyspdxtools -i \(spdx): \(s.stdout) \(s.stderr)")
        // The python3 on PATH: the one setup-host.sh installed the pinned packages into.
        let c = try Integration.run("python3", [cycloneDXValidator, cyclonedx])
        #expect(c.status == 0 && c.stdout.contains("valid CycloneDX 1.5"), "\(c.stdout) \(c.stderr)")
    }

    /// The purls of an SPDX document's rpm packages and the CycloneDX document's components.
    static func purls(spdx: String) throws -> [String] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spdx))) as! [String: Any]
        return (json["packages"] as! [[String: Any]]).flatMap { ($0["externalRefs"] as? [[String: Any]]) ?? [] }
            .filter { $0["referenceType"] as? String == "purl" }.compactMap { $0["referenceLocator"] as? String }.sorted()
    }
    static func components(cyclonedx: String) throws -> [[String: Any]] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cyclonedx))) as! [String: Any]
        return json["components"] as! [[String: Any]]
    }

    /// The image's own rpm (in a chroot of its read-only mount): NEVRA (epoch only when set) and the
    /// purl made here from the raw fields, independently of the tool's code.
    static func rpmQA(root: String, release: String) throws -> (nevras: [String], purls: [String]) {
        let out = try Integration.run("/usr/sbin/chroot", [root, "rpm", "-qa", "--qf", "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"])
        #expect(out.status == 0, "\(out.stderr)")
        var nevras: [String] = [], purls: [String] = []
        let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        for line in out.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5, f[0] != "gpg-pubkey" else { continue }
            let epoch = f[1] == "(none)" || f[1] == "0" ? nil : f[1]
            nevras.append("\(f[0])-\(epoch.map { "\($0):" } ?? "")\(f[2])-\(f[3]).\(f[4])")
            let enc = { (s: String) in s.addingPercentEncoding(withAllowedCharacters: unreserved)! }
            purls.append("pkg:rpm/centos/\(enc(f[0]))@\(enc(f[2] + "-" + f[3]))?arch=\(f[4])&distro=centos-\(release)" + (epoch.map { "&epoch=\($0)" } ?? ""))
        }
        return (nevras.sorted(), purls.sorted())
    }

    @Test func aBuiltImagesSBOMsAreValidAndListExactlyItsRpmDatabase() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let spdx = built.dir + "/c69.spdx.json", cdx = built.dir + "/c69.cdx.json"
        #expect(built.result.stderr.contains("sbom: \(spdx) (SPDX 2.3,") && built.result.stderr.contains("sbom: \(cdx) (CycloneDX 1.5,"))
        try Self.expectValid(spdx: spdx, cyclonedx: cdx)
        let (nevras, purls) = try built.withMountedReadOnly { try Self.rpmQA(root: $0, release: "6.9") }
        #expect(nevras.count > 150, "a built image has its packages")
        #expect(try Self.purls(spdx: spdx) == purls, "SPDX: exactly rpm -qa's packages")
        let components = try Self.components(cyclonedx: cdx)
        #expect(components.compactMap { $0["purl"] as? String }.sorted() == purls, "CycloneDX: exactly rpm -qa's packages")
        let nevraProperty = components.compactMap { ($0["properties"] as? [[String: String]])?.first { $0["name"] == "centos6-ami:rpm:nevra" }?["value"] }
        #expect(nevraProperty.sorted() == nevras)

        // Each package: its file's sha256 as the manifest has it, the header's license and vendor.
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: built.dir + "/c69.manifest.json"))) as! [String: Any]
        let sha256 = Dictionary(
            uniqueKeysWithValues: (manifest["packages"] as! [[String: Any]]).compactMap { p -> (String, String)? in
                guard let n = p["nevra"] as? String, let s = p["sha256"] as? String else { return nil }
                return (n, s)
            })
        let bash = try #require(components.first { $0["name"] as? String == "bash" })
        let bashNEVRA = try #require(nevras.first { $0.hasPrefix("bash-") && !$0.hasPrefix("bash-completion") })
        #expect((bash["hashes"] as? [[String: String]])?.first?["content"] == sha256[bashNEVRA])
        #expect(bash["licenses"] != nil && (bash["supplier"] as? [String: String])?["name"]?.isEmpty == false)
        let spdxJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spdx))) as! [String: Any]
        let creators = (spdxJSON["creationInfo"] as? [String: Any])?["creators"] as? [String]
        #expect(creators?.first?.hasPrefix("Tool: centos6-ami-") == true)
        let root = try #require((spdxJSON["packages"] as! [[String: Any]]).first { $0["SPDXID"] as? String == "SPDXRef-Image" })
        #expect(root["name"] as? String == "c69" && root["versionInfo"] as? String == "6.9")
    }

    @Test func inspectSBOMOfTheSameImageGivesTheSamePackages() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("inspect-sbom")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spdx = try Integration.tool(["inspect", built.image, "--sbom", "spdx"])
        let cdx = try Integration.tool(["inspect", built.image, "--sbom", "cyclonedx"])
        #expect(spdx.status == 0 && cdx.status == 0, "\(spdx.stderr) \(cdx.stderr)")
        try Data(spdx.stdout.utf8).write(to: URL(fileURLWithPath: dir + "/i.spdx.json"))
        try Data(cdx.stdout.utf8).write(to: URL(fileURLWithPath: dir + "/i.cdx.json"))
        try Self.expectValid(spdx: dir + "/i.spdx.json", cyclonedx: dir + "/i.cdx.json")
        let installed = try Self.purls(spdx: built.dir + "/c69.spdx.json")
        #expect(try Self.purls(spdx: dir + "/i.spdx.json") == installed)
        #expect(try Self.components(cyclonedx: dir + "/i.cdx.json").compactMap { $0["purl"] as? String }.sorted() == installed)
        // Read-only: the image is unchanged, nothing of ours is left mounted or attached.
        try Integration.expectNothingLeft(built.dir, workDir: built.workDir)
        // The same from the mounted root directory.
        let fromDir = try built.withMountedReadOnly { try Integration.tool(["inspect", $0, "--sbom", "spdx"]) }
        try Data(fromDir.stdout.utf8).write(to: URL(fileURLWithPath: dir + "/d.spdx.json"))
        #expect(try Self.purls(spdx: dir + "/d.spdx.json") == installed, "\(fromDir.stderr)")
    }

    @Test func kmodENAIsTheBuildersWithItsSourceAndFileChecksums() throws {
        let ena = try ENAImage.shared()
        try #require(ena.result.status == 0, "the --ena install failed: \(ena.result.stderr)")
        let base = String(ena.image.dropLast(4))
        try Self.expectValid(spdx: base + ".spdx.json", cyclonedx: base + ".cdx.json")
        let kmod = try #require(try Self.components(cyclonedx: base + ".cdx.json").first { $0["name"] as? String == "kmod-ena" })
        #expect(kmod["type"] as? String == "device-driver" && (kmod["supplier"] as? [String: String])?["name"] == "centos6-ami")
        #expect(((kmod["hashes"] as? [[String: String]])?.first?["content"]?.count ?? 0) == 64, "the kmod-ena package file's sha256")
        let ancestor = try #require(((kmod["pedigree"] as? [String: Any])?["ancestors"] as? [[String: Any]])?.first)
        // The stand-in is a tree (--ena-source DIR), which has no archive: said so, no made-up checksum.
        #expect(ancestor["hashes"] == nil && (ancestor["description"] as? String)?.contains("source tree") == true)
        let spdx = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".spdx.json"))) as! [String: Any]
        let relationships = spdx["relationships"] as! [[String: String]]
        #expect(relationships.contains { $0["relationshipType"] == "GENERATED_FROM" && $0["spdxElementId"]?.contains("kmod-ena") == true })
    }

    /// Every SPDX id the license table maps to is one both reference validators know (CycloneDX
    /// checks `license.id` against its own copy of the SPDX list).
    @Test func everyMappedLicenseIsAcceptedByBothValidators() throws {
        let dir = try Integration.scratchDirectory("sbom-licenses")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let packages =
            Licenses.exact.keys.sorted().enumerated().map { i, name in
                SBOMPackage(name: "p\(i)", version: "1", release: "1.el6", arch: "x86_64", license: name, vendor: "CentOS")
            } + [
                SBOMPackage(
                    name: "compound", version: "1", release: "1", arch: "noarch", license: "(GPLv2+ or Artistic) and BSD with advertising and Public Domain")
            ]
        let input = SBOMInput(imageName: "licenses", release: "6.9", kernel: nil, toolVersion: "0", created: Date(), serial: UUID(), packages: packages)
        try SPDX.render(input).write(toFile: dir + "/l.spdx.json", atomically: true, encoding: .utf8)
        try CycloneDX.render(input).write(toFile: dir + "/l.cdx.json", atomically: true, encoding: .utf8)
        try Self.expectValid(spdx: dir + "/l.spdx.json", cyclonedx: dir + "/l.cdx.json")
    }

    /// A genuine EL6 Berkeley DB rpm database (made by genuine rpm 4.8 from genuine RHEL/CentOS 6
    /// packages, as GenuineRPMRuntimeTests lays it down) reads through bdb_ro exactly as rpm 4.8 reads it.
    @Test func aGenuineEL6BerkeleyDatabaseReadsAsRPM48ReadsIt() throws {
        let scratch = try Integration.scratchDirectory("sbom-bdb")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let root = scratch + "/root"
        let laid = try Integration.tool(
            ["rpm", "runtime"] + GenuineRPMRuntimeTests.keys + ["--into", root] + (try GenuineRPMRuntimeTests.candidates(scratch: scratch)))
        try #require(laid.status == 0, "\(laid.stderr)")
        let fixtures = try FileManager.default.contentsOfDirectory(atPath: GenuineRPMRuntimeTests.fixtures).filter {
            $0.hasSuffix(".rpm") && !$0.hasPrefix("glibc-")
        }
        try FileManager.default.createDirectory(atPath: root + "/tmp/p", withIntermediateDirectories: true)
        for name in fixtures { try FileManager.default.copyItem(atPath: GenuineRPMRuntimeTests.fixtures + "/" + name, toPath: root + "/tmp/p/" + name) }
        try FileManager.default.createDirectory(atPath: root + "/t/etc", withIntermediateDirectories: true)
        let install = try Integration.run(
            "/usr/sbin/chroot",
            [root, "/bin/rpm", "--root", "/t", "-i", "--justdb", "--nodeps", "--noscripts", "--nosignature"]
                + fixtures.map { "/tmp/p/" + $0 }, environment: GenuineRPMRuntimeTests.loaderPath)
        try #require(install.status == 0, "\(install.stderr)")
        #expect(
            FileManager.default.fileExists(atPath: root + "/t/var/lib/rpm/Packages")
                && !FileManager.default.fileExists(atPath: root + "/t/var/lib/rpm/rpmdb.sqlite"))
        let genuine = try Integration.run(
            "/usr/sbin/chroot", [root, "/bin/rpm", "--root", "/t", "-qa", "--qf", RPMQuery.format], environment: GenuineRPMRuntimeTests.loaderPath)
        #expect(genuine.status == 0, "\(genuine.stderr)")
        let expected = RPMQuery.parse(genuine.stdout)
        #expect(expected.count == fixtures.count && expected.contains { $0.vendor == "CentOS" && $0.headerSHA1?.count == 40 && $0.license != nil })

        try "CentOS release 6.9 (Final)\n".write(toFile: root + "/t/etc/redhat-release", atomically: true, encoding: .utf8)
        let out = try Integration.tool(["inspect", root + "/t", "--sbom", "spdx"])
        #expect(out.status == 0, "\(out.stderr)")
        try Data(out.stdout.utf8).write(to: URL(fileURLWithPath: scratch + "/bdb.spdx.json"))
        let s = try Integration.run("pyspdxtools", ["-i", scratch + "/bdb.spdx.json"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Self.purls(spdx: scratch + "/bdb.spdx.json") == expected.map { Purl.rpm($0, release: "6.9") }.sorted())
        // Every field as rpm 4.8 gives it: license, vendor, header SHA-1.
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as! [String: Any]
        let comments = (json["packages"] as! [[String: Any]]).compactMap { $0["comment"] as? String }
        for package in expected { #expect(comments.contains { $0.hasSuffix(package.headerSHA1 ?? "?") }, "\(package.nevra)") }
        // The database's files in the image are untouched (read through a copy).
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/t/var/lib/rpm").allSatisfy { !$0.hasPrefix("rpmdb.sqlite") })
    }
}
