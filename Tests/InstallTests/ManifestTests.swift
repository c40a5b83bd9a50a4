@testable import Fetch
import Foundation
@testable import Install
import RPM
import SBOM
@testable import Repository
import Testing

@Suite struct ManifestTests {
    func repo(_ name: String, epoch: Int = 0, _ version: String, _ release: String, sha256: Bool = true) throws -> RepoPackage {
        let sum =
            sha256
            ? try Checksum(.sha256, hex: String(repeating: String(name.count % 10), count: 64))
            : try Checksum(.sha1, hex: String(repeating: "a", count: 40))
        return RepoPackage(
            name: name, arch: "x86_64", evr: EVR(epoch: epoch, version: version, release: release), checksum: sum,
            packageSize: 1, installedSize: 1, location: "Packages/\(name)-\(version)-\(release).x86_64.rpm")
    }

    @Test func parsesTheRpmQueryLeavingOutImportedKeys() {
        let text = "bash\t(none)\t4.1.2\t48.el6\tx86_64\ngpg-pubkey\t(none)\tc105b9de\t4e0fd3a3\t(none)\nperl-Pod-Escapes\t1\t1.04\t144.el6\tx86_64\n"
        let parsed = InstalledPackage.parse(text)
        #expect(parsed.map(\.nevra) == ["bash-4.1.2-48.el6.x86_64", "perl-Pod-Escapes-1:1.04-144.el6.x86_64"])
        #expect(InstalledPackage.queryFormat == #"%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{LICENSE}\t%{VENDOR}\t%{SHA1HEADER}\n"#)
        let full = InstalledPackage.parse("bash\t(none)\t4.1.2\t48.el6\tx86_64\tGPLv3+\tCentOS\t1f2e\n")
        #expect(full.first?.license == "GPLv3+" && full.first?.vendor == "CentOS" && full.first?.headerSHA1 == "1f2e")
    }

    /// The SBOMs of a build: the rpm database's packages with the manifest's file sha256s; kmod-ena
    /// (no mirror's) with its own package file's sha256 and the source it was built from.
    @Test func theSBOMInputJoinsTheDatabaseAndTheManifest() throws {
        let bash = try repo("bash", "4.1.2", "48.el6")
        let installed = InstalledPackage.parse(
            "bash\t(none)\t4.1.2\t48.el6\tx86_64\tGPLv3+\tCentOS\t1f2e\nkmod-ena\t(none)\t2.9.1\t1\tx86_64\tGPLv2\tcentos6-ami\t3a4b\n")
        let manifest = BuildManifest.make(
            release: "6.9", kernel: "2.6.32-696.el6", mirror: "http://m", repomdRevision: nil, toolVersion: "0.1.0",
            enaVersion: "2.9.1", created: Date(timeIntervalSince1970: 0), installed: installed,
            repository: [bash], signingKeys: [:], sha256: { $0.checksum.hex })
        let source = BuiltSource(name: "amzn-drivers ena_linux", version: "2.9.1", url: "https://example.invalid/ena.tar.gz", archiveSHA256: "ee")
        let input = BuildSBOM.input(
            imageName: "c69", manifest: manifest, installed: installed, kmodENA: (source, "kk"),
            created: Date(timeIntervalSince1970: 0), serial: UUID())
        #expect(
            input.packages == [
                SBOMPackage(
                    name: "bash", version: "4.1.2", release: "48.el6", arch: "x86_64", license: "GPLv3+", vendor: "CentOS", headerSHA1: "1f2e",
                    fileSHA256: bash.checksum.hex),
                SBOMPackage(
                    name: "kmod-ena", version: "2.9.1", release: "1", arch: "x86_64", license: "GPLv2", vendor: "centos6-ami", headerSHA1: "3a4b",
                    fileSHA256: "kk", builtHere: source),
            ])
        #expect(input.release == "6.9" && input.kernel == "2.6.32-696.el6" && input.imageName == "c69")
        #expect(BuildSBOM.path(imageFile: "/var/tmp/c69.img", logPath: "/l/x.log", format: .spdx) == "/var/tmp/c69.spdx.json")
        #expect(
            BuildSBOM.path(imageFile: nil, logPath: "/var/log/centos6-ami/install-6.9-1.log", format: .cyclonedx)
                == "/var/log/centos6-ami/install-6.9-1.cdx.json")
        #expect(BuildSBOM.imageName(imageFile: nil, logPath: "/var/log/centos6-ami/install-6.9-1.log") == "install-6.9-1")
    }

    @Test func everyInstalledPackageGetsItsSourcesChecksumAndKey() throws {
        let bash = try repo("bash", "4.1.2", "48.el6"), pod = try repo("perl-Pod-Escapes", epoch: 1, "1.04", "144.el6", sha256: false)
        let installed = InstalledPackage.parse(
            "perl-Pod-Escapes\t1\t1.04\t144.el6\tx86_64\nbash\t(none)\t4.1.2\t48.el6\tx86_64\nkmod-ena\t(none)\t2.9.1\t1.el6\tx86_64\n")
        let manifest = BuildManifest.make(
            release: "6.9", kernel: "2.6.32-696.el6", mirror: "http://m", repomdRevision: "1490000000", toolVersion: "0.1.0",
            enaVersion: "2.9.1", bootVerdict: "xen,nitro", created: Date(timeIntervalSince1970: 0), installed: installed,
            repository: [pod, bash, bash], signingKeys: [bash.location: "0946fca2c105b9de", pod.location: "0946fca2c105b9de"],
            sha256: { $0.checksum.kind == .sha256 ? $0.checksum.hex : "computed-for-\($0.name)" })
        #expect(manifest.packages.map(\.nevra) == ["bash-4.1.2-48.el6.x86_64", "kmod-ena-2.9.1-1.el6.x86_64", "perl-Pod-Escapes-1:1.04-144.el6.x86_64"])
        #expect(manifest.packages[0].sha256 == bash.checksum.hex && manifest.packages[0].signingKeyID == "0946fca2c105b9de")
        #expect(manifest.packages[0].location == bash.location)
        #expect(manifest.packages[1].sha256 == nil && manifest.packages[1].signingKeyID == nil, "built on the builder, from no mirror")
        #expect(manifest.packages[2].sha256 == "computed-for-perl-Pod-Escapes", "a SHA-1 repository's package gets its sha256 computed")
        #expect(manifest.created == "1970-01-01T00:00:00Z" && manifest.bootVerdict == "xen,nitro" && manifest.enaVersion == "2.9.1")
        let decoded = try JSONDecoder().decode(BuildManifest.self, from: manifest.encoded())
        #expect(decoded == manifest)
        #expect(String(decoding: manifest.encoded(), as: UTF8.self).contains(#""repomdRevision" : "1490000000""#))
    }

    @Test func manifestPaths() {
        #expect(BuildManifest.path(imageFile: "/srv/c69.img", logPath: "/var/log/x.log") == "/srv/c69.manifest.json")
        #expect(BuildManifest.path(imageFile: "/srv/disk", logPath: "/var/log/x.log") == "/srv/disk.manifest.json")
        #expect(BuildManifest.path(imageFile: nil, logPath: "/var/log/centos6-ami/install-6.9-1.log") == "/var/log/centos6-ami/install-6.9-1.manifest.json")
    }
}
