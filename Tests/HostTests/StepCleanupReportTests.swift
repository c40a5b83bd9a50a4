import Foundation
import Testing
@testable import Host
import TestSupport

/// What the step engine tells a caller about a failed job's cleanup (`onCleanup`), and the
/// cleanup stack's listing and amend that it rests on.
@Suite(.serialized) struct StepCleanupReportTests {
    struct Broken: Error, CustomStringConvertible { var description: String { "broken" } }

    func engine(_ steps: [Step<Void>], cleanup: CleanupStack, printed: Locked<[String]>) throws -> StepEngine<Void> {
        let log = try Log(path: nil, progress: { line in printed.withLock { $0.append(line) } })
        return StepEngine(steps: steps, log: log, cleanup: cleanup, runner: RecordingRunner())
    }

    @Test func aFailureReportsTheStepWhatWasOnTheStackAndWhatFailedToUndo() throws {
        let cleanup = CleanupStack(log: nil), printed = Locked<[String]>([]), reported = Locked<[StepCleanup]>([])
        let undone = Locked<[String]>([])
        var engine = try engine(
            [
                Step("make", "makes two things") { _ in
                    cleanup.push("a", manual: ["rm a"], onlyOnFailure: true) { undone.withLock { $0.append("a") } }
                    cleanup.push("b", manual: ["rm b"]) { throw Broken() }
                },
                Step("break", "fails") { _ in throw Broken() },
            ], cleanup: cleanup, printed: printed)
        engine.onCleanup = { report in reported.withLock { $0.append(report) } }
        #expect(throws: StepFailed.self) { try engine.run(()) }
        let report = try #require(reported.withLock { $0 }.first)
        #expect(reported.withLock { $0.count } == 1)
        #expect(report.step == "break")
        #expect("\(report.error)" == "broken")
        #expect(report.entries == [.init(name: "b", manual: ["rm b"]), .init(name: "a", manual: ["rm a"])], "newest first")
        #expect(!report.kept)
        #expect(report.failures.count == 1 && report.failures[0].contains("b failed: broken"))
        #expect(undone.withLock { $0 } == ["a"])
        #expect(cleanup.isEmpty)
    }

    @Test func keepOnErrorReportsKeptAndPrintsTheManualLines() throws {
        let cleanup = CleanupStack(log: nil), printed = Locked<[String]>([]), reported = Locked<[StepCleanup]>([])
        var engine = try engine(
            [
                Step("make", "makes one") { _ in cleanup.push("a", manual: ["rm a"]) { Issue.record("kept: never undone") } },
                Step("break", "fails") { _ in throw Broken() },
            ], cleanup: cleanup, printed: printed)
        engine.keepOnError = true
        engine.onCleanup = { report in reported.withLock { $0.append(report) } }
        #expect(throws: StepFailed.self) { try engine.run(()) }
        let report = try #require(reported.withLock { $0 }.first)
        #expect(report.kept && report.failures.isEmpty && report.entries.map(\.name) == ["a"])
        #expect(printed.withLock { $0 }.contains("--keep-on-error: left everything in place; to clean up by hand run:\n  rm a"))
    }

    @Test func successWithOnlyFailureEntriesDropsThemQuietly() throws {
        let cleanup = CleanupStack(log: nil), printed = Locked<[String]>([]), reported = Locked<[StepCleanup]>([])
        var engine = try engine(
            [
                Step("make", "makes what the job delivers") { _ in
                    cleanup.push("a", manual: ["rm a"], onlyOnFailure: true) { Issue.record("delivered: never undone") }
                }
            ], cleanup: cleanup, printed: printed)
        engine.onCleanup = { report in reported.withLock { $0.append(report) } }
        try engine.run(())
        #expect(cleanup.isEmpty)
        #expect(reported.withLock { $0 }.isEmpty, "no report after success")
        #expect(!printed.withLock { $0 }.contains { $0.contains("cleaning up") })
    }

    @Test func amendNamesTheNewestEntryOfThatName() {
        let cleanup = CleanupStack(log: nil)
        cleanup.push("pending", manual: []) {}
        cleanup.push("other", manual: ["x"]) {}
        cleanup.amend("pending", to: "image 'ami-1'", manual: ["deregister ami-1"])
        cleanup.amend("absent", to: "never", manual: ["never"])
        #expect(cleanup.listing == [.init(name: "other", manual: ["x"]), .init(name: "image 'ami-1'", manual: ["deregister ami-1"])])
        #expect(cleanup.abandon() == ["x", "deregister ami-1"])
    }
}
