import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs commands for real with Foundation's Process. Every command, its exit
/// status and its output go to the log. Children run in their own process
/// group (Foundation spawns them so), so a terminal ^C reaches only us and
/// `Interruption` stops them itself.
public final class ProcessRunner: CommandRunner, @unchecked Sendable {
    public let log: Log?
    private let baseEnvironment: [String: String]
    /// Set while the cleanup stack unwinds: after an interruption only cleanup commands may start.
    public var unwinding = false

    public init(log: Log?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.log = log
        var env = environment
        // Predictable tool output whatever the user's locale; a PATH that has sbin.
        env["LC_ALL"] = "C"
        let path = env["PATH"] ?? ""
        let wanted = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        env["PATH"] = (path.split(separator: ":").map(String.init) + wanted.filter { !path.split(separator: ":").map(String.init).contains($0) }).joined(separator: ":")
        self.baseEnvironment = env
    }

    public func run(_ command: Command) -> CommandResult {
        if Interruption.shared.isInterrupted && !unwinding {
            return CommandResult(status: 130, standardError: Data("not started: interrupted".utf8))
        }
        log?.write("$ \(command.shellLine)")
        let result = ProcessRunner.execute(command, environment: baseEnvironment.merging(command.environment) { $1 })
        var text = "exit \(result.status)"
        if !result.standardOutput.isEmpty { text += "\n[stdout]\n" + result.stdoutText }
        if !result.standardError.isEmpty { text += "\n[stderr]\n" + result.stderrText }
        log?.write(text)
        return result
    }

    /// Spawns the command, feeds stdin, collects stdout and stderr, waits.
    public static func execute(_ command: Command, environment: [String: String]) -> CommandResult {
        // The standard directories too, as the preflight looks there: a stripped PATH finds the same tools.
        let executable = resolve(command.executable, path: (environment["PATH"] ?? "") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        guard executable.hasPrefix("/") else {
            return CommandResult(status: 127, standardError: Data("cannot start '\(command.executable)': not found in PATH's absolute directories (install the package that provides it)".utf8))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = command.arguments
        process.environment = environment
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe: Pipe? = command.standardInput != nil ? Pipe() : nil
        process.standardInput = inPipe ?? FileHandle.nullDevice
        do {
            try process.runWithSignalsUnblocked()
        } catch {
            return CommandResult(status: 127, standardError: Data("cannot start '\(command.executable)': \(error)".utf8))
        }
        let pid = process.processIdentifier
        Interruption.shared.register(child: pid)
        defer { Interruption.shared.unregister(child: pid) }

        let group = DispatchGroup()
        let out = DataBox(), err = DataBox()
        let readQueue = DispatchQueue(label: "centos6-ami.pipes", attributes: .concurrent)
        group.enter(); readQueue.async { out.data = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); readQueue.async { err.data = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if let inPipe, let input = command.standardInput {
            readQueue.async {
                // A child that exits early closes its end; ignore EPIPE (SIGPIPE is ignored process-wide).
                try? inPipe.fileHandleForWriting.write(contentsOf: input)
                try? inPipe.fileHandleForWriting.close()
            }
        }
        process.waitUntilExit()
        group.wait()
        let status: Int32 = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(status: status, standardOutput: out.data, standardError: err.data)
    }

    /// Finds an executable on PATH (Process needs an absolute path). A name not
    /// found stays bare, and `execute` refuses to start it: Foundation would
    /// otherwise run a file of that name from the current directory, as root.
    public static func resolve(_ name: String, path: String) -> String {
        if name.contains("/") { return name }
        return locate(name, path: path) ?? name
    }

    /// The absolute path of `name` in PATH's absolute directories (empty, `.`
    /// and other relative entries mean the current directory: skipped), or nil.
    public static func locate(_ name: String, path: String) -> String? {
        guard !name.isEmpty, !name.contains("/") else { return nil }
        for dir in path.split(separator: ":", omittingEmptySubsequences: true) where dir.hasPrefix("/") {
            let candidate = "\(dir)/\(name)"
            var st = stat()
            if access(candidate, X_OK) == 0, stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { return candidate }
        }
        return nil
    }
}

/// One reader thread's output; written once, read after the group is done.
final class DataBox: @unchecked Sendable { var data = Data() }
