import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs commands for real through `Spawner`. Every command, its exit status
/// and its output go to the log. Children run in their own process group, so
/// a terminal ^C reaches only us and `Interruption` stops them itself.
// Unchecked: `unwinding` is set by the thread that unwinds, before it runs any undo command.
public final class ProcessRunner: CommandRunner, @unchecked Sendable {
    public let log: Log?
    private let baseEnvironment: [String: String]
    /// Set while the cleanup stack unwinds: after an interruption only cleanup commands may start.
    public var isUnwinding = false

    public func unwinding<T>(_ body: () throws -> T) rethrows -> T {
        let before = isUnwinding
        isUnwinding = true
        defer { isUnwinding = before }
        return try body()
    }

    public init(log: Log?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.log = log
        // LC_ALL and PATH: Spawner.toolEnvironment, applied by Spawner.spawn.
        self.baseEnvironment = environment
    }

    public func run(_ command: Command) -> CommandResult {
        if Interruption.shared.isInterrupted && !isUnwinding {
            return CommandResult(status: 130, standardError: Data("not started: interrupted".utf8))
        }
        log?.write("$ \(command.shellLine)")
        let result = ProcessRunner.execute(command, environment: baseEnvironment.merging(command.environment) { $1 },
                                           registration: isUnwinding ? .cleanup : .stopOnSignal)
        var text = "exit \(result.status)"
        if !result.standardOutput.isEmpty { text += "\n[stdout]\n" + result.stdoutText }
        if !result.standardError.isEmpty { text += "\n[stderr]\n" + result.stderrText }
        log?.write(text)
        return result
    }

    /// Spawns the command (through `Spawner`), feeds stdin, collects stdout and stderr, waits.
    /// - Parameter registration: `.cleanup` lets a command start after a signal (the cleanup stack's).
    public static func execute(_ command: Command, environment: [String: String], registration: SpawnRegistration = .stopOnSignal) -> CommandResult {
        let spawned: Spawned
        do {
            spawned = try Spawner.spawn(command.executable, command.arguments, environment: environment,
                                        stdin: command.standardInput != nil ? .pipe : .null, stdout: .pipe, stderr: .pipe,
                                        registration: registration)
        } catch let error as HostError {
            return CommandResult(status: 130, standardError: Data("not started: \(error)".utf8))
        } catch {
            return CommandResult(status: 127, standardError: Data("\(error)".utf8))
        }
        let (out, err) = Spawner.communicate(spawned, input: command.standardInput)
        let status = spawned.child.wait()
        return CommandResult(status: status, standardOutput: out, standardError: err)
    }

    /// An absolute path on PATH for `name` (see `Spawner.resolve`), else `name`
    /// itself; the preflight compares the two, and `Spawner` refuses a name it
    /// cannot resolve: a bare name would otherwise run a file from the current
    /// directory, as root.
    public static func resolve(_ name: String, path: String) -> String {
        Spawner.resolve(name, path: path) ?? name
    }

    /// The absolute path of `name` in PATH's absolute directories (empty, `.`
    /// and other relative entries mean the current directory: skipped), or nil.
    public static func locate(_ name: String, path: String) -> String? {
        guard !name.isEmpty, !name.contains("/") else { return nil }
        return Spawner.resolve(name, path: path)
    }
}

