// sshd_config: key-only logins, no root, no reverse DNS on login.

public enum SSHD {
    public static let configPath = "/etc/ssh/sshd_config"

    /// The global settings the image needs, in the order they are applied.
    public static let settings: [(keyword: String, value: String)] = [
        ("UseDNS", "no"), // no login delay when the VPC has no reverse DNS
        ("PermitRootLogin", "no"),
        ("PasswordAuthentication", "no"),
    ]

    /// Sets every `settings` keyword globally, whatever the file says: the
    /// first active line is rewritten (later active duplicates are commented
    /// out); else the first commented default (`#UseDNS yes`) is replaced; else
    /// the line is added at the end of the global part. The global part ends at
    /// the first active `Match` line: anything after it applies only to matching
    /// connections, so neither reading nor writing looks past it. Keywords are
    /// matched case-insensitively (as sshd does). Idempotent.
    public static func harden(_ original: String) -> String {
        var text = original
        for (keyword, value) in settings { text = set(keyword, value, in: text) }
        return text
    }

    /// Sets one global keyword (see `harden`).
    public static func set(_ keyword: String, _ value: String, in original: String) -> String {
        var lines = Lines(original)
        let wanted = keyword.lowercased()
        let globalEnd = lines.items.firstIndex { parse($0)?.isComment == false && parse($0)?.keyword == "match" } ?? lines.items.count
        let newLine = "\(keyword) \(value)"
        let active = lines.items[..<globalEnd].indices.filter { parse(lines.items[$0]).map { !$0.isComment && $0.keyword == wanted } ?? false }
        if let first = active.first {
            lines.items[first] = newLine
            for i in active.dropFirst() { lines.items[i] = "#" + lines.items[i] }
        } else if let commented = lines.items[..<globalEnd].firstIndex(where: { parse($0).map { $0.isComment && $0.keyword == wanted } ?? false }) {
            lines.items[commented] = newLine
        } else {
            lines.items.insert(newLine, at: globalEnd)
        }
        return lines.text
    }

    /// The keyword of an option line (lower-cased), and whether it is a commented
    /// default. Only `#Keyword value` counts as a commented option: `# Keyword`
    /// with a space is prose in OpenSSH's files.
    static func parse(_ line: String) -> (keyword: String, isComment: Bool)? {
        var rest = line.trimmingLeadingSpaces
        let isComment = rest.first == "#"
        if isComment {
            rest = rest.dropFirst()
            guard let f = rest.first, f.isLetter else { return nil }
        }
        let keyword = rest.prefix { $0 != " " && $0 != "\t" && $0 != "=" }
        guard !keyword.isEmpty, keyword.allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
        let after = rest.dropFirst(keyword.count)
        guard after.isEmpty || after.first == " " || after.first == "\t" || after.first == "=" else { return nil }
        return (keyword.lowercased(), isComment)
    }
}
