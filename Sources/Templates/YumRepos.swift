// The image's yum configuration: CentOS-Base.repo pointed at the vault, and the release pinned.

public enum YumRepos {
    public static let centosBasePath = "/etc/yum.repos.d/CentOS-Base.repo"
    public static let releaseverPath = "/etc/yum/vars/releasever"

    /// /etc/yum/vars/releasever: yum's `$releasever` becomes the exact point
    /// release (`6.9`), whose tree the vault keeps (`6` is gone from the mirrors).
    public static func releasever(_ release: String) -> String { release + "\n" }

    /// Rewrites CentOS-Base.repo for a CentOS that only lives in the vault. In
    /// every section: `mirrorlist=` commented out (mirrorlist.centos.org no
    /// longer answers for 6), every existing `baseurl` (commented or not)
    /// replaced by a commented `<commentedMirror>/$releasever/<repo>/$basearch/`
    /// and an active `<mirror>/$releasever/<repo>/$basearch/`, placed where the
    /// mirrorlist was. Everything else (gpgcheck, gpgkey, enabled, comments) is
    /// kept. Idempotent.
    ///
    /// `<repo>` is the directory of the section on the vault: the mirrorlist's
    /// `repo=` (`os` for [base]), else the one an old baseurl names, else the
    /// section's own name.
    public static func rewriteCentOSBase(_ original: String, mirror: String, commentedMirror: String) -> String {
        let active = trimSlash(mirror), commented = trimSlash(commentedMirror)
        var out: [String] = []
        var section: [String] = []
        var name: String? = nil

        func flush() {
            defer { section = []; name = nil }
            guard let name else { out += section; return }
            out += rewriteSection(name: name, lines: section, mirror: active, commentedMirror: commented)
        }
        for line in Lines(original).items {
            if let header = sectionName(line) {
                flush()
                name = header
            }
            section.append(line)
        }
        flush()
        var result = Lines("")
        result.items = out
        return result.text
    }

    static func rewriteSection(name: String, lines: [String], mirror: String, commentedMirror: String) -> [String] {
        let repo = repoDirectory(section: name, lines: lines)
        let ours = [
            "#baseurl=\(commentedMirror)/$releasever/\(repo)/$basearch/",
            "baseurl=\(mirror)/$releasever/\(repo)/$basearch/",
        ]
        var kept: [String] = []
        var anchor: Int? = nil // after the (commented) mirrorlist
        var nameLine: Int? = nil // else after name=
        var inActiveBaseurl = false
        for line in lines {
            if inActiveBaseurl, line.first == " " || line.first == "\t", !line.trimmingLeadingSpaces.isEmpty {
                continue // a continuation URL of the baseurl being dropped
            }
            inActiveBaseurl = false
            switch key(of: line) {
            case let (k, isComment)? where k == "baseurl":
                inActiveBaseurl = !isComment
                continue
            case let (k, isComment)? where k == "mirrorlist":
                kept.append(isComment ? line : "#" + line)
                if anchor == nil { anchor = kept.count }
            case let (k, false)? where k == "name":
                kept.append(line)
                if nameLine == nil { nameLine = kept.count }
            default:
                kept.append(line)
            }
        }
        kept.insert(contentsOf: ours, at: anchor ?? nameLine ?? 1)
        return kept
    }

    /// `[base]` -> `base`.
    static func sectionName(_ line: String) -> String? {
        let t = line.trimming(" \t")
        guard t.hasPrefix("["), t.hasSuffix("]"), t.count > 2 else { return nil }
        return String(t.dropFirst().dropLast())
    }

    /// The key of `key=value` or `#key=value` (lower-cased), and whether it is commented out.
    static func key(of line: String) -> (String, Bool)? {
        var rest = Substring(line)
        let isComment = rest.first == "#"
        if isComment { rest = rest.dropFirst() }
        guard let eq = rest.firstIndex(of: "=") else { return nil }
        let k = rest[..<eq].trimming(" \t")
        guard !k.isEmpty, k.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
        return (k.lowercased(), isComment)
    }

    static func repoDirectory(section: String, lines: [String]) -> String {
        for line in lines {
            guard let (k, _) = key(of: line), k == "mirrorlist", let r = line.range(of: "repo=") else { continue }
            let value = line[r.upperBound...].prefix { $0 != "&" && $0 != " " && $0 != "\t" }
            if !value.isEmpty { return String(value) }
        }
        for line in lines {
            guard let (k, _) = key(of: line), k == "baseurl", let r = line.range(of: "$releasever/") else { continue }
            let value = line[r.upperBound...].prefix { $0 != "/" }
            if !value.isEmpty && !value.hasPrefix("$") { return String(value) }
        }
        return section == "base" ? "os" : section
    }

    static func trimSlash(_ url: String) -> String {
        var u = Substring(url)
        while u.hasSuffix("/") { u = u.dropLast() }
        return String(u)
    }
}

extension StringProtocol {
    /// Trims the given characters at both ends (no Foundation needed).
    func trimming(_ set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
