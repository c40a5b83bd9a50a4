import Foundation

/// One package of an image's rpm database with what an SBOM says about it.
/// Every field but `fileSHA256` and `builtHere` comes from the package's rpm header
/// as the database holds it, so `install` and `inspect` describe a package alike.
public struct SBOMPackage: Equatable, Sendable {
    public var name: String
    /// nil when the header has no epoch (rpm prints `(none)`).
    public var epoch: Int?
    public var version: String
    public var release: String
    public var arch: String
    /// RPMTAG_LICENSE as the packager wrote it (`GPLv2+`): EL6 names, not SPDX ids.
    public var license: String?
    /// RPMTAG_VENDOR (`CentOS` on every CentOS package).
    public var vendor: String?
    /// RPMTAG_SHA1HEADER: SHA-1 of the header alone (the signed part rpm keeps in
    /// its database), not of the package file. Kept in every SBOM under that name.
    public var headerSHA1: String?
    /// sha256 of the package file (.rpm) as verified at download; only `install`
    /// knows it (an image holds no package files).
    public var fileSHA256: String?
    /// Set for the package this tool built on the builder (kmod-ena).
    public var builtHere: BuiltSource?

    public init(
        name: String, epoch: Int? = nil, version: String, release: String, arch: String, license: String? = nil,
        vendor: String? = nil, headerSHA1: String? = nil, fileSHA256: String? = nil, builtHere: BuiltSource? = nil
    ) {
        self.name = name
        self.epoch = epoch
        self.version = version
        self.release = release
        self.arch = arch
        self.license = license
        self.vendor = vendor
        self.headerSHA1 = headerSHA1
        self.fileSHA256 = fileSHA256
        self.builtHere = builtHere
    }

    /// `[epoch:]version-release`: rpm's EVR; an epoch of 0 is left out, as yum and the manifest do.
    public var evr: String { "\(epoch.map { $0 != 0 ? "\($0):" : "" } ?? "")\(version)-\(release)" }
    /// name-[epoch:]version-release.arch, as the manifest writes it.
    public var nevra: String { "\(name)-\(evr).\(arch)" }
}

/// Where a package built on the builder came from: the upstream source it was compiled from.
public struct BuiltSource: Equatable, Sendable {
    /// `amzn-drivers ena_linux`.
    public var name: String
    public var version: String
    /// Where the source is published (the pinned URL of versions.json).
    public var url: String
    /// sha256 of the source archive (.tar.gz) used; nil when the source was a tree
    /// (`--ena-source DIR`), which has no archive: then every file matched the pin.
    public var archiveSHA256: String?

    public init(name: String, version: String, url: String, archiveSHA256: String?) {
        self.name = name
        self.version = version
        self.url = url
        self.archiveSHA256 = archiveSHA256
    }
}

/// What an SBOM describes: one image (the root) and the packages of its rpm database.
public struct SBOMInput: Equatable, Sendable {
    /// The image's name in the SBOM (the image file's name without `.img`, or the log's for a device).
    public var imageName: String
    /// The CentOS release (`6.9`): the image's version and the purls' `distro=centos-6.9`.
    public var release: String
    /// The default kernel (`2.6.32-696.el6`), when known.
    public var kernel: String?
    public var toolVersion: String
    public var created: Date
    /// A fresh UUID per document (the caller's, so rendering stays pure): SPDX's
    /// documentNamespace and CycloneDX's serialNumber.
    public var serial: UUID
    public var packages: [SBOMPackage]

    public init(imageName: String, release: String, kernel: String?, toolVersion: String, created: Date, serial: UUID, packages: [SBOMPackage]) {
        self.imageName = imageName
        self.release = release
        self.kernel = kernel
        self.toolVersion = toolVersion
        self.created = created
        self.serial = serial
        self.packages = packages
    }

    /// The packages in a stable order (name, then NEVRA): both formats list them so.
    public var sortedPackages: [SBOMPackage] { packages.sorted { ($0.name, $0.nevra) < ($1.name, $1.nevra) } }

    /// ISO 8601 UTC to the second, as both formats want it.
    public var createdText: String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: created)
    }
}

/// The two formats, by the name `inspect --sbom` takes.
public enum SBOMFormat: String, CaseIterable, Sendable {
    case spdx
    case cyclonedx

    /// `IMAGE.spdx.json`, `IMAGE.cdx.json`.
    public var fileSuffix: String { self == .spdx ? ".spdx.json" : ".cdx.json" }

    public func render(_ input: SBOMInput) -> String {
        switch self {
        case .spdx: return SPDX.render(input)
        case .cyclonedx: return CycloneDX.render(input)
        }
    }
}

/// The name of the supplier an SBOM gives a package: the header's vendor (`CentOS` for
/// every CentOS package), else nil (the document says NOASSERTION rather than guess:
/// a package without a vendor in a CentOS image may come from anywhere).
func supplierName(_ package: SBOMPackage) -> String? {
    if let vendor = package.vendor?.trimmingCharacters(in: .whitespaces), !vendor.isEmpty {
        // SPDX reads `Organization: NAME (EMAIL)`: parentheses in a vendor would become an email.
        return vendor.replacingOccurrences(of: "(", with: "").replacingOccurrences(of: ")", with: "")
    }
    return package.builtHere != nil ? "centos6-ami" : nil
}

/// JSON as both renderers write it: sorted keys (stable goldens), no escaped slashes, final newline.
func encodeJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try! encoder.encode(value), as: UTF8.self) + "\n"
}
