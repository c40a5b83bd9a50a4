import Fetch
import Foundation
import RPM

/// A minimal, strict, streaming (SAX-style, pull) XML tokenizer over bytes in
/// memory, for primary.xml only.
///
/// Why not XMLParser: swift-corelibs' XMLParser turns every element name and
/// attribute set into Strings and dictionaries through CoreFoundation; on a
/// CentOS-sized primary.xml (~30 MB, ~500,000 elements) that costs several
/// seconds where libsolv (dnf) needs well under one, and the benchmark bar is
/// "no slower than dnf". This scanner touches each byte once and builds
/// Strings only for the values the resolver needs. repomd.xml and comps
/// (small) still go through XMLParser, and a test checks both parsers give
/// the same packages.
///
/// Supported: elements, attributes ('…' or "…"), text, the five predefined
/// entities and numeric character references, comments, processing
/// instructions, a DOCTYPE without an internal subset, CDATA. Checked: tag
/// nesting and names, quoting, termination; anything else is an error with a
/// line number. Namespaces are not resolved (names keep their prefix, as
/// createrepo writes them: "rpm:entry").
struct XMLScanner {
    enum Event {
        case start(name: Range<Int>, selfClosing: Bool)
        case end(name: Range<Int>)
        case text(Range<Int>, needsDecoding: Bool)
    }
    struct Attribute {
        var name: Range<Int>
        var value: Range<Int>
        var needsDecoding: Bool
    }

    let b: UnsafeBufferPointer<UInt8>
    private(set) var i = 0
    private var stack: [Range<Int>] = []
    /// The attributes of the last `.start` event.
    private(set) var attributes: [Attribute] = []
    private var pendingEnd: Range<Int>?
    private(set) var sawRoot = false

    init(_ bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

    struct Failure: Error { var message: String; var offset: Int }

    func fail(_ message: String, at offset: Int? = nil) -> Failure { Failure(message: message, offset: offset ?? i) }

    /// The 1-based line of a byte offset (errors only).
    func line(of offset: Int) -> Int {
        var n = 1
        for k in 0..<min(offset, b.count) where b[k] == 10 { n += 1 }
        return n
    }

    @inline(__always) static func isNameByte(_ c: UInt8) -> Bool {
        c >= 128 || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 58 || c == 95 || c == 45 || c == 46
    }
    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 10 || c == 9 || c == 13 }

    func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for k in 0..<r.count where b[r.lowerBound + k] != p[k] { return false }
        return true
    }

    private func starts(_ s: StaticString, at k: Int) -> Bool {
        let n = s.utf8CodeUnitCount
        guard k + n <= b.count else { return false }
        let p = s.utf8Start
        for j in 0..<n where b[k + j] != p[j] { return false }
        return true
    }

    private func find(_ s: StaticString, from k: Int) -> Int? {
        var j = k
        let first = s.utf8Start[0]
        while j < b.count {
            if b[j] == first && starts(s, at: j) { return j }
            j += 1
        }
        return nil
    }

    /// The next event, or nil at the end of the document (after checking every element was closed).
    mutating func next() throws -> Event? {
        if let end = pendingEnd { pendingEnd = nil; return .end(name: end) }
        while i < b.count {
            if b[i] != 60 { // text up to the next '<'
                let start = i
                var amp = false
                while i < b.count && b[i] != 60 {
                    if b[i] == 38 { amp = true; try checkEntity(at: i) }
                    i += 1
                }
                if stack.isEmpty {
                    // Outside the root only white space is allowed.
                    for k in start..<i where !XMLScanner.isSpace(b[k]) { throw fail("text outside the root element", at: k) }
                    continue
                }
                return .text(start..<i, needsDecoding: amp)
            }
            // '<'
            if starts("<?", at: i) {
                guard let e = find("?>", from: i + 2) else { throw fail("unterminated processing instruction") }
                i = e + 2
                continue
            }
            if starts("<!--", at: i) {
                guard let e = find("-->", from: i + 4) else { throw fail("unterminated comment") }
                i = e + 3
                continue
            }
            if starts("<![CDATA[", at: i) {
                guard !stack.isEmpty else { throw fail("CDATA outside the root element") }
                guard let e = find("]]>", from: i + 9) else { throw fail("unterminated CDATA section") }
                let r = (i + 9)..<e
                i = e + 3
                return .text(r, needsDecoding: false)
            }
            if starts("<!DOCTYPE", at: i) {
                guard stack.isEmpty, !sawRoot else { throw fail("misplaced DOCTYPE") }
                var k = i + 9
                while k < b.count && b[k] != 62 {
                    if b[k] == 91 { throw fail("DOCTYPE internal subsets are not supported") }
                    k += 1
                }
                guard k < b.count else { throw fail("unterminated DOCTYPE") }
                i = k + 1
                continue
            }
            if i + 1 < b.count && b[i + 1] == 47 { // "</"
                var k = i + 2
                let ns = k
                while k < b.count && XMLScanner.isNameByte(b[k]) { k += 1 }
                let name = ns..<k
                while k < b.count && XMLScanner.isSpace(b[k]) { k += 1 }
                guard k < b.count, b[k] == 62 else { throw fail("malformed end tag") }
                guard let open = stack.popLast() else { throw fail("end tag without a start tag") }
                guard open.count == name.count, memcmp(b.baseAddress! + open.lowerBound, b.baseAddress! + name.lowerBound, name.count) == 0 else {
                    throw fail("end tag </\(String(decoding: b[name], as: UTF8.self))> does not match <\(String(decoding: b[open], as: UTF8.self))>")
                }
                i = k + 1
                return .end(name: name)
            }
            // Start tag.
            var k = i + 1
            let ns = k
            while k < b.count && XMLScanner.isNameByte(b[k]) { k += 1 }
            guard k > ns else { throw fail("malformed tag") }
            let name = ns..<k
            guard !(stack.isEmpty && sawRoot) else { throw fail("a second root element") }
            attributes.removeAll(keepingCapacity: true)
            while true {
                let spaceStart = k
                while k < b.count && XMLScanner.isSpace(b[k]) { k += 1 }
                guard k < b.count else { throw fail("unterminated start tag") }
                if b[k] == 62 { // >
                    i = k + 1
                    stack.append(name)
                    sawRoot = true
                    return .start(name: name, selfClosing: false)
                }
                if b[k] == 47 { // />
                    guard k + 1 < b.count, b[k + 1] == 62 else { throw fail("malformed empty-element tag") }
                    i = k + 2
                    sawRoot = true
                    if stack.isEmpty { stack.append(name); pendingEnd = name; stack.removeLast() } else { pendingEnd = name }
                    return .start(name: name, selfClosing: true)
                }
                guard k > spaceStart else { throw fail("attributes must be separated by white space") }
                let an = k
                while k < b.count && XMLScanner.isNameByte(b[k]) { k += 1 }
                guard k > an else { throw fail("malformed attribute") }
                let attrName = an..<k
                while k < b.count && XMLScanner.isSpace(b[k]) { k += 1 }
                guard k < b.count, b[k] == 61 else { throw fail("attribute without '='") }
                k += 1
                while k < b.count && XMLScanner.isSpace(b[k]) { k += 1 }
                guard k < b.count, b[k] == 34 || b[k] == 39 else { throw fail("unquoted attribute value") }
                let quote = b[k]
                k += 1
                let vs = k
                var amp = false
                while k < b.count && b[k] != quote {
                    if b[k] == 60 { throw fail("'<' in an attribute value") }
                    if b[k] == 38 { amp = true; try checkEntity(at: k) }
                    k += 1
                }
                guard k < b.count else { throw fail("unterminated attribute value") }
                attributes.append(Attribute(name: attrName, value: vs..<k, needsDecoding: amp))
                k += 1
            }
        }
        guard stack.isEmpty else { throw fail("the document ends inside <\(String(decoding: b[stack.last!], as: UTF8.self))> (truncated?)") }
        guard sawRoot else { throw fail("no root element") }
        return nil
    }

    /// Well-formedness of a reference at `k` ('&'): a predefined entity or a character reference.
    private func checkEntity(at k: Int) throws {
        var e = k + 1
        while e < b.count && b[e] != 59 && e - k < 12 { e += 1 }
        guard e < b.count, b[e] == 59, e > k + 1 else { throw fail("unterminated entity reference", at: k) }
        let ent = (k + 1)..<e
        if equals(ent, "amp") || equals(ent, "lt") || equals(ent, "gt") || equals(ent, "quot") || equals(ent, "apos") { return }
        guard b[ent.lowerBound] == 35 else { throw fail("unknown entity '&\(String(decoding: b[ent], as: UTF8.self));'", at: k) }
    }

    /// The attribute's raw value range (no decoding), nil when absent.
    func attributeRange(_ name: StaticString) -> Attribute? {
        for a in attributes where equals(a.name, name) { return a }
        return nil
    }

    /// A decimal attribute read straight from the bytes (nil when absent or not a plain number).
    func intAttribute(_ name: StaticString) -> Int? {
        guard let a = attributeRange(name), !a.value.isEmpty, a.value.count <= 18 else { return nil }
        var v = 0
        for k in a.value {
            let c = b[k]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int(c - 48)
        }
        return v
    }

    /// The attribute's value, decoded; nil when absent.
    func attribute(_ name: StaticString) throws -> String? {
        for a in attributes where equals(a.name, name) { return try string(a.value, decode: a.needsDecoding) }
        return nil
    }

    /// Bytes as a String, with entities decoded when asked.
    func string(_ r: Range<Int>, decode: Bool) throws -> String {
        guard decode else { return String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }
        var out = [UInt8]()
        out.reserveCapacity(r.count)
        var k = r.lowerBound
        while k < r.upperBound {
            let c = b[k]
            guard c == 38 else { out.append(c); k += 1; continue }
            var e = k + 1
            while e < r.upperBound && b[e] != 59 && e - k < 12 { e += 1 }
            guard e < r.upperBound, b[e] == 59 else { throw fail("unterminated entity reference", at: k) }
            let ent = (k + 1)..<e
            if equals(ent, "amp") {
                out.append(38)
            } else if equals(ent, "lt") {
                out.append(60)
            } else if equals(ent, "gt") {
                out.append(62)
            } else if equals(ent, "quot") {
                out.append(34)
            } else if equals(ent, "apos") {
                out.append(39)
            } else if b[ent.lowerBound] == 35 { // &#N; or &#xN;
                let hexForm = ent.count > 1 && (b[ent.lowerBound + 1] == 120 || b[ent.lowerBound + 1] == 88)
                let digits = String(decoding: b[(ent.lowerBound + (hexForm ? 2 : 1))..<ent.upperBound], as: UTF8.self)
                guard let v = UInt32(digits, radix: hexForm ? 16 : 10), let scalar = Unicode.Scalar(v) else {
                    throw fail("bad character reference", at: k)
                }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            } else {
                throw fail("unknown entity '&\(String(decoding: b[ent], as: UTF8.self));'", at: k)
            }
            k = e + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Primary {
    /// Parses primary.xml with `XMLScanner` (see there for why not XMLParser).
    static func scan(_ data: Data, name: String) throws -> [RepoPackage] {
        try data.withUnsafeBytes { raw -> [RepoPackage] in
            let bytes = raw.bindMemory(to: UInt8.self)
            var s = XMLScanner(bytes)
            do { return try scanPackages(&s, name: name) } catch let f as XMLScanner.Failure {
                throw RepositoryError.metadata(file: name, reason: "\(f.message) (line \(s.line(of: f.offset)))")
            }
        }
    }

    private static func scanPackages(_ s: inout XMLScanner, name file: String) throws -> [RepoPackage] {
        var packages: [RepoPackage] = []
        var inPackage = false, sawRoot = false
        var name = "", arch = "", location = "", evr = EVR(version: "")
        var checksum: (String, String)?
        var checksumType = ""
        var packageSize = 0, installedSize = 0
        var provides: [RepoDependency] = [], requires: [RepoDependency] = []
        var conflicts: [RepoDependency] = [], obsoletes: [RepoDependency] = []
        var files: [String] = []
        // 0 none, 1 provides, 2 requires, 3 conflicts, 4 obsoletes, 5 other (weak deps)
        var list = 0
        // Which text we are capturing: 0 none, 1 name, 2 arch, 3 checksum, 4 file
        var capture = 0
        var text = ""
        var depth = 0
        var packageDepth = -1

        func fail(_ message: String) -> RepositoryError { RepositoryError.metadata(file: file, reason: message) }

        while let event = try s.next() {
            switch event {
            case .start(let el, let selfClosing):
                depth += 1
                if depth == 1 {
                    guard s.equals(el, "metadata") else { throw fail("the root element is not <metadata>") }
                    sawRoot = true
                } else if s.equals(el, "rpm:entry") {
                    if list >= 1 && list <= 4, let n = try s.attribute("name") {
                        var dep = RepoDependency(name: n)
                        if let ver = try s.attribute("ver") {
                            dep.evr = EVR(epoch: s.intAttribute("epoch") ?? 0, version: ver, release: try s.attribute("rel") ?? "")
                        }
                        if let f = s.attributeRange("flags") {
                            if s.equals(f.value, "EQ") {
                                dep.flags = Dependency.equal
                            } else if s.equals(f.value, "GE") {
                                dep.flags = Dependency.greater | Dependency.equal
                            } else if s.equals(f.value, "LE") {
                                dep.flags = Dependency.less | Dependency.equal
                            } else if s.equals(f.value, "LT") {
                                dep.flags = Dependency.less
                            } else if s.equals(f.value, "GT") {
                                dep.flags = Dependency.greater
                            }
                        }
                        if let p = s.attributeRange("pre") { dep.pre = s.equals(p.value, "1") }
                        switch list {
                        case 1: provides.append(dep)
                        case 2: requires.append(dep)
                        case 3: conflicts.append(dep)
                        default: obsoletes.append(dep)
                        }
                    }
                } else if s.equals(el, "package") && depth == 2 {
                    inPackage = true
                    packageDepth = depth
                    name = ""; arch = ""; location = ""; checksum = nil; packageSize = 0; installedSize = 0
                    evr = EVR(version: "")
                    provides = []; requires = []; conflicts = []; obsoletes = []; files = []
                } else if inPackage {
                    if s.equals(el, "file") {
                        capture = 4; text = ""
                    } else if depth == packageDepth + 1 && s.equals(el, "name") {
                        capture = 1; text = ""
                    } else if depth == packageDepth + 1 && s.equals(el, "arch") {
                        capture = 2; text = ""
                    } else if depth == packageDepth + 1 && s.equals(el, "checksum") {
                        capture = 3; text = ""; checksumType = try s.attribute("type") ?? ""
                    } else if s.equals(el, "version") && depth == packageDepth + 1 {
                        evr = EVR(
                            epoch: Int(try s.attribute("epoch") ?? "0") ?? 0, version: try s.attribute("ver") ?? "", release: try s.attribute("rel") ?? "")
                    } else if s.equals(el, "size") && depth == packageDepth + 1 {
                        packageSize = Int(try s.attribute("package") ?? "") ?? 0
                        installedSize = Int(try s.attribute("installed") ?? "") ?? 0
                    } else if s.equals(el, "location") && depth == packageDepth + 1 {
                        location = try s.attribute("href") ?? ""
                    } else if s.equals(el, "rpm:provides") {
                        list = 1
                    } else if s.equals(el, "rpm:requires") {
                        list = 2
                    } else if s.equals(el, "rpm:conflicts") {
                        list = 3
                    } else if s.equals(el, "rpm:obsoletes") {
                        list = 4
                    } else if s.equals(el, "rpm:suggests") || s.equals(el, "rpm:recommends") || s.equals(el, "rpm:enhances") || s.equals(el, "rpm:supplements")
                    {
                        list = 5
                    }
                }
                _ = selfClosing
            case .text(let r, let decode):
                if capture != 0 { text += try s.string(r, decode: decode) }
            case .end(let el):
                defer { depth -= 1 }
                if capture != 0 {
                    switch capture {
                    case 1: name = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    case 2: arch = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    case 3: checksum = (checksumType, text.trimmingCharacters(in: .whitespacesAndNewlines))
                    default: files.append(text)
                    }
                    capture = 0
                    continue
                }
                if inPackage && depth == packageDepth && s.equals(el, "package") {
                    inPackage = false
                    guard !name.isEmpty, !arch.isEmpty, !evr.version.isEmpty else {
                        throw fail("package #\(packages.count + 1) lacks name, arch or version")
                    }
                    guard !location.isEmpty, !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
                        throw fail("package '\(name)' has no or an unsafe location '\(location)'")
                    }
                    guard let (ct, cv) = checksum else { throw fail("package '\(name)' has no checksum") }
                    let sum: Checksum
                    do { sum = try Checksum(metadataType: ct, value: cv) } catch { throw fail("package '\(name)': \(error)") }
                    packages.append(
                        RepoPackage(
                            name: name, arch: arch, evr: evr, checksum: sum, packageSize: packageSize,
                            installedSize: installedSize, location: location, provides: provides,
                            requires: requires, conflicts: conflicts, obsoletes: obsoletes, files: files))
                } else if list != 0
                    && (s.equals(el, "rpm:provides") || s.equals(el, "rpm:requires") || s.equals(el, "rpm:conflicts")
                        || s.equals(el, "rpm:obsoletes") || s.equals(el, "rpm:suggests") || s.equals(el, "rpm:recommends")
                        || s.equals(el, "rpm:enhances") || s.equals(el, "rpm:supplements"))
                {
                    list = 0
                }
            }
        }
        guard sawRoot else { throw fail("no <metadata> element") }
        return packages
    }
}
