import Foundation

/// Undo actions pushed the moment a resource exists (mount, then push umount).
/// Unwinds in reverse order; each undo checks there is still something to undo,
/// so unwinding twice is harmless; a failed undo is logged and the rest still run.
public final class CleanupStack: @unchecked Sendable {
    public struct Entry {
        public var name: String
        /// Shell lines a user can run by hand (printed by `--keep-on-error`).
        public var manual: [String]
        public var undo: () throws -> Void
    }
    private let lock = NSLock()
    private var entries: [Entry] = []
    private let log: Log?

    public init(log: Log?) { self.log = log }

    public var names: [String] { lock.withLock { entries.map(\.name) } }
    public var isEmpty: Bool { lock.withLock { entries.isEmpty } }

    public func push(_ name: String, manual: [String] = [], undo: @escaping () throws -> Void) {
        lock.withLock { entries.append(Entry(name: name, manual: manual, undo: undo)) }
    }

    /// Runs every undo, newest first. Returns the failures (already logged).
    @discardableResult
    public func unwind() -> [String] {
        var failures: [String] = []
        while let entry = lock.withLock({ entries.popLast() }) {
            do {
                try entry.undo()
                log?.write("cleanup: \(entry.name): done")
            } catch {
                let text = "cleanup: \(entry.name) failed: \(error)"
                failures.append(text)
                log?.say(text)
            }
        }
        return failures
    }

    /// Drops every entry without running it (`--keep-on-error`), returning the
    /// commands a user should run by hand, in unwind order.
    public func abandon() -> [String] {
        let taken = lock.withLock { () -> [Entry] in let e = entries; entries = []; return e }
        return taken.reversed().flatMap(\.manual)
    }
}
