import Foundation
import Versions

struct VersionsCommand {
    static let subcommand = Subcommand(name: name, summary: summary, usage: usage, help: help, run: run)
    static let name = "versions"
    static let summary = "print the versions table: release, GA kernel, ENA eligibility"
    static let usage = "usage: centos6-ami versions [--json] [--versions FILE]"
    static let help = """
    options:
      --json             print the whole versions table as JSON
      --versions FILE    read this versions.json instead of the embedded one
    """

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try parseArguments(arguments, flags: ["--json"], options: ["--versions"], usage: usage)
        guard args.positionals.isEmpty else { throw UsageError("unexpected argument '\(args.positionals[0])'", usage: usage) }
        let versions = try CLI.loadVersions(args.value("--versions"), console: console, usage: usage)
        if args.has("--json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            console.out(String(decoding: try encoder.encode(versions), as: UTF8.self))
        } else {
            console.out(table(versions))
        }
        return ExitCode.success
    }

    static func table(_ versions: VersionsFile) -> String {
        var lines = [pad("RELEASE", 8) + pad("KERNEL", 22) + "ENA"]
        for r in versions.releases {
            lines.append(pad(r.release, 8) + pad(r.kernel, 22) + (r.ena.eligible ? "yes (\(versions.ena.version))" : "no: \(r.ena.reason ?? "")")
                         + (r.updatesKernel.map { "; updates bring kernel \($0)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }
}
