import Foundation
import Host

/// Everything the downloader and the download cache can fail with. Messages
/// are lower-case, name the URL or file in quotes and say what to do.
public enum FetchError: ToolError, Equatable, Sendable {
    /// The server answered 404/410: the mirror does not have this file. Not retried.
    case notFound(url: String)
    /// Any other HTTP status we do not accept (after retries for 5xx, 408, 429).
    case httpStatus(url: String, status: Int, attempts: Int)
    /// Connection refused, reset, timed out, DNS failure, short body... after every retry.
    case connection(url: String, reason: String, attempts: Int)
    /// The server sent too slowly for too long (the low-speed limit). Not retried:
    /// a mirror that trickles would only trickle again.
    case tooSlow(url: String, reason: String)
    /// The server sent more than the metadata's size (or the limit): a broken or hostile mirror.
    case tooLarge(url: String, limit: Int64)
    /// The body was complete but its length differs from the metadata.
    case sizeMismatch(url: String, expected: Int64, actual: Int64)
    /// The bytes do not hash to the metadata's checksum. Nothing was admitted to the cache.
    case checksumMismatch(url: String, file: String, expected: String, actual: String)
    /// A checksum string from the metadata that we cannot use.
    case badChecksum(type: String, value: String, reason: String)
    /// A URL scheme we cannot fetch, or a malformed URL.
    case unsupportedURL(url: String)
    /// A redirect loop or too many redirects.
    case redirects(url: String, count: Int)
    /// A redirect to another scheme (`RedirectPolicy`): https to http, or to file: or anything else. Not retried.
    case redirectRefused(from: String, to: String)
    /// The server's response could not be parsed as HTTP.
    case protocolError(url: String, reason: String)
    /// Reading or writing the cache (or a `file://` mirror) failed.
    case io(path: String, reason: String)
    /// A helper program (curl, for https) could not be run.
    case tool(name: String, reason: String)
    /// Every mirror failed for one file (`RemoteFile.alternatives`): each mirror's error, in the order tried.
    case noMirror(file: String, failures: [String])

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .notFound(url):
            return ("'\(url)' was not found on the mirror (404)", nil, "check the mirror URL and that the release has this file")
        case let .httpStatus(url, status, attempts):
            return (
                "'\(url)' answered HTTP \(status)\(attempts > 1 ? " (\(attempts) attempts)" : "")", nil,
                "the mirror is failing, try again later or use another mirror"
            )
        case let .connection(url, reason, attempts):
            return (
                "cannot download '\(url)'", "\(reason)\(attempts > 1 ? " (gave up after \(attempts) attempts)" : "")",
                "check that the mirror is up and reachable"
            )
        case let .tooSlow(url, reason):
            return (
                "cannot download '\(url)'", "the transfer is \(reason)",
                "the mirror is too slow or stalled: use another mirror (or lower --speed-limit / raise --speed-time)"
            )
        case let .tooLarge(url, limit):
            return (
                "'\(url)' sent more than the \(limit) bytes the repository metadata allows", nil,
                "download aborted (the mirror is broken or the metadata is stale: use another mirror)"
            )
        case let .sizeMismatch(url, expected, actual):
            return (
                "'\(url)' is \(actual) bytes but the repository metadata says \(expected)", nil,
                "the mirror's file does not match its metadata (use another mirror)"
            )
        case let .checksumMismatch(url, file, expected, actual):
            return (
                "checksum mismatch for '\(file)' from '\(url)'", "expected \(expected), got \(actual)",
                "the file was discarded (the mirror is corrupt or tampered with: use another mirror)"
            )
        case let .badChecksum(type, value, reason):
            return ("cannot use checksum '\(type):\(value)' from the repository metadata", reason, nil)
        case let .unsupportedURL(url):
            return ("cannot fetch '\(url)'", "only http://, https:// and file:// mirrors are supported", nil)
        case let .redirects(url, count):
            return ("'\(url)' redirected \(count) times", nil, "giving up (check the mirror URL)")
        case let .redirectRefused(from, to):
            return (
                "'\(from)' redirected to '\(to)'", nil,
                "refused: a redirect may keep its scheme or go from http to https, never to another (check the mirror URL, or give the mirror's final address)"
            )
        case let .protocolError(url, reason):
            return ("'\(url)' sent a malformed HTTP response (\(reason))", nil, "check the mirror URL or any proxy in between")
        case let .io(path, reason):
            return ("cannot use '\(path)'", reason, nil)
        case let .tool(name, reason):
            return ("cannot run '\(name)'", "\(reason) (https mirrors need curl installed)", nil)
        case let .noMirror(file, failures):
            return (
                "'\(file)' could not be fetched from any of \(failures.count) mirrors", failures.joined(separator: "; "),
                "check the mirrors (--mirror) or try again later"
            )
        }
    }

    /// Worth another attempt after a backoff (server or network trouble, not content).
    var isRetryable: Bool {
        switch self {
        case .connection, .protocolError: return true
        case let .httpStatus(_, status, _): return status >= 500 || status == 408 || status == 429
        default: return false
        }
    }
}
