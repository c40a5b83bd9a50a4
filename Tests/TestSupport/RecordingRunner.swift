import Foundation
import Host

/// Unit tests: records every command and answers from a script of responses.
// Unchecked: `commands` is appended under `lock`; tests set `respond` before running.
public final class RecordingRunner: CommandRunner, @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var commands: [Command] = []
    /// Chooses the answer for a command; default: success with no output.
    public var respond: (Command) -> CommandResult
    public init(respond: @escaping (Command) -> CommandResult = { _ in .success }) { self.respond = respond }
    public func run(_ command: Command) -> CommandResult {
        lock.withLock { commands.append(command) }
        return respond(command)
    }
    public var lines: [String] { lock.withLock { commands.map(\.shellLine) } }
}
