import Foundation

/// Work over independent items on every core (GCD's concurrentPerform, one
/// worker per core): verifying packages, unpacking them.
public enum Parallel {
    /// Runs `body` for each index in `0..<count`. After an interruption no new
    /// item starts and `HostError.interrupted` is thrown; else the error of the
    /// lowest failed index, so the report does not depend on scheduling.
    public static func forEach(_ count: Int, _ body: @Sendable (Int) throws -> Void) throws {
        let failures = Locked<[(index: Int, error: any Error)]>([])
        DispatchQueue.concurrentPerform(iterations: count) { index in
            guard !Interruption.shared.isInterrupted else { return }
            do { try body(index) } catch { failures.withLock { $0.append((index, error)) } }
        }
        try Interruption.shared.check()
        if let first = failures.value.min(by: { $0.index < $1.index }) { throw first.error }
    }
}
