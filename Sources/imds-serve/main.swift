// imds-serve: the tool's own IMDSv2 service (VM.IMDSServer) as a process of
// its own, for tests that need it where the test process cannot listen: inside
// a network namespace on 169.254.169.254:80 (Tests/IntegrationTests/RcLocalTests.swift).
// Not installed; `swift build` puts it beside centos6-ami.
//
//   imds-serve [--bind ADDR] [--port N] [--port-file F] [--log F] [--key FILE]
//              [--instance-id ID] [--refuse-first N] [--fail-first N] [--delay S]
//              [--max-ttl S] [--expire-tokens N]
//
// --port 0 (the default) picks a free port; --port-file publishes it (written
// atomically once listening). --log is a JSON array of every event (a refused
// connection or an answered request: method, path, token, token_valid, ttl,
// status), rewritten atomically after each, so a test may SIGKILL the process
// and still read all of it. Runs until a signal ends it.
import Foundation
import Host
import VM
#if canImport(Glibc)
    import Glibc
#endif

/// The command line, parsed.
struct ServeOptions {
    var bind = "127.0.0.1"
    var port = 0
    var portFile: String?
    var log: String?
    var keyFile: String?
    var settings = IMDSSettings()

    static let usage =
        "usage: imds-serve [--bind ADDR] [--port N] [--port-file F] [--log F] [--key FILE] [--instance-id ID] "
        + "[--refuse-first N] [--fail-first N] [--delay S] [--max-ttl S] [--expire-tokens N]"

    static func parse(_ arguments: [String]) -> ServeOptions? {
        var options = ServeOptions()
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { return nil }
            switch flag {
            case "--bind": options.bind = value
            case "--port": guard let n = Int(value) else { return nil }; options.port = n
            case "--port-file": options.portFile = value
            case "--log": options.log = value
            case "--key": options.keyFile = value
            case "--instance-id": options.settings.instanceID = value
            case "--refuse-first": guard let n = Int(value) else { return nil }; options.settings.refuseFirst = n
            case "--fail-first": guard let n = Int(value) else { return nil }; options.settings.failFirst = n
            case "--delay": guard let s = TimeInterval(value) else { return nil }; options.settings.delay = s
            case "--max-ttl": guard let s = Int(value) else { return nil }; options.settings.maxTTL = s
            case "--expire-tokens": guard let n = Int(value) else { return nil }; options.settings.expireTokens = n
            default: return nil
            }
        }
        return options
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("imds-serve: \(message)\n".utf8))
    exit(64)
}

guard var options = ServeOptions.parse(Array(CommandLine.arguments.dropFirst())) else { fail(ServeOptions.usage) }
if let keyFile = options.keyFile {
    guard let key = try? String(contentsOfFile: keyFile, encoding: .utf8) else { fail("cannot read --key \(keyFile)") }
    options.settings.key = key
}
// A client that gives up (a 5 s curl against --delay 8) must not kill us with SIGPIPE.
signal(SIGPIPE, SIG_IGN)
// A parent spawning from a worker thread may hand us TERM, INT and HUP blocked: unblock them, or we cannot be stopped.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&stopSignals, s) }
pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)

/// Rewrites the JSON log at `path` with every event so far.
func logWriter(_ path: String) -> @Sendable ([IMDSEvent]) -> Void {
    { events in
        if let data = try? JSONSerialization.data(withJSONObject: events.map(\.json), options: [.prettyPrinted, .sortedKeys]) {
            try? AtomicFile.write(data, to: path)
        }
    }
}

if let logPath = options.log { try? AtomicFile.write(Data("[]".utf8), to: logPath) }
let server = IMDSServer(settings: options.settings, journal: options.log.map(logWriter))
let port: Int
do { port = try server.start(host: options.bind, port: options.port) } catch { fail("\(error)") }
if let portFile = options.portFile { try? AtomicFile.write(Data("\(port)\n".utf8), to: portFile) }
FileHandle.standardError.write(Data("imds-serve: listening on \(options.bind):\(port)\n".utf8))
// The signals above end the process (their default action); nothing here needs undoing.
while true { pause() }
