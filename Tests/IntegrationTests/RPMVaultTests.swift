import Foundation
import Host
import TestSupport
@testable import RPM
@testable import Signature
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// The rpm reader, verifier and extractor against EVERY package of the test
/// vault, compared with the host's rpm, rpm2cpio and cpio. Needs the built
/// vault (scripts/testvault) and root (cpio -idm must restore ownership and
/// device nodes like our extractor does as root).
@Suite(.serialized, .enabled(if: Integration.enabled))
struct RPMVaultTests {
    static var vault: String { Integration.vaultBuildDir + "/vault" }
    static var key: String { Integration.vaultBuildDir + "/keys/test-key.asc" }
    static var badDir: String { Integration.vaultBuildDir + "/bad" }

    /// Every package of every release, one path per distinct file name (releases share packages).
    static func packages() throws -> [String] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: vault) else {
            throw VaultMissing(description: "the test vault is missing at '\(vault)' (build it with scripts/testvault; CENTOS6_AMI_TEST_VAULT overrides)")
        }
        var byName: [String: String] = [:]
        for release in try fm.contentsOfDirectory(atPath: vault).sorted() {
            let dir = "\(vault)/\(release)/os/x86_64/Packages"
            guard let files = try? fm.contentsOfDirectory(atPath: dir) else { continue }
            for f in files where f.hasSuffix(".rpm") && byName[f] == nil { byName[f] = dir + "/" + f }
        }
        guard !byName.isEmpty else { throw VaultMissing(description: "no packages under '\(vault)/*/os/x86_64/Packages'") }
        return byName.keys.sorted().map { byName[$0]! }
    }

    struct VaultMissing: Error, CustomStringConvertible { var description: String }

    /// One `rpm -qp --qf` over all packages; per package a block of lines.
    static let queryFormat =
        "@@PKG@@\\n%{NAME}\\n%{EPOCH}\\n%{VERSION}\\n%{RELEASE}\\n%{ARCH}\\n%{PAYLOADCOMPRESSOR}\\n"
        + "[F %{FILENAMES}\\t%{FILEMODES:octal}\\t%{FILESIZES}\\t%{FILELINKTOS}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\t%{FILEDIGESTS}\\t%{FILEFLAGS}\\n]"
        + "[R %{REQUIRENAME}\\t%{REQUIREFLAGS}\\t%{REQUIREVERSION}\\n][P %{PROVIDENAME}\\t%{PROVIDEFLAGS}\\t%{PROVIDEVERSION}\\n]"

    static func ours(_ rpm: RPMFile) -> String {
        var lines = [
            "@@PKG@@", rpm.name, rpm.epoch.map(String.init) ?? "(none)", rpm.version, rpm.release, rpm.arch,
            rpm.header.string(Tag.payloadCompressor) ?? "(none)",
        ]
        for f in rpm.files {
            lines.append("F \(f.path)\t\(String(f.mode, radix: 8))\t\(f.size)\t\(f.linkTo)\t\(f.user)\t\(f.group)\t\(f.digest)\t\(f.flags)")
        }
        for d in rpm.requires { lines.append("R \(d.name)\t\(d.flags)\t\(d.version)") }
        for d in rpm.provides { lines.append("P \(d.name)\t\(d.flags)\t\(d.version)") }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func readerMatchesRpmFieldByField() throws {
        let files = try RPMVaultTests.packages()
        let out = try Integration.run("/usr/bin/rpm", ["-qp", "--nosignature", "--nodigest", "--qf", RPMVaultTests.queryFormat] + files)
        #expect(out.status == 0, "rpm -qp failed: \(out.stderr)")
        let theirs = out.stdout.components(separatedBy: "@@PKG@@\n").dropFirst().map { "@@PKG@@\n" + $0 }
        #expect(theirs.count == files.count)
        for (i, path) in files.enumerated() where i < theirs.count {
            let mine = RPMVaultTests.ours(try RPMFile(path: path))
            if mine != theirs[i] {
                let a = mine.split(separator: "\n"), b = theirs[i].split(separator: "\n")
                let first = zip(a, b).first { $0 != $1 }.map { "ours '\($0.0)' vs rpm '\($0.1)'" } ?? "line counts \(a.count) vs \(b.count)"
                Issue.record("\(path): \(first)")
            }
        }
    }

    @Test func everyPackageVerifiesWithTheVaultKey() throws {
        let key = try PinnedKey(path: RPMVaultTests.key)
        let verifier = SignatureVerifier(key: key)
        for path in try RPMVaultTests.packages() {
            #expect(throws: Never.self, "\(path)") { _ = try verifier.verified(try RPMFile(path: path)) }
        }
        // And not with the real CentOS key.
        let first = try RPMVaultTests.packages()[0]
        #expect(throws: SignatureError.self) { _ = try SignatureVerifier(key: try PinnedKey.embeddedCentOS6()).verified(try RPMFile(path: first)) }
    }

    /// `rpm extract` gives exactly the tree `rpm2cpio FILE | cpio -idm` gives.
    @Test func extractMatchesRpm2cpio() throws {
        let scratch = try Integration.scratchDirectory("rpm-extract")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for (n, path) in try RPMVaultTests.packages().enumerated() {
            let ours = "\(scratch)/\(n)-ours", theirs = "\(scratch)/\(n)-cpio", archive = "\(scratch)/\(n).cpio"
            try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: true)
            let tool = try Integration.tool(["rpm", "extract", path, ours, "--gpg-key", RPMVaultTests.key, "--devices"])
            #expect(tool.status == 0, "\(path): \(tool.stderr)")
            // rpm2cpio output is binary: keep its raw bytes.
            let raw = try rawOutput("/usr/bin/rpm2cpio", [path])
            #expect(!raw.isEmpty, "\(path): rpm2cpio gave nothing")
            try raw.write(to: URL(fileURLWithPath: archive))
            let cpio = try Integration.run("/bin/sh", ["-c", "cd \"$1\" && cpio -idm --quiet --no-absolute-filenames < \"$2\"", "sh", theirs, archive])
            #expect(cpio.status == 0, "\(path): cpio: \(cpio.stderr)")
            let a = try tree(ours), b = try tree(theirs)
            // Contents of every regular file, byte for byte (memcmp speed; hashing in a debug build is slow).
            for (rel, meta) in a where meta.hasPrefix("100000") && b[rel] == meta {
                let x = FileManager.default.contents(atPath: ours + "/" + rel), y = FileManager.default.contents(atPath: theirs + "/" + rel)
                if x == nil || x != y { Issue.record("\(path): contents of '\(rel)' differ from cpio's") }
            }
            if a != b {
                let diff = Set(a.keys).symmetricDifference(b.keys).sorted().prefix(5)
                let changed = a.keys.filter { b[$0] != nil && a[$0] != b[$0] }.sorted().prefix(5).map { "\($0): ours \(a[$0]!) vs cpio \(b[$0]!)" }
                Issue.record("\(path): trees differ; only on one side: \(Array(diff)); different: \(changed)")
            }
            try? FileManager.default.removeItem(atPath: ours)
            try? FileManager.default.removeItem(atPath: theirs)
            try? FileManager.default.removeItem(atPath: archive)
        }
    }

    /// Each bad package of the vault's bad set is refused: by verify, or (a
    /// correctly signed package with a `../` entry) by extract, writing nothing outside.
    @Test func badPackagesAreRefused() throws {
        let fm = FileManager.default
        guard let bad = try? fm.contentsOfDirectory(atPath: RPMVaultTests.badDir).filter({ $0.hasSuffix(".rpm") }).sorted(), !bad.isEmpty else {
            throw VaultMissing(description: "no bad packages in '\(RPMVaultTests.badDir)'")
        }
        let scratch = try Integration.scratchDirectory("rpm-bad")
        defer { try? fm.removeItem(atPath: scratch) }
        for name in bad {
            let path = RPMVaultTests.badDir + "/" + name
            let verify = try Integration.tool(["rpm", "verify", path, "--gpg-key", RPMVaultTests.key])
            if verify.status != 0 {
                #expect(verify.stderr.contains("error:"), "\(name): \(verify.stderr)")
                // extract refuses it too, before writing anything.
                let dir = "\(scratch)/\(name)-v"
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let extract = try Integration.tool(["rpm", "extract", path, dir, "--gpg-key", RPMVaultTests.key])
                #expect(extract.status == 1, "\(name)")
                #expect(try fm.contentsOfDirectory(atPath: dir).isEmpty, "\(name): something was unpacked")
                continue
            }
            // Signed correctly: it must be a path-escape package, refused by extract.
            let dir = "\(scratch)/\(name)/root"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let extract = try Integration.tool(["rpm", "extract", path, dir, "--gpg-key", RPMVaultTests.key])
            #expect(extract.status == 1, "\(name) verified and extracted although it is in the bad set")
            #expect(extract.stderr.contains("refusing entry"), "\(name): \(extract.stderr)")
            #expect(try fm.contentsOfDirectory(atPath: "\(scratch)/\(name)") == ["root"], "\(name) wrote outside the root")
        }
    }

    // MARK: helpers

    func rawOutput(_ executable: String, _ arguments: [String]) throws -> Data {
        runTool(Command(executable, arguments)).standardOutput
    }

    /// path -> "type mode uid:gid nlink target-or-sha256" for every entry under root.
    func tree(_ root: String) throws -> [String: String] {
        var out: [String: String] = [:]
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: root) else { return out }
        while let rel = walker.nextObject() as? String {
            let path = root + "/" + rel
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            let type = st.st_mode & S_IFMT
            var detail = ""
            switch type {
            case S_IFLNK: detail = (try? fm.destinationOfSymbolicLink(atPath: path)) ?? "?"
            case S_IFREG: detail = "size \(st.st_size)" // contents are compared byte for byte by the caller
            case S_IFCHR, S_IFBLK: detail = "dev \(st.st_rdev)"
            default: break
            }
            let nlink = type == S_IFREG ? " nlink \(st.st_nlink)" : ""
            out[rel] = "\(String(type, radix: 8)) \(String(st.st_mode & 0o7777, radix: 8)) \(st.st_uid):\(st.st_gid)\(nlink) \(detail)"
        }
        return out
    }
}
