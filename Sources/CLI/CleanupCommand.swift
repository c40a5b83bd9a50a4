import AMI
import Foundation
import Host
import Install

/// What `cleanup` was given, as its options declare it.
struct CleanupArguments {
    var local = false
    var buildID: String?
    var regions: [String] = []
    var endpointURL: String?
    var dryRun = false
    var log: String?
}

struct CleanupCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    static let options = Options<CleanupArguments>(
        [
            .flag("--local", \.local, help: "undo what dead runs left on this host (takes no other option but --log)").checked { values in
                values.buildID != nil || values.dryRun ? "--local takes no other option but --log" : nil
            },
            .text("--build-id", "ID", \.buildID, help: "the build to remove (required without --local)") { id in
                RegisterOptions.isValidBuildID(id) ? nil : "build id '\(id)' is not one register makes"
            },
            .list("--region", "R", \.regions, help: "a region to search; repeat for several (or R1,R2)"),
            .text("--endpoint-url", "URL", \.endpointURL, help: "passed to every aws call"),
            .flag("--dry-run", \.dryRun, help: "only list what would be removed"),
            .text("--log", "FILE", \.log, help: "the full log (default: none, progress on stderr)"),
        ], defaults: CleanupArguments())

    static let spec = CommandSpec(
        name: "cleanup",
        summary: "remove what a killed run left on this host (--local), or the AMIs and snapshots of a register run (--build-id)",
        forms: [UsageForm("--local | --build-id ID")],
        options: options.specs,
        about: """
            --local: every install and boot-test writes what it takes on this host (loop
            devices, mounts, tmpfs, work directories, image files it creates, its lock, its
            children) to a journal under /run/centos6-ami/journal/ the moment it takes it. For
            each run whose process is gone (kill -9, the OOM killer, a crash) this kills what
            still runs inside its chroots or was started by it, unmounts, detaches the loop
            devices, removes unfinished image files, its device nodes and work directories,
            releases the lock, and prints each action. Runs still alive are left alone.
            Exit 0 when nothing of a dead run is left (also when there was nothing to do).

            Every snapshot, AMI and copy 'register' makes is tagged centos6-ami:build-id=ID
            (the id is printed by 'register' and recorded in the results file). This finds
            them in each region given (default: AWS_REGION / the profile's region; name the
            --copy-to regions too), deregisters the AMIs and deletes the snapshots behind them.
            AMIs made from a tagged snapshot are found even if the run stopped before tagging them.
            """,
        notes: "exit status: 0 removed (or nothing found), 1 something could not be removed, 64 usage error.")
    static let usage = spec.usage

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try options.parse(arguments, usage: usage, positionals: noPositionals(usage)).values
        if args.local { return try runLocal(logPath: args.log, console: console) }
        guard let buildID = args.buildID else { throw UsageError("cleanup needs --build-id ID", usage: usage) }
        let log = try Log(path: args.log, progress: console.err)
        let runner = ProcessRunner(log: log)
        let client = EC2Client(context: AWSContext(endpointURL: args.endpointURL), runner: runner)
        var regions = args.regions.flatMap { $0.split(separator: ",").map(String.init) }
        if regions.isEmpty { regions = [try client.resolvedRegion(environment: console.environment)] }
        var failures: [String] = []
        var total = 0
        for region in regions {
            let found = try AMICleanup.find(buildID: buildID, region: region, client: client.inRegion(region))
            total += found.images.count + found.snapshots.count
            if found.isEmpty { console.err("nothing of build '\(buildID)' in '\(region)'"); continue }
            if args.dryRun {
                for id in found.images { console.out("\(region)\timage\t\(id)") }
                for id in found.snapshots { console.out("\(region)\tsnapshot\t\(id)") }
                continue
            }
            failures += AMICleanup.remove(found, client: client.inRegion(region), say: console.out)
        }
        guard failures.isEmpty else {
            for f in failures { console.err("error: could not remove \(f)") }
            return ExitCode.failure
        }
        if total == 0 { console.err("nothing to remove") }
        return ExitCode.success
    }

    /// `cleanup --local`: what dead runs left on this host, from their journals.
    static func runLocal(logPath: String?, console: Console) throws -> Int32 {
        guard geteuid() == 0 else { throw UsageError("cleanup --local needs root (it unmounts and detaches loop devices)", usage: usage) }
        let log = try Log(path: logPath, progress: console.err)
        let runner = ProcessRunner(log: log)
        runner.isUnwinding = true // cleanup commands run even after a ^C
        let workDirectory = console.tool.workDirectory
        let directory = RunJournal.directory(workDirectory: workDirectory)
        for live in RunJournal.all(in: directory) where !live.isDead() {
            console.out("run \(live.pid) (\(live.command)) is still running; left alone")
        }
        guard !RunJournal.dead(in: directory).isEmpty else {
            console.out("cleanup --local: nothing to do; no dead centos6-ami run left anything on this host")
            return ExitCode.success
        }
        let recovery = LocalRecovery(
            runner: runner,
            say: {
                log.write($0); console.out($0)
            })
        let (actions, problems) = recovery.run(journalDirectory: directory)
        guard problems.isEmpty else {
            console.err("error: cleanup --local could not undo \(problems.count) thing(s); fix them by hand and run it again:")
            for p in problems { console.err("  " + p) }
            return ExitCode.failure
        }
        console.out("cleanup --local: done (\(actions) action(s)); the host is clean")
        return ExitCode.success
    }

}
