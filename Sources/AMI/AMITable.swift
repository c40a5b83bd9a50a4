import Foundation
import Versions

/// One AMI in a table: where it lives and whether it carries the ENA driver.
public struct AMIEntry: Codable, Equatable, Sendable {
    public var release: String
    public var region: String
    /// `plain` or `ena`.
    public var variant: String
    public var id: String
    /// Packages in the build's manifest (`table --from FILE --packages`); nil when unknown.
    public var packages: Int?
    /// `xen,nitro` when the image was checked to boot on Nitro (results files only; nil otherwise).
    public var bootsOn: String?
    public init(release: String, region: String, variant: String, id: String, packages: Int? = nil, bootsOn: String? = nil) {
        self.release = release
        self.region = region
        self.variant = variant
        self.id = id
        self.packages = packages
        self.bootsOn = bootsOn
    }

    /// Checked in the image to boot on Nitro (NVMe root and ENA).
    public var nitro: Bool { bootsOn?.split(separator: ",").contains("nitro") == true }
}

/// The README-style AMI table (the seed README's exact markdown form).
public enum AMITable {
    public static let footnote = "*1 ... ENA driver (ENA Linux 2.9.1) installed; it must be rebuilt when the kernel changes."
    /// For ids whose image was checked to boot on Nitro (results files of `register` on a local device).
    public static let nitroFootnote =
        "*2 ... boots on Nitro instance types too (NVMe root volume and ENA driver checked in the image); the others boot on Xen-based types only."

    /// Entries of the shipped versions table, in release order.
    public static func entries(from versions: VersionsFile) -> [AMIEntry] {
        versions.releases.flatMap { r in r.amis.map { AMIEntry(release: r.release, region: $0.region, variant: $0.variant, id: $0.id) } }
    }

    /// Regions in first-seen order.
    public static func regions(_ entries: [AMIEntry]) -> [String] {
        var seen: [String] = []
        for e in entries where !seen.contains(e.region) { seen.append(e.region) }
        return seen
    }

    /// Releases sorted numerically (6.2 before 6.10).
    public static func releaseOrder(_ a: String, _ b: String) -> Bool {
        let pa = a.split(separator: ".").compactMap { Int($0) }, pb = b.split(separator: ".").compactMap { Int($0) }
        return pa.lexicographicallyPrecedes(pb)
    }

    /// The rows of one region's table, exactly as the seed README writes them:
    /// `| CentOS 6.0  |  ami-…  |` and `| CentOS 6.6  |  ami-…, ami-… (*1) |`.
    /// With `packages`, a third column holds each AMI's package count, in the order of its ids (`?` when unknown).
    public static func rows(_ entries: [AMIEntry], region: String, packages: Bool = false) -> [String] {
        let inRegion = entries.filter { $0.region == region }
        var releases: [String] = []
        for e in inRegion where !releases.contains(e.release) { releases.append(e.release) }
        return releases.sorted(by: releaseOrder).map { release in
            let plain = inRegion.filter { $0.release == release && $0.variant == "plain" }.map(\.id)
            let ena = inRegion.filter { $0.release == release && $0.variant == "ena" }.map { "\($0.id) (*1)" + ($0.nitro ? " (*2)" : "") }
            let cell = (plain + ena).joined(separator: ", ")
            let row = "| CentOS \(release)  |  \(cell)\(ena.isEmpty ? "  " : " ")|"
            guard packages else { return row }
            let ordered = inRegion.filter { $0.release == release && $0.variant == "plain" } + inRegion.filter { $0.release == release && $0.variant == "ena" }
            return row + " " + ordered.map { $0.packages.map(String.init) ?? "?" }.joined(separator: ", ") + " |"
        }
    }

    /// One markdown table per region, each headed by its region, then the footnote when any ENA AMI is listed.
    public static func markdown(_ entries: [AMIEntry], packages: Bool = false) -> String {
        var lines: [String] = []
        for region in regions(entries) {
            if !lines.isEmpty { lines.append("") }
            lines.append("Region: \(region)")
            lines.append("")
            lines.append("| version  | AMI ID |" + (packages ? " packages |" : ""))
            lines.append("| ------------- | ------------- |" + (packages ? " ------------- |" : ""))
            lines += rows(entries, region: region, packages: packages)
        }
        if entries.contains(where: { $0.variant == "ena" }) {
            lines += ["", footnote]
        }
        if entries.contains(where: \.nitro) {
            if !entries.contains(where: { $0.variant == "ena" }) { lines.append("") }
            lines.append(nitroFootnote)
        }
        return lines.joined(separator: "\n")
    }

    public static func json(_ entries: [AMIEntry]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(entries), as: UTF8.self)
    }
}
