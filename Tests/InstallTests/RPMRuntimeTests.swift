import Foundation
import Testing
@testable import Install

/// What the scratch rpm needs: rpm, its configuration, and the packages of the libraries its ELF files load.
@Suite struct RPMRuntimeTests {
    // CentOS 6's layout: /bin/rpm in rpm, librpm in rpm-libs, libc and the loader in glibc.
    let packages = [
        RPMRuntime.Package(location: "Packages/filesystem.rpm", name: "filesystem", files: ["/lib64", "/usr"]),
        RPMRuntime.Package(location: "Packages/rpm.rpm", name: "rpm", files: ["/bin/rpm", "/usr/lib/rpm/rpmrc", "/usr/lib/rpm/macros", "/usr/lib/rpm/perl.req"]),
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
        let second = try runtime.nextRound(needed: ["/bin/rpm": ["/lib64/ld-linux-x86-64.so.2", "librpm.so.1", "libc.so.6"]],
                                           unpacked: ["Packages/filesystem.rpm", "Packages/rpm.rpm"], read: ["/bin/rpm"])
        #expect(Set(second.locations) == ["Packages/glibc.rpm", "Packages/rpm-libs.rpm"])
        #expect(Set(second.elfFiles) == ["/lib64/ld-linux-x86-64.so.2", "/usr/lib64/librpm.so.1", "/lib64/libc.so.6"])
        let third = try runtime.nextRound(needed: ["/usr/lib64/librpm.so.1": ["libc.so.6"], "/lib64/libc.so.6": ["ld-linux-x86-64.so.2"]],
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
}
