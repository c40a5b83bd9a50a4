import Foundation

/// The one worker pool: independent items over a bounded number of threads,
/// taken in index order. After an interruption no new item starts and
/// `HostError.interrupted` is thrown once the running ones end; else the error of
/// the lowest failed index, so the report does not depend on scheduling (with
/// `stopOnFailure`, no item starts after a failure either: items are taken in
/// order, so every lower index was taken and ran, and the report is the same).
public enum Parallel {
    /// Runs `body` for each index in `0..<count`, one worker per core: verifying
    /// packages, unpacking them. A failure does not stop the other items (each
    /// package verified is remembered for the next run).
    public static func forEach(_ count: Int, _ body: @Sendable (Int) throws -> Void) throws {
        try withoutActuallyEscaping(body) { body in
            try forEach(count, workers: ProcessInfo.processInfo.activeProcessorCount, stopOnFailure: false) { items in items.forEach(body) }
        }
    }

    /// Starts `workers` threads of our own (at most one per item; each may block on
    /// the network, which GCD's pool would not grow for), each running `worker`
    /// with the shared items: a worker sets up what it keeps across its items (a
    /// connection, a buffer), then calls `items.forEach`. The calling thread calls
    /// `whileWaiting` every `interval` seconds until all are done (progress lines).
    public static func forEach(
        _ count: Int, workers: Int, stopOnFailure: Bool = true, interval: TimeInterval = 1, whileWaiting: () -> Void = {},
        worker: @Sendable (WorkItems) -> Void
    ) throws {
        let items = WorkItems(count: count, stopOnFailure: stopOnFailure)
        let group = DispatchGroup()
        // Every worker ends before this returns, so `worker` need not escape; the
        // threads reach it through a box emptied once they are done (a finished
        // Thread object may still be alive, and must not hold the closure then).
        withoutActuallyEscaping(worker) { worker in
            let box = WorkerBox(worker)
            for _ in 0..<min(max(1, workers), count) {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    box.worker?(items)
                }
                thread.stackSize = 8 << 20
                thread.start()
            }
            while group.wait(timeout: .now() + interval) == .timedOut { whileWaiting() }
            box.worker = nil
        }
        try Interruption.shared.check()
        if let error = items.firstError { throw error }
    }
}

/// The worker closure shared by the threads of one `Parallel.forEach`.
// Unchecked: `worker` is set before the threads start and cleared after they all ended.
private final class WorkerBox: @unchecked Sendable {
    var worker: (@Sendable (WorkItems) -> Void)?
    init(_ worker: @escaping @Sendable (WorkItems) -> Void) { self.worker = worker }
}

/// The items of one `Parallel.forEach`, shared by its workers.
public final class WorkItems: Sendable {
    private let count: Int
    private let stopOnFailure: Bool
    private let state = Locked<(next: Int, failures: [(index: Int, error: any Error)])>((0, []))

    init(count: Int, stopOnFailure: Bool) {
        self.count = count
        self.stopOnFailure = stopOnFailure
    }

    /// True once an item failed or a signal arrived: a long item may give up early.
    public var isStopping: Bool { Interruption.shared.isInterrupted || !state.value.failures.isEmpty }

    /// Runs `body` on each next item not yet taken until none is left (or one failed,
    /// with `stopOnFailure`, or a signal arrived). A failure is recorded, not thrown.
    public func forEach(_ body: (Int) throws -> Void) {
        while let index = take() {
            do { try body(index) } catch {
                state.withLock { $0.failures.append((index, error)) }
                if stopOnFailure { return }
            }
        }
    }

    private func take() -> Int? {
        state.withLock { state -> Int? in
            guard !stopOnFailure || state.failures.isEmpty, state.next < count, !Interruption.shared.isInterrupted else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    var firstError: (any Error)? { state.value.failures.min { $0.index < $1.index }?.error }
}
