import Foundation
import Versions

/// What `versions` was given, as its options declare it.
struct VersionsArguments {
    var json = false
    var versions: String?
}

struct VersionsCommand {
    static let subcommand = Subcommand(spec: spec, run: run)
    static let options = Options<VersionsArguments>(
        [
            .flag("--json", \.json, help: "print the whole versions table as JSON"),
            .text("--versions", "FILE", \.versions, help: CommonOptions.versions.help),
        ], defaults: VersionsArguments())
    static let spec = CommandSpec(
        name: "versions",
        summary: "print the versions table: release, GA kernel, ENA eligibility",
        forms: [UsageForm("")],
        options: options.specs)
    static let usage = spec.usage

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try options.parse(arguments, usage: usage, positionals: noPositionals(usage)).values
        let versions = try CLI.loadVersions(args.versions, console: console, usage: usage)
        if args.json {
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
            lines.append(
                pad(r.release, 8) + pad(r.kernel, 22) + (r.ena.eligible ? "yes (\(versions.ena.version))" : "no: \(r.ena.reason ?? "")")
                    + (r.updatesKernel.map { "; updates bring kernel \($0)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }
}
