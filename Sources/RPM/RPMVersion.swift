import Foundation

/// rpm's version comparison (rpmvercmp from rpm's lib/rpmvercmp.c, including
/// the `~` pre-release and `^` post-release separators of rpm >= 4.10/4.15),
/// ported segment for segment: alternating runs of digits and letters,
/// everything else separates; numbers compare numerically (leading zeros
/// dropped, longer wins), letters with strcmp, a number beats letters, and
/// whichever has segments left wins.
public func rpmvercmp(_ a: String, _ b: String) -> Int {
    if a == b { return 0 }
    let one = Array(a.utf8), two = Array(b.utf8)
    var i = 0, j = 0
    func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || isAlpha(c) }
    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    func isAlpha(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
    let tilde = UInt8(ascii: "~"), caret = UInt8(ascii: "^")
    while i < one.count || j < two.count {
        while i < one.count, !isAlnum(one[i]), one[i] != tilde, one[i] != caret { i += 1 }
        while j < two.count, !isAlnum(two[j]), two[j] != tilde, two[j] != caret { j += 1 }
        let c1: UInt8? = i < one.count ? one[i] : nil
        let c2: UInt8? = j < two.count ? two[j] : nil
        // A tilde sorts before everything, even the end of the string.
        if c1 == tilde || c2 == tilde {
            if c1 != tilde { return 1 }
            if c2 != tilde { return -1 }
            i += 1; j += 1
            continue
        }
        // A caret sorts after the end of the string but before anything else.
        if c1 == caret || c2 == caret {
            if c1 == nil { return -1 }
            if c2 == nil { return 1 }
            if c1 != caret { return 1 }
            if c2 != caret { return -1 }
            i += 1; j += 1
            continue
        }
        guard let first = c1, c2 != nil else { break }
        var e1 = i, e2 = j
        let isNum = isDigit(first)
        if isNum {
            while e1 < one.count, isDigit(one[e1]) { e1 += 1 }
            while e2 < two.count, isDigit(two[e2]) { e2 += 1 }
        } else {
            while e1 < one.count, isAlpha(one[e1]) { e1 += 1 }
            while e2 < two.count, isAlpha(two[e2]) { e2 += 1 }
        }
        if e1 == i { return -1 } // cannot happen
        // Segments of different types: the numeric one is newer.
        if e2 == j { return isNum ? 1 : -1 }
        var s1 = i, s2 = j
        if isNum {
            while s1 < e1, one[s1] == 48 { s1 += 1 }
            while s2 < e2, two[s2] == 48 { s2 += 1 }
            if e1 - s1 > e2 - s2 { return 1 }
            if e2 - s2 > e1 - s1 { return -1 }
        }
        let seg1 = one[s1..<e1], seg2 = two[s2..<e2]
        if !seg1.elementsEqual(seg2) {
            return seg1.lexicographicallyPrecedes(seg2) ? -1 : 1
        }
        i = e1; j = e2
    }
    let left1 = i < one.count, left2 = j < two.count
    if !left1 && !left2 { return 0 }
    return left1 ? 1 : -1
}

/// Epoch, version, release; ordered like rpm orders packages.
public struct EVR: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var epoch: Int
    public var version: String
    /// Empty when not given (a requirement "foo >= 1.2" has no release).
    public var release: String
    public init(epoch: Int = 0, version: String, release: String = "") {
        self.epoch = epoch; self.version = version; self.release = release
    }

    /// Parses "[epoch:]version[-release]" (the form of requires/provides versions).
    public init(parsing s: String) {
        var rest = Substring(s)
        epoch = 0
        if let colon = rest.firstIndex(of: ":"), let e = Int(rest[..<colon]) {
            epoch = e
            rest = rest[rest.index(after: colon)...]
        }
        if let dash = rest.lastIndex(of: "-") {
            version = String(rest[..<dash])
            release = String(rest[rest.index(after: dash)...])
        } else {
            version = String(rest)
            release = ""
        }
    }

    /// rpm's full comparison; an empty release on either side is ignored (as rpmdsCompare does).
    public static func compare(_ a: EVR, _ b: EVR) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let v = rpmvercmp(a.version, b.version)
        if v != 0 { return v }
        if a.release.isEmpty || b.release.isEmpty { return 0 }
        return rpmvercmp(a.release, b.release)
    }

    public static func < (a: EVR, b: EVR) -> Bool { compare(a, b) < 0 }

    public var description: String {
        (epoch != 0 ? "\(epoch):" : "") + version + (release.isEmpty ? "" : "-\(release)")
    }
}

/// Does a provide (name already matched) satisfy a requirement's version range?
/// rpm's rule: an unversioned side matches anything; otherwise the ranges must overlap.
public func rangesOverlap(provideFlags: Int, provideEVR: EVR?, requireFlags: Int, requireEVR: EVR?) -> Bool {
    let senseMask = Dependency.less | Dependency.greater | Dependency.equal
    let pf = provideFlags & senseMask, rf = requireFlags & senseMask
    guard let p = provideEVR, let r = requireEVR, pf != 0, rf != 0 else { return true }
    let c = EVR.compare(p, r)
    if c < 0 {
        // provide < require: overlap if provide allows greater, or require allows less.
        return pf & Dependency.greater != 0 || rf & Dependency.less != 0
    } else if c > 0 {
        return pf & Dependency.less != 0 || rf & Dependency.greater != 0
    } else {
        // equal: overlap if both include equality, or both point the same way.
        return (pf & Dependency.equal != 0 && rf & Dependency.equal != 0)
            || (pf & Dependency.less != 0 && rf & Dependency.less != 0)
            || (pf & Dependency.greater != 0 && rf & Dependency.greater != 0)
    }
}
