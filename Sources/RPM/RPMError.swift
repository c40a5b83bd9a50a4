import Foundation
import Host

/// Everything that can go wrong while reading or unpacking a package.
/// Messages are lower-case, name the thing in quotes and say what to do.
///
/// (Signatures, repository metadata and the downloader have their own
/// enums: `SignatureError`, `RepositoryError`, `FetchError`.)
public enum RPMError: ToolError, Equatable, Sendable {
    /// The file is not an RPM, or a structure in it is inconsistent.
    case malformed(file: String, reason: String)
    /// The file ends before a structure it announces.
    case truncated(file: String, reason: String)
    /// The header is fine but the payload is missing or cut short (e.g. a header-only file).
    case payloadMissing(file: String, expected: Int, available: Int)
    case unsupportedPayload(file: String, reason: String)
    /// A cpio entry that must not be written (absolute, `..`, through a symlink out of the root...).
    case unsafeEntry(file: String, entry: String, reason: String)
    case cpio(file: String, reason: String)
    case extractFailed(file: String, entry: String, reason: String)
    /// A host tool (gpgv, xz, gzip, sha256sum) failed or is missing.
    case tool(name: String, reason: String)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .malformed(file, reason):
            return ("'\(file)' is not a valid rpm", reason, nil)
        case let .truncated(file, reason):
            return ("'\(file)' is truncated", "\(reason) (download it again)", nil)
        case let .payloadMissing(file, expected, available):
            return (
                "'\(file)': payload missing or truncated",
                "the header announces \(expected) bytes of header+payload, the file has \(available) (a header-only file, or an interrupted download: fetch it again)",
                nil
            )
        case let .unsupportedPayload(file, reason):
            return ("'\(file)': unsupported payload", reason, nil)
        case let .unsafeEntry(file, entry, reason):
            return ("'\(file)': refusing entry '\(entry)'", reason, "nothing of it was written")
        case let .cpio(file, reason):
            return ("'\(file)': bad cpio payload", reason, nil)
        case let .extractFailed(file, entry, reason):
            return ("'\(file)': cannot extract '\(entry)'", reason, nil)
        case let .tool(name, reason):
            return ("host tool '\(name)' failed", "\(reason) (is it installed?)", nil)
        }
    }
}
