import Foundation

/// Which redirects a download follows: the same scheme (http→http,
/// https→https) or the upgrade http→https; nothing else. https→http would
/// let a man in the middle of the second hop feed the metadata (repomd.xml
/// has no checksum of its own), and a `file:` (or any other scheme) target
/// would let a mirror make the tool read a file of the builder. Our http
/// client and curl (`--proto-redir`, FetchCurl.swift, FetchCurlBatch.swift)
/// apply the same rule.
public enum RedirectPolicy {
    /// True when a redirect from `from` to `to` may be followed.
    public static func allows(from: URL, to: URL) -> Bool {
        guard let source = from.scheme?.lowercased(), let target = to.scheme?.lowercased() else { return false }
        return allowedTargets(from: source).contains(target)
    }

    /// The schemes a redirect from `scheme` may go to.
    public static func allowedTargets(from scheme: String) -> [String] {
        switch scheme.lowercased() {
        case "http": return ["http", "https"]
        case "https": return ["https"]
        default: return []
        }
    }

    /// curl's `--proto-redir` value for a transfer starting at `scheme` (`=https` or `=http,https`).
    public static func curlProtoRedir(from scheme: String) -> String {
        "=" + allowedTargets(from: scheme).joined(separator: ",")
    }
}
