/// Package URLs (purl) for rpm packages, the form scanners (grype, trivy) match
/// against vulnerability data: `pkg:rpm/centos/NAME@VERSION-RELEASE?arch=ARCH&distro=centos-6.9`.
public enum Purl {
    /// The purl of an rpm package of a CentOS release. The epoch is a qualifier when
    /// the package has one other than 0 (rpm treats none and 0 alike); qualifiers are
    /// in the purl spec's sorted order (arch, distro, epoch).
    public static func rpm(_ package: SBOMPackage, release: String) -> String {
        var qualifiers = ["arch=\(encode(package.arch))", "distro=centos-\(encode(release))"]
        if let epoch = package.epoch, epoch != 0 { qualifiers.append("epoch=\(epoch)") }
        return "pkg:rpm/centos/\(encode(package.name))@\(encode(package.version + "-" + package.release))?" + qualifiers.joined(separator: "&")
    }

    /// Percent-encodes all but the unreserved characters: `libstdc++` is `libstdc%2B%2B`
    /// (a raw `+` would read as a space to some parsers).
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80, c.isLetter || c.isNumber || "-._~".contains(c) {
                out.append(c)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
