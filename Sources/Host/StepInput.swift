import Foundation

/// A step asked for what an earlier step makes before that step ran: the step list is out
/// of order. Install and register both read their earlier steps' values through `Optional.made(_:by:)`.
public struct NotYetMade: ToolError, Equatable {
    /// What was asked for: "the partition", "the snapshot".
    public var what: String
    /// The step that makes it.
    public var step: String

    public init(what: String, step: String) { self.what = what; self.step = step }

    public var failure: String { "no \(what) yet: the '\(step)' step makes it (a step list out of order)" }
}

extension Optional {
    /// The value, which the step `step` makes: `NotYetMade` when that step has not run.
    public func made(_ what: String, by step: String) throws -> Wrapped {
        guard let value = self else { throw NotYetMade(what: what, step: step) }
        return value
    }
}
