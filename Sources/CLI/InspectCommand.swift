import Disk
import Foundation
import Host
import Install
import SBOM
import Verdict
import Versions

/// `inspect`: read-only facts about a built image: what a boot or a person
/// left that `register` refuses to snapshot (the hygiene gate), and its boot
/// verdict (where it boots on EC2, and why not elsewhere).
/// What `inspect` was given, as its options declare it.
struct InspectArguments {
    var target = ""
    var json = false
    var sbom: SBOMFormat?
    var versions: String?
    var log: String?
}

struct InspectCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    static let options = Options<InspectArguments>(
        [
            .flag(
                "--json", \.json,
                help: """
                    the verdict as JSON (bootsOn, summary, kernel, drivers, reasons) and
                    the hygiene findings (hygiene: [{path, what}], null when not checked)
                    """),
            .value(
                "--sbom", "spdx|cyclonedx", \.sbom,
                help: """
                    instead: the image's SBOM (SPDX 2.3 or CycloneDX 1.5 JSON) on stdout, from
                    its own rpm database, read-only (for images built before install wrote
                    one, or by hand); no package checksums (an image holds no package files)
                    """, render: \.rawValue
            ) { name in
                guard let format = SBOMFormat(rawValue: name) else { throw OptionProblem("--sbom takes spdx or cyclonedx, not '\(name)'") }
                return format
            }.checked { $0.json ? "--sbom and --json: choose one (the SBOM is JSON already)" : nil },
            .text("--versions", "FILE", \.versions, help: CommonOptions.versions.help),
            .text("--log", "FILE", \.log, help: "the full log (default: none)"),
        ], defaults: InspectArguments())

    static let spec = CommandSpec(
        name: "inspect",
        summary: "read-only: what a boot or a person left in a built image (register refuses it), and where it boots on EC2 (Xen, Nitro)",
        forms: [UsageForm("IMAGE|DEVICE|DIR")],
        options: options.specs,
        about: """
            Reads a built image without changing it: DEVICE (a block device) has its
            first partition mounted read-only (no journal replay; needs root); so has
            IMAGE (a raw disk image file) as root, and without root the files the
            verdict needs are copied out of its first partition with debugfs
            (e2fsprogs); DIR is an image's root filesystem already mounted.

            Hygiene: it lists what register would refuse to snapshot: SSH host keys, any
            authorized_keys, root's .ssh, shell histories, udev's 70-persistent-net.rules,
            HWADDR/UUID in ifcfg files, non-empty logs, DHCP leases, a random seed, yum's
            uuid. Without root an image file's hygiene is not checked (it says so).

            For the default kernel (grub.conf's default entry) it lists where each driver
            EC2 needs is at boot: xen-blkfront and xen-netfront (Xen families), nvme (the
            root volume on Nitro) and ena (the network on Nitro): in the initramfs, built
            into the kernel, installed under /lib/modules/<kver>, or missing. The image
            boots on Xen with xen-blkfront at boot and xen-netfront present, on Nitro with
            nvme at boot and ena present.
            """,
        notes: "exit status: 0 clean (with --sbom: written), 1 hygiene findings (or the image could not be read), 64 usage error.")
    static let usage = spec.usage

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try options.parse(arguments, usage: usage, positionals: onePositional(\.target, missing: "inspect needs IMAGE, DEVICE or DIR", usage: usage))
            .values
        let target = args.target, sbom = args.sbom
        let versions = try CLI.loadVersions(args.versions, console: console, usage: usage)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else {
            throw BootVerdict.Failure.targetMissing(path: target)
        }
        if let sbom, isDirectory.boolValue {
            let log = try Log(path: args.log, progress: { _ in })
            console.out(String(sbom.render(try sbomInput(root: target, name: target, log: log, journal: nil)).dropLast()))
            return ExitCode.success
        }
        if sbom != nil, geteuid() != 0 {
            throw UsageError("--sbom on an image file or device needs root (it mounts it read-only); or give the mounted root directory", usage: usage)
        }
        func verdict(_ root: String) throws -> BootVerdict {
            let hint = BootVerdict.release(root: root).flatMap { versions.release($0) }.map { BootVerdict.enaHint(release: $0, enaAsked: false) }
            return try BootVerdict.compute(root: root, enaHint: hint)
        }
        let result: BootVerdict
        var findings: [HygieneFinding]?
        if isDirectory.boolValue {
            result = try verdict(target)
            findings = Hygiene.findings(root: target)
        } else {
            try BuildInProgress.refuse(target)
            let log = try Log(path: args.log, progress: { _ in })
            // ^C and SIGTERM unwind (the loop device and mount go); kill -9 leaves a journal for 'cleanup --local'.
            Interruption.shared.install()
            let journal = CommandJournal.start("centos6-ami inspect \(target)", console: console)
            defer { CommandJournal.finish(journal) }
            if let sbom {
                let input = try ReadOnlyImage.with(target, log: log, journal: journal) { root in
                    try sbomInput(root: root, name: target, log: log, journal: journal)
                }
                try Interruption.shared.check()
                console.out(String(sbom.render(input).dropLast()))
                return ExitCode.success
            }
            if geteuid() == 0 {
                (result, findings) = try ReadOnlyImage.with(target, log: log, journal: journal) { root in (try verdict(root), Hygiene.findings(root: root)) }
            } else {
                guard case .imageFile = try inspectTarget(target) else {
                    throw UsageError("reading the device '\(target)' needs root (it is mounted read-only); or give the mounted root directory", usage: usage)
                }
                let work = try TemporaryDirectory.make("inspect")
                journal?.record(.scratch(work))
                // Removed whatever debugfs copied out (read-only directories included).
                defer { TemporaryDirectory.remove(work) }
                result = try verdict(try copyOut(image: target, into: work + "/root", log: log))
            }
            try Interruption.shared.check()
        }
        console.out(args.json ? renderJSON(result, hygiene: findings) : render(result, target: target, hygiene: findings))
        return findings?.isEmpty == false ? ExitCode.failure : ExitCode.success
    }
    /// The SBOM input of the image whose root is `root`: its rpm database read through a
    /// private copy (`SBOM.RPMDatabase`), its release from that database's centos-release
    /// (else /etc/redhat-release), its kernel from grub.conf when it has one.
    static func sbomInput(root: String, name: String, log: Log, journal: RunJournal?) throws -> SBOMInput {
        let packages = try RPMDatabase.packages(root: root, runner: ProcessRunner(log: log), journal: journal)
        guard let release = ImageRelease.from(packages: packages) ?? ImageRelease.from(root: root) else {
            throw RPMDatabaseError.unknownRelease(image: name)
        }
        let base = (name as NSString).lastPathComponent
        return SBOMInput(
            imageName: base.hasSuffix(".img") ? String(base.dropLast(4)) : base, release: release,
            kernel: try? BootVerdict.defaultBootEntry(root: root).kernel, toolVersion: CLI.version,
            created: Date(), serial: UUID(), packages: packages)
    }

    /// Without root: the files the verdict reads (/boot, /etc/redhat-release, the default
    /// kernel's /lib/modules), copied out of partition 1 of the image file by debugfs.
    static func copyOut(image: String, into root: String, log: Log) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: image) else { throw BootVerdict.Failure.imageUnreadable(path: image) }
        let mbr = [UInt8](handle.readData(ofLength: 512))
        try? handle.close()
        guard let offset = firstPartitionOffset(mbr: mbr) else {
            throw BootVerdict.Failure.noPartitionTable(image: image)
        }
        let runner = ProcessRunner(log: log)
        let source = "\(image)?offset=\(offset)"
        func debugfs(_ request: String) throws -> String {
            try runner.checked(Command("debugfs", ["-R", request, source])).stdoutText
        }
        for dir in ["/etc", "/lib/modules"] { try FileManager.default.createDirectory(atPath: root + dir, withIntermediateDirectories: true) }
        _ = try debugfs("rdump /boot \(root)")
        // /etc/redhat-release is a link to centos-release, which debugfs's cat does not follow.
        var release = try debugfs("cat /etc/redhat-release")
        if release.isEmpty { release = try debugfs("cat /etc/centos-release") }
        try AtomicFile.write(Data(release.utf8), to: root + "/etc/redhat-release")
        let kernel = try BootVerdict.defaultBootEntry(root: root).kernel
        _ = try debugfs("rdump /lib/modules/\(kernel) \(root)/lib/modules")
        return root
    }

    /// Byte offset of partition 1 of an msdos label (start LBA at 454, little-endian, 512-byte sectors).
    static func firstPartitionOffset(mbr: [UInt8]) -> Int? {
        guard mbr.count == 512, mbr[510] == 0x55, mbr[511] == 0xAA else { return nil }
        let lba = Int(mbr[454]) | Int(mbr[455]) << 8 | Int(mbr[456]) << 16 | Int(mbr[457]) << 24
        return lba > 0 ? lba * 512 : nil
    }

    /// The hygiene lines (first: a finding matters more than the verdict), then the verdict.
    static func render(_ v: BootVerdict, target: String, hygiene: [HygieneFinding]?) -> String {
        var lines = ["image:     \(target)"]
        switch hygiene {
        case nil: lines.append("hygiene:   not checked (reading the whole image needs root)")
        case let findings? where findings.isEmpty:
            lines.append("hygiene: clean (no host keys, authorized_keys, histories, net rules, leases, logs, seed or yum uuid)")
        case let findings?:
            lines.append("hygiene: \(findings.count) finding(s) in '\(target)'; register refuses it:")
            lines += findings.map { "  \($0.path): \($0.what)" }
        }
        lines.append("kernel:    \(v.kernel)")
        for name in BootVerdict.driverNames {
            let source = v.drivers[name] ?? .missing
            let text: String
            switch source {
            case .initramfs: text = "in the initramfs"
            case .builtin: text = "built into the kernel"
            case .installed: text = "installed in /lib/modules/\(v.kernel)" + (name == "ena" ? "" : " (not in the initramfs)")
            case .missing: text = "missing"
            }
            lines.append("  " + name.padding(toLength: 14, withPad: " ", startingAt: 0) + text)
        }
        lines.append("boots on:  \(v.summary)")
        return lines.joined(separator: "\n")
    }

    static func renderJSON(_ v: BootVerdict, hygiene: [HygieneFinding]?) -> String {
        var object: [String: Any] = ["bootsOn": v.bootsOn, "summary": v.summary, "kernel": v.kernel, "xen": v.xen, "nitro": v.nitro, "reasons": v.reasons]
        object["hygiene"] = hygiene.map { $0.map { ["path": $0.path, "what": $0.what] } } ?? NSNull()
        object["drivers"] = v.drivers.mapValues(\.rawValue)
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
