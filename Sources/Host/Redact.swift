import Foundation

/// Hides the password of every `scheme://user:password@` in `text` (`user:***@`),
/// so a mirror or endpoint URL with credentials can be printed and logged.
/// Applied where text leaves the tool: the console streams and the log file.
public func redactCredentials(_ text: String) -> String {
    guard text.contains("@"), text.contains("://") else { return text }
    return credentialPattern.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "$1$2:***@")
}

/// `scheme://` then a user and a password without `/`, `@` or white space, then `@`.
private let credentialPattern = try! NSRegularExpression(pattern: #"([A-Za-z][A-Za-z0-9+.-]*://)([^/@:\s]*):[^/@\s]*@"#)
