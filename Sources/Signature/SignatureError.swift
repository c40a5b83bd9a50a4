import Foundation
import Host

/// Everything that can go wrong while checking a package against the pinned
/// key. Messages are lower-case, name the thing in quotes and say what to do.
/// (A signature packet that cannot be parsed is an `RPMError.malformed`: it
/// is a structure of the rpm file.)
public enum SignatureError: ToolError, Equatable, Sendable {
    /// The package carries no signature we can check.
    case unsigned(file: String)
    /// gpgv did not report a good signature by the pinned key.
    case badSignature(file: String, reason: String)
    /// Signed by a key other than the pinned one.
    case wrongKey(file: String, keyID: String, pinned: String)
    /// A digest in the header does not match the bytes.
    case digestMismatch(file: String, what: String, expected: String, actual: String)
    /// The pinned key file cannot be read as an OpenPGP public key.
    case badKey(path: String, reason: String)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .unsigned(file):
            return ("'\(file)' is not signed (no SIGPGP, SIGGPG, RSAHEADER or DSAHEADER tag)", nil, "refusing it")
        case let .badSignature(file, reason):
            return ("'\(file)': bad signature", reason, "refusing it (the file is corrupt or was tampered with)")
        case let .wrongKey(file, keyID, pinned):
            return (
                "'\(file)' is signed by key \(keyID), not by the pinned key \(pinned)", nil, "refusing it (pass --gpg-key FILE if this key is the right one)"
            )
        case let .digestMismatch(file, what, expected, actual):
            return ("'\(file)': \(what) mismatch", "header says \(expected), the bytes give \(actual)", "refusing it")
        case let .badKey(path, reason):
            return ("key '\(path)' is not a usable OpenPGP public key", reason, nil)
        }
    }
}
