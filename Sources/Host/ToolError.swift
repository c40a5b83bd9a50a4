import Foundation

/// The one shape of the tool's errors: what failed, why, and what to do about it.
/// A conforming error gives the three parts; its text is made from them here, so
/// every message reads the same way: `failure: reason; remedy`.
public protocol ToolError: Error, CustomStringConvertible {
    /// What failed, naming the thing: "cannot read the image 'disk.img'".
    var failure: String { get }
    /// Why it failed, when the failure does not say it already.
    var reason: String? { get }
    /// What the user can do about it, when there is something to do.
    var remedy: String? { get }
}

extension ToolError {
    public var reason: String? { nil }
    public var remedy: String? { nil }
    public var description: String { toolErrorText(failure: failure, reason: reason, remedy: remedy) }
}

/// `failure: reason; remedy`, leaving out the parts that are nil. A reason that is a
/// block of lines (it starts with a newline: a command's stderr tail, a list of
/// unresolved requirements) follows the colon directly, so no line ends in a space.
public func toolErrorText(failure: String, reason: String?, remedy: String?) -> String {
    failure + (reason.map { ($0.hasPrefix("\n") ? ":" : ": ") + $0 } ?? "") + (remedy.map { "; \($0)" } ?? "")
}
