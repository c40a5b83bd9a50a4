import Foundation
import Host
import Versions

/// Where a command writes and what it reads; tests capture both streams.
// Unchecked: its closures and environment are set when a command starts and only read after.
public final class Console: @unchecked Sendable {
    public var out: (String) -> Void
    public var err: (String) -> Void
    public var environment: [String: String]
    public init(
        out: @escaping (String) -> Void = { print($0) },
        err: @escaping (String) -> Void = { Output.stderr(($0 + "\n")) },
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.out = out
        self.err = err
        self.environment = environment
    }
}

/// One subcommand of `centos6-ami`. Each lives in its own file (a type with its
/// `CommandSpec` and `run`) and is listed in `CLI.subcommands`.
/// A plain value rather than a protocol metatype: Swift 6.3 crashes on opened existential metatypes here.
public struct Subcommand: Sendable {
    /// Its name, options and help, declared once.
    public var spec: CommandSpec
    /// Runs the command with the words after its name; returns the exit code.
    public var run: @Sendable ([String], Console) throws -> Int32
    public init(spec: CommandSpec, run: @escaping @Sendable ([String], Console) throws -> Int32) {
        self.spec = spec; self.run = run
    }
    public var name: String { spec.name }
    /// One line for the command list.
    public var summary: String { spec.summary }
    /// `usage: centos6-ami NAME ...`
    public var usage: String { spec.usage }
    /// The full `--help` text (the usage line and summary are printed first).
    public var help: String { spec.help }
}

public enum ExitCode {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let usage: Int32 = 64
    public static let interrupted: Int32 = 130
}

public enum CLI {
    public static let version = "0.1.0"
    public static let usage = "usage: centos6-ami [--version] [--help] <command> [<args>]"

    /// Every command, in the order `--help` lists them: the order a user meets them.
    public static let subcommands: [Subcommand] = [
        InstallCommand.subcommand,
        BatchCommand.subcommand,
        BootTestCommand.subcommand,
        InspectCommand.subcommand,
        RegisterCommand.subcommand,
        TableCommand.subcommand,
        VersionsCommand.subcommand,
        CleanupCommand.subcommand,
        RPMCommand.subcommand,
    ]

    public static func find(_ name: String) -> Subcommand? { subcommands.first { $0.name == name } }

    public static var helpText: String {
        var text = "centos6-ami \(version): build CentOS 6 (6.0-6.10) Amazon Machine Images from scratch\n\n\(usage)\n\ncommands:\n"
        let width = (subcommands.map { $0.name.count }.max() ?? 8) + 2
        for cmd in subcommands {
            text += "  " + cmd.name.padding(toLength: width, withPad: " ", startingAt: 0) + cmd.summary + "\n"
        }
        text += "  " + "help".padding(toLength: width, withPad: " ", startingAt: 0) + "show help for a command\n"
        text += "\nRun 'centos6-ami help <command>' or 'centos6-ami <command> --help' for a command's options."
        return text
    }

    /// Parses the words after the program name, runs the command, maps errors to exit codes.
    public static func main(_ arguments: [String], console: Console = Console()) -> Int32 {
        // Nothing we print shows a password given in a URL (--mirror, --endpoint-url).
        let out = console.out, err = console.err
        console.out = { out(redactCredentials($0)) }
        console.err = { err(redactCredentials($0)) }
        do {
            return try dispatch(arguments, console: console)
        } catch let error as UsageError {
            console.err("error: \(error.message)")
            console.err(error.usage)
            return ExitCode.usage
        } catch {
            if case let HostError.interrupted(sig) = StepFailed.cause(of: error) {
                console.err("centos6-ami: interrupted by signal \(sig); cleaned up")
                return ExitCode.interrupted
            }
            if Interruption.shared.isInterrupted {
                console.err("centos6-ami: interrupted: \(error)")
                return ExitCode.interrupted
            }
            console.err("error: \(describe(error))")
            return ExitCode.failure
        }
    }

    /// What an error says to a user: ours have the one shape (`ToolError`: what failed, why,
    /// what to do); a Foundation error that escaped (NSCocoaErrorDomain and the like) is its
    /// message and file, never a dump.
    static func describe(_ error: Error) -> String {
        if let ours = error as? any ToolError { return ours.description }
        guard type(of: error) is NSError.Type || error is CocoaError else { return "\(error)" }
        let ns = error as NSError
        let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        return ns.localizedDescription + (path.map { " ('\($0)')" } ?? "")
    }

    static func dispatch(_ arguments: [String], console: Console) throws -> Int32 {
        guard let first = arguments.first else {
            throw UsageError("no command given", usage: usage)
        }
        let rest = Array(arguments.dropFirst())
        switch first {
        case "--version", "-V":
            console.out("centos6-ami \(version)")
            return ExitCode.success
        case "--help", "-h":
            console.out(helpText)
            return ExitCode.success
        case "help":
            guard let topic = rest.first else { console.out(helpText); return ExitCode.success }
            guard let cmd = find(topic) else { throw UsageError("unknown command '\(topic)'", usage: usage) }
            console.out(fullHelp(cmd))
            return ExitCode.success
        default:
            guard let cmd = find(first) else {
                throw UsageError("unknown command '\(first)' (commands: \(subcommands.map(\.name).joined(separator: ", ")))", usage: usage)
            }
            if rest.contains("--help") || rest.contains("-h") {
                console.out(fullHelp(cmd))
                return ExitCode.success
            }
            return try cmd.run(rest, console)
        }
    }

    public static func fullHelp(_ cmd: Subcommand) -> String {
        "\(cmd.usage)\n\n\(cmd.summary)\n\n\(cmd.help)"
    }

    /// The versions table: `--versions FILE` (or CENTOS6_AMI_VERSIONS) overrides the embedded one.
    /// A file that is not there is a mistake in the command line (exit 64); one that is
    /// there but wrong is reported as it is (exit 1).
    public static func loadVersions(_ path: String?, console: Console, usage: String = CLI.usage) throws -> VersionsFile {
        if let path = path ?? console.tool.versionsFile {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw UsageError("--versions '\(path)' is not a readable file", usage: usage)
            }
            return try VersionsFile.load(path: path)
        }
        return try VersionsFile.embedded()
    }
}
