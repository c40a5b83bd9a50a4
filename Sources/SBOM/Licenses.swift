/// RPMTAG_LICENSE as an SPDX license expression. EL6 packages name licenses by
/// Fedora's old short names (`GPLv2+`, `ASL 2.0`, `GPL+ or Artistic`), which are
/// not SPDX ids, so each name is mapped where the mapping is exact and every other
/// one becomes a `LicenseRef-rpm-…` whose text is the header's own words (SPDX
/// documents declare them under hasExtractedLicensingInfos). `and`/`or` and
/// parentheses keep their meaning as AND/OR.
public struct MappedLicense: Equatable, Sendable {
    /// The SPDX expression (`GPL-2.0-or-later AND LicenseRef-rpm-BSD`).
    public var expression: String
    /// The LicenseRefs it uses, each with the words it stands for.
    public var references: [String: String]
    /// The one SPDX list id when the expression is just that (CycloneDX's `license.id`).
    public var singleID: String?

    public init(expression: String, references: [String: String], singleID: String?) {
        self.expression = expression
        self.references = references
        self.singleID = singleID
    }
}

public enum Licenses {
    /// Fedora's old names whose meaning is exactly one SPDX id. Names that stood for a
    /// family (`BSD`, `LGPLv2+`: "v2 or 2.1 or later", `MIT` variants aside) stay
    /// LicenseRefs: a wrong id is worse than none for whoever audits the image.
    public static let exact: [String: String] = [
        "GPLv1": "GPL-1.0-only", "GPL+": "GPL-1.0-or-later",
        "GPLv2": "GPL-2.0-only", "GPLv2+": "GPL-2.0-or-later",
        "GPLv3": "GPL-3.0-only", "GPLv3+": "GPL-3.0-or-later",
        "LGPLv3": "LGPL-3.0-only", "LGPLv3+": "LGPL-3.0-or-later",
        "AGPLv3": "AGPL-3.0-only", "AGPLv3+": "AGPL-3.0-or-later",
        "MIT": "MIT", "ISC": "ISC", "zlib": "Zlib", "OpenSSL": "OpenSSL",
        "ASL 1.0": "Apache-1.0", "ASL 1.1": "Apache-1.1", "ASL 2.0": "Apache-2.0",
        "MPLv1.0": "MPL-1.0", "MPLv1.1": "MPL-1.1", "MPLv2.0": "MPL-2.0",
        "Artistic 2.0": "Artistic-2.0", "Boost": "BSL-1.0", "Sleepycat": "Sleepycat",
        "IJG": "IJG", "Vim": "Vim", "OpenLDAP": "OLDAP-2.8", "Ruby": "Ruby", "TCL": "TCL",
    ]

    /// The expression of one header's license; nil for no license at all (NOASSERTION).
    public static func map(_ license: String?) -> MappedLicense? {
        guard let text = license?.trimmingCharacters(in: .whitespaces), !text.isEmpty, text != "(none)" else { return nil }
        var references: [String: String] = [:]
        func name(_ words: String) -> String {
            if let id = exact[words] { return id }
            let ref = referenceID(words)
            references[ref] = words
            return ref
        }
        guard let expression = parse(tokens(text), name: name) else {
            // Not and/or/parentheses as expected: the whole string is one reference.
            references = [:]
            let ref = referenceID(text)
            return MappedLicense(expression: ref, references: [ref: text], singleID: nil)
        }
        return MappedLicense(expression: expression, references: references, singleID: exact[text])
    }

    /// `LicenseRef-rpm-` and the words with every character SPDX ids do not allow as `-`
    /// (`+` as `plus`, so `LGPLv2+` and `LGPLv2` stay apart).
    public static func referenceID(_ words: String) -> String {
        var id = ""
        for scalar in words.unicodeScalars {
            let c = Character(scalar)
            if scalar.isASCII, c.isLetter || c.isNumber || c == "." { id.append(c) } else if c == "+" { id += "plus" } else if !id.hasSuffix("-") { id += "-" }
        }
        while id.hasSuffix("-") { id.removeLast() }
        return "LicenseRef-rpm-" + (id.isEmpty ? "unnamed" : id)
    }

    enum Token: Equatable { case open, close, and, or, word(String) }

    static func tokens(_ text: String) -> [Token] {
        var out: [Token] = []
        var word = ""
        func flush() {
            guard !word.isEmpty else { return }
            switch word.lowercased() {
            case "and": out.append(.and)
            case "or": out.append(.or)
            default: out.append(.word(word))
            }
            word = ""
        }
        for c in text {
            if c == "(" || c == ")" { flush(); out.append(c == "(" ? .open : .close) } else if c.isWhitespace { flush() } else { word.append(c) }
        }
        flush()
        return out
    }

    /// expr := term ((and|or) term)*; term := words | ( expr ). Consecutive words are one
    /// name (`ASL 2.0`, `Public Domain`). nil when the tokens do not fit.
    static func parse(_ tokens: [Token], name: (String) -> String) -> String? {
        var i = 0
        func term() -> String? {
            guard i < tokens.count else { return nil }
            if tokens[i] == .open {
                i += 1
                guard let inner = expr(), i < tokens.count, tokens[i] == .close else { return nil }
                i += 1
                return "(\(inner))"
            }
            var words: [String] = []
            while i < tokens.count, case let .word(w) = tokens[i] { words.append(w); i += 1 }
            return words.isEmpty ? nil : name(words.joined(separator: " "))
        }
        func expr() -> String? {
            guard var out = term() else { return nil }
            while i < tokens.count, tokens[i] == .and || tokens[i] == .or {
                let op = tokens[i] == .and ? "AND" : "OR"
                i += 1
                guard let next = term() else { return nil }
                out += " \(op) \(next)"
            }
            return out
        }
        guard let result = expr(), i == tokens.count else { return nil }
        return result
    }
}
