import Disk
import Foundation
import Host
import Install
import Versions

/// `centos6-ami batch`: many releases onto many targets in one run, in parallel,
/// with one verified download cache; one table (and JSON file) at the end.
struct BatchCommand {
    static let subcommand = Subcommand(spec: spec, run: run)
    static let defaultSummary = "centos6-ami-batch.json"
    static let defaultLogDirectory = "/var/log/centos6-ami"
    static let mappingSection = "which release goes where, instead of RELEASE=TARGET pairs:"
    static let passedSection = "passed to every install (as 'centos6-ami install --help' describes them):"
    static let spec = CommandSpec(
        name: "batch",
        summary: "install several releases onto several targets at once, with one shared download cache",
        forms: [UsageForm("(RELEASE=TARGET... | --releases LIST --targets LIST|DIR | --all --targets LIST|DIR | --continue)")],
        options: [
            OptionSpec("--releases", "LIST", section: mappingSection, help: "6.8,6.9 or a range 6.0-6.10 (or both: 6.0-6.2,6.9), with --targets"),
            OptionSpec("--targets", "LIST|DIR", repeatable: true, section: mappingSection, help: """
                one target per release, in order (devices or image files,
                comma-separated), or one directory: DIR/centos6-RELEASE.img each
                """),
            OptionSpec("--all", section: mappingSection, help: "every release of versions.json (6.0-6.10), with --targets"),
            OptionSpec("--continue", section: mappingSection, help: """
                re-run only the installs that did not succeed in the last
                batch (read from --summary), on the same targets
                """),
            OptionSpec("--jobs", "N", help: """
                installs at a time (default: cores, at most one per 2 GiB of
                memory, at most the number of installs)
                """),
            OptionSpec("--summary", "FILE", help: "the JSON summary (default ./\(defaultSummary)); --continue reads it"),
            OptionSpec("--log-dir", "DIR", help: "where each install's log goes (default \(defaultLogDirectory))"),
            OptionSpec("--ena", help: """
                build kmod-ena into each release that can take it (6.6 and later);
                the others are installed without it (ENA column: no); installs of
                one release share one build (install --ena-share)
                """),
            OptionSpec("--ena-source", "FILE|DIR", needs: "--ena", help: "with --ena: passed to the installs that build ENA"),
            OptionSpec("--dry-run", help: "print the mapping and each install's command; change nothing"),
        ] + InstallCommand.spec.options(named: ["--mirror", "--gpg-key", "--cache", "--yum-cache", "--size", "--speed-limit", "--speed-time",
                                                "--keep-on-error", "--minimal", "--stop-after", "--register"] + InstallCommand.registerOptions + ["--versions"])
            .map { $0.listed(under: passedSection) },
        about: """
            Which release goes where: RELEASE=TARGET ... pairs, explicit (a release may
            repeat: 6.9=a.img 6.9=b.img), or --releases/--all with --targets, or --continue.

            The mapping is printed and checked before anything is written: every target
            passes install's preflight (empty, not mounted, not in use, big enough), no
            target is given twice (two names of one disk count as one), counts match.
            Each install runs as its own 'centos6-ami install' process: its own private
            mounts, lock, log and cleanup; one failing does not stop the others.
            """,
        notes: """
            All installs share the one download cache, so a package is fetched once;
            --yum-cache may only be tmpfs[:SIZE] here. With --register each install
            registers its AMI; one --build-id for the batch is wise.

            Progress: a live line per install on a terminal (step, elapsed), plain lines
            otherwise. At the end: a table (release, target, kernel, ENA, result, time,
            bytes on the volume, log) on stdout and the same as JSON in --summary.

            exit status: 0 every install succeeded, 1 one or more failed (see the table),
            64 usage error, 130 interrupted (every running install cleaned up).
            """)
    static let usage = spec.usage

    static let passOptions = ["--mirror", "--gpg-key", "--cache", "--yum-cache", "--size", "--versions", "--stop-after", "--ena-source", "--speed-limit", "--speed-time"]
        + InstallCommand.registerOptions

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try spec.parse(arguments)
        let versions = try CLI.loadVersions(args.value("--versions"), console: console, usage: usage)
        let summaryPath = absolute(args.value("--summary") ?? defaultSummary)
        var previous: BatchSummary?
        var jobs: [BatchJob]
        var pass = try passThrough(args)
        do {
            if args.has("--continue") {
                if !args.positionals.isEmpty || args.value("--releases") != nil || args.value("--targets") != nil || args.has("--all") {
                    throw BatchError.usage("--continue takes the releases and targets from the last summary; give no others")
                }
                let last = try BatchSummary.read(path: summaryPath)
                jobs = BatchPlan.retry(last)
                guard !jobs.isEmpty else {
                    console.err("batch: \(BatchError.nothingToContinue(path: summaryPath))")
                    return ExitCode.success
                }
                // The same options as last time unless new ones are given; a password the summary
                // redacted comes from the environment (or the options given again).
                pass = try BatchSummary.continueArguments(saved: last.installArguments, given: pass,
                                                          password: console.environment[BatchSummary.passwordVariable])
                previous = last
            } else {
                jobs = try mapping(args, known: versions.releaseNames)
            }
        } catch let error as BatchError {
            if case .usage(let text) = error { throw UsageError(text, usage: usage) }
            // A file named by an option that is not there is the command line's fault (exit 64); one that is there but wrong is not.
            if case .noSummary(_, let reason) = error, reason == BatchError.missingSummaryReason { throw UsageError("\(error)", usage: usage) }
            throw error
        }
        jobs = jobs.map { BatchJob(release: $0.release, target: absolute($0.target)) }
        let wantsENA = pass.contains("--ena")
        let ena = jobs.map { wantsENA && (versions.release($0.release)?.ena.eligible ?? false) }
        let parallel: Int
        if let text = args.value("--jobs") {
            guard let n = Int(text), n > 0 else { throw UsageError("--jobs needs a positive number", usage: usage) }
            parallel = min(n, jobs.count)
        } else {
            parallel = BatchPlan.defaultJobs(cores: ProcessInfo.processInfo.activeProcessorCount,
                                             memoryBytes: ProcessInfo.processInfo.physicalMemory, count: jobs.count)
        }
        if let cache = value("--yum-cache", in: pass), !cache.hasPrefix("tmpfs"), jobs.count > 1 {
            throw UsageError("--yum-cache '\(cache)' cannot be shared by \(jobs.count) installs; use tmpfs or tmpfs:SIZE (each install gets its own)", usage: usage)
        }

        console.err("batch: \(jobs.count) install(s), \(parallel) at a time:\n" + BatchPlan.renderMapping(jobs, ena: ena))
        let dryRun = args.has("--dry-run")
        if !dryRun { guard geteuid() == 0 else { throw DiskError.notRoot } }
        try preflight(jobs, dryRun: dryRun, size: try value("--size", in: pass).map(parseSize))
        // Before any install starts: --continue depends on this file.
        try BatchSummary.checkWritable(path: summaryPath)

        let logDir = args.value("--log-dir") ?? defaultLogDirectory
        let stamp = Log.fileStamp()
        // Private and unpredictable: the children's result files and the shared kmod-ena.
        let resultDir = try TemporaryDirectory.make("batch")
        defer { TemporaryDirectory.remove(resultDir) }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // Installs of one release build kmod-ena once: the first builds into the share, the others wait and reuse it.
        let enaArguments = ["--ena"] + (value("--ena-source", in: pass).map { ["--ena-source", $0] } ?? []) + ["--ena-share", resultDir + "/ena-share"]
        let specs = jobs.enumerated().map { index, job in
            // The batch's pid keeps two batches started in the same second apart.
            let log = "\(absolute(logDir))/batch-\(stamp)-\(getpid())-\(index + 1)-\(job.release).log"
            let result = "\(resultDir)/\(index + 1).json"
            let install = ["install", job.release, job.target, "--log", log, "--result-json", result]
                + withoutENA(pass) + (ena[index] ? enaArguments : [])
            return BatchJobSpec(job: job, arguments: install, logPath: log, resultPath: result,
                                kernel: versions.release(job.release)?.kernel ?? "", ena: ena[index])
        }
        if dryRun {
            console.err("batch: dry run: every target passed the preflight; the installs would be:")
            for spec in specs { console.out(([executable] + spec.arguments).map(shellQuote).joined(separator: " ")) }
            return ExitCode.success
        }
        try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])

        let started = Date()
        let live = isatty(2) == 1 && console.environment["TERM"] != "dumb"
        func summarize(_ results: [InstallResult]) -> BatchSummary {
            var summary = BatchSummary(started: Log.timestamp(started), seconds: Date().timeIntervalSince(started), jobs: parallel,
                                       installArguments: pass, results: results)
            if let previous { summary.results = BatchPlan.merge(previous.results, rerun: results) }
            return summary
        }
        // Written as installs finish (what has not run yet says so): a batch killed outright
        // leaves a summary that --continue runs the rest from.
        let runner = BatchRunner(executable: executable, specs: specs, parallel: parallel, live: live,
                                 onResults: { results in try? summarize(results).write(to: summaryPath) })
        let (results, interrupted) = runner.run()
        let summary = summarize(results)
        var written = true
        do { try summary.write(to: summaryPath) } catch { console.err("error: \(error)"); written = false }
        console.out(summary.renderTable())
        if written { console.err("summary: \(summaryPath)") }
        if interrupted {
            console.err("batch: interrupted; every running install cleaned up; 'centos6-ami batch --continue' runs the rest")
            return ExitCode.interrupted
        }
        return summary.succeeded && written ? ExitCode.success : ExitCode.failure
    }

    /// The pairs, `--releases`/`--all` with `--targets`.
    static func mapping(_ args: ParsedArguments, known: [String]) throws -> [BatchJob] {
        let targets = BatchPlan.splitTargets(args.values["--targets"] ?? [])
        let listed = args.value("--releases")
        if !args.positionals.isEmpty {
            if listed != nil || args.has("--all") || !targets.isEmpty {
                throw BatchError.usage("give either RELEASE=TARGET pairs or --releases/--all with --targets, not both")
            }
            return try BatchPlan.parsePairs(args.positionals, known: known)
        }
        if listed != nil && args.has("--all") { throw BatchError.usage("give --releases or --all, not both") }
        guard listed != nil || args.has("--all") else {
            throw BatchError.usage("nothing to do: give RELEASE=TARGET pairs, --releases LIST --targets LIST, --all --targets LIST or --continue")
        }
        guard !targets.isEmpty else { throw BatchError.usage("--targets is needed with --releases and --all") }
        let releases = try listed.map { try BatchPlan.expandReleases($0, known: known) } ?? known
        return try BatchPlan.pairTargets(releases: releases, targets: targets) { path in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
        }
    }

    /// The options every install gets, checked here so a typo fails the batch, not each install.
    static func passThrough(_ args: ParsedArguments) throws -> [String] {
        var pass: [String] = []
        // Every --mirror, in order (primary, then alternatives); one value of the others.
        for mirror in args.values["--mirror"] ?? [] {
            if let problem = InstallOptions.validateMirror(mirror) { throw UsageError(problem, usage: usage) }
            pass += ["--mirror", mirror]
        }
        for option in passOptions where option != "--mirror" {
            guard var value = args.value(option) else { continue }
            switch option {
            case "--gpg-key", "--versions":
                guard FileManager.default.isReadableFile(atPath: value) else { throw UsageError("\(option) '\(value)' is not a readable file", usage: usage) }
                value = absolute(value)
            case "--cache", "--ena-source":
                value = absolute(value)
            case "--size":
                guard let bytes = try? parseSize(value), bytes >= minimumTargetBytes else {
                    throw UsageError("--size '\(value)' is not a size of at least \(minimumTargetBytes >> 30)G", usage: usage)
                }
            case "--yum-cache":
                do { _ = try YumCache.parse(value) } catch { throw UsageError("\(error)", usage: usage) }
            case "--stop-after":
                guard InstallSteps.names(ena: args.has("--ena")).contains(value) else { throw UsageError("unknown step '\(value)'", usage: usage) }
            default: break
            }
            pass += [option, value]
        }
        if args.has("--keep-on-error") { pass.append("--keep-on-error") }
        if args.has("--minimal") { pass.append("--minimal") }
        if args.has("--ena") { pass.append("--ena") }
        if args.has("--register") { pass.append("--register") }
        return pass
    }

    /// Install's preflight for every target, plus no target twice; every problem is reported at once.
    static func preflight(_ jobs: [BatchJob], dryRun: Bool, size: UInt64? = nil) throws {
        var problems: [String] = []
        var identities: [[String]] = []
        for job in jobs {
            let kind: TargetKind
            do { kind = try inspectTarget(job.target) } catch {
                problems.append("\(job.release) -> \(job.target): \(error)")
                identities.append([])
                continue
            }
            identities.append(BatchPlan.identity(kind))
            var tools = Preflight.requiredTools
            if case .imageFile = kind { tools += Preflight.loopTools }
            // A dead run's loop device or mounts would otherwise read as "in use": name the fix.
            let journals = RunJournal.directory(workDirectory: ProcessInfo.processInfo.environment["CENTOS6_AMI_WORK_DIR"] ?? "/run/centos6-ami")
            if let dead = RecoveryCheck.deadRunLeftovers(target: kind, journalDirectory: journals) {
                problems.append("\(job.release) -> \(job.target): \(RecoveryError.deadRun(target: job.target, pid: dead.pid, journal: dead.path))")
                continue
            }
            var facts = Preflight.gather(target: kind, tools: tools)
            if dryRun { facts.isRoot = true }
            if let first = Preflight.errors(facts).first ?? Preflight.sizeOptionError(target: kind, requested: size ?? 0, given: size != nil) {
                problems.append("\(job.release) -> \(job.target): \(first)")
            }
        }
        // Every pair sharing a key: a symlink, a hard link, another node of one disk, a loop device on the file.
        var reported = Set<Int>()
        for index in identities.indices where !reported.contains(index) {
            for other in identities.indices where other > index && !reported.contains(other) && !Set(identities[index]).isDisjoint(with: identities[other]) {
                reported.insert(other)
                let same = jobs[index].target == jobs[other].target ? "the same path"
                    : "'\(jobs[index].target)' and '\(jobs[other].target)' are the same \(identities[index].contains { $0.hasPrefix("dev-") } || identities[other].contains { $0.hasPrefix("dev-") } ? "disk" : "file")"
                problems.append(BatchError.duplicateTarget(target: jobs[other].target, releases: [jobs[index].release, jobs[other].release], same: same).description)
            }
        }
        if !problems.isEmpty { throw BatchError.preflight(problems) }
    }

    /// The options for a release without ENA: no --ena, no --ena-source.
    static func withoutENA(_ words: [String]) -> [String] {
        var out: [String] = [], skip = false
        for word in words {
            if skip { skip = false; continue }
            if word == "--ena-source" { skip = true; continue }
            if word != "--ena" { out.append(word) }
        }
        return out
    }

    static func value(_ option: String, in words: [String]) -> String? {
        guard let i = words.lastIndex(of: option), i + 1 < words.count else { return nil }
        return words[i + 1]
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
