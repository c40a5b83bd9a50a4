import Foundation
import Host
import SBOM
import Testing
import TestSupport
#if canImport(Glibc)
    import Glibc
#endif

/// A small image's packages with what real EL6 headers hold: compound and unmapped
/// licenses, an epoch, `+` in a name, a package without vendor, and kmod-ena built here.
let sampleInput = SBOMInput(
    imageName: "c69", release: "6.9", kernel: "2.6.32-696.el6", toolVersion: "0.1.0",
    created: Date(timeIntervalSince1970: 1_796_000_000), serial: UUID(uuidString: "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9")!,
    packages: [
        SBOMPackage(
            name: "bash", version: "4.1.2", release: "48.el6", arch: "x86_64", license: "GPLv3+", vendor: "CentOS",
            headerSHA1: "1111111111111111111111111111111111111111", fileSHA256: String(repeating: "a", count: 64)),
        SBOMPackage(
            name: "libstdc++", version: "4.4.7", release: "18.el6", arch: "x86_64",
            license: "GPLv3+ and GPLv3+ with exceptions and GPLv2+ with exceptions and LGPLv2+ and BSD",
            vendor: "CentOS", headerSHA1: "2222222222222222222222222222222222222222", fileSHA256: String(repeating: "b", count: 64)),
        SBOMPackage(
            name: "dbus-libs", epoch: 1, version: "1.2.24", release: "8.el6_6", arch: "x86_64", license: "(GPLv2+ or AFL) and GPLv2+",
            vendor: "CentOS", headerSHA1: "3333333333333333333333333333333333333333", fileSHA256: String(repeating: "c", count: 64)),
        SBOMPackage(
            name: "tzdata", epoch: 0, version: "2017b", release: "1.el6", arch: "noarch", license: "Public Domain", vendor: "CentOS",
            headerSHA1: "4444444444444444444444444444444444444444"),
        SBOMPackage(name: "by-hand", version: "1", release: "1", arch: "x86_64", license: nil, vendor: nil),
        SBOMPackage(
            name: "kmod-ena", version: "2.9.1", release: "1", arch: "x86_64", license: "GPLv2", vendor: "centos6-ami",
            headerSHA1: "5555555555555555555555555555555555555555",
            builtHere: BuiltSource(
                name: "amzn-drivers ena_linux", version: "2.9.1",
                url: "https://github.com/amzn/amzn-drivers/archive/refs/tags/ena_linux_2.9.1.tar.gz",
                archiveSHA256: String(repeating: "e", count: 64))),
    ])

@Suite struct SBOMRenderTests {
    @Test func spdxGolden() throws { try expectGolden(SPDX.render(sampleInput), "c69.spdx.json") }
    @Test func cycloneDXGolden() throws { try expectGolden(CycloneDX.render(sampleInput), "c69.cdx.json") }

    @Test func bothListEveryPackageOnceWithItsPurl() throws {
        let spdx = try JSONSerialization.jsonObject(with: Data(SPDX.render(sampleInput).utf8)) as! [String: Any]
        let spdxPurls = (spdx["packages"] as! [[String: Any]]).compactMap { ($0["externalRefs"] as? [[String: Any]])?.first?["referenceLocator"] as? String }
        let cdx = try JSONSerialization.jsonObject(with: Data(CycloneDX.render(sampleInput).utf8)) as! [String: Any]
        let cdxPurls = (cdx["components"] as! [[String: Any]]).compactMap { $0["purl"] as? String }
        let expected = sampleInput.packages.map { Purl.rpm($0, release: "6.9") }
        #expect(Set(spdxPurls) == Set(expected) && spdxPurls.count == expected.count)
        #expect(Set(cdxPurls) == Set(expected) && cdxPurls.count == expected.count)
    }

    @Test func aTreeBuiltSourceSaysItHasNoArchive() {
        var input = sampleInput
        input.packages[5].builtHere?.archiveSHA256 = nil
        let spdx = SPDX.render(input)
        #expect(spdx.contains("built from a source tree, not an archive"))
        #expect(!spdx.contains(String(repeating: "e", count: 64)))
    }
}

@Suite struct PurlTests {
    @Test func rpmPurls() {
        #expect(
            Purl.rpm(SBOMPackage(name: "bash", version: "4.1.2", release: "48.el6", arch: "x86_64"), release: "6.9")
                == "pkg:rpm/centos/bash@4.1.2-48.el6?arch=x86_64&distro=centos-6.9")
        #expect(
            Purl.rpm(SBOMPackage(name: "dbus-libs", epoch: 1, version: "1.2.24", release: "8.el6_6", arch: "x86_64"), release: "6.9")
                == "pkg:rpm/centos/dbus-libs@1.2.24-8.el6_6?arch=x86_64&distro=centos-6.9&epoch=1")
        // An epoch of 0 is no epoch to rpm: no qualifier.
        #expect(
            Purl.rpm(SBOMPackage(name: "tzdata", epoch: 0, version: "2017b", release: "1.el6", arch: "noarch"), release: "6.10")
                == "pkg:rpm/centos/tzdata@2017b-1.el6?arch=noarch&distro=centos-6.10")
        #expect(
            Purl.rpm(SBOMPackage(name: "libstdc++", version: "4.4.7", release: "18.el6", arch: "x86_64"), release: "6.9")
                == "pkg:rpm/centos/libstdc%2B%2B@4.4.7-18.el6?arch=x86_64&distro=centos-6.9")
    }
}

@Suite struct LicenseTests {
    @Test func exactNamesBecomeSPDXIDs() {
        #expect(Licenses.map("GPLv2+") == MappedLicense(expression: "GPL-2.0-or-later", references: [:], singleID: "GPL-2.0-or-later"))
        #expect(Licenses.map("ASL 2.0")?.singleID == "Apache-2.0")
        #expect(Licenses.map("GPLv2 and GPLv3+")?.expression == "GPL-2.0-only AND GPL-3.0-or-later")
    }

    @Test func otherNamesBecomeReferencesWithTheHeadersWords() {
        let mapped = Licenses.map("(GPLv2+ or AFL) and GPLv2+")
        #expect(mapped?.expression == "(GPL-2.0-or-later OR LicenseRef-rpm-AFL) AND GPL-2.0-or-later")
        #expect(mapped?.references == ["LicenseRef-rpm-AFL": "AFL"])
        #expect(Licenses.map("GPLv2+ with exceptions")?.references == ["LicenseRef-rpm-GPLv2plus-with-exceptions": "GPLv2+ with exceptions"])
        #expect(Licenses.map("Public Domain")?.expression == "LicenseRef-rpm-Public-Domain")
        // Unbalanced: the whole string is one reference.
        #expect(Licenses.map("GPLv2+ and (BSD")?.references == ["LicenseRef-rpm-GPLv2plus-and-BSD": "GPLv2+ and (BSD"])
        #expect(Licenses.map("and") != nil && Licenses.map("(none)") == nil && Licenses.map(nil) == nil && Licenses.map("  ") == nil)
    }
}

@Suite struct RPMQueryTests {
    @Test func parsesTheEightFieldsAndNone() {
        let text =
            "bash\t(none)\t4.1.2\t48.el6\tx86_64\tGPLv3+\tCentOS\tabc\n"
            + "dbus-libs\t1\t1.2.24\t8.el6_6\tx86_64\t(GPLv2+ or AFL) and GPLv2+\tCentOS\t(none)\n"
            + "gpg-pubkey\t(none)\tc105b9de\t4e0fd3a3\t(none)\tpubkey\t(none)\t(none)\n"
            + "old\t0\t1\t2\tnoarch\n"
        let packages = RPMQuery.parse(text)
        #expect(
            packages == [
                SBOMPackage(name: "bash", version: "4.1.2", release: "48.el6", arch: "x86_64", license: "GPLv3+", vendor: "CentOS", headerSHA1: "abc"),
                SBOMPackage(
                    name: "dbus-libs", epoch: 1, version: "1.2.24", release: "8.el6_6", arch: "x86_64", license: "(GPLv2+ or AFL) and GPLv2+", vendor: "CentOS"),
                SBOMPackage(name: "old", epoch: 0, version: "1", release: "2", arch: "noarch"),
            ])
        #expect(packages[1].nevra == "dbus-libs-1:1.2.24-8.el6_6.x86_64" && packages[2].nevra == "old-1-2.noarch")
    }

    @Test func theQueryNamesTheBackendAndTheCopy() {
        #expect(
            RPMDatabase.query(dbpath: "/tmp/x", backend: .bdbReadOnly).shellLine
                == "rpm --dbpath /tmp/x --define '_db_backend bdb_ro' -qa --qf '\(RPMQuery.format)'")
        #expect(RPMDatabase.backend(files: ["Packages", "Name", "__db.001"]) == .bdbReadOnly)
        #expect(RPMDatabase.backend(files: ["Packages", "rpmdb.sqlite"]) == .sqlite)
        #expect(RPMDatabase.backend(files: ["Name"]) == nil)
    }
}

/// A hostile image's links must not lead the reader out of the image.
@Suite struct RPMDatabaseCopyTests {
    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "sbom-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aLinkedDatabaseDirectoryResolvesInsideTheImage() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = dir + "/root", outside = dir + "/outside"
        for d in [root + "/var/lib", root + "/etc/rpmdb", outside + "/var/lib/rpm"] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        try Data("image".utf8).write(to: URL(fileURLWithPath: root + "/etc/rpmdb/Packages"))
        try Data("host".utf8).write(to: URL(fileURLWithPath: outside + "/var/lib/rpm/Packages"))
        func copied(_ link: String) throws -> String? {
            try? FileManager.default.removeItem(atPath: root + "/var/lib/rpm")
            try FileManager.default.createSymbolicLink(atPath: root + "/var/lib/rpm", withDestinationPath: link)
            let into = dir + "/copy-\(UUID().uuidString.prefix(6))"
            try FileManager.default.createDirectory(atPath: into, withIntermediateDirectories: true)
            guard (try? RPMDatabase.copy(root: root, into: into)) == .bdbReadOnly else { return nil }
            return try String(contentsOfFile: into + "/Packages", encoding: .utf8)
        }
        // Absolute and climbing links both end in the image's /etc/rpmdb, never in 'outside'.
        #expect(try copied("/etc/rpmdb") == "image")
        #expect(try copied("../../../../../../etc/rpmdb") == "image")
        // A host path the image does not have is no database, and nothing of the host's is read.
        #expect(try copied(outside + "/var/lib/rpm") == nil)
        // A loop of links ends.
        #expect(try copied("rpm") == nil)
    }

    @Test func onlyRegularFilesAreCopied() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = dir + "/root", into = dir + "/copy"
        for d in [root + "/var/lib/rpm", into] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try Data("db".utf8).write(to: URL(fileURLWithPath: root + "/var/lib/rpm/rpmdb.sqlite"))
        try FileManager.default.createSymbolicLink(atPath: root + "/var/lib/rpm/Packages", withDestinationPath: "/etc/shadow")
        #expect(try RPMDatabase.copy(root: root, into: into) == .sqlite)
        #expect(try FileManager.default.contentsOfDirectory(atPath: into) == ["rpmdb.sqlite"])
        // Only a symlinked Packages: no database, said so.
        try FileManager.default.removeItem(atPath: root + "/var/lib/rpm/rpmdb.sqlite")
        let empty = dir + "/copy2"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: RPMDatabaseError.self) { try RPMDatabase.copy(root: root, into: empty) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty)
    }
}

@Suite struct ImageReleaseTests {
    @Test func theReleaseComesFromCentOSRelease() {
        func release(_ r: String) -> String? {
            ImageRelease.from(packages: [SBOMPackage(name: "centos-release", version: "6", release: r, arch: "x86_64")])
        }
        #expect(release("9.el6.12.3") == "6.9" && release("10.el6.centos.12.3") == "6.10" && release("el6") == nil)
        #expect(ImageRelease.from(packages: [SBOMPackage(name: "bash", version: "4", release: "1", arch: "x86_64")]) == nil)
    }

    /// /etc/redhat-release is a link to centos-release in CentOS 6: followed inside the image only.
    @Test func redhatReleaseIsReadInsideTheImage() throws {
        let root = NSTemporaryDirectory() + "sbom-release-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "CentOS release 6.8 (Final)\n".write(toFile: root + "/etc/centos-release", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/redhat-release", withDestinationPath: "/etc/centos-release")
        #expect(ImageRelease.from(root: root) == "6.8")
    }
}
