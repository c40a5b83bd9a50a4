import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

public enum VMError: ToolError, Equatable {
    case imageMissing(path: String)
    case notAnImage(path: String, reason: String)
    case qemuMissing(executable: String)
    case cannotStart(executable: String, reason: String)
    case qmp(socket: String, reason: String)
    case imds(reason: String)
    case console(path: String, reason: String)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .imageMissing(path):
            return ("disk image '\(path)' does not exist or is not readable", nil, "give the path of a raw image file or block device")
        case let .notAnImage(path, reason):
            return ("'\(path)' is not a disk image centos6-ami made", reason, "give the image file or device 'centos6-ami install' wrote")
        case let .qemuMissing(executable):
            return ("'\(executable)' was not found", nil, "install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86)")
        case let .cannotStart(executable, reason):
            return ("cannot start '\(executable)'", reason, nil)
        case let .qmp(socket, reason):
            return ("qemu control socket '\(socket)'", reason, nil)
        case let .imds(reason):
            return ("metadata service for the guest", reason, nil)
        case let .console(path, reason):
            return ("console log '\(path)'", reason, nil)
        }
    }
}

/// How QEMU ended once the run was over.
public enum Shutdown: String, Sendable, Equatable {
    /// The guest powered itself off (or QEMU exited on its own) before we asked.
    case exitedByItself = "exited by itself"
    /// The guest powered off after the ACPI power-button request.
    case guestPoweredOff = "guest powered off (ACPI)"
    /// QEMU stopped on SIGTERM (it flushes the image first).
    case terminated = "qemu terminated (SIGTERM)"
    /// QEMU had to be killed.
    case killed = "qemu killed (SIGKILL)"
}

/// What one boot showed.
public struct BootResult: Sendable, Equatable {
    /// The ready pattern appeared within the timeout.
    public var passed: Bool { if case .ready = outcome { return true } else { return false } }
    public var outcome: WatchOutcome
    /// Seconds from QEMU's start to the ready pattern (nil unless passed).
    public var secondsToReady: Double? { if case let .ready(s) = outcome { return s } else { return nil } }
    /// Everything the serial console printed, including after the pattern.
    public var console: String
    public var shutdown: Shutdown
    /// QEMU's exit status (128+signal when a signal ended it).
    public var qemuStatus: Int32
    /// QEMU's own stderr (warnings, "terminating on signal 15").
    public var qemuStderr: String
    /// Seconds from QEMU's start to its exit.
    public var totalSeconds: Double

    /// One line for the user.
    public var summary: String {
        switch outcome {
        case let .ready(s): return String(format: "passed: ready pattern after %.1f s; %@", s, shutdown.rawValue)
        case .timedOut: return "failed: no ready pattern before the timeout; \(shutdown.rawValue)"
        case .producerExited: return "failed: qemu exited (status \(qemuStatus)) before the ready pattern"
        case .interrupted: return "interrupted; \(shutdown.rawValue)"
        case let .failed(pattern, s): return String(format: "failed: the guest printed '%@' after %.1f s; %@", pattern, s, shutdown.rawValue)
        }
    }
}

/// Boots an image and watches its console. Nothing is left running on any
/// path: QEMU is registered with `Interruption` (so ^C stops it), and every
/// exit from `boot` stops it (ACPI request, then SIGTERM, then SIGKILL) and reaps it.
public final class BootRunner {
    public let log: Log?
    /// Search path for the QEMU binary.
    public var path: String

    public init(log: Log?, path: String = Spawner.toolSearchPath(ProcessInfo.processInfo.environment)) {
        self.log = log
        self.path = path + ":/usr/local/bin:/usr/bin:/bin"
    }

    /// Checks what `boot` needs before anything starts.
    public func preflight(_ config: BootConfig) throws -> String {
        guard access(config.image, R_OK) == 0 else { throw VMError.imageMissing(path: config.image) }
        let qemu = ProcessRunner.resolve(config.qemu, path: path)
        guard qemu.hasPrefix("/"), access(qemu, X_OK) == 0 else { throw VMError.qemuMissing(executable: config.qemu) }
        return qemu
    }

    /// Boots `config.image` and waits for `config.readyPattern` on the serial
    /// console, for at most `config.timeout` seconds from QEMU's start, then
    /// powers the guest off. A run that fails to boot is a result, not an error;
    /// errors are for a run that could not happen (no image, no QEMU).
    /// Throws `HostError.interrupted` after stopping QEMU when a signal arrived.
    /// - Important: writes to the image (the guest's first boot changes it) unless `config.snapshot`.
    public func boot(_ config: BootConfig) throws -> BootResult {
        let qemu = try preflight(config)
        // This run's own empty console file, read through its own descriptor: an old
        // log (one that already says login:) can never make a boot pass.
        let consoleFD = try ConsoleLog.create(config.serialLog)
        defer { close(consoleFD) }
        try? FileManager.default.removeItem(atPath: config.qmpSocket)
        defer { try? FileManager.default.removeItem(atPath: config.qmpSocket) }

        var command = QEMU.command(config)
        command.executable = qemu
        let start = Date()
        let process: RunningCommand
        do {
            process = try ProcessRunner(log: log).start(command, error: .collect)
        } catch let error as SpawnError {
            throw VMError.cannotStart(executable: qemu, reason: "\(error)")
        }

        var matcher = ConsoleMatcher(pattern: config.readyPattern)
        let file = GrowingFile(descriptor: consoleFD)
        var outcome = watchConsole(
            file: file, matcher: &matcher, start: start, timeout: config.timeout, failures: config.failurePatterns,
            stillRunning: { process.isRunning },
            interrupted: { Interruption.shared.isInterrupted })
        // QEMU writes by path: what it wrote must be the file this run made and reads.
        if case .ready = outcome, !ConsoleLog.isSameFile(config.serialLog, descriptor: consoleFD) {
            outcome = .failed(pattern: ConsoleLog.replacedPattern, seconds: Date().timeIntervalSince(start))
        }
        log?.write("boot-test: \(outcome) after \(String(format: "%.1f", Date().timeIntervalSince(start))) s")

        // A guest stuck without its root cannot act on the power button: stop QEMU at once.
        let askGuest: Bool
        switch outcome {
        case .interrupted, .producerExited, .failed: askGuest = false
        default: askGuest = true
        }
        let shutdown = stop(process, config: config, askGuest: askGuest)
        let ended = process.finish()
        matcher.feed(file.readNew())
        let status = ended.status
        let result = BootResult(
            outcome: outcome, console: matcher.text, shutdown: shutdown, qemuStatus: status,
            qemuStderr: ended.stderrText,
            totalSeconds: Date().timeIntervalSince(start))
        log?.write("boot-test: \(result.summary); qemu exit \(status)")
        if outcome == .interrupted { throw HostError.interrupted(signal: Interruption.shared.signal) }
        return result
    }

    /// Ends QEMU and reaps it: the ACPI power button first (when the guest is
    /// up and worth a clean shutdown), then SIGTERM, then SIGKILL.
    func stop(_ process: RunningCommand, config: BootConfig, askGuest: Bool) -> Shutdown {
        guard process.isRunning else { return .exitedByItself }
        if askGuest && config.powerOffGrace > 0 {
            do {
                _ = try QMP.execute(socketPath: config.qmpSocket, command: "system_powerdown")
                if process.wait(timeout: config.powerOffGrace) != nil { return .guestPoweredOff }
                log?.write("boot-test: guest did not power off within \(config.powerOffGrace) s; stopping qemu")
            } catch {
                log?.write("boot-test: \(error); stopping qemu")
            }
        }
        // To QEMU and to its process group (it leads its own; QEMU has no children, a wrapper might).
        process.signal(SIGTERM)
        if process.wait(timeout: config.killGrace) != nil { return .terminated }
        process.signal(SIGKILL)
        process.wait()
        return .killed
    }
}
