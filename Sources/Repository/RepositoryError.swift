import Foundation
import Host

/// Everything that can go wrong while reading a repository's metadata or
/// resolving a package set over it. Messages are lower-case, name the thing
/// in quotes and say what to do.
public enum RepositoryError: ToolError, Equatable, Sendable {
    /// repomd.xml, primary or comps cannot be read or parsed.
    case metadata(file: String, reason: String)
    case checksumMismatch(file: String, type: String, expected: String, actual: String)
    case sizeMismatch(file: String, expected: Int, actual: Int)
    /// Closure resolution: every requirement nobody provides, as "requirer: requirement".
    case unresolved([String])

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .metadata(file, reason):
            return ("repository metadata '\(file)'", reason, nil)
        case let .checksumMismatch(file, type, expected, actual):
            return ("'\(file)': \(type) checksum mismatch", "expected \(expected), got \(actual)", "refusing it (fetch it again or check the mirror)")
        case let .sizeMismatch(file, expected, actual):
            return ("'\(file)': size mismatch", "expected \(expected) bytes, got \(actual)", "refusing it")
        case let .unresolved(list):
            // The requirements are a block of lines below the failure.
            return ("cannot resolve \(list.count) requirement(s); nothing provides", "\n  " + list.joined(separator: "\n  "), nil)
        }
    }
}
