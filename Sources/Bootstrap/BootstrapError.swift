import Foundation

/// Everything that can go wrong while reading, verifying or unpacking a
/// package or the repository metadata. Messages are lower-case, name the
/// thing in quotes and say what to do.
///
/// (The downloader and cache have their own cases in their own files; this
/// enum covers the reader, verifier, extractor, metadata and resolver.)
public enum RPMError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file is not an RPM, or a structure in it is inconsistent.
    case malformed(file: String, reason: String)
    /// The file ends before a structure it announces.
    case truncated(file: String, reason: String)
    /// The header is fine but the payload is missing or cut short (e.g. a header-only file).
    case payloadMissing(file: String, expected: Int, available: Int)
    case unsupportedPayload(file: String, reason: String)
    /// Verification: the package carries no signature we can check.
    case unsigned(file: String)
    /// Verification: gpgv did not report a good signature by the pinned key.
    case badSignature(file: String, reason: String)
    /// Verification: signed by a key other than the pinned one.
    case wrongKey(file: String, keyID: String, pinned: String)
    /// Verification: a digest in the header does not match the bytes.
    case digestMismatch(file: String, what: String, expected: String, actual: String)
    /// The pinned key file cannot be read as an OpenPGP public key.
    case badKey(path: String, reason: String)
    /// A cpio entry that must not be written (absolute, `..`, through a symlink out of the root...).
    case unsafeEntry(file: String, entry: String, reason: String)
    case cpio(file: String, reason: String)
    case extractFailed(file: String, entry: String, reason: String)
    /// A host tool (gpgv, xz, gzip, sha256sum) failed or is missing.
    case tool(name: String, reason: String)
    /// Repository metadata.
    case metadata(file: String, reason: String)
    case checksumMismatch(file: String, type: String, expected: String, actual: String)
    case sizeMismatch(file: String, expected: Int, actual: Int)
    /// Closure resolution: every requirement nobody provides, as "requirer: requirement".
    case unresolved([String])

    public var description: String {
        switch self {
        case let .malformed(file, reason):
            return "'\(file)' is not a valid rpm: \(reason)"
        case let .truncated(file, reason):
            return "'\(file)' is truncated: \(reason) (download it again)"
        case let .payloadMissing(file, expected, available):
            return "'\(file)': payload missing or truncated: the header announces \(expected) bytes of header+payload, the file has \(available) (a header-only file, or an interrupted download: fetch it again)"
        case let .unsupportedPayload(file, reason):
            return "'\(file)': unsupported payload: \(reason)"
        case let .unsigned(file):
            return "'\(file)' is not signed (no SIGPGP, SIGGPG, RSAHEADER or DSAHEADER tag); refusing it"
        case let .badSignature(file, reason):
            return "'\(file)': bad signature: \(reason); refusing it (the file is corrupt or was tampered with)"
        case let .wrongKey(file, keyID, pinned):
            return "'\(file)' is signed by key \(keyID), not by the pinned key \(pinned); refusing it (pass --gpg-key FILE if this key is the right one)"
        case let .digestMismatch(file, what, expected, actual):
            return "'\(file)': \(what) mismatch: header says \(expected), the bytes give \(actual); refusing it"
        case let .badKey(path, reason):
            return "key '\(path)' is not a usable OpenPGP public key: \(reason)"
        case let .unsafeEntry(file, entry, reason):
            return "'\(file)': refusing entry '\(entry)': \(reason); nothing of it was written"
        case let .cpio(file, reason):
            return "'\(file)': bad cpio payload: \(reason)"
        case let .extractFailed(file, entry, reason):
            return "'\(file)': cannot extract '\(entry)': \(reason)"
        case let .tool(name, reason):
            return "host tool '\(name)' failed: \(reason) (is it installed?)"
        case let .metadata(file, reason):
            return "repository metadata '\(file)': \(reason)"
        case let .checksumMismatch(file, type, expected, actual):
            return "'\(file)': \(type) checksum mismatch: expected \(expected), got \(actual); refusing it (fetch it again or check the mirror)"
        case let .sizeMismatch(file, expected, actual):
            return "'\(file)': size mismatch: expected \(expected) bytes, got \(actual); refusing it"
        case let .unresolved(list):
            return "cannot resolve \(list.count) requirement(s); nothing provides:\n  " + list.joined(separator: "\n  ")
        }
    }
}
