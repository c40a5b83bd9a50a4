import AMI
import Foundation
import Versions

/// What `table` was given, as its options declare it.
struct TableArguments {
    enum Format: String { case markdown, json }
    var format: Format?
    var from: String?
    var packages = false
    var versions: String?
}

struct TableCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    static let options = Options<TableArguments>(
        [
            .value("--format", "markdown|json", \.format, help: "markdown (default) or json", render: \.rawValue) { format in
                guard let known = TableArguments.Format(rawValue: format) else { throw OptionProblem("unknown format '\(format)' (markdown or json)") }
                return known
            },
            .text(
                "--from", "RESULTS.json", \.from, help: "the results file written by 'register' (one table per region)",
                problem: OptionCheck.readableFile("--from")),
            .flag(
                "--packages", \.packages, needs: "--from",
                help: """
                    with --from: a column with each AMI's package count, from the
                    build manifest the results file names, else its SPDX SBOM
                    ('?' when it has neither)
                    """
            ).checked { $0.from == nil ? "--packages needs --from RESULTS.json" : nil },
            .text("--versions", "FILE", \.versions, help: CommonOptions.versions.help),
        ], defaults: TableArguments())

    static let spec = CommandSpec(
        name: "table",
        summary: "print the README-style AMI table (published ids, or --from a results file)",
        forms: [UsageForm("")],
        options: options.specs,
        about: """
            Without --from, prints the AMIs published in the shipped versions table,
            in the seed README's markdown form: one row per release, ENA variants
            marked (*1), and the footnote.
            """)
    static let usage = spec.usage

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try options.parse(arguments, usage: usage, positionals: noPositionals(usage)).values
        let entries: [AMIEntry]
        let packages = args.packages
        if let from = args.from {
            entries = try tableEntries(fromResults: from, packages: packages)
        } else {
            entries = AMITable.entries(from: try CLI.loadVersions(args.versions, console: console, usage: usage))
        }
        console.out(args.format == .json ? try AMITable.json(entries) : AMITable.markdown(entries, packages: packages))
        return ExitCode.success
    }
}
