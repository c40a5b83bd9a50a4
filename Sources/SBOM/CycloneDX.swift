/// `IMAGE.cdx.json`: CycloneDX 1.5 (JSON). The image is `metadata.component`
/// (an operating system) and depends on every package of its rpm database; a
/// package built here (kmod-ena) names its upstream source under `pedigree.ancestors`
/// with the source archive's sha256.
public enum CycloneDX {
    struct BOM: Encodable {
        var schema = "http://cyclonedx.org/schema/bom-1.5.schema.json"
        var bomFormat = "CycloneDX"
        var specVersion = "1.5"
        var serialNumber: String
        var version = 1
        var metadata: Metadata
        var components: [Component]
        var dependencies: [Dependency]
        enum CodingKeys: String, CodingKey {
            case schema = "$schema", bomFormat, specVersion, serialNumber, version, metadata, components, dependencies
        }
    }
    struct Metadata: Encodable {
        var timestamp: String
        var tools: Tools
        var component: Component
        var properties: [Property]
    }
    struct Tools: Encodable { var components: [Component] }
    struct Supplier: Encodable { var name: String }
    struct Hash: Encodable {
        var alg: String
        var content: String
    }
    struct License: Encodable {
        var id: String?
        var name: String?
    }
    struct LicenseChoice: Encodable {
        var license: License?
        var expression: String?
    }
    struct Property: Encodable {
        var name: String
        var value: String
    }
    struct ExternalReference: Encodable {
        var type: String
        var url: String
    }
    struct Pedigree: Encodable { var ancestors: [Component] }
    struct Component: Encodable {
        var type: String
        var bomRef: String?
        var supplier: Supplier?
        var name: String
        var version: String?
        var description: String?
        var hashes: [Hash]?
        var licenses: [LicenseChoice]?
        var purl: String?
        var externalReferences: [ExternalReference]?
        var pedigree: Pedigree?
        var properties: [Property]?
        enum CodingKeys: String, CodingKey {
            case type, bomRef = "bom-ref", supplier, name, version, description, hashes, licenses, purl, externalReferences, pedigree, properties
        }
    }
    struct Dependency: Encodable {
        var ref: String
        var dependsOn: [String]
    }

    static let imageRef = "image"

    /// The document for `input` (pure: the serial and the time are the caller's).
    public static func render(_ input: SBOMInput) -> String {
        var refs = Set([imageRef])
        var components: [Component] = []
        for package in input.sortedPackages {
            let purl = Purl.rpm(package, release: input.release)
            var ref = purl, n = 2
            while refs.contains(ref) { ref = "\(purl)#\(n)"; n += 1 }
            refs.insert(ref)
            var properties = [Property(name: "centos6-ami:rpm:nevra", value: package.nevra)]
            if let license = package.license { properties.append(Property(name: "centos6-ami:rpm:license", value: license)) }
            if let sha1 = package.headerSHA1 { properties.append(Property(name: "centos6-ami:rpm:header-sha1", value: sha1)) }
            components.append(
                Component(
                    type: package.builtHere != nil ? "device-driver" : "library", bomRef: ref,
                    supplier: supplierName(package).map { Supplier(name: $0) }, name: package.name, version: package.evr,
                    hashes: package.fileSHA256.map { [Hash(alg: "SHA-256", content: $0)] },
                    licenses: licenses(package.license), purl: purl,
                    pedigree: package.builtHere.map { source in
                        Pedigree(ancestors: [
                            Component(
                                type: "file", name: source.name, version: source.version,
                                description: source.archiveSHA256 == nil
                                    ? "built from a source tree, not an archive: every source file matched the sha256 list pinned in the tool's versions.json"
                                    : "the source archive the package was built from on the builder by centos6-ami",
                                hashes: source.archiveSHA256.map { [Hash(alg: "SHA-256", content: $0)] },
                                externalReferences: [ExternalReference(type: "distribution", url: source.url)])
                        ])
                    },
                    properties: properties))
        }
        let image = Component(
            type: "operating-system", bomRef: imageRef, name: input.imageName, version: input.release,
            description: SPDX.imageDescription(input))
        let bom = BOM(
            serialNumber: "urn:uuid:" + input.serial.uuidString.lowercased(),
            metadata: Metadata(
                timestamp: input.createdText,
                tools: Tools(components: [Component(type: "application", name: "centos6-ami", version: input.toolVersion)]),
                component: image,
                properties: [Property(name: "centos6-ami:checksums", value: checksumNote)]),
            components: components,
            dependencies: [Dependency(ref: imageRef, dependsOn: components.compactMap(\.bomRef))])
        return encodeJSON(bom)
    }

    static let checksumNote = """
        Every package of the image's own rpm database. A component's SHA-256 hash is that of its package file \
        (.rpm) as verified at download; 'inspect' gives none (an image holds no package files). \
        centos6-ami:rpm:header-sha1 is the rpm header's SHA-1 (SHA1HEADER), which covers the header only.
        """

    /// One SPDX id as `license.id`; a single name with no id as `license.name` (the header's
    /// words); anything else as an SPDX `expression`.
    static func licenses(_ license: String?) -> [LicenseChoice]? {
        guard let mapped = Licenses.map(license) else { return nil }
        if let id = mapped.singleID { return [LicenseChoice(license: License(id: id))] }
        if mapped.references.count == 1, mapped.references[mapped.expression] != nil {
            return [LicenseChoice(license: License(name: mapped.references[mapped.expression]!))]
        }
        return [LicenseChoice(expression: mapped.expression)]
    }
}
