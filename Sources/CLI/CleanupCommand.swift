import AMI
import Foundation
import Host

struct CleanupCommand {
    static let subcommand = Subcommand(name: name, summary: summary, usage: usage, help: help, run: run)
    static let name = "cleanup"
    static let summary = "remove the AMIs and snapshots a register run left behind, found by its build id tag"
    static let usage = "usage: centos6-ami cleanup --build-id ID [--region R]... [--endpoint-url URL] [--dry-run] [--log FILE]"
    static let help = """
    Every snapshot, AMI and copy 'register' makes is tagged centos6-ami:build-id=ID
    (the id is printed by 'register' and recorded in the results file). This finds
    them in each region given (default: AWS_REGION / the profile's region; name the
    --copy-to regions too), deregisters the AMIs and deletes the snapshots behind them.
    AMIs made from a tagged snapshot are found even if the run stopped before tagging them.

    options:
      --build-id ID        the build to remove (required)
      --region R           a region to search; repeat for several (or R1,R2)
      --endpoint-url URL   passed to every aws call
      --dry-run            only list what would be removed
      --log FILE           the full log (default: none, progress on stderr)

    exit status: 0 removed (or nothing found), 1 something could not be removed, 64 usage error.
    """

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try parseArguments(arguments, flags: ["--dry-run"], options: ["--build-id", "--region", "--endpoint-url", "--log"],
                                      repeatable: ["--region"], usage: usage)
        guard args.positionals.isEmpty else { throw UsageError("unexpected argument '\(args.positionals[0])'", usage: usage) }
        guard let buildID = args.value("--build-id") else { throw UsageError("cleanup needs --build-id ID", usage: usage) }
        guard RegisterOptions.isValidBuildID(buildID) else { throw UsageError("build id '\(buildID)' is not one register makes", usage: usage) }
        let log = try Log(path: args.value("--log"), progress: console.err)
        let runner = ProcessRunner(log: log)
        let client = EC2Client(context: AWSContext(endpointURL: args.value("--endpoint-url")), runner: runner)
        var regions = (args.values["--region"] ?? []).flatMap { $0.split(separator: ",").map(String.init) }
        if regions.isEmpty { regions = [try client.resolvedRegion(environment: console.environment)] }
        var failures: [String] = []
        var total = 0
        for region in regions {
            let found = try AMICleanup.find(buildID: buildID, region: region, client: client.inRegion(region))
            total += found.images.count + found.snapshots.count
            if found.isEmpty { console.err("nothing of build '\(buildID)' in '\(region)'"); continue }
            if args.has("--dry-run") {
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
}
