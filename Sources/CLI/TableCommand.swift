import AMI
import Foundation
import Versions

struct TableCommand {
    static let subcommand = Subcommand(spec: spec, run: run)
    static let spec = CommandSpec(
        name: "table",
        summary: "print the README-style AMI table (published ids, or --from a results file)",
        forms: [UsageForm("")],
        options: [
            OptionSpec("--format", "markdown|json", help: "markdown (default) or json"),
            OptionSpec("--from", "RESULTS.json", help: "the results file written by 'register' (one table per region)"),
            OptionSpec("--packages", needs: "--from", help: """
                with --from: a column with each AMI's package count, from the
                build manifest the results file names, else its SPDX SBOM
                ('?' when it has neither)
                """),
            CommonOptions.versions,
        ],
        about: """
            Without --from, prints the AMIs published in the shipped versions table,
            in the seed README's markdown form: one row per release, ENA variants
            marked (*1), and the footnote.
            """)
    static let usage = spec.usage

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try spec.parse(arguments)
        guard args.positionals.isEmpty else { throw UsageError("unexpected argument '\(args.positionals[0])'", usage: usage) }
        let format = args.value("--format") ?? "markdown"
        guard ["markdown", "json"].contains(format) else { throw UsageError("unknown format '\(format)' (markdown or json)", usage: usage) }
        let entries: [AMIEntry]
        let packages = args.has("--packages")
        if let from = args.value("--from") {
            guard FileManager.default.isReadableFile(atPath: from) else { throw UsageError("--from '\(from)' is not a readable file", usage: usage) }
            entries = try tableEntries(fromResults: from, packages: packages)
        } else {
            if packages { throw UsageError("--packages needs --from RESULTS.json", usage: usage) }
            entries = AMITable.entries(from: try CLI.loadVersions(args.value("--versions"), console: console, usage: usage))
        }
        console.out(format == "json" ? try AMITable.json(entries) : AMITable.markdown(entries, packages: packages))
        return ExitCode.success
    }
}
