import Foundation

/// `IMAGE.spdx.json`: SPDX 2.3 (JSON). The image is the described root package; it
/// CONTAINS every package of its rpm database; a package built here (kmod-ena) is
/// GENERATED_FROM its upstream source, which carries the source archive's sha256.
public enum SPDX {
    struct Document: Encodable {
        var spdxVersion = "SPDX-2.3"
        var dataLicense = "CC0-1.0"
        var SPDXID = "SPDXRef-DOCUMENT"
        var name: String
        var documentNamespace: String
        var creationInfo: CreationInfo
        var packages: [Package]
        var relationships: [Relationship]
        var hasExtractedLicensingInfos: [ExtractedLicense]?
    }
    struct CreationInfo: Encodable {
        var created: String
        var creators: [String]
        var comment: String
    }
    struct Checksum: Encodable {
        var algorithm: String
        var checksumValue: String
    }
    struct ExternalRef: Encodable {
        var referenceCategory: String
        var referenceType: String
        var referenceLocator: String
    }
    struct Package: Encodable {
        var SPDXID: String
        var name: String
        var versionInfo: String
        var supplier: String?
        var downloadLocation: String
        var filesAnalyzed = false
        var checksums: [Checksum]?
        var licenseConcluded = "NOASSERTION"
        var licenseDeclared: String
        var copyrightText = "NOASSERTION"
        var externalRefs: [ExternalRef]?
        var primaryPackagePurpose: String?
        var description: String?
        var comment: String?
    }
    struct Relationship: Encodable {
        var spdxElementId: String
        var relationshipType: String
        var relatedSpdxElement: String
    }
    struct ExtractedLicense: Encodable {
        var licenseId: String
        var name: String
        var extractedText: String
        var comment = "the license as the rpm header names it (RPMTAG_LICENSE); it is not an SPDX license id"
    }

    static let imageID = "SPDXRef-Image"

    /// The document for `input` (pure: the serial and the time are the caller's).
    public static func render(_ input: SBOMInput) -> String {
        var packages: [Package] = [
            Package(
                SPDXID: imageID, name: input.imageName, versionInfo: input.release, supplier: nil, downloadLocation: "NOASSERTION",
                licenseDeclared: "NOASSERTION", primaryPackagePurpose: "OPERATING-SYSTEM",
                description: imageDescription(input))
        ]
        var relationships = [Relationship(spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: imageID)]
        var extracted: [String: String] = [:]
        var ids = Set<String>()
        for package in input.sortedPackages {
            let id = uniqueID("SPDXRef-Package-rpm-" + idText(package.nevra), &ids)
            let license = Licenses.map(package.license)
            for (ref, text) in license?.references ?? [:] {
                // Two names that become one id (rare): the reference stands for both texts.
                extracted[ref] = extracted[ref].map { $0 == text || $0.contains(" | \(text)") || $0.hasPrefix("\(text) | ") ? $0 : "\($0) | \(text)" } ?? text
            }
            packages.append(
                Package(
                    SPDXID: id, name: package.name, versionInfo: package.evr,
                    supplier: supplierName(package).map { "Organization: \($0)" } ?? "NOASSERTION",
                    downloadLocation: "NOASSERTION",
                    checksums: package.fileSHA256.map { [Checksum(algorithm: "SHA256", checksumValue: $0)] },
                    licenseDeclared: license?.expression ?? "NOASSERTION",
                    externalRefs: [
                        ExternalRef(referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: Purl.rpm(package, release: input.release))
                    ],
                    description: nil, comment: packageComment(package)))
            relationships.append(Relationship(spdxElementId: imageID, relationshipType: "CONTAINS", relatedSpdxElement: id))
            if let source = package.builtHere {
                let sourceID = uniqueID("SPDXRef-Source-" + idText(package.name), &ids)
                packages.append(
                    Package(
                        SPDXID: sourceID, name: source.name, versionInfo: source.version, supplier: nil, downloadLocation: source.url,
                        checksums: source.archiveSHA256.map { [Checksum(algorithm: "SHA256", checksumValue: $0)] },
                        licenseDeclared: "NOASSERTION", primaryPackagePurpose: "SOURCE",
                        comment: source.archiveSHA256 == nil
                            ? "built from a source tree, not an archive: every source file matched the sha256 list pinned in the tool's versions.json"
                            : "the checksum is the sha256 of the source archive the package was built from"))
                relationships.append(Relationship(spdxElementId: id, relationshipType: "GENERATED_FROM", relatedSpdxElement: sourceID))
            }
        }
        let document = Document(
            name: "\(input.imageName) (CentOS \(input.release))",
            documentNamespace: "https://centos6-ami.invalid/spdx/\(Purl.encode(input.imageName))-\(input.serial.uuidString.lowercased())",
            creationInfo: CreationInfo(created: input.createdText, creators: ["Tool: centos6-ami-\(input.toolVersion)"], comment: creationComment),
            packages: packages, relationships: relationships,
            hasExtractedLicensingInfos: extracted.isEmpty
                ? nil
                : extracted.keys.sorted().map {
                    ExtractedLicense(licenseId: $0, name: extracted[$0]!, extractedText: extracted[$0]!)
                })
        return encodeJSON(document)
    }

    /// How many rpm packages an SPDX document of ours lists (those with a purl: not the image
    /// itself, not a source package); nil when `data` is not such a document.
    public static func packageCount(_ data: Data) -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            object["spdxVersion"] as? String == "SPDX-2.3", let packages = object["packages"] as? [[String: Any]]
        else { return nil }
        return packages.filter { package in
            ((package["externalRefs"] as? [[String: Any]]) ?? []).contains { $0["referenceType"] as? String == "purl" }
        }.count
    }

    static let creationComment = """
        Every package of the image's own rpm database (not the build plan). A package's SHA256 checksum is \
        that of its package file (.rpm) as verified at download; an SBOM written by 'inspect' has none (an \
        image holds no package files). Each package's comment gives its rpm header's SHA-1 (SHA1HEADER), \
        which covers the header only.
        """

    static func imageDescription(_ input: SBOMInput) -> String {
        "CentOS \(input.release) x86_64 image built by centos6-ami" + (input.kernel.map { ", kernel \($0)" } ?? "")
    }

    static func packageComment(_ package: SBOMPackage) -> String? {
        var parts: [String] = []
        if let sha1 = package.headerSHA1 { parts.append("rpm header SHA-1 (SHA1HEADER; the header only, not the package file): \(sha1)") }
        if package.builtHere != nil { parts.append("built on the builder by centos6-ami from the source it is GENERATED_FROM") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// SPDX ids allow letters, digits, `.` and `-` only (`+` becomes `plus`).
    static func idText(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let c = Character(scalar)
            if scalar.isASCII, c.isLetter || c.isNumber || c == "." || c == "-" { out.append(c) } else if c == "+" { out += "plus" } else { out += "-" }
        }
        return out
    }

    static func uniqueID(_ base: String, _ taken: inout Set<String>) -> String {
        var id = base, n = 2
        while taken.contains(id) { id = "\(base)-\(n)"; n += 1 }
        taken.insert(id)
        return id
    }
}
