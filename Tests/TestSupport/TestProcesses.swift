import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

// The tests' own helper processes start through the tool's runner (`ProcessRunner`),
// so they get the same spawner: an absolute executable from PATH, no signal blocked
// in the child (test worker threads block TERM, and a mask is inherited), a process
// group of their own. They are not registered with `Interruption`
// (`.callerHandles`): a test that simulates a signal in-process must neither be
// refused a helper nor stop another test's server.

/// Runs `command` to its end and collects its output.
/// - Parameter environment: the base environment (the test process's by default).
@discardableResult
public func runTool(_ command: Command, environment: [String: String] = ProcessInfo.processInfo.environment) -> CommandResult {
    do {
        return try ProcessRunner(log: nil, environment: environment)
            .start(command, output: .collect, error: .collect, registration: .callerHandles).finish()
    } catch {
        return CommandResult(status: 127, standardError: Data("\(error)".utf8))
    }
}

/// Starts `command` in the background (see `RunningCommand`); the caller reads or
/// collects its output as it chose and ends it (`terminate`, `finish`).
public func startTool(
    _ command: Command, environment: [String: String] = ProcessInfo.processInfo.environment,
    input: ChildInput = .null, output: ChildOutput = .null, error: ChildOutput = .null
) throws -> RunningCommand {
    try ProcessRunner(log: nil, environment: environment)
        .start(command, input: input, output: output, error: error, registration: .callerHandles)
}

/// A server a test starts on 127.0.0.1 (moto_server, scripts/sigv4-proxy.py,
/// scripts/testvault/vault-server.py, python3 -m http.server): started through the
/// runner, ready once `port` answers (a port file it wrote, or a chosen free port
/// that answers), stopped by its PID: TERM, then KILL after a grace period.
public final class TestServer: Sendable {
    public let process: RunningCommand
    public let port: Int
    private let grace: TimeInterval

    public struct NotStarted: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `command` and waits up to `timeout` seconds for `ready` to give the port.
    /// - Parameters:
    ///   - logFile: where its stdout and stderr go (nil: nowhere).
    ///   - ready: the port once the server is ready, nil until then (called every 50 ms).
    public init(
        _ name: String, _ command: Command, environment: [String: String] = ProcessInfo.processInfo.environment,
        logFile: String? = nil, timeout: TimeInterval = 20, grace: TimeInterval = 10, ready: () -> Int?
    ) throws {
        self.grace = grace
        var logFD: Int32 = -1
        if let logFile {
            logFD = open(logFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard logFD >= 0 else { throw NotStarted(description: "\(name): cannot open its log '\(logFile)'") }
        }
        defer { if logFD >= 0 { close(logFD) } }
        let output: ChildOutput = logFD >= 0 ? .descriptor(logFD) : .null
        do {
            process = try startTool(command, environment: environment, output: output, error: output)
        } catch {
            throw NotStarted(description: "\(name) did not start: \(error)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var found: Int?
        while found == nil && Date() < deadline && process.isRunning {
            found = ready()
            if found == nil { usleep(50_000) }
        }
        guard let found else {
            process.terminate(grace: 2)
            throw NotStarted(description: "\(name) did not answer within \(Int(timeout)) s" + (logFile.map { " (see \($0))" } ?? ""))
        }
        port = found
    }

    deinit { stop() }

    /// TERM, then KILL after the grace period; harmless once stopped.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate(grace: grace)
    }

    /// `ready` for a server that writes the port it bound to a file.
    public static func portFile(_ path: String) -> () -> Int? {
        { (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
    }

    /// `ready` for a server told its port: `port` once an HTTP GET of `path` gets any answer from it.
    public static func answers(_ port: Int, path: String = "/") -> () -> Int? {
        { runTool(Command("curl", ["-sS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:\(port)\(path)"])).status == 0 ? port : nil }
    }
}

/// The three servers the tests stand up, each on a port of its own choosing (a
/// port file) or a free one, with its output in `directory`.
extension TestServer {
    /// The repository checkout (this file is Tests/TestSupport/TestProcesses.swift).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// scripts/testvault/vault-server.py serving `root` (https with `tls`: PEM certificate and key files).
    public static func vault(root: String, directory: String, delayMs: Int = 0, tls: (cert: String, key: String)? = nil) throws -> TestServer {
        let script = repositoryRoot.appendingPathComponent("scripts/testvault/vault-server.py").path
        let arguments =
            [
                script, "--root", root, "--port", "0", "--port-file", directory + "/port", "--pid-file", directory + "/pid",
                "--delay-ms", String(delayMs),
            ] + (tls.map { ["--tls-cert", $0.cert, "--tls-key", $0.key] } ?? [])
        return try TestServer("vault-server.py", Command("python3", arguments), timeout: 15, grace: 5, ready: portFile(directory + "/port"))
    }

    /// scripts/sigv4-proxy.py in front of `upstream`; the secret reaches it through its environment, never its command line.
    public static func sigV4Proxy(python: String, upstream: String, directory: String, secret: String, log: String, faults: [String]) throws -> TestServer {
        let script = repositoryRoot.appendingPathComponent("scripts/sigv4-proxy.py").path
        let port = directory + "/proxy.port"
        return try TestServer(
            "sigv4-proxy",
            Command(
                python, [script, "--upstream", upstream, "--port-file", port, "--log", log] + faults,
                environment: ["SIGV4_PROXY_SECRET": secret]),
            logFile: directory + "/proxy.err", timeout: 20, ready: portFile(port))
    }

    /// moto_server on a free port, its request recorder writing to `recording`.
    public static func moto(executable: String, directory: String, recording: String) throws -> TestServer {
        let port = Int(try freePort())
        return try TestServer(
            "moto_server", Command(executable, ["-H", "127.0.0.1", "-p", String(port)], environment: ["MOTO_RECORDER_FILEPATH": recording]),
            logFile: directory + "/moto.log", timeout: 30
        ) {
            runTool(Command("curl", ["-sSf", "--max-time", "5", "-o", "/dev/null", "http://127.0.0.1:\(port)/moto-api/"])).status == 0 ? port : nil
        }
    }
}
