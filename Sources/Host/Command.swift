import Foundation

/// A command as data: never a shell string. The same value feeds the real
/// runner, the `--dry-run` printer and the recording runner of unit tests.
public struct Command: Equatable, Sendable, CustomStringConvertible {
    public var executable: String
    public var arguments: [String]
    /// Extra environment on top of the runner's base environment.
    public var environment: [String: String]
    public var standardInput: Data?

    public init(_ executable: String, _ arguments: [String] = [], environment: [String: String] = [:], standardInput: Data? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.standardInput = standardInput
    }

    /// The same command run inside `root` (host vs chroot is a wrapper on the argument list).
    public func inChroot(_ root: String) -> Command {
        var wrapped = self
        wrapped.executable = "chroot"
        wrapped.arguments = [root, executable] + arguments
        return wrapped
    }

    /// One shell-quoted line: what `--dry-run` prints and what the log records.
    public var shellLine: String {
        let env = environment.keys.sorted().map { "\($0)=\(shellQuote(environment[$0]!))" }
        let line = (env + ([executable] + arguments).map(shellQuote)).joined(separator: " ")
        guard let input = standardInput else { return line }
        // Short text input is shown as the printf that would feed it, so the line stays runnable.
        if input.count <= 4096, let text = String(data: input, encoding: .utf8), !text.contains("\0") {
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "%%")
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
            return "printf \(shellQuote(escaped)) | \(line)"
        }
        return "\(line) < (\(input.count) bytes of input)"
    }

    public var description: String { shellLine }
}

/// Quotes a word for a POSIX shell only when it needs it.
public func shellQuote(_ word: String) -> String {
    if word.isEmpty { return "''" }
    let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")
    if word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

public struct CommandResult: Equatable, Sendable {
    public var status: Int32
    public var standardOutput: Data
    public var standardError: Data
    public init(status: Int32, standardOutput: Data = Data(), standardError: Data = Data()) {
        self.status = status
        self.standardOutput = standardOutput
        self.standardError = standardError
    }
    public var stdoutText: String { String(decoding: standardOutput, as: UTF8.self) }
    public var stderrText: String { String(decoding: standardError, as: UTF8.self) }
    public static let success = CommandResult(status: 0)
}

/// A command exited non-zero (or could not start). Prints the command, the
/// status and the tail of its stderr.
public struct CommandFailed: ToolError, Sendable {
    public var command: Command
    public var result: CommandResult
    public init(command: Command, result: CommandResult) {
        self.command = command
        self.result = result
    }
    public var failure: String {
        let outcome = result.status == 127 ? "could not be started (is '\(command.executable)' installed?)" : "exited with status \(result.status)"
        return "command '\(command.shellLine)' \(outcome)"
    }
    /// The last lines of its stderr, one per line below the command.
    public var reason: String? {
        let tail = result.stderrText.split(separator: "\n", omittingEmptySubsequences: true).suffix(8).joined(separator: "\n    ")
        return tail.isEmpty ? nil : "\n    \(tail)"
    }
}
