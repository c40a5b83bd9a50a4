import Foundation
import Host
import Install
#if canImport(Glibc)
import Glibc
#endif

/// `inspect`: looks into a built image or device read-only and lists what must
/// not be snapshotted (the same hygiene gate `register` applies).
struct InspectCommand {
    static let subcommand = Subcommand(name: name, summary: summary, usage: usage, help: help, run: run)
    static let name = "inspect"
    static let summary = "look into a built image or device read-only: what a boot or a person left that must not be snapshotted"
    static let usage = "usage: centos6-ami inspect IMAGE|DEVICE [--log FILE]"
    static let help = """
    Mounts the image's first partition read-only (no journal replay: not one byte
    changes) and lists what register would refuse to snapshot: SSH host keys, any
    authorized_keys, root's .ssh, shell histories, udev's 70-persistent-net.rules,
    HWADDR/UUID in ifcfg files, non-empty logs, DHCP leases, a random seed, yum's uuid.

    options:
      --log FILE   the full log (default: none)

    Needs root (it mounts the image).
    exit status: 0 clean, 1 something found (or the image could not be read), 64 usage error.
    """

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try parseArguments(arguments, options: ["--log"], usage: usage)
        guard args.positionals.count == 1 else { throw UsageError(args.positionals.isEmpty ? "inspect needs IMAGE or DEVICE" : "unexpected argument '\(args.positionals[1])'", usage: usage) }
        let image = args.positionals[0]
        guard FileManager.default.fileExists(atPath: image) else { throw UsageError("'\(image)' does not exist", usage: usage) }
        guard geteuid() == 0 else { throw UsageError("inspect needs root (it mounts the image read-only)", usage: usage) }
        let log = try Log(path: args.value("--log"), progress: console.err)
        let findings = try ReadOnlyImage.hygiene(image, log: log)
        guard !findings.isEmpty else {
            console.out("hygiene: clean (no host keys, authorized_keys, histories, net rules, leases, logs, seed or yum uuid)")
            return ExitCode.success
        }
        console.out("hygiene: \(findings.count) finding(s) in '\(image)'; register refuses it:")
        for f in findings { console.out("  \(f.path): \(f.what)") }
        return ExitCode.failure
    }
}
