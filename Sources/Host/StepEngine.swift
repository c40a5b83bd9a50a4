import Foundation

/// One named step of a job (the install, a registration): a flat list of these
/// is the whole job, run in order by `StepEngine` over one context value.
public struct Step<Context>: Sendable {
    public let name: String
    /// What it does, for the plan, the progress line and `--help`.
    public let summary: String
    public let run: @Sendable (Context) throws -> Void

    public init(_ name: String, _ summary: String, run: @escaping @Sendable (Context) throws -> Void) {
        self.name = name
        self.summary = summary
        self.run = run
    }
}

/// Any error that escaped a step, with that step's name: steps throw their plain
/// errors (a failed mkfs, a bad checksum) and never type their own name into them.
public struct StepFailed: ToolError {
    public let step: String
    public let cause: any Error
    /// What the failed job's cleanup did with what it had made, when its caller reports it
    /// (register: deleted, or kept with --keep-on-error), on the lines after the cause.
    public let aftermath: String?

    public init(step: String, cause: any Error, aftermath: String? = nil) {
        self.step = step
        // One level only: a step that runs an inner job reports the outer step's name.
        self.cause = (cause as? StepFailed)?.cause ?? cause
        self.aftermath = aftermath
    }

    public var failure: String { "step '\(step)' failed" }
    public var reason: String? { "\(cause)" + (aftermath.map { "\n" + $0 } ?? "") }

    /// The cause when `error` is a step failure, else `error` itself (for exit codes and `catch` by type).
    public static func cause(of error: any Error) -> any Error { (error as? StepFailed)?.cause ?? error }
}

/// What a failed job's cleanup did, for a caller that reports it (register names what it
/// deleted or kept): `StepEngine.onCleanup` gets it, interrupted or not.
public struct StepCleanup: Sendable {
    /// The step that failed.
    public var step: String
    /// Its error (after `explain`), or the interruption's.
    public var error: any Error
    /// What was on the cleanup stack when the step failed, newest first.
    public var entries: [CleanupStack.Listing]
    /// True when `keepOnError` left everything in place (the manual lines were printed).
    public var kept: Bool
    /// The undo actions that failed (already logged).
    public var failures: [String]
}

/// What a job's steps ran and skipped.
public struct StepReport: Sendable, Equatable {
    public var ran: [String] = []
    /// Set when `stopAfter` ended the job early.
    public var stoppedAfter: String?
}

/// Runs steps in order over one context with one cleanup stack: every resource's
/// undo is pushed the moment it exists; the stack unwinds on success, on error and
/// on SIGINT/SIGTERM/SIGHUP (the signal stops the running child, the step fails,
/// the stack unwinds here). With `keepOnError` a failure leaves everything in
/// place and prints the manual undo lines instead.
public struct StepEngine<Context>: Sendable {
    public var steps: [Step<Context>]
    public var log: Log?
    public var cleanup: CleanupStack
    /// Runs the undo commands (told when it is unwinding, so an interrupted run may still clean up).
    public var runner: any CommandRunner
    public var keepOnError = false
    /// Stop after this step (it must be one of `steps`).
    public var stopAfter: String?
    /// Runs after the `stopAfter` step, before unwinding (e.g. `--hold`).
    public var afterStop: @Sendable () throws -> Void = {}
    /// May turn a step's error into a better one before the stack unwinds (e.g. "the disk is full").
    public var explain: @Sendable (_ step: String, _ error: any Error) -> (any Error)? = { _, _ in nil }
    /// Runs with the manual undo lines when `keepOnError` kept everything.
    public var onKept: @Sendable (_ manual: [String]) -> Void = { _ in }
    /// Runs when every step (up to `stopAfter`) succeeded, after the stack unwound, even when a
    /// signal came during that unwinding (e.g. to record that the job's product is complete).
    public var onSuccess: @Sendable () -> Void = {}
    /// Runs after a failed undo left something behind.
    public var onLeftovers: @Sendable (_ failures: [String]) -> Void = { _ in }
    /// Runs once after a failed job's cleanup (kept or unwound), before the error is thrown.
    public var onCleanup: @Sendable (StepCleanup) -> Void = { _ in }
    /// Progress lines are numbered `[i/n]`; an inner job may want its own prefix.
    public var progressPrefix = ""

    public init(steps: [Step<Context>], log: Log?, cleanup: CleanupStack, runner: any CommandRunner) {
        self.steps = steps
        self.log = log
        self.cleanup = cleanup
        self.runner = runner
    }

    public var names: [String] { steps.map(\.name) }

    /// Runs every step (up to `stopAfter`), then unwinds the stack. Throws
    /// `StepFailed` naming the step, or `HostError.interrupted` after a signal.
    @discardableResult
    public func run(_ context: Context) throws -> StepReport {
        if let stopAfter, !names.contains(stopAfter) { throw StepEngineError.unknownStep(stopAfter, valid: names) }
        var report = StepReport()
        var current = ""
        do {
            for (index, step) in steps.enumerated() {
                current = step.name
                try Interruption.shared.check()
                log?.step("\(progressPrefix)[\(index + 1)/\(steps.count)] \(step.name): \(step.summary)")
                try step.run(context)
                report.ran.append(step.name)
                try Interruption.shared.check()
                if step.name == stopAfter {
                    log?.say("stopping after step '\(step.name)' as asked (--stop-after)")
                    report.stoppedAfter = step.name
                    try afterStop()
                    break
                }
            }
        } catch let caught {
            let interrupted = Interruption.shared.isInterrupted
            log?.write("failed in step '\(current)': \(caught)")
            // Before unwinding: e.g. removing an unfinished image frees the space being looked at.
            let error = interrupted ? caught : (explain(current, StepFailed.cause(of: caught)) ?? caught)
            let entries = cleanup.listing
            let keep = keepOnError && !runner.isDryRun
            var failures: [String] = []
            if keep {
                let manual = cleanup.abandon()
                onKept(manual)
                log?.say("--keep-on-error: left everything in place; to clean up by hand run:\n" + manual.map { "  " + $0 }.joined(separator: "\n"))
            } else {
                failures = unwind(failed: true)
            }
            onCleanup(StepCleanup(step: current, error: error, entries: entries, kept: keep, failures: failures))
            if interrupted { throw HostError.interrupted(signal: Interruption.shared.signal) }
            throw StepFailed(step: current, cause: error)
        }
        unwind(failed: false)
        onSuccess()
        if Interruption.shared.isInterrupted { throw HostError.interrupted(signal: Interruption.shared.signal) }
        return report
    }

    /// Runs the whole cleanup stack; returns what failed (already logged).
    @discardableResult
    public func unwind(failed: Bool, downTo mark: Int = 0) -> [String] {
        guard cleanup.count > mark else { return [] }
        // After success a stack of `onlyOnFailure` entries (what the job made and keeps) only drops them: nothing to announce.
        if mark == 0 && (failed || cleanup.undoesOnSuccess) { log?.step(failed ? "cleaning up after failure" : "cleaning up") }
        let failures = runner.unwinding { cleanup.unwind(downTo: mark, failed: failed) }
        if !failures.isEmpty {
            onLeftovers(failures)
            log?.say("cleanup left \(failures.count) problem(s); see the log")
        }
        return failures
    }
}

public enum StepEngineError: ToolError {
    case unknownStep(String, valid: [String])

    public var failure: String {
        switch self {
        case let .unknownStep(name, valid): return "unknown step '\(name)' (steps: \(valid.joined(separator: ", ")))"
        }
    }
}
