import Fetch
import Foundation
import RPM
@testable import Repository
import TestSupport
import Testing

/// The fixture repository was made by createrepo_c from two rpmbuild packages (make-fixtures.sh).
@Suite struct RepoMetadataTests {
    let repo = Fixture.path("repo")

    @Test func repomd() throws {
        let repomd = try RepoMD.parse(try Data(contentsOf: URL(fileURLWithPath: repo + "/repodata/repomd.xml")))
        #expect(repomd.revision == "1500000000")
        #expect(Set(repomd.files.keys).isSuperset(of: ["primary", "filelists", "other", "group", "group_gz"]))
        let primary = try #require(repomd.primary)
        #expect(primary.location == "repodata/primary.xml.gz")
        #expect(primary.checksum.kind == .sha256)
        #expect(primary.openChecksum != nil && primary.openSize != nil)
        // The recorded size and checksum are those of the file on disk.
        let data = try Data(contentsOf: URL(fileURLWithPath: repo + "/" + primary.location))
        #expect(primary.size == data.count)
        try Metadata.verify(data: data, against: primary)
        #expect(repomd.group?.location == "repodata/comps.xml")
    }

    @Test func verifyRefusesMismatches() throws {
        let repomd = try RepoMD.parse(try Data(contentsOf: URL(fileURLWithPath: repo + "/repodata/repomd.xml")))
        let primary = try #require(repomd.primary)
        var data = try Data(contentsOf: URL(fileURLWithPath: repo + "/" + primary.location))
        data[10] ^= 1
        #expect(
            throws: RepositoryError.checksumMismatch(
                file: primary.location, type: "sha256", expected: primary.checksum.hex, actual: Checksum.of(data, kind: .sha256).hex)
        ) {
            try Metadata.verify(data: data, against: primary)
        }
        #expect(throws: RepositoryError.sizeMismatch(file: primary.location, expected: primary.size!, actual: primary.size! + 1)) {
            try Metadata.verify(data: data + Data([0]), against: primary)
        }
        // Old repositories say "sha" for SHA-1.
        let sha1 = RepoDataFile(type: "primary", location: "p", checksum: try Checksum(metadataType: "sha", value: Checksum.of(data, kind: .sha1).hex))
        try Metadata.verify(data: data, against: sha1)
    }

    @Test func primary() throws {
        let (_, packages, comps) = try Metadata.loadLocal(repository: repo)
        #expect(packages.map(\.nevra) == ["tinyfix-1.2-3.el6.x86_64", "tinylib-1:1.0-1.el6.noarch"])
        let fix = packages[0]
        #expect(fix.location == "Packages/tinyfix-1.2-3.el6.x86_64.rpm")
        #expect(fix.requires.contains(RepoDependency(name: "tinylib", pre: true)))
        #expect(fix.requires.contains(RepoDependency(name: "tinylib", flags: Dependency.greater | Dependency.equal, evr: EVR(version: "1.0"))))
        #expect(fix.requires.contains(RepoDependency(name: "/bin/sh")))
        #expect(fix.provides.contains(RepoDependency(name: "tiny-tool", flags: Dependency.equal, evr: EVR(version: "1.2"))))
        #expect(fix.files == ["/etc/tinyfix", "/etc/tinyfix/tiny.conf", "/usr/bin/tiny", "/usr/bin/tiny-link", "/usr/bin/tiny-suid"])
        #expect(packages[1].files == ["/bin/sh"])
        #expect(packages[1].evr == EVR(epoch: 1, version: "1.0", release: "1.el6"))
        // Checksums and sizes in primary are those of the package files.
        for p in packages {
            let path = repo + "/" + p.location
            #expect(try Checksum.of(file: path, kind: .sha256) == p.checksum)
            #expect(p.packageSize == (try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int))
        }
        let core = try #require(comps?.group("Core"))
        #expect(core.id == "core" && core.name == "Core")
        #expect(core.packages.map(\.type) == [.mandatory, .default, .optional, .conditional])
        #expect(core.packages[3].requires == "tinylib")
        #expect(core.installedByDefault == ["tinyfix", "tinylib"])
        #expect(comps?.group("base")?.packages.first?.type == .mandatory) // no type attribute = mandatory
    }

    @Test func malformedMetadataIsAClearError() {
        #expect(throws: RepositoryError.self) { try Primary.parse(Data("<metadata><package><name>x".utf8)) }
        #expect(throws: RepositoryError.self) { try RepoMD.parse(Data("not xml".utf8)) }
        let unsafe = """
            <metadata><package type="rpm"><name>x</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/>
            <checksum type="sha256">\(String(repeating: "a", count: 64))</checksum><location href="../../etc/passwd"/></package></metadata>
            """
        #expect(throws: RepositoryError.self) { try Primary.parse(Data(unsafe.utf8)) }
        let badSum = unsafe.replacingOccurrences(of: "../../etc/passwd", with: "Packages/x.rpm").replacingOccurrences(of: "sha256", with: "md4")
        #expect(throws: RepositoryError.self) { try Primary.parse(Data(badSum.utf8)) }
        let good = unsafe.replacingOccurrences(of: "../../etc/passwd", with: "Packages/x.rpm")
        #expect((try? Primary.parse(Data(good.utf8)))?.first?.name == "x")
    }

    /// The fast scanner and Foundation's XMLParser agree, on the real fixture and on tricky input.
    @Test func scannerMatchesXMLParser() throws {
        let (repomd, _, _) = try Metadata.loadLocal(repository: repo)
        let raw = try Metadata.decompress(try Data(contentsOf: URL(fileURLWithPath: repo + "/" + repomd.primary!.location)), name: "p")
        let a = try Primary.parse(raw), b = try Primary.parseWithXMLParser(raw)
        #expect(a == b && a.count == 2)
        let tricky = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
            <package type='rpm'>
              <name>a&amp;b</name><arch>x86_64</arch><version epoch="3" ver="1.0&#x2B;git" rel="1.el6"/>
              <checksum type="sha" pkgid="YES">\(String(repeating: "ab", count: 20))</checksum>
              <summary>x &lt; y</summary><description><![CDATA[<not a tag>]]></description>
              <size package="10" installed="20" archive="30"/><location href="Packages/a&amp;b.rpm"/>
              <format>
                <rpm:provides><rpm:entry name="a&amp;b" flags="EQ" epoch="3" ver="1.0" rel="1.el6"/></rpm:provides>
                <rpm:requires><rpm:entry name="libc.so.6()(64bit)"/><rpm:entry name="/bin/sh" pre="1"/><rpm:entry name="x" flags="LT" epoch="0" ver="2"/></rpm:requires>
                <rpm:recommends><rpm:entry name="weak"/></rpm:recommends>
                <file>/usr/bin/a&#38;b</file><file type="dir">/etc/a</file>
              </format>
            </package>
            </metadata>
            """
        let x = try Primary.parse(Data(tricky.utf8)), y = try Primary.parseWithXMLParser(Data(tricky.utf8))
        #expect(x == y)
        #expect(x.first?.name == "a&b" && x.first?.evr == EVR(epoch: 3, version: "1.0+git", release: "1.el6"))
        #expect(x.first?.files == ["/usr/bin/a&b", "/etc/a"])
        #expect(x.first?.requires.count == 3 && x.first?.checksum.kind == .sha1)
        // Malformed input of every kind is an error naming a line, never a crash.
        for bad in [
            "", "<metadata>", "<metadata></package>", "<metadata><package></metadata>", "<metadata a=b></metadata>",
            "<metadata>&bogus;</metadata>", "<metadata></metadata><metadata></metadata>", "text<metadata/>",
            "<metadata><!-- never ends", "<metadata x=\"1\"y=\"2\"/>", "<other/>",
        ] {
            #expect(throws: RepositoryError.self, "\(bad)") { try Primary.parse(Data(bad.utf8)) }
        }
        #expect(try Primary.parse(Data("<metadata/>".utf8)).isEmpty)
        // Every truncation of the real file fails cleanly.
        for cut in stride(from: 0, to: raw.count - 12, by: 97) {
            #expect(throws: RepositoryError.self) { try Primary.parse(raw.prefix(cut)) }
        }
    }
}
