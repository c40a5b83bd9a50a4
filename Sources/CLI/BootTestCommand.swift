import Disk
import Foundation
import Host
import VM
import Verdict
#if canImport(Glibc)
    import Glibc
#endif

/// `boot-test`: the check before registering. Boots the image in QEMU (TCG)
/// with a local IMDSv2 service serving the given key at 169.254.169.254
/// (inside a restricted user network), waits for first boot to finish (the
/// `login:` prompt on ttyS0, printed after rc.local ran), powers the guest
/// off, and then checks that ec2-user's authorized_keys holds exactly that key.
/// What `boot-test` was given, as its options declare it.
struct BootTestArguments {
    var image = ""
    /// `--key`'s public key line, read and checked.
    var key: String?
    var timeout: Double?
    var disk: DiskInterface?
    var console: String?
    var keepCopy: String?
    var log: String?
}

struct BootTestCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    static let options = Options<BootTestArguments>(
        [
            .value(
                "--key", "FILE", \.key, help: "OpenSSH public key to serve (default: none; the guest then gets 404)",
                render: { $0 }, parse: publicKey),
            .value(
                "--timeout", "SECONDS", \.timeout, help: "limit for reaching login: (default 180)", render: OptionCheck.render,
                parse: OptionCheck.number(Double.leastNonzeroMagnitude...Double.greatestFiniteMagnitude, "--timeout needs a positive number of seconds")),
            .value(
                "--disk", "nvme|ide|virtio", \.disk,
                help: """
                    how the guest sees its root disk: nvme (an NVMe controller with a
                    'vol…' serial, as Nitro attaches EBS volumes), ide or virtio. Default:
                    from the image's boot verdict (as root): nvme when it can boot on
                    Nitro, else ide. The image must find LABEL=/ through its own initramfs.
                    """, render: \.rawValue
            ) { text in
                guard let disk = DiskInterface(rawValue: text) else { throw OptionProblem("--disk is nvme, ide or virtio") }
                return disk
            },
            .text(
                "--console", "FILE", \.console,
                help: """
                    where the serial console is written (default IMAGE.console.log;
                    /var/tmp/NAME.console.log for a device)
                    """),
            .text("--keep-copy", "PATH", \.keepCopy, help: "keep the booted copy there (a raw image; it is not clean: do not register it)"),
            .text("--log", "FILE", \.log, help: "the run's log"),
        ], defaults: BootTestArguments())

    static let spec = CommandSpec(
        name: "boot-test",
        summary: "boot a built image in QEMU with a local IMDSv2 serving a key; pass when ec2-user gets it",
        forms: [UsageForm("IMAGE|DEVICE")],
        options: options.specs,
        about: """
            Boots a throwaway copy of IMAGE (a raw disk image or a block device holding a
            built system; copied sparse, reflinked where the filesystem can) with
            qemu-system-x86_64 -accel tcg: no network but a restricted user network in
            which 169.254.169.254:80 is a local IMDSv2 service serving --key as the
            launch key. Waits for the login: prompt on the serial console, powers the
            guest off, then (with --key) mounts the copy read-only and checks that
            /home/ec2-user/.ssh/authorized_keys holds exactly that key, mode 0600.

            IMAGE itself is never booted and never written: a first boot leaves the test
            key, host keys and udev's net rules behind, which must not reach a snapshot.
            The copy is removed at the end unless --keep-copy names where to keep it.
            """,
        notes: """
            Needs qemu-system-x86_64 on the builder; root for the key check (it mounts the image).
            exit status: 0 passed, 1 failed, 64 usage error, 130 interrupted.
            """)
    static let usage = spec.usage

    /// `--key FILE`: the file's one OpenSSH public key line.
    static func publicKey(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw OptionProblem("--key '\(path)' is not a readable file") }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !line.contains("\n"),
            line.range(of: #"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$"#, options: .regularExpression) != nil
        else {
            throw OptionProblem("--key '\(path)' is not an OpenSSH public key (one line: 'ssh-ed25519 AAAA... comment')")
        }
        return line
    }

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try options.parse(arguments, usage: usage, positionals: onePositional(\.image, missing: "boot-test needs IMAGE", usage: usage)).values
        let image = args.image, key = args.key
        if key != nil {
            guard geteuid() == 0 else { throw UsageError("checking the key in the image needs root (it mounts the image read-only)", usage: usage) }
        }
        let timeout = args.timeout ?? 180
        let asked = args.disk
        guard FileManager.default.fileExists(atPath: image) else { throw VMError.imageMissing(path: image) }
        try BuildInProgress.refuse(image)
        // Before QEMU starts: a file that is no boot disk would only run into the timeout.
        try ImageCheck.check(image)
        let keepCopy = args.keepCopy
        if let keepCopy, FileManager.default.fileExists(atPath: keepCopy) {
            throw UsageError("--keep-copy '\(keepCopy)' already exists; name a new file", usage: usage)
        }

        Interruption.shared.install()
        let log = try Log(path: args.log, progress: console.err)
        // Recorded for 'cleanup --local' if this run is killed: its work directory (the copy,
        // the QMP socket), the QEMU child, the read-only mount.
        let journal = CommandJournal.start("centos6-ami boot-test \(image)", console: console)
        defer { CommandJournal.finish(journal) }
        // On disk, not in a tmpfs /tmp: the copy is as big as the image's data.
        let work = try TemporaryDirectory.make("boot", in: "/var/tmp")
        journal?.record(.scratch(work))
        defer { TemporaryDirectory.remove(work) }

        let copy = keepCopy ?? work + "/boot-copy.img"
        journal?.record(.image(copy))
        log.step("copying \(image) to \(copy) (sparse; the input is never booted)")
        let copied = ProcessRunner(log: log).run(Command("cp", ["--reflink=auto", "--sparse=always", image, copy]))
        guard copied.status == 0 else {
            try? FileManager.default.removeItem(atPath: copy)
            try Interruption.shared.check()
            throw BootTestError.copyFailed(source: image, copy: copy, reason: copied.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var keep = false
        defer { if !keep { try? FileManager.default.removeItem(atPath: copy) } }
        // The verdict read from the input (read-only), before the copy is booted.
        let disk = try asked ?? defaultDisk(image: image, log: log, journal: journal)

        let server = IMDSServer(settings: IMDSSettings(key: key.map { $0 + "\n" }))
        let port = try server.start()
        defer { server.stop() }
        // Never beside a device node: /dev is no place for a log.
        let consolePath =
            args.console
            ?? (image.hasPrefix("/dev/") ? "/var/tmp/\((image as NSString).lastPathComponent).console.log" : image + ".console.log")
        var config = BootConfig(image: copy, serialLog: consolePath, qmpSocket: work + "/qmp.sock", imdsPort: port)
        config.timeout = timeout
        config.diskInterface = disk
        log.step("booting the copy of \(image) (TCG; IMDSv2 at 169.254.169.254 serving \(key == nil ? "no key" : "the key"); console: \(consolePath))")
        let result = try BootRunner(log: log).boot(config)
        server.stop()
        try Interruption.shared.check()
        if keepCopy != nil {
            keep = true
            journal?.record(.finished(copy))
            log.say("the booted copy is kept in '\(copy)' (--keep-copy); it holds what the boot left: do not register it")
        }
        return try conclude(
            result, image: image, copy: copy, key: key, readyPattern: config.readyPattern, disk: disk,
            consolePath: consolePath, console: console, log: log, journal: journal)
    }

    /// After the boot: the verdict of the console, then the key read back from the copy.
    /// Kept out of `run` (never inlined): there, the switches over the boot's outcome
    /// crashed the Swift 6.3 optimizer (CopyPropagation) in release builds.
    @inline(never)
    static func conclude(
        _ result: BootResult, image: String, copy: String, key: String?, readyPattern: String, disk: DiskInterface,
        consolePath: String, console: Console, log: Log, journal: RunJournal?
    ) throws -> Int32 {
        log.say("boot: \(result.summary)")
        guard result.passed else {
            console.err(String(result.console.suffix(2000)))
            log.say(failureLine(result.outcome, image: image, readyPattern: readyPattern, disk: disk, consolePath: consolePath))
            return ExitCode.failure
        }
        guard let key else {
            log.say("boot-test passed (no key served, so none checked)")
            return ExitCode.success
        }
        let found = try readAuthorizedKeys(image: copy, log: log, journal: journal)
        guard let found else {
            log.say("boot-test failed: no /home/ec2-user/.ssh/authorized_keys in the image after first boot; console in \(consolePath)")
            return ExitCode.failure
        }
        guard found.text.trimmingCharacters(in: .whitespacesAndNewlines) == key, found.mode == 0o600 else {
            // Named, never echoed: what an image holds is not the tool's to print.
            let lines = found.text.split(separator: "\n").count
            log.say(
                "boot-test failed: /home/ec2-user/.ssh/authorized_keys (mode \(String(found.mode, radix: 8)), \(lines) lines) does not hold exactly the served key with mode 600"
            )
            return ExitCode.failure
        }
        log.say(String(format: "boot-test passed: login: after %.1f s; ec2-user's authorized_keys holds exactly the key", result.secondsToReady ?? 0))
        return ExitCode.success
    }

    /// What a failed boot says: a root device the initramfs never found is named as such.
    /// (A function of its own: inlined into `run`, this switch crashed the 6.3 optimizer's
    /// CopyPropagation pass in release builds.)
    static func failureLine(_ outcome: WatchOutcome, image: String, readyPattern: String, disk: DiskInterface, consolePath: String) -> String {
        switch outcome {
        case let .failed(pattern, seconds) where QEMU.rootNotFoundPatterns.contains(pattern):
            return String(
                format:
                    "boot-test failed: root filesystem not found: the guest's initramfs found no root device on its %@ disk (%.1f s after start; its kernel or initramfs has no %@ driver?); console in %@",
                disk.rawValue, seconds, disk == .nvme ? "nvme" : disk.rawValue, consolePath)
        default:
            return "boot-test failed: \(image) did not reach '\(readyPattern)'; console in \(consolePath)"
        }
    }

    /// The disk the boot verdict asks for: nvme when the image can boot on Nitro, else
    /// ide (Xen HVM guests also start on emulated IDE). Reading the image needs root.
    static func defaultDisk(image: String, log: Log, journal: RunJournal?) throws -> DiskInterface {
        guard geteuid() == 0 else {
            log.say("note: not root, so the image's boot verdict is not read; booting with its root disk on IDE (choose with --disk)")
            return .ide
        }
        let verdict = try ReadOnlyImage.with(image, log: log, journal: journal) { try BootVerdict.compute(root: $0) }
        let disk: DiskInterface = verdict.nitro ? .nvme : .ide
        log.say("boots on: \(verdict.summary); root disk on \(disk == .nvme ? "NVMe" : "IDE")")
        return disk
    }

    /// Mounts partition 1 of the (copied) image read-only and reads ec2-user's
    /// authorized_keys. Everything it attaches or mounts is undone before it returns.
    static func readAuthorizedKeys(image: String, log: Log, journal: RunJournal?) throws -> (text: String, mode: Int)? {
        try ReadOnlyImage.with(image, log: log, journal: journal) { root in
            // Inside the image only: a symlink to a host file must not be read, let alone printed.
            let path = "/home/ec2-user/.ssh/authorized_keys"
            guard let info = ImageRoot.status(path, in: root), info.st_mode & S_IFMT == S_IFREG,
                let text = ImageRoot.text(path, in: root, limit: 1 << 20)
            else { return nil }
            return (text, Int(info.st_mode & 0o7777))
        }
    }
}

enum BootTestError: ToolError {
    case copyFailed(source: String, copy: String, reason: String)

    var failure: String {
        switch self {
        case let .copyFailed(source, copy, reason): return "cannot copy '\(source)' to '\(copy)' for booting (\(reason))"
        }
    }
    var remedy: String? { "free space there or name another place with --keep-copy" }
}
