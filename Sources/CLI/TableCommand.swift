import AMI
import Foundation
import Versions

struct TableCommand {
    static let subcommand = Subcommand(name: name, summary: summary, usage: usage, help: help, run: run)
    static let name = "table"
    static let summary = "print the README-style AMI table (published ids, or --from a results file)"
    static let usage = "usage: centos6-ami table [--format markdown|json] [--from RESULTS.json [--packages]] [--versions FILE]"
    static let help = """
    Without --from, prints the AMIs published in the shipped versions table,
    in the seed README's markdown form: one row per release, ENA variants
    marked (*1), and the footnote.

    options:
      --format F         markdown (default) or json
      --from FILE        the results file written by 'register' (one table per region)
      --packages         with --from: a column with each AMI's package count, from the
                         build manifest the results file names ('?' when it has none)
      --versions FILE    read this versions.json instead of the embedded one
    """

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try parseArguments(arguments, flags: ["--packages"], options: ["--format", "--versions", "--from"], usage: usage)
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
