import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// One child install of a batch, ready to start.
public struct BatchJobSpec: Sendable {
    public var job: BatchJob
    /// The words after the executable: `install RELEASE TARGET --log L --result-json J ...`.
    public var arguments: [String]
    public var logPath: String
    public var resultPath: String
    public var kernel: String
    public var ena: Bool
    public init(job: BatchJob, arguments: [String], logPath: String, resultPath: String, kernel: String, ena: Bool) {
        self.job = job; self.arguments = arguments; self.logPath = logPath; self.resultPath = resultPath; self.kernel = kernel; self.ena = ena
    }
}

/// Runs the installs of a batch as child processes of this same binary, at
/// most `parallel` at a time. A child is a whole `centos6-ami install`: its
/// own private mount directory, lock, log, cleanup stack and signal handling,
/// so a failure in one cannot touch another. On SIGINT/TERM/HUP the runner
/// starts nothing more, forwards SIGINT to every running child (each unwinds
/// and exits 130) and waits for all of them.
// Unchecked: `states`, `interrupted` and the drawing state are only touched under `lock`.
public final class BatchRunner: @unchecked Sendable {
    // Shared with the job's stderr reader: it touches fields only under `lock`; the run loop reads them after `process.finish()`.
    final class JobState: @unchecked Sendable {
        var progress: BatchProgress?
        var started: Date?
        var finished: Date?
        var process: RunningCommand?
        var result: InstallResult?
        var lastError: String?
        var tail: [String] = []
    }

    let executable: String
    let specs: [BatchJobSpec]
    let parallel: Int
    /// A live status block on a terminal; plain lines otherwise.
    let live: Bool
    /// Where the status lines go (stderr by default, passwords redacted: a child's
    /// error may name a mirror URL with one).
    let write: (String) -> Void
    private let lock = NSLock()
    private var states: [JobState]
    private var interrupted = false
    private var drawnLines = 0

    /// Called with every job's result so far (not-run ones included) each time an install finishes.
    let onResults: ([InstallResult]) -> Void

    public init(
        executable: String, specs: [BatchJobSpec], parallel: Int, live: Bool,
        write: @escaping (String) -> Void = { Output.stderr(redactCredentials($0)) }, onResults: @escaping ([InstallResult]) -> Void = { _ in }
    ) {
        self.onResults = onResults
        self.executable = executable
        self.specs = specs
        self.parallel = max(1, parallel)
        self.live = live
        self.write = write
        self.states = specs.map { _ in JobState() }
    }

    /// Runs every job; returns one result per job (in order) and whether a signal stopped the batch.
    public func run() -> (results: [InstallResult], interrupted: Bool) {
        Interruption.shared.onFirstSignal = { [weak self] sig in self?.interrupt(sig) }
        Interruption.shared.install()
        // A summary from the start: a batch killed before any install ends still leaves one for --continue.
        onResults(currentResults())
        var next = 0
        var lastDraw = Date.distantPast
        while true {
            var running = 0
            let exited: [Int] = lock.withLock {
                states.indices.filter { index in
                    let state = states[index]
                    guard state.started != nil, state.finished == nil else { return false }
                    if let process = state.process, !process.isRunning { return true }
                    running += 1
                    return false
                }
            }
            for index in exited { finish(index) }
            if !exited.isEmpty { onResults(currentResults()) }
            while !isInterrupted, running < parallel, next < specs.count {
                launch(next)
                next += 1
                running += 1
            }
            if running == 0 && (next == specs.count || isInterrupted) { break }
            if live && Date().timeIntervalSince(lastDraw) > 0.5 { draw(); lastDraw = Date() }
            usleep(100_000)
        }
        if live { draw() }
        return (currentResults(), isInterrupted)
    }

    /// One result per job: finished ones as they ended, the others not run.
    func currentResults() -> [InstallResult] {
        lock.withLock {
            specs.indices.map { index in
                states[index].result
                    ?? InstallResult(
                        release: specs[index].job.release, target: specs[index].job.target,
                        kernel: specs[index].kernel, ena: specs[index].ena, result: InstallResult.notRun,
                        seconds: 0, log: nil, error: interrupted ? "not started: the batch was interrupted" : "not finished")
            }
        }
    }

    var isInterrupted: Bool { lock.withLock { interrupted } }

    /// First signal: stop starting jobs; SIGINT to every running child.
    func interrupt(_ sig: Int32) {
        let pids: [pid_t] = lock.withLock {
            interrupted = true
            return states.compactMap { state in state.finished == nil ? state.process?.pid : nil }
        }
        if !live { write("batch: signal \(sig): stopping \(pids.count) running install(s); each cleans up\n") }
        for pid in pids where pid > 0 { kill(pid, SIGINT) }
    }

    func launch(_ index: Int) {
        let spec = specs[index]
        let state = lock.withLock { states[index] }
        try? FileManager.default.removeItem(atPath: spec.resultPath)
        var failure: Error?
        lock.withLock {
            state.started = Date()
            do {
                // Not registered with Interruption: on a signal we send SIGINT ourselves, so each install unwinds.
                // The child watches this batch: if it dies (kill -9), the child unwinds instead of running unsupervised.
                // Its stderr is read line by line (progress lines end in CR) as it comes.
                let command = Command(executable, spec.arguments, environment: [ParentWatch.variable: String(getpid())])
                let process = try ProcessRunner(log: nil).start(
                    command, error: .lines { [self] line in consume(line, index: index) },
                    registration: .callerHandles)
                state.process = process
                // A signal may have come between the check and the spawn.
                if interrupted { kill(process.pid, SIGINT) }
            } catch {
                failure = error
                state.finished = Date()
                state.result = InstallResult(
                    release: spec.job.release, target: spec.job.target, kernel: spec.kernel, ena: spec.ena,
                    result: InstallResult.failed, seconds: 0, log: spec.logPath,
                    error: "cannot start '\(executable)': \(error)")
            }
        }
        if failure != nil { return }
        if !live { write("batch: started \(spec.job.release) -> \(spec.job.target) (log \(spec.logPath))\n") }
    }

    func consume(_ line: String, index: Int) {
        let spec = specs[index]
        var changed: BatchProgress?
        lock.withLock {
            let state = states[index]
            state.tail.append(line)
            if state.tail.count > 12 { state.tail.removeFirst() }
            if line.hasPrefix("error: ") { state.lastError = String(line.dropFirst(7)) }
            if let progress = BatchProgress.parse(line) {
                state.progress = progress
                changed = progress
            }
        }
        if let changed, !live {
            write(
                String(
                    format: "[%6.1fs] %@ -> %@: [%d/%d] %@\n", changed.elapsed, spec.job.release, spec.job.target, changed.index, changed.total, changed.step))
        }
    }

    /// Once the child has exited: its result, from its JSON or its exit status and stderr.
    private func finish(_ index: Int) {
        let spec = specs[index], state = lock.withLock { states[index] }
        guard let process = state.process else { return }
        // Every stderr line consumed (the reader takes `lock`), then the status.
        let status = process.finish().status
        lock.lock()
        defer { lock.unlock() }
        let seconds = Date().timeIntervalSince(state.started ?? Date())
        state.finished = Date()
        var result =
            InstallResult.read(path: spec.resultPath)
            ?? InstallResult(release: spec.job.release, target: spec.job.target, kernel: spec.kernel, ena: spec.ena, result: "", seconds: seconds)
        result.ena = spec.ena
        result.log = spec.logPath
        if status == 0 && result.result.isEmpty { result.result = InstallResult.ok }
        if status != 0 {
            result.result = status == 130 || interrupted ? InstallResult.interrupted : InstallResult.failed
            if result.error == nil {
                result.error = state.lastError ?? "exit status \(status): " + state.tail.suffix(3).joined(separator: " | ")
            }
        }
        state.result = result
        try? FileManager.default.removeItem(atPath: spec.resultPath)
        if !live {
            let what = result.result == InstallResult.ok ? "ok" : result.result + (result.error.map { ": " + $0 } ?? "")
            write(String(format: "batch: %@ -> %@: %@ (%.1f s)\n", spec.job.release, spec.job.target, what, result.seconds))
        }
    }

    /// The live block: one line per job, redrawn in place.
    func draw() {
        let width = BatchRunner.terminalColumns() - 1
        let releaseWidth = specs.map(\.job.release.count).max() ?? 4
        let targetWidth = min(40, specs.map(\.job.target.count).max() ?? 10)
        let lines: [String] = lock.withLock {
            specs.indices.map { index in
                let spec = specs[index], state = states[index]
                var status: String
                if let result = state.result {
                    status = String(format: "%@ (%.1f s)", result.result == InstallResult.ok ? "done" : result.result.uppercased(), result.seconds)
                    if let error = result.error, result.result != InstallResult.ok { status += ": " + error }
                } else if let started = state.started {
                    let step = state.progress.map { String(format: "[%2d/%d] %@", $0.index, $0.total, $0.step) } ?? "starting"
                    status = step.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: " %6.1f s", Date().timeIntervalSince(started))
                } else {
                    status = interrupted ? "not started" : "waiting"
                }
                var target = spec.job.target
                if target.count > targetWidth { target = "…" + target.suffix(targetWidth - 1) }
                let line =
                    spec.job.release.padding(toLength: releaseWidth, withPad: " ", startingAt: 0) + "  "
                    + target.padding(toLength: targetWidth, withPad: " ", startingAt: 0) + "  " + status
                return String(line.prefix(width))
            }
        }
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        for line in lines { text += "\r\u{1B}[K" + line + "\n" }
        drawnLines = lines.count
        write(text)
    }

    static func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 120
    }
}
