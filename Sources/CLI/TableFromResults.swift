import AMI
import Foundation
import Install
import SBOM

/// Reads a `register` results file into table entries: every AMI it records, in file order
/// (the table sorts releases and groups regions itself). With `packages`, each entry gets the
/// package count of the manifest its record names, else of its SPDX SBOM (nil when there is
/// neither or it cannot be read).
func tableEntries(fromResults path: String, packages: Bool = false) throws -> [AMIEntry] {
    var counts: [String: Int?] = [:]
    return try ResultsFile.load(path: path).amis.map { record in
        var entry = record.tableEntry
        if packages, let manifest = record.manifest {
            if counts[manifest] == nil {
                counts[manifest] = FileManager.default.contents(atPath: manifest)
                    .flatMap { try? JSONDecoder().decode(BuildManifest.self, from: $0) }.map(\.packages.count)
            }
            entry.packages = counts[manifest] ?? nil
        }
        // A record without a readable manifest counts its SBOM's packages (the same rpm database).
        if packages, entry.packages == nil, let sbom = record.sbom {
            if counts[sbom] == nil { counts[sbom] = FileManager.default.contents(atPath: sbom).flatMap(SPDX.packageCount) }
            entry.packages = counts[sbom] ?? nil
        }
        return entry
    }
}
