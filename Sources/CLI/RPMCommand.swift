import Foundation
import Host
import Install
import RPM
import Repository
import Signature

/// `centos6-ami rpm info|verify|extract|resolve|runtime`: the package reader,
/// verifier and extractor install uses, for troubleshooting by users.
/// No root needed (ownership is applied only as root).
/// What `rpm` was given, as its options declare it.
struct RPMArguments {
    var action = ""
    /// The words after the action (FILE, DIR, FILE...).
    var files: [String] = []
    var gpgKeys: [String] = []
    var into: String?
    var listFiles = false
    var devices = false
    var repo: String?
    var seeds: [String] = []
    var group: String?
    var extra: [String] = []
    var exclude: [String] = []
}

struct RPMCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    static let options = Options<RPMArguments>(
        [
            .list(
                "--gpg-key", "KEY", \.gpgKeys,
                help: """
                    the pinned key (armored or binary OpenPGP public key) instead of the embedded
                    CentOS 6 key (fingerprint C1DA C52D 1664 E8A4 386D BA43 0946 FCA2 C105 B9DE);
                    a file may hold several keys, and the option may be repeated: a package
                    signed by any of them is accepted
                    """),
            .text("--into", "DIR", \.into, help: "runtime: verify and unpack the packages rpm needs into DIR (made if missing; must be empty)"),
            .flag("--files", \.listFiles, help: "info: list every file with mode, owner, size and link target"),
            .flag("--devices", \.devices, help: "extract: create device nodes (root only; skipped and listed by default)"),
            .text("--repo", "DIR", \.repo, help: "resolve: the repository directory (holding repodata/)"),
            .list("--seed", "NAME", \.seeds, help: "resolve: a seed package (repeatable)"),
            .text("--group", "ID", \.group, help: "resolve: a comps group (e.g. core); its mandatory+default packages"),
            .list("--extra", "NAME", \.extra, needs: "--group", help: "resolve --group: more names, e.g. kernel-2.6.32-696.el6 (repeatable)"),
            .list("--exclude", "NAME", \.exclude, needs: "--group", help: "resolve --group: names to leave out (default: postfix)"),
        ], defaults: RPMArguments())

    static let spec = CommandSpec(
        name: "rpm",
        summary: "inspect, verify or unpack an rpm the way install does (troubleshooting)",
        forms: [
            UsageForm("info FILE", options: ["--files"]),
            UsageForm("verify FILE", options: ["--gpg-key"]),
            UsageForm("extract FILE DIR", options: ["--gpg-key", "--devices"]),
            UsageForm("resolve --repo DIR", options: ["--seed", "--group", "--extra", "--exclude"]),
            UsageForm("runtime FILE...", options: ["--gpg-key", "--into"]),
        ],
        options: options.specs,
        about: """
            actions:
              info FILE        header fields (like rpm -qip), requires/provides, every signature tag
                               with its OpenPGP packet (version, key algorithm, hash, key id, time)
              verify FILE      the verification install does: the signature by the pinned key, checked
                               by gpgv (SIGPGP over header+payload; or RSAHEADER over the header plus the
                               header's PAYLOADDIGEST over the payload). Exit 0 only when the whole
                               package is verified. A header-only file (payload missing) has its header
                               signature checked and reported, but exits 1: the package is NOT verified.
              extract FILE DIR verify as above, then unpack into DIR exactly as install does (modes,
                               symlinks, hard links; ownership only as root; '..', absolute paths and
                               paths through symlinks leading out of DIR are refused). There is no
                               --no-verify: nothing this tool unpacks is unverified. For a package signed
                               by another key, pass that key with --gpg-key.
              resolve          parse a local repository (DIR/repodata, every file checked against
                               repomd.xml) and print the bootstrap closure of the seeds (default: the
                               built-in bootstrap seeds), or with --group the set `yum groupinstall`
                               will ask for; prints parse and resolve times
              runtime FILE...  the packages among FILE... that install's bootstrap unpacks to run rpm
                               (rpm, its configuration, the libraries its ELF files load, and the
                               libraries the packages taken name in their Requires, such as NSS's
                               dlopen'ed libsoftokn3.so and libfreebl3.so), one per line as
                               name-version-release.arch; the same code as the bootstrap, so each is
                               verified and unpacked (into a private directory that is removed, or
                               into --into DIR, which is kept). Exit 1, naming the library, when
                               FILE... cannot run rpm
            """)
    static let usage = spec.usage

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try options.parse(arguments, usage: usage) { values, positionals in
            guard let action = positionals.first else { throw UsageError("no action given (info, verify, extract, resolve, runtime)", usage: usage) }
            values.action = action
            values.files = Array(positionals.dropFirst())
        }.values
        let rest = args.files
        switch args.action {
        case "info":
            guard rest.count == 1 else { throw UsageError("info takes one FILE", usage: usage) }
            let rpm = try RPMFile(path: rest[0])
            console.out(try info(rpm, files: args.listFiles))
            return ExitCode.success
        case "verify":
            guard rest.count == 1 else { throw UsageError("verify takes one FILE", usage: usage) }
            let key = try loadKey(args.gpgKeys)
            let rpm = try RPMFile(path: rest[0])
            let report = try SignatureVerifier(key: key).verify(rpm, allowHeaderOnly: true)
            if report.payloadVerified {
                console.out("\(rest[0]): OK: \(describe(report, key: key))")
                return ExitCode.success
            }
            console.out("\(rest[0]): header signature good (\(describe(report, key: key)))")
            console.err("error: '\(rest[0])': the payload is missing or truncated, so it could not be checked: the package is NOT verified")
            return ExitCode.failure
        case "extract":
            guard rest.count == 2 else { throw UsageError("extract takes FILE and DIR", usage: usage) }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: rest[1], isDirectory: &isDirectory) else {
                throw UsageError("DIR '\(rest[1])' does not exist; make it first (mkdir -p '\(rest[1])')", usage: usage)
            }
            guard isDirectory.boolValue else { throw UsageError("DIR '\(rest[1])' is not a directory; give a directory to extract into", usage: usage) }
            let key = try loadKey(args.gpgKeys)
            let rpm = try RPMFile(path: rest[0])
            let verified = try SignatureVerifier(key: key).verified(rpm)
            console.out("\(rest[0]): OK: \(describe(verified.report, key: key))")
            let report: ExtractReport
            do { report = try Payload.extract(verified, into: rest[1], options: ExtractOptions(createDevices: args.devices)) } catch let error as RPMError {
                throw RPMCommandError.extract(dir: rest[1], reason: "\(error)")
            }
            console.out(
                "extracted into \(rest[1]): \(report.files) files (\(report.bytes) bytes), \(report.directories) directories, \(report.symlinks) symlinks, \(report.hardLinks) hard links"
                    + (report.fifos > 0 ? ", \(report.fifos) fifos" : "") + (report.devices > 0 ? ", \(report.devices) device nodes" : ""))
            for skipped in report.skipped { console.out("skipped (device node or socket; --devices creates device nodes as root): \(skipped)") }
            return ExitCode.success
        case "runtime":
            guard !rest.isEmpty else { throw UsageError("runtime takes one or more FILEs (the candidate packages)", usage: usage) }
            if let into = args.into { try checkEmptyDirectory(into) }
            return try runtime(files: rest, key: try loadKey(args.gpgKeys), into: args.into, console: console)
        case "resolve":
            guard rest.isEmpty else { throw UsageError("unexpected argument '\(rest[0])'", usage: usage) }
            guard let repo = args.repo else { throw UsageError("resolve needs --repo DIR", usage: usage) }
            return try resolve(repo: repo, args: args, console: console)
        default:
            throw UsageError("unknown action '\(args.action)' (info, verify, extract, resolve, runtime)", usage: usage)
        }
    }

    static func loadKey(_ paths: [String]?) throws -> PinnedKey {
        guard let paths, !paths.isEmpty else { return try PinnedKey.embeddedCentOS6() }
        return try PinnedKey(combining: paths.map { try PinnedKey(path: $0) })
    }

    /// `--into DIR`: made when missing; an existing one must be an empty directory,
    /// so what rpm finds there is exactly what was laid down.
    static func checkEmptyDirectory(_ dir: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw UsageError("--into '\(dir)' is not a directory", usage: usage) }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        guard entries.isEmpty else {
            throw UsageError("--into '\(dir)' is not empty (\(entries.count) entries); give an empty or new directory", usage: usage)
        }
    }

    /// `rpm runtime`: RPMRuntime.lay over FILE..., as the bootstrap runs it; each round's
    /// packages verified by the pinned key(s), then unpacked by our extractor.
    static func runtime(files: [String], key: PinnedKey, into: String?, console: Console) throws -> Int32 {
        var rpms: [String: RPMFile] = [:]
        for file in files where rpms[file] == nil { rpms[file] = try RPMFile(path: file) }
        let runtime = RPMRuntime(packages: files.map { RPMRuntime.Package(rpm: rpms[$0]!, location: $0) })
        let root: String
        if let into {
            try FileManager.default.createDirectory(atPath: into, withIntermediateDirectories: true)
            root = into
        } else {
            root = try TemporaryDirectory.make("rpm-runtime")
        }
        defer { if into == nil { TemporaryDirectory.remove(root) } }
        let verifier = SignatureVerifier(key: key)
        let unpacked = try runtime.lay(into: root) { locations in
            let ordered = locations.filter { rpms[$0]?.name == "filesystem" } + locations.filter { rpms[$0]?.name != "filesystem" }
            for location in ordered {
                let verified = try verifier.verified(rpms[location]!)
                do { _ = try Payload.extract(verified, into: root) } catch let error as RPMError {
                    throw RPMCommandError.extract(dir: root, reason: "\(error)")
                }
            }
        }
        for location in unpacked { console.out(rpms[location]!.nvra) }
        return ExitCode.success
    }

    static func describe(_ report: VerificationReport, key: PinnedKey) -> String {
        var s = "\(report.method); \(report.packet.summary); good signature by the pinned key \(key.fingerprint) (\(key.source))"
        if let expired = report.keyExpiredAt {
            s += "; the key expired \(utc(expired)), the signature was made before that (\(utc(report.signedAt))): accepted"
        }
        return s
    }

    static func utc(_ t: Int) -> String {
        UTCTime.string(Date(timeIntervalSince1970: TimeInterval(t)), format: "yyyy-MM-dd HH:mm:ss 'UTC'")
    }

    static let signatureTagNames: [Int32: String] = [
        SigTag.headerSignatures: "HEADERSIGNATURES", SigTag.dsaHeader: "DSAHEADER", SigTag.rsaHeader: "RSAHEADER",
        SigTag.sha1Header: "SHA1HEADER", SigTag.longSize: "LONGSIZE", SigTag.longArchiveSize: "LONGARCHIVESIZE",
        SigTag.sha256Header: "SHA256HEADER", SigTag.size: "SIZE", SigTag.pgp: "SIGPGP", SigTag.md5: "MD5",
        SigTag.gpg: "SIGGPG", SigTag.payloadSize: "PAYLOADSIZE", 1008: "RESERVEDSPACE",
    ]

    static func info(_ rpm: RPMFile, files: Bool) throws -> String {
        func row(_ k: String, _ v: String?) -> String { k.padding(toLength: 13, withPad: " ", startingAt: 0) + ": " + (v ?? "(none)") }
        var signatureLine = "(none)"
        for tag in [SigTag.pgp, SigTag.gpg, SigTag.rsaHeader, SigTag.dsaHeader] {
            if let packet = try? rpm.signaturePacket(tag) { signatureLine = packet.summary; break }
        }
        var lines = [
            row("Name", rpm.name), row("Epoch", rpm.epoch.map(String.init)), row("Version", rpm.version),
            row("Release", rpm.release), row("Architecture", rpm.arch), row("Group", rpm.group),
            row("Size", rpm.installedSize.map(String.init)), row("License", rpm.license), row("Signature", signatureLine),
            row("Source RPM", rpm.sourceRPM), row("Build Date", rpm.buildTime.map(utc)), row("Build Host", rpm.buildHost),
            row("Packager", rpm.packager), row("Vendor", rpm.vendor), row("URL", rpm.url), row("Summary", rpm.summary),
        ]
        let present: String
        do { try rpm.checkPayloadPresent(); present = "present" } catch {
            present = "MISSING or truncated (\(max(0, rpm.fileSize - rpm.payloadOffset)) bytes in the file)"
        }
        lines.append(
            row(
                "Payload",
                "\(rpm.payloadFormat), \(rpm.payloadCompressor)-compressed\(rpm.payloadFlags.map { " (flags \($0))" } ?? ""), from byte \(rpm.payloadOffset), \(present)"
            ))
        lines.append(
            row(
                "Header",
                "bytes \(rpm.header.range.lowerBound)..<\(rpm.header.range.upperBound) (\(rpm.header.entries.count) tags); signature header \(rpm.signature.range.lowerBound)..<\(rpm.signature.range.upperBound)"
            ))
        if let d = rpm.payloadDigest { lines.append(row("PayloadDigest", "algo \(d.algorithm) \(d.hex)")) }
        lines.append("Signature tags:")
        for e in rpm.signature.entries {
            let label = "  \(signatureTagNames[e.tag] ?? "TAG") (\(e.tag)): "
            var value: String
            if [SigTag.pgp, SigTag.gpg, SigTag.rsaHeader, SigTag.dsaHeader].contains(e.tag) {
                do { value = try rpm.signaturePacket(e.tag)?.summary ?? "" } catch { value = "unreadable packet: \(error)" }
                value += " [\(e.count) bytes]"
            } else if e.type == .bin {
                value = rpm.signature.binary(e.tag).map { bytes in bytes.map { String(format: "%02x", $0) }.joined() } ?? ""
                if e.tag == SigTag.headerSignatures { value = "(region trailer, \(e.count) bytes)" }
            } else if e.type == .string || e.type == .stringArray {
                value = rpm.signature.strings(e.tag).joined(separator: " ")
            } else {
                value = rpm.signature.integers(e.tag).map(String.init).joined(separator: " ")
            }
            lines.append(label + value)
        }
        lines.append("Requires (\(rpm.requires.count)):")
        lines += rpm.requires.map { "  " + $0.description + (($0.flags & Dependency.prereqMask) != 0 ? " [pre]" : "") }
        lines.append("Provides (\(rpm.provides.count)):")
        lines += rpm.provides.map { "  " + $0.description }
        let list = rpm.files
        lines.append("Files: \(list.count)" + (files ? "" : " (--files lists them)"))
        if files {
            for f in list {
                lines.append("  " + modeString(f.mode) + " \(f.user)/\(f.group) \(f.size) \(f.path)" + (f.linkTo.isEmpty ? "" : " -> \(f.linkTo)"))
            }
        }
        lines.append(row("Description", nil).replacingOccurrences(of: "(none)", with: ""))
        lines.append(rpm.header.string(Tag.description) ?? "")
        return lines.joined(separator: "\n")
    }

    static func modeString(_ mode: Int) -> String {
        let type: Character
        switch mode & 0o170000 {
        case 0o040000: type = "d"
        case 0o120000: type = "l"
        case 0o020000: type = "c"
        case 0o060000: type = "b"
        case 0o010000: type = "p"
        case 0o140000: type = "s"
        default: type = "-"
        }
        var s = String(type)
        let chars: [Character] = ["r", "w", "x"]
        for i in 0..<9 { s.append(mode & (1 << (8 - i)) != 0 ? chars[i % 3] : "-") }
        var a = Array(s)
        if mode & 0o4000 != 0 { a[3] = a[3] == "x" ? "s" : "S" }
        if mode & 0o2000 != 0 { a[6] = a[6] == "x" ? "s" : "S" }
        if mode & 0o1000 != 0 { a[9] = a[9] == "x" ? "t" : "T" }
        return String(a)
    }

    static func resolve(repo: String, args: RPMArguments, console: Console) throws -> Int32 {
        let t0 = Date()
        let (_, packages, comps) = try Metadata.loadLocal(repository: repo)
        let t1 = Date()
        let resolver = Resolver(packages: packages)
        let resolution: Resolution
        if let group = args.group {
            guard let comps else { throw UsageError("the repository has no comps (group) file", usage: usage) }
            resolution = try resolver.groupInstallSet(
                comps: comps, group: group, extra: args.extra,
                exclude: Set(args.exclude.isEmpty ? ["postfix"] : args.exclude))
        } else {
            resolution = resolver.resolve(seeds: args.seeds.isEmpty ? BootstrapSet.seeds : args.seeds)
        }
        let t2 = Date()
        for p in resolution.packages { console.out(p.nevra) }
        console.err(
            String(
                format: "%d packages in the repository; %d resolved (%.1f MB to download); parse %.3f s, resolve %.3f s",
                packages.count, resolution.packages.count, Double(resolution.downloadBytes) / 1e6,
                t1.timeIntervalSince(t0), t2.timeIntervalSince(t1)))
        guard resolution.unresolved.isEmpty else { throw RepositoryError.unresolved(resolution.unresolved) }
        return ExitCode.success
    }
}

/// `rpm extract` failures, naming the directory.
enum RPMCommandError: ToolError {
    case extract(dir: String, reason: String)
    var failure: String {
        switch self {
        case let .extract(dir, _): return "cannot extract into DIR '\(dir)'"
        }
    }
    var reason: String? {
        switch self {
        case let .extract(_, reason): return reason
        }
    }
}
