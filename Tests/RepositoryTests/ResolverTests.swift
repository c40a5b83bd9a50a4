import Fetch
import Foundation
import RPM
@testable import Repository
import TestSupport
import Testing

@Suite struct ResolverTests {
    static let sum = try! Checksum(.sha256, hex: String(repeating: "0", count: 64))

    static func pkg(
        _ name: String, _ version: String = "1.0", release: String = "1.el6", arch: String = "x86_64",
        provides: [RepoDependency] = [], requires: [String] = [], files: [String] = []
    ) -> RepoPackage {
        RepoPackage(
            name: name, arch: arch, evr: EVR(version: version, release: release), checksum: sum, packageSize: 1000, installedSize: 0,
            location: "Packages/\(name)-\(version)-\(release).\(arch).rpm", provides: provides,
            requires: requires.map { r in
                let parts = r.split(separator: " ")
                if parts.count == 3 {
                    let flags = [
                        "=": Dependency.equal, ">=": Dependency.greater | Dependency.equal, "<": Dependency.less, "<=": Dependency.less | Dependency.equal,
                    ][String(parts[1])]!
                    return RepoDependency(name: String(parts[0]), flags: flags, evr: EVR(parsing: String(parts[2])))
                }
                return RepoDependency(name: r)
            }, files: files)
    }

    static let repo: [RepoPackage] = [
        pkg("bash", "4.1.2", release: "48.el6", requires: ["libc.so.6()(64bit)", "rpmlib(PayloadIsXz) <= 5.2-1"]),
        pkg("bash", "4.1.2", release: "15.el6", requires: ["libc.so.6()(64bit)"]),
        pkg(
            "glibc", "2.12", release: "1.209.el6", provides: [RepoDependency(name: "libc.so.6()(64bit)")],
            requires: ["/bin/sh", "glibc-common = 2.12-1.209.el6"]),
        pkg("glibc", "2.12", release: "1.209.el6", arch: "i686", provides: [RepoDependency(name: "libc.so.6")]),
        pkg("glibc-common", "2.12", release: "1.209.el6", requires: ["bash"]),
        pkg("sh-provider", requires: [], files: ["/bin/sh"]),
        pkg("yum", "3.2.29", release: "81.el6.centos", arch: "noarch", requires: ["python >= 2.6", "rpm"]),
        pkg("python", "2.6.6", release: "66.el6_8", requires: ["libc.so.6()(64bit)"]),
        pkg("rpm", "4.8.0", release: "55.el6", requires: ["/bin/sh", "libmagic.so.1()(64bit)"]),
        pkg("file-libs", "5.04", release: "30.el6", provides: [RepoDependency(name: "libmagic.so.1()(64bit)")]),
        pkg("lonely", requires: ["libmissing.so.3()(64bit)", "ghost >= 2"]),
        pkg("ghost", "1.0"),
        pkg("postfix", "2.6.6", provides: [RepoDependency(name: "MTA"), RepoDependency(name: "smtpdaemon")]),
        pkg("cronie", "1.4.4", requires: ["bash"]),
        pkg("kernel", "2.6.32", release: "696.el6"),
        pkg("kernel", "2.6.32", release: "754.el6"),
    ]

    @Test func closureChoosesNewestX86_64AndFileProvides() throws {
        let r = try Resolver(packages: ResolverTests.repo).bootstrapClosure(seeds: ["bash", "yum"])
        #expect(r.names == ["bash", "file-libs", "glibc", "glibc-common", "python", "rpm", "sh-provider", "yum"])
        #expect(r.packages.first { $0.name == "bash" }?.evr.release == "48.el6")
        #expect(r.packages.first { $0.name == "glibc" }?.arch == "x86_64")
        // /bin/sh comes from a file provide; bash is not the owner here, sh-provider is.
        #expect(r.reasons["sh-provider"] == "glibc: /bin/sh" || r.reasons["sh-provider"] == "rpm: /bin/sh")
        #expect(r.reasons["bash"] == "seed")
        #expect(r.unresolved.isEmpty)
    }

    @Test func missingProvidersAreAllListed() {
        #expect(
            throws: RepositoryError.unresolved([
                "(seed): no-such-package",
                "lonely-1.0-1.el6.x86_64: ghost >= 2",
                "lonely-1.0-1.el6.x86_64: libmissing.so.3()(64bit)",
            ])
        ) {
            try Resolver(packages: ResolverTests.repo).bootstrapClosure(seeds: ["lonely", "no-such-package"])
        }
        let text = RepositoryError.unresolved(["lonely-1.0-1.el6.x86_64: ghost >= 2"]).description
        #expect(text.contains("nothing provides") && text.contains("lonely-1.0-1.el6.x86_64: ghost >= 2"))
    }

    @Test func groupInstallSetWithExcludesAndPinnedKernel() throws {
        let comps = Comps(groups: [
            Comps.Group(
                id: "core", name: "Core",
                packages: [
                    .init(name: "bash", type: .mandatory), .init(name: "postfix", type: .default),
                    .init(name: "cronie", type: .default), .init(name: "lonely", type: .optional),
                    .init(name: "python", type: .conditional, requires: "yum"), .init(name: "file-libs", type: .conditional, requires: "bash"),
                ])
        ])
        let r = try Resolver(packages: ResolverTests.repo).groupInstallSet(comps: comps, group: "core", extra: ["kernel-2.6.32-696.el6", "yum"])
        #expect(!r.names.contains("postfix"))
        #expect(!r.names.contains("lonely"))
        #expect(r.names.contains("cronie") && r.names.contains("yum") && r.names.contains("file-libs"))
        #expect(r.packages.first { $0.name == "kernel" }?.evr.release == "696.el6")
        #expect(r.unresolved.isEmpty)
        #expect(throws: RepositoryError.self) { try Resolver(packages: ResolverTests.repo).groupInstallSet(comps: comps, group: "nope") }
    }

    @Test func fixtureRepositoryResolves() throws {
        let (_, packages, _) = try Metadata.loadLocal(repository: Fixture.path("repo"))
        let r = try Resolver(packages: packages).bootstrapClosure(seeds: ["tinyfix"])
        #expect(r.names == ["tinyfix", "tinylib"])
    }
}
