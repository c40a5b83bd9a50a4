import Foundation

/// A step asked for what an earlier step makes before that step ran: the step list is out
/// of order. Install and register both read their earlier steps' values through `made`.
public struct NotYetMade: ToolError, Equatable {
    /// What was asked for: "the partition", "the snapshot".
    public var what: String
    /// The step that makes it.
    public var step: String

    public init(what: String, step: String) { self.what = what; self.step = step }

    public var failure: String { "no \(what) yet: the '\(step)' step makes it (a step list out of order)" }
}

/// `value`, which the step `step` makes: `NotYetMade` when that step has not run.
public func made<T>(_ value: T?, _ what: String, by step: String) throws -> T {
    guard let value else { throw NotYetMade(what: what, step: step) }
    return value
}
