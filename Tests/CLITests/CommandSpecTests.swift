import Foundation
import Testing
@testable import CLI
import TestSupport

/// Options are declared once per command (`CommandSpec`); the parser, the usage line
/// and `--help` must agree with each other and with the options the tool has always had.
@Suite struct CommandSpecTests {
    /// Every option each command accepted before the declarations existed, by name:
    /// flags, options with a value, and those that may repeat.
    static let acceptedOptions: [String: (flags: Set<String>, values: Set<String>, repeatable: Set<String>)] = [
        "install": (
            ["--dry-run", "--keep-on-error", "--ena", "--register", "--minimal", "--updates"],
            [
                "--yum-cache", "--mirror", "--size", "--log", "--gpg-key", "--stop-after", "--hold", "--versions", "--cache", "--ena-source",
                "--ena-share", "--result-json", "--speed-limit", "--speed-time", "--region", "--endpoint-url", "--results", "--build-id", "--copy-to",
            ], ["--mirror"]
        ),
        "batch": (
            ["--all", "--continue", "--ena", "--keep-on-error", "--dry-run", "--register", "--minimal", "--updates"],
            [
                "--mirror", "--gpg-key", "--cache", "--yum-cache", "--size", "--versions", "--stop-after", "--ena-source", "--speed-limit", "--speed-time",
                "--region", "--endpoint-url", "--results", "--build-id", "--copy-to", "--releases", "--targets", "--jobs", "--summary", "--log-dir",
            ],
            ["--targets", "--mirror"]
        ),
        "boot-test": ([], ["--key", "--timeout", "--disk", "--console", "--log", "--keep-copy"], []),
        "inspect": (["--json"], ["--sbom", "--versions", "--log"], []),
        "register": (
            ["--ena", "--public", "--keep-on-error", "--allow-dirty"],
            [
                "--region", "--endpoint-url", "--profile", "--copy-to", "--results", "--build-id", "--imds-support", "--volume-size", "--timeout", "--poll",
                "--log", "--versions", "--volume", "--device", "--upload-jobs", "--manifest", "--sbom",
            ], []
        ),
        "table": (["--packages"], ["--format", "--versions", "--from"], []),
        "versions": (["--json"], ["--versions"], []),
        "cleanup": (["--dry-run", "--local"], ["--build-id", "--region", "--endpoint-url", "--log"], ["--region"]),
        "rpm": (
            ["--files", "--devices"], ["--gpg-key", "--repo", "--seed", "--group", "--extra", "--exclude", "--into"],
            ["--seed", "--extra", "--exclude", "--gpg-key"]
        ),
    ]

    /// `--name`s that help prose mentions but no command's parser takes: `--help` (every
    /// command's, answered before parsing), the aws CLI's flag, and one rpm says it lacks.
    static let foreignOptions: Set<String> = ["--help", "--ena-support", "--no-verify"]

    /// The options `--help` lists: lines `  --name ...` (prose lines do not start that way).
    static func listedInHelp(_ help: String) -> Set<String> {
        Set(
            help.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("  --") else { return nil }
                return String(line.dropFirst(2).prefix { $0 != " " })
            })
    }

    @Test func everyCommandKeepsEveryOptionItHad() {
        #expect(Set(CLI.subcommands.map(\.name)) == Set(Self.acceptedOptions.keys))
        for command in CLI.subcommands {
            guard let expected = Self.acceptedOptions[command.name] else { continue }
            #expect(command.spec.flags == expected.flags, "\(command.name)")
            #expect(command.spec.valueOptions == expected.values, "\(command.name)")
            #expect(command.spec.repeatable == expected.repeatable, "\(command.name)")
            #expect(Set(command.spec.options.map(\.name)).count == command.spec.options.count, "\(command.name): an option declared twice")
        }
    }

    /// Read from the printed text, not from the declarations: what a user sees.
    @Test func everyAcceptedOptionIsInUsageAndHelpAndViceVersa() throws {
        let everyOption = Set(CLI.subcommands.flatMap { $0.spec.options.map(\.name) })
        for command in CLI.subcommands {
            let accepted = command.spec.flags.union(command.spec.valueOptions)
            let help = runCLI(["help", command.name])
            #expect(help.code == 0)
            let usage = help.out.components(separatedBy: "\n\n")[0]
            #expect(usage == command.usage, "\(command.name)")
            #expect(
                Set(UsageText.optionNames(in: usage)) == accepted,
                "\(command.name): usage \(Set(UsageText.optionNames(in: usage)).symmetricDifference(accepted))")
            #expect(Self.listedInHelp(help.out) == accepted, "\(command.name): help \(Self.listedInHelp(help.out).symmetricDifference(accepted))")
            // Prose may name other commands' options, never one that does not exist.
            let strays = Set(UsageText.optionNames(in: help.out)).subtracting(everyOption).subtracting(Self.foreignOptions)
            #expect(strays.isEmpty, "\(command.name): \(strays)")
            // And the parser takes every option the usage line shows.
            for name in accepted {
                let words = command.spec.flags.contains(name) ? [name] : [name, "x"]
                #expect(throws: Never.self, "\(command.name) \(name)") { try command.spec.parse(words) }
            }
        }
    }

    @Test func helpListsCommandsInTheOrderAUserMeetsThem() {
        let order = ["install", "batch", "boot-test", "inspect", "register", "table", "versions", "cleanup", "rpm"]
        #expect(CLI.subcommands.map(\.name) == order)
        let help = runCLI(["--help"]).out
        let listed = help.components(separatedBy: "commands:\n")[1].split(separator: "\n").prefix { $0.hasPrefix("  ") }
            .map { String($0.dropFirst(2).prefix { $0 != " " }) }
        #expect(listed == order + ["help"])
    }

    @Test func helpTextsMatchTheirGoldenFiles() throws {
        try expectGolden(runCLI(["--help"]).out + "\n", "help/centos6-ami.txt")
        for command in CLI.subcommands {
            try expectGolden(runCLI(["help", command.name]).out + "\n", "help/\(command.name).txt")
        }
    }

    @Test func usageLinesWrapBetweenOptionsAndNestDependents() {
        let spec = CommandSpec(
            name: "demo", summary: "s", forms: [UsageForm("ARG")],
            options: [
                OptionSpec("--ena", help: "e"),
                OptionSpec("--ena-source", "FILE|DIR", needs: "--ena", help: "s"),
                OptionSpec("--region", "R", repeatable: true, help: "r"),
                OptionSpec("--log", "FILE", help: "l"),
            ])
        #expect(spec.usage == "usage: centos6-ami demo ARG [--ena [--ena-source FILE|DIR]] [--region R]... [--log FILE]")
        let long = CommandSpec(
            name: "demo", summary: "s", forms: [UsageForm("ARG")],
            options: (1...12).map { OptionSpec("--option-\($0)", "VALUE", help: "h") })
        let lines = long.usage.split(separator: "\n")
        #expect(lines.count > 1 && lines.allSatisfy { $0.count <= UsageText.width })
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix(String(repeating: " ", count: "usage: centos6-ami demo ".count) + "[--option-") })
        // A form naming its own options lists only those; options in its words are not repeated.
        let forms = CommandSpec(
            name: "demo", summary: "s", forms: [UsageForm("a --log FILE", options: ["--log", "--ena"]), UsageForm("b", options: [])],
            options: spec.options)
        #expect(forms.usage == "usage: centos6-ami demo a --log FILE [--ena]\n       centos6-ami demo b")
    }

    @Test func helpAlignsDescriptionsAndPutsWideLabelsOnTheirOwnLine() {
        let spec = CommandSpec(
            name: "demo", summary: "s", forms: [UsageForm("")],
            options: [
                OptionSpec("--json", help: "as JSON"),
                OptionSpec("--yum-cache", "tmpfs[:SIZE]|DEVICE|DIR", help: "where\nit lives"),
                OptionSpec("--log", "FILE", section: "more:", help: "the log"),
            ], about: "About.", notes: "exit status: 0.")
        #expect(
            spec.help == """
                About.

                options:
                  --json      as JSON
                  --yum-cache tmpfs[:SIZE]|DEVICE|DIR
                              where
                              it lives

                more:
                  --log FILE  the log

                exit status: 0.
                """)
    }

    @Test func optionNamesInText() {
        #expect(UsageText.optionNames(in: "[--a X] --b=1 (--c-d) -- -h x--y --9 e-mail --") == ["--a", "--b", "--c-d"])
    }
}

/// The hand-written parser's rules, through a declared command and through the CLI.
@Suite struct ParserBehaviourTests {
    static let spec = CommandSpec(
        name: "demo", summary: "s", forms: [UsageForm("A B")],
        options: [
            OptionSpec("--dry-run", help: "d"),
            OptionSpec("--mirror", "URL", help: "m"),
            OptionSpec("--targets", "LIST", repeatable: true, help: "t"),
        ])

    @Test func flagsOptionsInlineValuesAndTheEndOfOptions() throws {
        let p = try Self.spec.parse(["a", "--mirror=http://x=y", "--dry-run", "--targets", "t1", "--targets=t2", "--dry-run", "--", "--mirror", "-h"])
        #expect(p.positionals == ["a", "--mirror", "-h"])
        #expect(p.value("--mirror") == "http://x=y")
        #expect(p.values["--targets"] == ["t1", "t2"])
        #expect(p.has("--dry-run") && !p.wantsHelp)
        #expect(try Self.spec.parse(["-", "a"]).positionals == ["-", "a"])
        #expect(try Self.spec.parse(["a", "-h", "b"]).wantsHelp)
        #expect(try Self.spec.parse(["--help"]).wantsHelp)
    }

    @Test(arguments: [
        (["--bogus"], "unknown option '--bogus'"),
        (["--bogus=1"], "unknown option '--bogus'"),
        (["-x"], "unknown option '-x'"),
        (["--mirror"], "option '--mirror' needs a value"),
        (["--dry-run=yes"], "option '--dry-run' takes no value"),
        (["--mirror", "a", "--mirror=b"], "option '--mirror' is given twice ('a' and 'b'); give it once"),
    ])
    func usageErrorsCarryTheMessageAndTheGeneratedUsage(_ words: [String], _ message: String) {
        do {
            _ = try Self.spec.parse(words)
            Issue.record("\(words) parsed")
        } catch let error as UsageError {
            #expect(error.message == message)
            #expect(error.usage == "usage: centos6-ami demo A B [--dry-run] [--mirror URL] [--targets LIST]...")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func everyCommandExits64WithItsWholeUsageOnAnUnknownOption() {
        for command in CLI.subcommands {
            let r = runCLI([command.name, "--no-such-option"])
            #expect(r.code == 64, "\(command.name)")
            #expect(r.err == "error: unknown option '--no-such-option'\n" + command.usage, "\(command.name): \(r.err)")
        }
    }

    @Test func helpAnywhereOnTheLineWinsOverEverythingElse() {
        let full = CLI.fullHelp(CLI.find("install")!)
        for words in [["install", "6.9", "/dev/xvdb", "-h"], ["install", "--bogus", "--help"], ["install", "-h", "--size", "1G"]] {
            let r = runCLI(words)
            #expect(r.code == 0 && r.out == full && r.err.isEmpty, "\(words)")
        }
    }
}
