import Foundation

/// Undo actions pushed the moment a resource exists (mount, then push umount).
/// Unwinds in reverse order; each undo checks there is still something to undo,
/// so unwinding twice is harmless; a failed undo is logged and the rest still run.
// Unchecked: `entries` is only touched under `lock`; the undo closures run on the unwinding thread.
public final class CleanupStack: @unchecked Sendable {
    public struct Entry {
        public var name: String
        /// Shell lines a user can run by hand (printed by `--keep-on-error`).
        public var manual: [String]
        /// Runs only when the install failed (e.g. remove an image file this run created).
        public var onlyOnFailure: Bool
        public var undo: () throws -> Void
    }
    private let lock = NSLock()
    private var entries: [Entry] = []
    private let log: Log?

    public init(log: Log?) { self.log = log }

    public var names: [String] { lock.withLock { entries.map(\.name) } }
    public var isEmpty: Bool { lock.withLock { entries.isEmpty } }
    /// How many entries are on the stack: a mark for `unwind(downTo:)`.
    public var count: Int { lock.withLock { entries.count } }

    public func push(_ name: String, manual: [String] = [], onlyOnFailure: Bool = false, undo: @escaping () throws -> Void) {
        lock.withLock { entries.append(Entry(name: name, manual: manual, onlyOnFailure: onlyOnFailure, undo: undo)) }
    }

    /// One entry as a report names it: what it undoes and the lines a user would run by hand.
    public struct Listing: Equatable, Sendable {
        public var name: String
        public var manual: [String]
        public init(name: String, manual: [String]) {
            self.name = name
            self.manual = manual
        }
    }

    /// Every entry, newest first (the order they would unwind in).
    public var listing: [Listing] { lock.withLock { entries.reversed().map { Listing(name: $0.name, manual: $0.manual) } } }

    /// True when unwinding after success has something to run (an entry not marked `onlyOnFailure`).
    public var undoesOnSuccess: Bool { lock.withLock { entries.contains { !$0.onlyOnFailure } } }

    /// Renames the newest entry called `name` and sets its manual lines: a resource pushed
    /// before the call that makes it (so a lost answer is still undone) is named by its id
    /// once the answer arrives.
    public func amend(_ name: String, to newName: String, manual: [String]) {
        lock.withLock {
            guard let index = entries.lastIndex(where: { $0.name == name }) else { return }
            entries[index].name = newName
            entries[index].manual = manual
        }
    }

    /// Runs every undo above `mark`, newest first (all of them by default).
    /// Entries marked `onlyOnFailure` run only when `failed`. Returns the failures (already logged).
    @discardableResult
    public func unwind(downTo mark: Int = 0, failed: Bool = false) -> [String] {
        var failures: [String] = []
        while let entry = lock.withLock({ entries.count > mark ? entries.popLast() : nil }) {
            if entry.onlyOnFailure && !failed { continue }
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

    /// Runs and removes the newest entry called `name` now (a resource whose job is done).
    public func unwindEntry(named name: String) {
        let entry: Entry? = lock.withLock {
            guard let index = entries.lastIndex(where: { $0.name == name }) else { return nil }
            return entries.remove(at: index)
        }
        guard let entry else { return }
        do { try entry.undo() } catch { log?.say("cleanup: \(entry.name) failed: \(error)") }
    }

    /// Drops every entry without running it (`--keep-on-error`), returning the
    /// commands a user should run by hand, in unwind order.
    public func abandon() -> [String] {
        let taken = lock.withLock { () -> [Entry] in
            let e = entries; entries = []; return e
        }
        return taken.reversed().flatMap(\.manual)
    }
}
