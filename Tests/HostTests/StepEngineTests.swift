import Foundation
import Testing
@testable import Host
import TestSupport

/// What the steps of a test job did, in order.
// Unchecked: every access goes through `lock`.
private final class Trail: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String] = []
    func add(_ entry: String) { lock.withLock { entries.append(entry) } }
    var all: [String] { lock.withLock { entries } }
}

/// Records each command with whether it ran while the cleanup stack unwound.
// Unchecked: every access goes through `lock`.
private final class UnwindAwareRunner: CommandRunner, @unchecked Sendable {
    private let lock = NSLock()
    private var unwindingNow = false
    private var recorded: [(line: String, unwinding: Bool)] = []
    var commands: [(line: String, unwinding: Bool)] { lock.withLock { recorded } }
    func run(_ command: Command) -> CommandResult {
        lock.withLock { recorded.append((command.shellLine, unwindingNow)) }
        return .success
    }
    func unwinding<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock { unwindingNow = true }
        defer { lock.withLock { unwindingNow = false } }
        return try body()
    }
}

private struct Broken: Error, CustomStringConvertible {
    var description: String { "it broke" }
}

@Suite struct StepEngineTests {
    /// Three steps: each records itself and pushes an undo that runs `undo <name>` through the runner.
    private func job(_ trail: Trail, runner: any CommandRunner, failing: String? = nil, progress: @escaping (String) -> Void = { _ in })
        throws -> StepEngine<Trail>
    {
        let cleanup = CleanupStack(log: nil)
        let steps = ["one", "two", "three"].map { name in
            Step<Trail>(name, "the \(name) step") { trail in
                trail.add(name)
                cleanup.push("undo \(name)", manual: ["undo-by-hand \(name)"]) { try runner.checked("undo", [name]) }
                if name == failing { throw Broken() }
            }
        }
        return StepEngine(steps: steps, log: try Log(path: nil, progress: progress), cleanup: cleanup, runner: runner)
    }

    @Test func runsTheStepsInOrderNumberedAndUnwindsAfter() throws {
        let trail = Trail(), runner = UnwindAwareRunner()
        let lines = Trail()
        let report = try job(trail, runner: runner, progress: { lines.add($0) }).run(trail)
        #expect(trail.all == ["one", "two", "three"])
        #expect(report.ran == ["one", "two", "three"] && report.stoppedAfter == nil)
        #expect(lines.all.filter { $0.contains("] one: ") || $0.contains("] two: ") || $0.contains("] three: ") }.count == 3)
        #expect(lines.all.contains { $0.contains("[2/3] two: the two step") }, "\(lines.all)")
        // On success too, every undo runs, last first, while the runner is told it unwinds.
        #expect(runner.commands.map(\.line) == ["undo three", "undo two", "undo one"])
        #expect(runner.commands.allSatisfy { $0.unwinding })
    }

    @Test func anErrorIsWrappedWithTheStepNameAndEverythingUnwinds() throws {
        let trail = Trail(), runner = UnwindAwareRunner()
        do {
            try job(trail, runner: runner, failing: "two").run(trail)
            Issue.record("the step failed but the job did not")
        } catch let failure as StepFailed {
            #expect(failure.step == "two")
            #expect(failure.cause is Broken)
            #expect("\(failure)" == "step 'two' failed: it broke")
            #expect(StepFailed.cause(of: failure) is Broken)
        }
        #expect(trail.all == ["one", "two"], "no step after the failing one")
        #expect(runner.commands.map(\.line) == ["undo two", "undo one"])
        #expect(runner.commands.allSatisfy { $0.unwinding })
        // Not wrapped twice: an inner job's failure keeps its cause.
        #expect(StepFailed(step: "outer", cause: StepFailed(step: "inner", cause: Broken())).cause is Broken)
        #expect(StepFailed.cause(of: Broken()) is Broken)
    }

    @Test func explainMayReplaceTheCause() throws {
        let trail = Trail()
        var engine = try job(trail, runner: UnwindAwareRunner(), failing: "one")
        engine.explain = { step, error in error is Broken ? HostError.cannotWrite(path: "/x", reason: "full during \(step)") : nil }
        do { try engine.run(trail) } catch let failure as StepFailed {
            #expect("\(failure.cause)".contains("full during one"))
        }
    }

    @Test func stopAfterEndsTheJobThereThenUnwinds() throws {
        let trail = Trail(), runner = UnwindAwareRunner()
        var engine = try job(trail, runner: runner)
        engine.stopAfter = "two"
        let held = Trail()
        engine.afterStop = { held.add("held with \(runner.commands.count) undos run") }
        let report = try engine.run(trail)
        #expect(trail.all == ["one", "two"])
        #expect(report.ran == ["one", "two"] && report.stoppedAfter == "two")
        #expect(held.all == ["held with 0 undos run"], "afterStop runs before the stack unwinds")
        #expect(runner.commands.map(\.line) == ["undo two", "undo one"])
    }

    @Test func anUnknownStepIsRefusedBeforeAnythingRuns() throws {
        let trail = Trail()
        var engine = try job(trail, runner: UnwindAwareRunner())
        engine.stopAfter = "four"
        #expect(throws: StepEngineError.self) { try engine.run(trail) }
        do { try engine.run(trail) } catch { #expect("\(error)" == "unknown step 'four' (steps: one, two, three)") }
        #expect(trail.all.isEmpty)
    }

    @Test func keepOnErrorLeavesEverythingAndGivesTheManualLines() throws {
        let trail = Trail(), runner = UnwindAwareRunner()
        var engine = try job(trail, runner: runner, failing: "two")
        engine.keepOnError = true
        let kept = Trail()
        engine.onKept = { manual in manual.forEach(kept.add) }
        #expect(throws: StepFailed.self) { try engine.run(trail) }
        #expect(runner.commands.isEmpty, "nothing undone")
        #expect(kept.all == ["undo-by-hand two", "undo-by-hand one"])
        #expect(engine.cleanup.isEmpty, "the stack was handed over")
    }

    @Test func aDryRunNeverKeeps() throws {
        let trail = Trail(), printer = DryRunPrinter { _ in }
        var engine = try job(trail, runner: printer, failing: "one")
        engine.keepOnError = true
        #expect(throws: StepFailed.self) { try engine.run(trail) }
        #expect(printer.lines == ["undo one"], "a plan unwinds as always")
    }

    @Test func aFailedUndoIsReportedAsLeftovers() throws {
        let trail = Trail()
        let cleanup = CleanupStack(log: nil)
        let step = Step<Trail>("only", "pushes a failing undo") { _ in cleanup.push("stuck") { throw Broken() } }
        var engine = StepEngine(steps: [step], log: nil, cleanup: cleanup, runner: RecordingRunner())
        let left = Trail()
        engine.onLeftovers = { failures in failures.forEach(left.add) }
        let success = Trail()
        engine.onSuccess = { success.add("done") }
        try engine.run(trail)
        #expect(left.all.count == 1 && left.all[0].contains("stuck"), "\(left.all)")
        #expect(success.all == ["done"])
    }

    /// The dry-run printer shows what the real runner does: notes, file writes, actions.
    @Test func dryRunIsAPropertyOfTheRunner() throws {
        let printer = DryRunPrinter { _ in }
        var ran = false
        printer.note("a note")
        try printer.writeFile("abc", to: "/nonexistent/dir/file", mode: 0o644)
        printer.perform("do the thing") { ran = true }
        printer.perform { ran = true }
        #expect(!ran)
        #expect(printer.lines == ["# a note", "# write /nonexistent/dir/file (3 bytes, mode 644)", "# do the thing"])
        let recording = RecordingRunner()
        recording.perform("do the thing") { ran = true }
        #expect(ran)
        let dir = try TemporaryDirectory.make("step-engine")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try recording.writeFile("abc", to: dir + "/f", mode: 0o600)
        #expect(try String(contentsOfFile: dir + "/f", encoding: .utf8) == "abc")
        #expect((try FileManager.default.attributesOfItem(atPath: dir + "/f")[.posixPermissions] as? Int) == 0o600)
    }
}
