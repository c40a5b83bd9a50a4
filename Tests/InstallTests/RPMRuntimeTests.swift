import Foundation
import Host
import RPM
import Signature
import Testing
@testable import Install

/// What the scratch rpm needs: rpm, its configuration, and the packages of the libraries its ELF files load.
@Suite struct RPMRuntimeTests {
    // CentOS 6's layout: /bin/rpm in rpm, librpm in rpm-libs, libc and the loader in glibc.
    let packages = [
        RPMRuntime.Package(location: "Packages/filesystem.rpm", name: "filesystem", files: ["/lib64", "/usr"]),
        RPMRuntime.Package(
            location: "Packages/rpm.rpm", name: "rpm", files: ["/bin/rpm", "/usr/lib/rpm/rpmrc", "/usr/lib/rpm/macros", "/usr/lib/rpm/perl.req"]),
        RPMRuntime.Package(location: "Packages/rpm-libs.rpm", name: "rpm-libs", files: ["/usr/lib64/librpm.so.1", "/usr/lib64/librpm.so.1.0.0"]),
        RPMRuntime.Package(location: "Packages/glibc.rpm", name: "glibc", files: ["/lib64/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]),
        RPMRuntime.Package(location: "Packages/perl.rpm", name: "perl", files: ["/usr/bin/perl", "/usr/lib64/perl5/libperl.so"]),
    ]

    @Test func firstRoundIsFilesystemThenRPMAndItsConfiguration() throws {
        let first = try RPMRuntime(packages: packages).firstRound()
        #expect(first.locations == ["Packages/filesystem.rpm", "Packages/rpm.rpm"])
        #expect(first.elfFiles == ["/bin/rpm"])
    }

    @Test func nextRoundsFollowTheNeededLibrariesOnly() throws {
        let runtime = RPMRuntime(packages: packages)
        let second = try runtime.nextRound(
            needed: ["/bin/rpm": ["/lib64/ld-linux-x86-64.so.2", "librpm.so.1", "libc.so.6"]],
            unpacked: ["Packages/filesystem.rpm", "Packages/rpm.rpm"], read: ["/bin/rpm"])
        #expect(Set(second.locations) == ["Packages/glibc.rpm", "Packages/rpm-libs.rpm"])
        #expect(Set(second.elfFiles) == ["/lib64/ld-linux-x86-64.so.2", "/usr/lib64/librpm.so.1", "/lib64/libc.so.6"])
        let third = try runtime.nextRound(
            needed: ["/usr/lib64/librpm.so.1": ["libc.so.6"], "/lib64/libc.so.6": ["ld-linux-x86-64.so.2"]],
            unpacked: ["Packages/filesystem.rpm", "Packages/rpm.rpm", "Packages/glibc.rpm", "Packages/rpm-libs.rpm"],
            read: ["/bin/rpm", "/lib64/ld-linux-x86-64.so.2", "/usr/lib64/librpm.so.1", "/lib64/libc.so.6"])
        #expect(third.locations.isEmpty && third.elfFiles.isEmpty, "perl is required by rpm's scripts, never loaded by rpm")
    }

    @Test func aLibraryNoBootstrapPackageHoldsIsAnError() throws {
        #expect(throws: RPMRuntimeError.libraryNotInBootstrapSet(library: "libnss3.so", neededBy: "/bin/rpm")) {
            try RPMRuntime(packages: packages).nextRound(needed: ["/bin/rpm": ["libnss3.so"]], unpacked: [], read: [])
        }
        #expect(throws: RPMRuntimeError.noRPMBinary) { try RPMRuntime(packages: Array(packages.dropFirst(2))).firstRound() }
    }

    @Test func elfDependenciesOfARealBinary() throws {
        let names = ELFDependencies.of(file: "/bin/true")
        #expect(names.contains("libc.so.6"))
        #expect(names.first?.hasSuffix("/ld-linux-x86-64.so.2") == true, "PT_INTERP first: \(names)")
        let script = Data("#!/bin/sh\nexit 0\n".utf8)
        #expect(ELFDependencies.of(script).isEmpty)
        let truncated = try Data(contentsOf: URL(fileURLWithPath: "/bin/true")).prefix(200)
        #expect(ELFDependencies.of(truncated).isEmpty, "a cut file yields nothing, and no crash")
    }

    @Test func symlinksResolveInsideTheRoot() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rpm-runtime-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/usr/lib/x86_64-linux-gnu", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root + "/lib", withDestinationPath: "usr/lib")
        try fm.createDirectory(atPath: root + "/lib64", withIntermediateDirectories: true)
        // Debian's loader link is absolute: followed inside the root, never to the builder's file.
        try fm.createSymbolicLink(atPath: root + "/lib64/ld-linux-x86-64.so.2", withDestinationPath: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        #expect(RPMRuntime.resolve("/lib64/ld-linux-x86-64.so.2", inRoot: root) == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        try fm.createSymbolicLink(atPath: root + "/loop", withDestinationPath: "/loop")
        #expect(RPMRuntime.resolve("/loop/x", inRoot: root).hasSuffix("/x"), "a link loop ends")
    }

    // MARK: library requirements (what a package loads at run time with dlopen)

    @Test func sonamesOfRequirements() {
        #expect(RPMRuntime.soname(ofRequirement: "libsoftokn3.so()(64bit)") == "libsoftokn3.so")
        #expect(RPMRuntime.soname(ofRequirement: "libfreebl3.so(NSSRAWHASH_3.12.3)(64bit)") == "libfreebl3.so")
        #expect(RPMRuntime.soname(ofRequirement: "libc.so.6(GLIBC_2.2.5)(64bit)") == "libc.so.6")
        for other in ["nss-softokn(x86-64)", "/bin/sh", "glibc-common", "rtld(GNU_HASH)", "libc.so.6", "config(rpm) = 4.8.0-59.el6"] {
            #expect(RPMRuntime.soname(ofRequirement: other) == nil, "\(other)")
        }
    }

    @Test func runtimeLoadsAreRequirementsNoOwnLibraryOrOnlyAProgramExplains() {
        let nss = RPMRuntime.Package(
            location: "nss", name: "nss", files: ["/usr/lib64/libnss3.so", "/usr/lib64/libnsspem.so"],
            requires: ["libc.so.6()(64bit)", "libnss3.so()(64bit)", "libsoftokn3.so()(64bit)", "libfreebl3.so()(64bit)", "nss-softokn(x86-64)"])
        // libnsspem.so (a library of nss's own, which something may load) links softokn and freebl: still followed.
        #expect(
            RPMRuntime.runtimeLoads(of: nss, programNeeds: [], libraryNeeds: ["libsoftokn3.so", "libfreebl3.so", "libc.so.6"])
                == ["libc.so.6()(64bit)", "libsoftokn3.so()(64bit)", "libfreebl3.so()(64bit)"])
        let sqlite = RPMRuntime.Package(
            location: "sqlite", name: "sqlite", files: ["/usr/bin/sqlite3", "/usr/lib64/libsqlite3.so.0"],
            requires: ["libreadline.so.6()(64bit)", "libsqlite3.so.0()(64bit)", "libc.so.6()(64bit)"])
        // /usr/bin/sqlite3 alone needs readline: rpm never runs it.
        #expect(
            RPMRuntime.runtimeLoads(of: sqlite, programNeeds: ["libreadline.so.6", "libc.so.6"], libraryNeeds: ["libc.so.6"])
                == ["libc.so.6()(64bit)"])
    }

    @Test func aRequiredLibraryIsTakenAndAMissingOneIsNamed() throws {
        let chain =
            packages + [
                RPMRuntime.Package(
                    location: "Packages/nss-softokn.rpm", name: "nss-softokn", files: ["/usr/lib64/libsoftokn3.so"], requires: ["libfreebl3.so()(64bit)"])
            ]
        let next = try RPMRuntime(packages: chain).nextRound(needed: [:], loads: ["Packages/nss.rpm": ["libsoftokn3.so()(64bit)"]], unpacked: [], read: [])
        #expect(next.locations == ["Packages/nss-softokn.rpm"] && next.elfFiles == ["/usr/lib64/libsoftokn3.so"])
        #expect(throws: RPMRuntimeError.requiredLibraryMissing(requirement: "libfreebl3.so()(64bit)", package: "nss-softokn")) {
            try RPMRuntime(packages: chain).nextRound(needed: [:], loads: ["Packages/nss-softokn.rpm": ["libfreebl3.so()(64bit)"]], unpacked: [], read: [])
        }
    }

    /// A -devel package's link of the same name is not the library: the package that Provides it is taken.
    @Test func thePackageProvidingALibraryWinsOverAnotherOfTheSameName() throws {
        let runtime = RPMRuntime(packages: [
            RPMRuntime.Package(location: "foo-devel", name: "foo-devel", files: ["/usr/lib64/libfoo.so"]),
            RPMRuntime.Package(location: "foo", name: "foo", files: ["/usr/lib64/libfoo.so"], provides: ["libfoo.so()(64bit)"]),
        ])
        let next = try runtime.nextRound(needed: ["/bin/rpm": ["libfoo.so"]], unpacked: [], read: [])
        #expect(next.locations == ["foo"])
    }

    /// Red Hat's key file holds two armored keys: both are pinned, the release key first.
    @Test func aKeyFileWithSeveralKeysPinsThemAll() throws {
        let key = try PinnedKey(path: GenuineEL6.dir + "/RPM-GPG-KEY-redhat-release")
        #expect(key.fingerprints == ["567E347AD0044ADE55BA8A5F199E2F91FD431D51", "43A6E49C4A38F4BE9ABF2A5345689C882FA658E0"])
        #expect(key.fingerprint == "567E347AD0044ADE55BA8A5F199E2F91FD431D51")
        let both = try PinnedKey(combining: [key, try PinnedKey(path: GenuineEL6.dir + "/RPM-GPG-KEY-CentOS-6")])
        #expect(both.fingerprints.count == 3 && both.fingerprints.last == PinnedKey.centOS6Fingerprint)
    }

    /// Genuine RHEL 6.9 packages (Tests/Fixtures/el6-rpm-runtime, PROVENANCE.tsv): the
    /// runtime selected from their headers and payloads holds NSS's dlopen'ed crypto module.
    @Test func theGenuineEL6RuntimeHoldsNSSSoftoknAndFreebl() throws {
        let genuine = GenuineEL6.selection(followingRequires: true)
        let names = try genuine.get()
        #expect(names.contains("nss-softokn") && names.contains("nss-softokn-freebl"), "\(names)")
        #expect(["rpm", "rpm-libs", "nss", "nss-util", "nspr", "glibc", "sqlite", "db4", "zlib"].allSatisfy(names.contains), "\(names)")
        #expect(!names.contains("nss-sysinit"), "nothing loads nss-sysinit: \(names)")
        // The control: from the ELF files alone, the module is missing (what CentOS 6's rpm then says: SHA1 MD5 NOT OK).
        let elfOnly = try GenuineEL6.selection(followingRequires: false).get()
        #expect(!elfOnly.contains("nss-softokn") && !elfOnly.contains("nss-softokn-freebl"), "\(elfOnly)")
    }
}

/// The genuine EL6 packages of Tests/Fixtures/el6-rpm-runtime laid out by RPMRuntime.lay
/// into a private directory. glibc is genuine here; popt, lua, libcap, libacl and file-libs
/// have no genuine copy (README.md there): they stand in as file lists only (nothing of
/// theirs is unpacked, so their own needs are not followed).
enum GenuineEL6 {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/el6-rpm-runtime").path
    static let missing = [
        RPMRuntime.Package(location: "standin/popt", name: "popt", files: ["/lib64/libpopt.so.0"]),
        RPMRuntime.Package(location: "standin/lua", name: "lua", files: ["/usr/lib64/liblua-5.1.so"]),
        RPMRuntime.Package(location: "standin/libcap", name: "libcap", files: ["/lib64/libcap.so.2"]),
        RPMRuntime.Package(location: "standin/libacl", name: "libacl", files: ["/lib64/libacl.so.1"]),
        RPMRuntime.Package(location: "standin/file-libs", name: "file-libs", files: ["/usr/lib64/libmagic.so.1"]),
    ]

    /// The names of the packages taken, or the error; `followingRequires: false` drops every package's Requires.
    static func selection(followingRequires: Bool) -> Result<[String], Error> {
        Result {
            let key = try PinnedKey(combining: [try PinnedKey(path: dir + "/RPM-GPG-KEY-redhat-release"), try PinnedKey(path: dir + "/RPM-GPG-KEY-CentOS-6")])
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".rpm") }.sorted().map { dir + "/" + $0 }
            var rpms: [String: RPMFile] = [:]
            for file in files { rpms[file] = try RPMFile(path: file) }
            let candidates =
                files.map { file -> RPMRuntime.Package in
                    var package = RPMRuntime.Package(rpm: rpms[file]!, location: file)
                    if !followingRequires { package.requires = [] }
                    return package
                } + missing
            let root = try TemporaryDirectory.make("genuine-runtime")
            defer { TemporaryDirectory.remove(root) }
            let verifier = SignatureVerifier(key: key)
            let unpacked = try RPMRuntime(packages: candidates).lay(into: root) { locations in
                for location in locations { if let rpm = rpms[location] { _ = try Payload.extract(try verifier.verified(rpm), into: root) } }
            }
            return unpacked.map { location in rpms[location]?.name ?? candidates.first { $0.location == location }!.name }
        }
    }
}
