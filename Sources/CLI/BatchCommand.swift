import Disk
import Foundation
import Host
import Install
import Versions

/// What `batch` was given, as its options declare it.
struct BatchArguments {
    /// `RELEASE=TARGET` pairs.
    var pairs: [String] = []
    var releases: String?
    var targets: [String] = []
    var all = false
    var continueLast = false
    var jobs: Int?
    var summary: String?
    var logDirectory: String?
    var dryRun = false
    /// What every install gets: install's options, as install's declarations store them.
    var install = InstallArguments()
}

/// `centos6-ami batch`: many releases onto many targets in one run, in parallel,
/// with one verified download cache; one table (and JSON file) at the end.
struct BatchCommand {
    static let subcommand = Subcommand(spec: spec, run: run)
    static let defaultSummary = "centos6-ami-batch.json"
    static let defaultLogDirectory = "/var/log/centos6-ami"
    static let mappingSection = "which release goes where, instead of RELEASE=TARGET pairs:"
    static let passedSection = "passed to every install (as 'centos6-ami install --help' describes them):"

    /// Install's options batch does not pass on as given: it sets them for each install
    /// (the log, the result file, ENA and its share) or has its own (--dry-run, --ena).
    /// Every other install option reaches every install, declared by install alone.
    static let notShared: Set<String> = ["--ena", "--ena-source", "--ena-share", "--dry-run", "--log", "--hold", "--result-json"]
    /// The order batch's help lists the shared ones in; an option not named here follows, as install declares it.
    static let sharedOrder =
        [
            "--mirror", "--gpg-key", "--cache", "--yum-cache", "--size", "--speed-limit", "--speed-time",
            "--keep-on-error", "--minimal", "--updates", "--stop-after", "--register",
        ] + InstallCommand.registerOptions + ["--versions"]

    /// Batch's own options, then install's it passes on (stored into `install`, listed under their own heading).
    static let options = Options<BatchArguments>(
        [
            .text("--releases", "LIST", \.releases, section: mappingSection, help: "6.8,6.9 or a range 6.0-6.10 (or both: 6.0-6.2,6.9), with --targets"),
            .list(
                "--targets", "LIST|DIR", \.targets, section: mappingSection,
                help: """
                    one target per release, in order (devices or image files,
                    comma-separated), or one directory: DIR/centos6-RELEASE.img each
                    """),
            .flag("--all", \.all, section: mappingSection, help: "every release of versions.json (6.0-6.10), with --targets"),
            .flag(
                "--continue", \.continueLast, section: mappingSection,
                help: """
                    re-run only the installs that did not succeed in the last
                    batch (read from --summary), on the same targets
                    """),
            .value(
                "--jobs", "N", \.jobs,
                help: """
                    installs at a time (default: cores, at most one per 2 GiB of
                    memory, at most the number of installs)
                    """, render: String.init, parse: OptionCheck.integer(1...Int.max, "--jobs needs a positive number")),
            .text("--summary", "FILE", \.summary, help: "the JSON summary (default ./\(defaultSummary)); --continue reads it"),
            .text("--log-dir", "DIR", \.logDirectory, help: "where each install's log goes (default \(defaultLogDirectory))"),
            .flag(
                "--ena", \.install.options.ena,
                help: """
                    build kmod-ena into each release that can take it (6.6 and later);
                    the others are installed without it (ENA column: no); installs of
                    one release share one build (install --ena-share)
                    """),
            .text("--ena-source", "FILE|DIR", \.install.options.enaSource, needs: "--ena", help: "with --ena: passed to the installs that build ENA"),
            .flag("--dry-run", \.dryRun, help: "print the mapping and each install's command; change nothing"),
        ]
            + InstallCommand.options.all(except: notShared, first: sharedOrder).map {
                $0.declared { $0.listed(under: passedSection) }.lifted(\BatchArguments.install)
            }, defaults: BatchArguments())

    static let spec = CommandSpec(
        name: "batch",
        summary: "install several releases onto several targets at once, with one shared download cache",
        forms: [UsageForm("(RELEASE=TARGET... | --releases LIST --targets LIST|DIR | --all --targets LIST|DIR | --continue)")],
        options: options.specs,
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

    /// Parses batch's words: the pairs and the options.
    static func parse(_ arguments: [String]) throws -> BatchArguments {
        try options.parse(arguments, usage: usage) { values, positionals in values.pairs = positionals }.values
    }

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        var args = try parse(arguments)
        let summaryPath = absolute(args.summary ?? defaultSummary)
        var previous: BatchSummary?
        var jobs: [BatchJob]
        // Read once: for the mapping, or (--continue) from the options the summary gives back.
        var mappedWith: VersionsFile?
        do {
            if args.continueLast {
                if !args.pairs.isEmpty || args.releases != nil || !args.targets.isEmpty || args.all {
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
                let words = try BatchSummary.continueArguments(
                    saved: last.installArguments, given: InstallCommand.options.words(args.install),
                    password: console.tool.mirrorPassword)
                args.install = try InstallCommand.options.parse(words, usage: usage).values
                previous = last
            } else {
                let given = try CLI.loadVersions(args.install.versions, console: console, usage: usage)
                mappedWith = given
                jobs = try mapping(args, known: given.releaseNames)
            }
        } catch let error as BatchError {
            if case .usage(let text) = error { throw UsageError(text, usage: usage) }
            // A file named by an option that is not there is the command line's fault (exit 64); one that is there but wrong is not.
            if case .noSummary(_, let reason) = error, reason == BatchError.missingSummaryReason { throw UsageError("\(error)", usage: usage) }
            throw error
        }
        let shared = absolutePaths(args.install)
        let versions = try mappedWith ?? CLI.loadVersions(shared.versions, console: console, usage: usage)
        jobs = jobs.map { BatchJob(release: $0.release, target: absolute($0.target)) }
        let ena = jobs.map { shared.options.ena && (versions.release($0.release)?.ena.eligible ?? false) }
        let parallel =
            args.jobs.map { min($0, jobs.count) }
            ?? BatchPlan.defaultJobs(
                cores: ProcessInfo.processInfo.activeProcessorCount,
                memoryBytes: ProcessInfo.processInfo.physicalMemory, count: jobs.count)
        if !shared.options.yumCache.isDiscardedAtUnmount, jobs.count > 1 {
            let cache = shared.options.yumCache
            throw UsageError(
                "--yum-cache '\(cache.argument)' cannot be shared by \(jobs.count) installs; use tmpfs or tmpfs:SIZE (each install gets its own)", usage: usage)
        }

        console.err("batch: \(jobs.count) install(s), \(parallel) at a time:\n" + BatchPlan.renderMapping(jobs, ena: ena))
        if !args.dryRun { guard geteuid() == 0 else { throw DiskError.notRoot } }
        try preflight(jobs, dryRun: args.dryRun, size: shared.size, journals: RunJournal.directory(workDirectory: console.tool.workDirectory))
        // Before any install starts: --continue depends on this file.
        try BatchSummary.checkWritable(path: summaryPath)

        let logDir = args.logDirectory ?? defaultLogDirectory
        let stamp = Log.fileStamp()
        // Private and unpredictable: the children's result files and the shared kmod-ena.
        let resultDir = try TemporaryDirectory.make("batch")
        defer { TemporaryDirectory.remove(resultDir) }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let specs = jobs.enumerated().map { index, job in
            // The batch's pid keeps two batches started in the same second apart.
            let log = "\(absolute(logDir))/batch-\(stamp)-\(getpid())-\(index + 1)-\(job.release).log"
            let result = "\(resultDir)/\(index + 1).json"
            let install = InstallCommand.words(
                installArguments(
                    shared, job: job, ena: ena[index], log: log, result: result,
                    enaShare: resultDir + "/ena-share"))
            return BatchJobSpec(
                job: job, arguments: install, logPath: log, resultPath: result,
                kernel: versions.release(job.release)?.kernel ?? "", ena: ena[index])
        }
        if args.dryRun {
            console.err("batch: dry run: every target passed the preflight; the installs would be:")
            for spec in specs { console.out(([executable] + spec.arguments).map(shellQuote).joined(separator: " ")) }
            return ExitCode.success
        }
        try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])

        let started = Date()
        let live = isatty(2) == 1 && console.environment["TERM"] != "dumb"
        let passed = InstallCommand.options.words(shared)
        func summarize(_ results: [InstallResult]) -> BatchSummary {
            var summary = BatchSummary(
                started: Log.timestamp(started), seconds: Date().timeIntervalSince(started), jobs: parallel,
                installArguments: passed, results: results)
            if let previous { summary.results = BatchPlan.merge(previous.results, rerun: results) }
            return summary
        }
        // Written as installs finish (what has not run yet says so): a batch killed outright
        // leaves a summary that --continue runs the rest from.
        let runner = BatchRunner(
            executable: executable, specs: specs, parallel: parallel, live: live,
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

    /// One install of the batch: the shared options, its release and target, its log and result
    /// file, and ENA only where the release can take it (installs of one release build kmod-ena
    /// once: the first builds into the share, the others wait and reuse it).
    static func installArguments(
        _ shared: InstallArguments, job: BatchJob, ena: Bool, log: String, result: String,
        enaShare: String
    ) -> InstallArguments {
        var install = shared
        install.release = job.release
        install.target = job.target
        install.options.logPath = log
        install.resultJSON = result
        install.options.ena = ena
        install.options.enaShareDirectory = ena ? enaShare : nil
        if !ena { install.options.enaSource = nil }
        return install
    }

    /// The shared options' paths made absolute: the summary keeps them for a `--continue`
    /// that may start in another directory.
    static func absolutePaths(_ shared: InstallArguments) -> InstallArguments {
        var paths = shared
        paths.options.gpgKeyPath = shared.options.gpgKeyPath.map(absolute)
        paths.versions = shared.versions.map(absolute)
        paths.options.cacheDirectory = absolute(shared.options.cacheDirectory)
        paths.options.enaSource = shared.options.enaSource.map(absolute)
        return paths
    }

    /// The pairs, `--releases`/`--all` with `--targets`.
    static func mapping(_ args: BatchArguments, known: [String]) throws -> [BatchJob] {
        let targets = BatchPlan.splitTargets(args.targets)
        let listed = args.releases
        if !args.pairs.isEmpty {
            if listed != nil || args.all || !targets.isEmpty {
                throw BatchError.usage("give either RELEASE=TARGET pairs or --releases/--all with --targets, not both")
            }
            return try BatchPlan.parsePairs(args.pairs, known: known)
        }
        if listed != nil && args.all { throw BatchError.usage("give --releases or --all, not both") }
        guard listed != nil || args.all else {
            throw BatchError.usage("nothing to do: give RELEASE=TARGET pairs, --releases LIST --targets LIST, --all --targets LIST or --continue")
        }
        guard !targets.isEmpty else { throw BatchError.usage("--targets is needed with --releases and --all") }
        let releases = try listed.map { try BatchPlan.expandReleases($0, known: known) } ?? known
        return try BatchPlan.pairTargets(releases: releases, targets: targets) { path in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
        }
    }

    /// Install's preflight for every target, plus no target twice; every problem is reported at once.
    static func preflight(
        _ jobs: [BatchJob], dryRun: Bool, size: UInt64? = nil,
        journals: String = RunJournal.directory(workDirectory: ToolEnvironment.defaultWorkDirectory)
    ) throws {
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
                let same =
                    jobs[index].target == jobs[other].target
                    ? "the same path"
                    : "'\(jobs[index].target)' and '\(jobs[other].target)' are the same \(identities[index].contains { $0.hasPrefix("dev-") } || identities[other].contains { $0.hasPrefix("dev-") } ? "disk" : "file")"
                problems.append(
                    BatchError.duplicateTarget(target: jobs[other].target, releases: [jobs[index].release, jobs[other].release], same: same).description)
            }
        }
        if !problems.isEmpty { throw BatchError.preflight(problems) }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
