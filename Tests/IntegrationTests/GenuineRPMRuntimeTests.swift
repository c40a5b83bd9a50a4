import Foundation
import Testing

/// Genuine CentOS 6 userland: the genuine rpm 4.8 (and its genuine NSS) runs from
/// the root `centos6-ami rpm runtime --into` lays down, the same code the bootstrap
/// runs. The packages are Tests/Fixtures/el6-rpm-runtime (README.md there): genuine
/// RHEL 6.9 rpm, rpm-libs, nss, nss-softokn, nss-softokn-freebl, nss-util, nspr, db4,
/// sqlite, elfutils-libelf, libselinux, bzip2-libs, xz-libs, zlib, libgcc, and the
/// CentOS-signed zlib to check. glibc, popt, lua, libcap, libacl, libattr and file-libs
/// are stand-ins made from this host's libraries by host-standins.sh (no genuine copy
/// of the last six was found; the host's libraries need the host's glibc), signed by
/// the test vault's key.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct GenuineRPMRuntimeTests {
    static let fixtures = Integration.repoRoot.appendingPathComponent("Tests/Fixtures/el6-rpm-runtime").path
    static let zlib = "zlib-1.2.3-29.el6.x86_64.rpm"
    /// The host's loader (the glibc stand-in) searches Debian's multiarch directories, not EL6's.
    static let loaderPath = ["LD_LIBRARY_PATH": "/lib64:/usr/lib64"]

    /// The genuine packages (but glibc: the host's stands in) and the host stand-ins, built once per test.
    static func candidates(scratch: String) throws -> [String] {
        try TestVault.require()
        // A copy of the vault's signing home: gpg-agent sockets stay in the scratch directory.
        let gnupg = scratch + "/gnupg"
        try Integration.run("cp", ["-a", TestVault.gnupgHome, gnupg])
        defer { _ = try? Integration.run("gpgconf", ["--homedir", gnupg, "--kill", "gpg-agent"]) }
        let uid = "CentOS-6 Test Key (centos6-ami test vault only) <test-vault@centos6-ami.invalid>"
        let built = try Integration.run(fixtures + "/host-standins.sh", [scratch + "/standins", gnupg, uid])
        guard built.status == 0 else { throw TestFailure("host-standins.sh: \(built.stderr)") }
        let standins = built.stdout.split(separator: "\n").map(String.init)
        #expect(standins.count == 7, "\(standins)")
        let genuine = try FileManager.default.contentsOfDirectory(atPath: fixtures)
            .filter { $0.hasSuffix(".rpm") && !$0.hasPrefix("glibc-") }.sorted().map { fixtures + "/" + $0 }
        return genuine + standins
    }

    static var keys: [String] {
        ["--gpg-key", fixtures + "/RPM-GPG-KEY-redhat-release", "--gpg-key", fixtures + "/RPM-GPG-KEY-CentOS-6", "--gpg-key", TestVault.key]
    }

    @Test func genuineRPMRunsFromTheRootAndChecksAndInstallsAGenuinePackage() throws {
        let scratch = try Integration.scratchDirectory("genuine-rpm")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let root = scratch + "/root"
        let laid = try Integration.tool(["rpm", "runtime"] + Self.keys + ["--into", root] + (try Self.candidates(scratch: scratch)))
        #expect(laid.status == 0, "\(laid.stderr)")
        let taken = laid.stdout.split(separator: "\n").map(String.init)
        #expect(taken.contains("nss-softokn-3.14.3-23.3.el6_8.x86_64") && taken.contains("nss-softokn-freebl-3.14.3-23.3.el6_8.x86_64"), "\(taken)")
        #expect(taken.first == "rpm-4.8.0-59.el6.x86_64" && !taken.contains { $0.hasPrefix("nss-sysinit-") }, "\(taken)")

        try FileManager.default.createDirectory(atPath: root + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/t", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixtures + "/" + Self.zlib, toPath: root + "/tmp/" + Self.zlib)
        let check = try Integration.run("/usr/sbin/chroot", [root, "/bin/rpm", "-K", "--nosignature", "/tmp/" + Self.zlib], environment: Self.loaderPath)
        #expect(check.status == 0 && check.stdout.contains("sha1 md5 OK"), "\(check.stdout) \(check.stderr)")
        let install = try Integration.run(
            "/usr/sbin/chroot", [root, "/bin/rpm", "--root", "/t", "-i", "--nodeps", "/tmp/" + Self.zlib], environment: Self.loaderPath)
        #expect(install.status == 0, "\(install.stderr)")
        let query = try Integration.run("/usr/sbin/chroot", [root, "/bin/rpm", "--root", "/t", "-q", "zlib"], environment: Self.loaderPath)
        #expect(query.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "zlib-1.2.3-29.el6.x86_64", "\(query.stdout) \(query.stderr)")
        #expect(FileManager.default.fileExists(atPath: root + "/t/lib64/libz.so.1"))

        // What CentOS 6's rpm says without its crypto module: the root is exactly what rpm needs.
        try FileManager.default.moveItem(atPath: root + "/usr/lib64/libsoftokn3.so", toPath: scratch + "/libsoftokn3.so")
        let without = try Integration.run("/usr/sbin/chroot", [root, "/bin/rpm", "-K", "--nosignature", "/tmp/" + Self.zlib], environment: Self.loaderPath)
        #expect(without.status != 0 && without.stdout.contains("SHA1 MD5 NOT OK"), "\(without.stdout) \(without.stderr)")
    }

    @Test func withoutNSSSoftoknTheCommandNamesTheMissingLibraryAndExits1() throws {
        let scratch = try Integration.scratchDirectory("genuine-rpm-missing")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let candidates = try Self.candidates(scratch: scratch).filter { !$0.contains("/nss-softokn") }
        let listed = try Integration.tool(["rpm", "runtime"] + Self.keys + candidates)
        #expect(listed.status == 1, "\(listed.stdout)")
        #expect(listed.stderr.contains("requires 'libfreebl3.so()(64bit)'") || listed.stderr.contains("requires 'libsoftokn3.so()(64bit)'"), "\(listed.stderr)")
        #expect(listed.stderr.contains("nss-3.28.4-3.el6_9.x86_64"), "\(listed.stderr)")
        // Without --into nothing is kept: the private directory went with the failure.
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []).filter {
            $0.hasPrefix("centos6-ami-rpm-runtime.")
        }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
