import Foundation
import Host
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// The test vault itself (scripts/testvault/build-vault.sh, which
/// scripts/test.sh runs before `swift test`): its repository metadata, its
/// signatures and bad packages, and that a chroot bootstrapped by hand from it
/// can run `yum groupinstall Core` over HTTP with gpgcheck=1.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct VaultTests {
    static var build: String { Integration.vaultBuildDir }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// vault.json, the generator's machine-readable facts (a missing vault is a failure).
    static func facts() throws -> [String: Any] {
        let path = build + "/vault.json"
        guard let data = FileManager.default.contents(atPath: path),
            let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw Failure(description: "the test vault is missing at '\(build)' (run scripts/testvault/build-vault.sh '\(build)')")
        }
        return json
    }

    static func releases() throws -> [String] { try facts()["releases"] as? [String] ?? [] }

    static func repo(_ release: String) -> String { "\(build)/vault/\(release)/os/x86_64" }

    static func packages(_ release: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repo(release) + "/Packages").filter { $0.hasSuffix(".rpm") }.sorted()
    }

    /// sha256 of many files in one `sha256sum` call: path -> hex.
    static func sha256(_ paths: [String]) throws -> [String: String] {
        let out = try Integration.run("sha256sum", paths)
        #expect(out.status == 0, "sha256sum: \(out.stderr)")
        var result: [String: String] = [:]
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            result[String(parts[1].drop(while: { $0 == " " || $0 == "*" }))] = String(parts[0])
        }
        return result
    }

    /// Every match of a regular expression's first capture groups.
    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let regex = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (1..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
        }
    }

    @Test("both releases exist with createrepo_c metadata whose checksums and sizes match the files")
    func repodataMatches() throws {
        let facts = try Self.facts()
        let releases = try Self.releases()
        #expect(releases == ["6.4", "6.8", "6.9"])
        let per = facts["perRelease"] as? [String: [String: Any]] ?? [:]
        for release in releases {
            let repo = Self.repo(release)
            let repomd = try String(contentsOfFile: repo + "/repodata/repomd.xml", encoding: .utf8)
            let blocks = try Self.matches(#"<data type="([a-z_]+)">(.*?)</data>"#, in: repomd)
            let types = Set(blocks.map { $0[0] })
            for needed in ["primary", "filelists", "other", "group", "group_gz"] {
                #expect(types.contains(needed), "\(release): repomd.xml has no '\(needed)' data")
            }
            var files: [(type: String, path: String, checksum: String, size: Int)] = []
            for b in blocks {
                let checksum = try Self.matches(#"<checksum type="sha256">([0-9a-f]+)</checksum>"#, in: b[1]).first?[0] ?? ""
                let href = try Self.matches(#"<location href="([^"]+)"/>"#, in: b[1]).first?[0] ?? ""
                let size = Int(try Self.matches(#"<size>([0-9]+)</size>"#, in: b[1]).first?[0] ?? "") ?? -1
                files.append((b[0], repo + "/" + href, checksum, size))
            }
            let sums = try Self.sha256(files.map(\.path))
            for f in files {
                #expect(sums[f.path] == f.checksum, "\(release) \(f.type): sha256 of '\(f.path)' differs from repomd.xml")
                let size = (try? FileManager.default.attributesOfItem(atPath: f.path)[.size] as? Int) ?? nil
                #expect(size == f.size, "\(release) \(f.type): size of '\(f.path)' differs from repomd.xml")
            }
            // primary's per-package checksums match the package files
            guard let primary = files.first(where: { $0.type == "primary" }) else { continue }
            let xml = try Integration.run("gzip", ["-dc", primary.path]).stdout
            let entries = try Self.matches(#"<checksum type="sha256" pkgid="YES">([0-9a-f]+)</checksum>.*?<location href="([^"]+)"/>"#, in: xml)
            let names = try Self.packages(release)
            #expect(entries.count == names.count, "\(release): primary lists \(entries.count) packages, Packages/ holds \(names.count)")
            let pkgSums = try Self.sha256(entries.map { repo + "/" + $0[1] })
            for e in entries {
                #expect(pkgSums[repo + "/" + e[1]] == e[0], "\(release): checksum of '\(e[1])' differs from primary")
            }
            // the group file has a core group with postfix in it
            let comps = try String(
                contentsOfFile: repo + "/" + (files.first { $0.type == "group" }?.path.replacingOccurrences(of: repo + "/", with: "") ?? ""), encoding: .utf8)
            #expect(comps.contains("<id>core</id>") && comps.contains(">postfix</packagereq>"), "\(release): comps has no core group with postfix")
            // the pinned kernel NEVRA, and the keys beside the packages
            let kernel = per[release]?["kernel"] as? String ?? "?"
            #expect(names.contains(kernel + ".rpm"), "\(release): no \(kernel).rpm")
            #expect(FileManager.default.fileExists(atPath: repo + "/RPM-GPG-KEY-CentOS-6-Test"))
            #expect(per[release]?["packageCount"] as? Int == names.count)
        }
        // the releases differ: kernels, one package's version, one package only in 6.9
        let p68 = Set(try Self.packages("6.8")), p69 = Set(try Self.packages("6.9"))
        #expect(p68.contains("kernel-2.6.32-642.el6.x86_64.rpm") && p69.contains("kernel-2.6.32-696.el6.x86_64.rpm"))
        #expect(p68.contains("kernel-devel-2.6.32-642.el6.x86_64.rpm") && p69.contains("kernel-devel-2.6.32-696.el6.x86_64.rpm"))
        #expect(p68.contains { $0.hasPrefix("tzdata-2016c-") } && p69.contains { $0.hasPrefix("tzdata-2017b-") })
        #expect(p69.contains { $0.hasPrefix("only-in-6.9-") } && !p68.contains { $0.hasPrefix("only-in-6.9-") })
        #expect(p68.intersection(p69).count > p68.count * 9 / 10, "the releases should share most packages")
    }

    /// The stand-in kernels make the boot verdict meaningful: nvme only as a module (CentOS 6.5+
    /// kernels ship it so; Debian's generic kernel too), none at all in 6.4's (6.0-6.4 have none),
    /// no in-tree ena anywhere (CentOS 6 kernels have none), modules.builtin shipped; and the
    /// packages the EC2 readiness work installs exist: dracut, chkconfig, acpid, ntp.
    @Test func standInKernelsAndTheEC2Packages() throws {
        for release in try Self.releases() {
            let names = try Self.packages(release)
            for name in ["dracut-004-", "chkconfig-", "acpid-", "ntp-"] {
                #expect(names.contains { $0.hasPrefix(name) }, "\(release): no \(name)*")
            }
            let kernel = try #require(names.first { $0.hasPrefix("kernel-2.6.32-") })
            let files = try Integration.run("rpm", ["-qlp", "--nosignature", Self.repo(release) + "/Packages/" + kernel]).stdout.split(separator: "\n")
            let nvme = files.filter { $0.hasSuffix("/nvme.ko") || $0.hasSuffix("/nvme-core.ko") }
            #expect(nvme.count == (release == "6.4" ? 0 : 2), "\(release): \(nvme)")
            #expect(!files.contains { $0.hasSuffix("/ena.ko") }, "\(release): an in-tree ena")
            #expect(files.contains { $0.hasSuffix("/modules.builtin") })
            #expect(files.contains { $0.hasSuffix("/xen-blkfront.ko") } && files.contains { $0.hasSuffix("/ext4.ko") })
            #expect(files.filter { $0.hasSuffix(".ko") }.count < 60, "the module tree is trimmed")
            let requires = try Integration.run("rpm", ["-qp", "--requires", "--nosignature", Self.repo(release) + "/Packages/" + kernel]).stdout
            #expect(requires.contains("dracut-kernel"))
        }
    }

    @Test("rpm -K with the test key accepts every good package and rejects each bad one")
    func signatures() throws {
        let dbpath = try Integration.scratchDirectory("vault-rpmdb")
        defer { try? FileManager.default.removeItem(atPath: dbpath) }
        let imported = try Integration.run("rpm", ["--dbpath", dbpath, "--import", Self.build + "/keys/test-key.asc"])
        #expect(imported.status == 0, "rpm --import: \(imported.stderr)")
        let facts = try Self.facts()
        let keyid = String(((facts["keys"] as? [String: [String: Any]])?["test"]?["keyid"] as? String ?? "").suffix(8)).lowercased()
        for release in try Self.releases() {
            let paths = try Self.packages(release).map { Self.repo(release) + "/Packages/" + $0 }
            #expect(paths.count > 100)
            let checked = try Integration.run("rpm", ["--dbpath", dbpath, "-Kv"] + paths)
            #expect(
                checked.status == 0,
                "\(release): rpm -K rejected good packages:\n\(checked.stdout.split(separator: "\n").filter { $0.contains("BAD") || $0.contains("NOKEY") || $0.contains("NOT OK") }.prefix(10).joined(separator: "\n"))"
            )
            // every package carries both the header signature and the header+payload one (SIGPGP), by the test key
            let headerSigs = checked.stdout.components(separatedBy: "Header V4 RSA/SHA256 Signature, key ID \(keyid): OK").count - 1
            let fullSigs = checked.stdout.split(separator: "\n").filter { $0.hasPrefix("    V4 RSA/SHA256 Signature, key ID \(keyid): OK") }.count
            #expect(
                headerSigs == paths.count && fullSigs == paths.count,
                "\(release): \(paths.count) packages, \(headerSigs) header signatures, \(fullSigs) header+payload signatures")
        }
        let bad = Self.build + "/bad/"
        func check(_ file: String, _ extra: [String] = []) throws -> Integration.Output {
            try Integration.run("rpm", ["--dbpath", dbpath, "-Kv"] + extra + [bad + file])
        }
        // unsigned: digests fine, no signature at all: rejected once signatures are required
        let unsigned = try check("unsigned.rpm")
        #expect(!unsigned.stdout.contains("Signature"), "unsigned.rpm carries a signature:\n\(unsigned.stdout)")
        let unsignedStrict = try check("unsigned.rpm", ["--define", "_pkgverify_level signature"])
        #expect(unsignedStrict.status != 0, "unsigned.rpm accepted with _pkgverify_level signature")
        // wrong key: both signatures by a key we do not have
        let wrong = try check("wrong-key.rpm")
        #expect(wrong.status != 0 && wrong.stdout.contains("NOKEY") && !wrong.stdout.contains(": BAD"), "wrong-key.rpm:\n\(wrong.stdout)")
        // flipped payload byte: header signature fine, payload digest and header+payload signature BAD
        let flipped = try check("flipped-payload.rpm")
        #expect(
            flipped.status != 0 && flipped.stdout.contains("Payload SHA256 digest: BAD")
                && flipped.stdout.contains("Header V4 RSA/SHA256 Signature, key ID \(keyid): OK")
                && flipped.stdout.contains("    V4 RSA/SHA256 Signature, key ID \(keyid): BAD"), "flipped-payload.rpm:\n\(flipped.stdout)")
        // truncated: payload digest cannot match
        let truncated = try check("truncated.rpm")
        #expect(truncated.status != 0 && truncated.stdout.contains("BAD"), "truncated.rpm:\n\(truncated.stdout)")
        // escape-dotdot: signatures valid; the payload itself holds a ../ entry
        let escape = try check("escape-dotdot.rpm")
        #expect(escape.status == 0, "escape-dotdot.rpm should verify (only its path is wrong):\n\(escape.stdout)")
        let listing = try Integration.run("/bin/sh", ["-c", "rpm2cpio \"$1\" | cpio -t --quiet", "sh", bad + "escape-dotdot.rpm"])
        #expect(listing.stdout.split(separator: "\n").contains { $0.hasPrefix("../") }, "no ../ entry in escape-dotdot.rpm:\n\(listing.stdout)")
        let names = (facts["bad"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }.sorted()
        #expect(names == ["bad/escape-dotdot.rpm", "bad/flipped-payload.rpm", "bad/truncated.rpm", "bad/unsigned.rpm", "bad/wrong-key.rpm"])
    }

    /// Serves DIR on 127.0.0.1 with python3 -m http.server on a free port; the caller stops it by PID.
    static func serve(_ directory: String) throws -> TestServer {
        let port = Int(try freePort())
        return try TestServer(
            "python3 -m http.server", Command("python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", directory, String(port)]),
            timeout: 10, grace: 5, ready: TestServer.answers(port))
    }

    @Test(
        "a chroot bootstrapped by hand from the vault runs yum groupinstall Core --exclude=postfix over HTTP with gpgcheck, then builds a module with kernel-devel"
    )
    func bootstrapByHand() throws {
        let facts = try Self.facts()
        let core = ((facts["perRelease"] as? [String: [String: Any]])?["6.9"]?["coreGroup"] as? [String]) ?? []
        #expect(core.contains("postfix") && core.count > 10)
        let scratch = try Integration.scratchDirectory("vault-bootstrap")
        let root = scratch + "/root"
        defer {
            #expect(Integration.mounts(under: scratch).isEmpty, "mounts left under \(scratch)")
            try? FileManager.default.removeItem(atPath: scratch)
        }
        let server = try Self.serve(Self.build + "/vault")
        let port = server.port
        defer { server.stop() }
        let script = Integration.repoRoot.path + "/scripts/testvault/bootstrap-chroot-by-hand.sh"
        let kernel = ((facts["perRelease"] as? [String: [String: Any]])?["6.9"]?["kernelVersion"] as? String) ?? "?"
        let result = try Integration.run(script, [root, "http://127.0.0.1:\(port)", "6.9", Self.build, kernel])
        #expect(result.status == 0, "bootstrap failed (\(result.status)):\n\(result.stderr.suffix(3000))\n\(result.stdout.suffix(3000))")
        #expect(result.stdout.contains("Complete!"))
        let installed = Set((try? String(contentsOfFile: root + ".rpm-qa", encoding: .utf8))?.split(separator: "\n").map(String.init) ?? [])
        for name in core where name != "postfix" {
            #expect(installed.contains(name), "\(name) of the core group is not installed")
        }
        #expect(!installed.contains("postfix"), "postfix was installed despite --exclude=postfix")
        #expect(installed.contains("gpg-pubkey"), "yum did not import the test key from gpgkey=")
        #expect(Integration.mounts(under: root).isEmpty)
        // kernel-devel: an out-of-tree module built inside the chroot with the vault's gcc and make,
        // for the Debian kernel the guest runs (kernel-devel keeps its KERNELRELEASE)
        let debianKernel = facts["debianKernel"] as? String ?? "?"
        let modinfo = try Integration.run("/usr/sbin/modinfo", ["-F", "vermagic", root + ".hello.ko"])
        #expect(modinfo.status == 0 && modinfo.stdout.hasPrefix("\(debianKernel) "), "hello.ko was not built against kernel-devel-\(kernel): \(modinfo.stdout)")
    }
}
