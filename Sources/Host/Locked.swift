import Synchronization

/// A value shared between threads (a result filled in by a worker, a counter),
/// every access under one `Mutex`: Sendable without `@unchecked`.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` with the value, under the lock.
    public func withLock<Result: Sendable>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try mutex.withLock { value in try body(&value) }
    }

    /// A copy of the value as it is now.
    public var value: Value { mutex.withLock { $0 } }
}
