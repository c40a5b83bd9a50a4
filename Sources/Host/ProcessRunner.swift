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

    public func note(_ text: String) { log?.write("note: \(text)") }

    public func writeFile(_ text: String, to path: String, mode: Int) throws {
        log?.write(describeWrite(text, to: path, mode: mode))
        try writeToolFile(text, to: path, mode: mode)
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
        let result = ProcessRunner.execute(
            command, environment: baseEnvironment.merging(command.environment) { $1 },
            registration: isUnwinding ? .cleanup : .stopOnSignal)
        var text = "exit \(result.status)"
        if !result.standardOutput.isEmpty { text += "\n[stdout]\n" + result.stdoutText }
        if !result.standardError.isEmpty { text += "\n[stderr]\n" + result.stderrText }
        log?.write(text)
        return result
    }

    /// Spawns the command (through `Spawner`), feeds stdin, collects stdout and stderr, waits.
    /// - Parameter registration: `.cleanup` lets a command start after a signal (the cleanup stack's).
    private static func execute(_ command: Command, environment: [String: String], registration: SpawnRegistration = .stopOnSignal) -> CommandResult {
        let spawned: Spawned
        do {
            spawned = try Spawner.spawn(
                command.executable, command.arguments, environment: environment,
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

    /// Starts `command` and returns at once: for children that run while the caller
    /// works (QEMU, a batch's installs, curl reading its config from stdin, test
    /// servers). Its stdin is `command.standardInput` when it has one (written by the
    /// runner, then closed), else `input`. The line goes to the log now, the exit
    /// status (and what was collected) when it ends. Throws `SpawnError` when it
    /// cannot start, `HostError.interrupted` after a signal (unless unwinding).
    /// - Parameter registration: `.callerHandles` when the caller forwards signals itself.
    public func start(
        _ command: Command, input: ChildInput = .null, output: ChildOutput = .null, error: ChildOutput = .null,
        registration: SpawnRegistration? = nil
    ) throws -> RunningCommand {
        let shownInput: String
        if case let .file(_, path, offset) = input, command.standardInput == nil { shownInput = " < \(shellQuote(path))@\(offset)" } else { shownInput = "" }
        log?.write("$ \(command.shellLine)" + shownInput)
        let stdin: SpawnInput
        switch input {
        case _ where command.standardInput != nil: stdin = .pipe
        case .null: stdin = .null
        case .pipe: stdin = .pipe
        case let .file(descriptor, _, _): stdin = .descriptor(descriptor)
        }
        func spawnOutput(_ output: ChildOutput) -> SpawnOutput {
            switch output {
            case .null: return .null
            case let .descriptor(fd): return .descriptor(fd)
            case .pipe, .collect, .lines, .blocks: return .pipe
            }
        }
        let spawned: Spawned
        do {
            spawned = try Spawner.spawn(
                command.executable, command.arguments, environment: baseEnvironment.merging(command.environment) { $1 },
                stdin: stdin, stdout: spawnOutput(output), stderr: spawnOutput(error),
                registration: registration ?? (isUnwinding ? .cleanup : .stopOnSignal))
        } catch {
            log?.write("not started: \(error)")
            throw error
        }
        return RunningCommand(
            command: command, spawned: spawned, writesInput: command.standardInput != nil,
            output: output, error: error, log: log)
    }

    /// Runs `command` with its stdout streamed to `consume` (given the read end of the
    /// pipe) and its stderr collected: a large output never sits in memory. What
    /// `consume` leaves unread is drained so the child can finish. If `consume`
    /// throws, the child is stopped (TERM) and reaped and the error rethrown.
    /// Returns the status and stderr (stdout went to `consume`).
    public func stream(_ command: Command, input: ChildInput = .null, consume: (Int32) throws -> Void) throws -> CommandResult {
        let running = try start(command, input: input, output: .pipe, error: .collect)
        let readFD = running.standardOutput
        do {
            try consume(readFD)
            // What the consumer left (e.g. padding after the cpio trailer): the child must not block on it.
            Spawner.communicate(input: -1, bytes: nil, outputs: [(readFD, { _ in })])
        } catch {
            running.signal(SIGTERM)
            close(readFD)
            _ = running.finish()
            log?.write("stopped: \(error)")
            throw error
        }
        return running.finish()
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

/// What a started command reads on stdin (when its `Command` carries no input).
public enum ChildInput: Sendable {
    /// /dev/null.
    case null
    /// A pipe: `RunningCommand.standardInput` is its write end; the caller writes and closes it.
    case pipe
    /// A file the caller opened and positioned at `offset`: the child reads it directly
    /// (it shares the file offset). The caller closes `descriptor` once `start` returned.
    case file(descriptor: Int32, path: String, offset: Int)
}

/// Where a started command's stdout or stderr goes.
public enum ChildOutput: Sendable {
    case null
    /// A descriptor of ours, duplicated into the child (a log file, our own stderr).
    case descriptor(Int32)
    /// Streamed: `RunningCommand.standardOutput` / `standardError` is the read end; the caller reads and closes it.
    case pipe
    /// Read to its end by the runner; `finish()` returns it and the log shows it.
    case collect
    /// Read by the runner and handed on one non-empty line at a time (ended by LF or CR), as it comes.
    case lines(@Sendable (String) -> Void)
    /// Read by the runner and handed on block by block, as it comes.
    case blocks(@Sendable (Data) -> Void)
}

/// A started command (`ProcessRunner.start`): its pid, the pipes the caller asked
/// to read or write itself, and its end. The pipes the runner reads (`.collect`,
/// `.lines`) and the input it writes are served by one thread of this command,
/// through the same `Spawner.communicate` that `run` uses.
// Unchecked: `collected` is written by the drain thread before `drained` is signalled and read after.
public final class RunningCommand: @unchecked Sendable {
    public let command: Command
    private let child: ChildProcess
    /// Our ends of the pipes asked for as `.pipe` (-1 otherwise); the caller closes them.
    public let standardInput: Int32
    public let standardOutput: Int32
    public let standardError: Int32
    private let drained = DispatchSemaphore(value: 0)
    private var collected = (standardOutput: Data(), standardError: Data())

    init(command: Command, spawned: Spawned, writesInput: Bool, output: ChildOutput, error: ChildOutput, log: Log?) {
        self.command = command
        self.child = spawned.child
        standardInput = writesInput ? -1 : spawned.standardInput
        func callerEnd(_ kind: ChildOutput, _ fd: Int32) -> Int32 {
            if case .pipe = kind { return fd }
            return -1
        }
        standardOutput = callerEnd(output, spawned.standardOutput)
        standardError = callerEnd(error, spawned.standardError)
        let input = writesInput ? spawned.standardInput : -1
        let outFD = standardOutput < 0 ? spawned.standardOutput : -1, errFD = standardError < 0 ? spawned.standardError : -1
        let outSink = OutputSink(output), errSink = OutputSink(error)
        let thread = Thread { [self] in
            Spawner.communicate(input: input, bytes: command.standardInput, outputs: [(outFD, outSink.take), (errFD, errSink.take)])
            outSink.finish()
            errSink.finish()
            let code = child.wait()
            collected = (outSink.data, errSink.data)
            var text = "exit \(code)"
            if !outSink.data.isEmpty { text += "\n[stdout]\n" + String(decoding: outSink.data, as: UTF8.self) }
            if !errSink.data.isEmpty { text += "\n[stderr]\n" + String(decoding: errSink.data, as: UTF8.self) }
            log?.write(text)
            drained.signal()
        }
        // Room for the caller's line and block handlers (batch's progress parsing and redaction).
        thread.stackSize = 1 << 20
        thread.start()
    }

    public var pid: pid_t { child.pid }
    public var isRunning: Bool { child.isRunning }
    /// nil while running.
    public var exitStatus: Int32? { child.exitStatus }

    /// Blocks until the child has exited: its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 { child.wait() }

    /// The status if the child exits within `seconds`, nil if it still runs.
    public func wait(timeout seconds: TimeInterval) -> Int32? { child.wait(timeout: seconds) }

    /// Sends `sig` to the child's process group (it leads its own) and to the child.
    public func signal(_ sig: Int32) { child.signal(sig) }

    /// Stops the child: TERM, then KILL when it is still there after `grace` seconds. Its status.
    @discardableResult
    public func terminate(grace: TimeInterval = 3) -> Int32 {
        signal(SIGTERM)
        if let code = wait(timeout: grace) { return code }
        signal(SIGKILL)
        return wait()
    }

    /// Waits for the child and for the pipes the runner reads: the status and what
    /// was collected (empty for the streams the caller read). Call it once the
    /// caller's own pipe ends are closed or at their end.
    @discardableResult
    public func finish() -> CommandResult {
        drained.wait()
        // Open again for the next caller.
        drained.signal()
        return CommandResult(status: child.wait(), standardOutput: collected.standardOutput, standardError: collected.standardError)
    }
}

/// What the runner does with an output it reads: keeps it (`.collect`) or hands it on (`.lines`, `.blocks`).
// Unchecked: used by the one drain thread of its command only.
private final class OutputSink: @unchecked Sendable {
    private let kind: ChildOutput
    private(set) var data = Data()
    private var lines = LineSplitter()

    init(_ kind: ChildOutput) { self.kind = kind }

    func take(_ block: UnsafeRawBufferPointer) {
        switch kind {
        case .collect: data.append(block.bindMemory(to: UInt8.self))
        case let .lines(handler): lines.feed(block, handler)
        case let .blocks(handler): handler(Data(block))
        default: break
        }
    }

    func finish() { if case let .lines(handler) = kind { lines.finish(handler) } }
}

/// Splits a byte stream into non-empty lines ended by LF or CR (progress lines end in CR).
struct LineSplitter {
    private var pending = Data()

    mutating func feed(_ block: UnsafeRawBufferPointer, _ handler: (String) -> Void) {
        pending.append(block.bindMemory(to: UInt8.self))
        while let cut = pending.firstIndex(where: { $0 == 10 || $0 == 13 }) {
            let line = String(decoding: pending[pending.startIndex..<cut], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...cut)
            if !line.isEmpty { handler(line) }
        }
    }

    mutating func finish(_ handler: (String) -> Void) {
        if !pending.isEmpty { handler(String(decoding: pending, as: UTF8.self)) }
        pending = Data()
    }
}
