import Foundation

/// Runs commands. The real runner, the dry-run printer and the recording fake
/// all conform, so step code is written once.
public protocol CommandRunner: AnyObject, Sendable {
    /// Runs the command and returns its status and output; never throws for a non-zero exit.
    func run(_ command: Command) -> CommandResult
    /// True when commands are only printed (`--dry-run`): steps must not read the world back.
    var isDryRun: Bool { get }
    /// Runs `body` while a cleanup stack unwinds: after an interruption only these commands may still start.
    func unwinding<T>(_ body: () throws -> T) rethrows -> T
    /// Says what a job does besides its commands: a comment line of the dry-run plan, a line of the real run's log.
    func note(_ text: String)
    /// Writes a file of the tool's own making, atomically, with `mode`; the dry-run printer prints it instead.
    func writeFile(_ text: String, to path: String, mode: Int) throws
    /// Does a step's own work that no command expresses (unpacking, linking, locking, checking
    /// the world); the dry-run printer prints `description` instead, as a note (nothing when nil).
    func perform(_ description: String?, _ action: () throws -> Void) rethrows
}

extension CommandRunner {
    public var isDryRun: Bool { false }
    public func unwinding<T>(_ body: () throws -> T) rethrows -> T { try body() }
    public func note(_ text: String) {}
    public func writeFile(_ text: String, to path: String, mode: Int) throws { try writeToolFile(text, to: path, mode: mode) }
    public func perform(_ description: String?, _ action: () throws -> Void) rethrows { try action() }
    /// `perform` with nothing to show in the plan.
    public func perform(_ action: () throws -> Void) rethrows { try perform(nil, action) }

    /// Runs the command and throws `CommandFailed` unless it exits 0.
    @discardableResult
    public func checked(_ command: Command) throws -> CommandResult {
        let result = run(command)
        guard result.status == 0 else { throw CommandFailed(command: command, result: result) }
        return result
    }

    @discardableResult
    public func checked(_ executable: String, _ arguments: [String] = []) throws -> CommandResult {
        try checked(Command(executable, arguments))
    }
}

/// `--dry-run`: prints one shell-quoted line per command, in order, and touches nothing.
// Unchecked: `lines` is appended under `lock`; `echo` is set once at init.
public final class DryRunPrinter: CommandRunner, @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var lines: [String] = []
    private let echo: (String) -> Void
    public init(echo: @escaping (String) -> Void = { print($0) }) { self.echo = echo }
    public var isDryRun: Bool { true }
    public func run(_ command: Command) -> CommandResult {
        lock.withLock { lines.append(command.shellLine) }
        echo(command.shellLine)
        return .success
    }
    /// A non-command action, listed as a comment line.
    public func note(_ text: String) {
        let line = "# \(text)"
        lock.withLock { lines.append(line) }
        echo(line)
    }
    public func writeFile(_ text: String, to path: String, mode: Int) throws { note(describeWrite(text, to: path, mode: mode)) }
    public func perform(_ description: String?, _ action: () throws -> Void) rethrows { if let description { note(description) } }
}

/// Writes a file of the tool's own making: atomic (temporary file, rename), then `mode`.
public func writeToolFile(_ text: String, to path: String, mode: Int) throws {
    try AtomicFile.write(Data(text.utf8), to: path, mode: mode_t(mode))
}

/// How a file write reads in the plan and the log.
func describeWrite(_ text: String, to path: String, mode: Int) -> String {
    "write \(path) (\(text.utf8.count) bytes, mode \(String(mode, radix: 8)))"
}
