import Disk
import Foundation
import Host
import Versions

/// One install of a batch: a release onto a target.
public struct BatchJob: Equatable, Sendable, Codable {
    public var release: String
    public var target: String
    public init(release: String, target: String) { self.release = release; self.target = target }
}

/// Everything that stops a batch before anything is written. Lower-case, names
/// the thing in quotes, says what to do.
public enum BatchError: ToolError, Equatable {
    /// Bad arguments (the CLI turns it into a usage error, exit 64).
    case usage(String)
    case duplicateTarget(target: String, releases: [String], same: String)
    case targetRefused(release: String, target: String, reason: String)
    case noSummary(path: String, reason: String)
    case nothingToContinue(path: String)
    /// The summary file cannot be written (checked before any install starts, and at the end).
    case summaryNotWritable(path: String, reason: String)
    /// Every refusal of the preflight, one per line; nothing was written.
    case preflight([String])

    /// `noSummary`'s reason for a file that is not there.
    public static let missingSummaryReason = "no such file or not readable"

    public var failure: String {
        switch self {
        case let .usage(text): return text
        case let .duplicateTarget(target, releases, same): return "target '\(target)' is given twice (for \(releases.joined(separator: " and ")); \(same))"
        case let .targetRefused(release, target, _): return "\(release) -> '\(target)'"
        case let .noSummary(path, reason): return "--continue needs the summary of the last batch: cannot read '\(path)' (\(reason))"
        case let .summaryNotWritable(path, _): return "cannot write the batch summary '\(path)'"
        case let .nothingToContinue(path): return "nothing to continue: every install in '\(path)' succeeded"
        case .preflight: return "the batch was refused before anything was written"
        }
    }

    public var reason: String? {
        switch self {
        case let .targetRefused(_, _, reason), let .summaryNotWritable(_, reason): return reason
        // One refusal a line, under the first.
        case let .preflight(problems): return "\n" + problems.map { "  " + $0 }.joined(separator: "\n")
        default: return nil
        }
    }

    public var remedy: String? {
        switch self {
        case .duplicateTarget: return "give every install its own volume or image file"
        case .noSummary: return "give it with --summary FILE"
        case .summaryNotWritable: return "'batch --continue' needs it: give a writable path with --summary FILE"
        default: return nil
        }
    }
}

/// Pure functions turning batch arguments into a list of jobs.
public enum BatchPlan {
    /// `6.8,6.9`, `6.0-6.10` or a mix (`6.0-6.2,6.9`), in the order given; ranges follow versions.json's order.
    public static func expandReleases(_ text: String, known: [String]) throws -> [String] {
        var out: [String] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard !part.isEmpty else { throw BatchError.usage("empty release in '\(text)' (give a list like 6.8,6.9 or a range like 6.0-6.10)") }
            if let dash = part.firstIndex(of: "-") {
                let from = String(part[..<dash]), to = String(part[part.index(after: dash)...])
                guard let a = known.firstIndex(of: from) else { throw unknown(from, known) }
                guard let b = known.firstIndex(of: to) else { throw unknown(to, known) }
                guard a <= b else { throw BatchError.usage("release range '\(part)' runs backwards (write \(to)-\(from))") }
                out += known[a...b]
            } else {
                guard known.contains(part) else { throw unknown(part, known) }
                out.append(part)
            }
        }
        if let twice = firstDuplicate(out) {
            throw BatchError.usage(
                "release '\(twice)' is listed twice; to install one release onto several targets give explicit pairs (\(twice)=TARGET1 \(twice)=TARGET2)")
        }
        return out
    }

    static func unknown(_ release: String, _ known: [String]) -> BatchError {
        .usage("unknown release '\(release)' (known: \(known.joined(separator: ", ")))")
    }

    /// `RELEASE=TARGET` words; a release may appear several times (several volumes of one release).
    public static func parsePairs(_ words: [String], known: [String]) throws -> [BatchJob] {
        try words.map { word in
            guard let eq = word.firstIndex(of: "=") else {
                throw BatchError.usage("'\(word)' is not RELEASE=TARGET (e.g. 6.9=/dev/xvdf)")
            }
            let release = String(word[..<eq]), target = String(word[word.index(after: eq)...])
            guard known.contains(release) else { throw unknown(release, known) }
            guard !target.isEmpty else { throw BatchError.usage("'\(word)' names no target") }
            return BatchJob(release: release, target: target)
        }
    }

    /// `--targets`: comma-separated targets, one per release in order; or one
    /// directory, in which `centos6-<release>.img` is made for each release.
    public static func pairTargets(releases: [String], targets: [String], isDirectory: (String) -> Bool) throws -> [BatchJob] {
        guard !releases.isEmpty else { throw BatchError.usage("no release given") }
        if targets.count == 1, isDirectory(targets[0]) {
            let dir = targets[0].hasSuffix("/") && targets[0].count > 1 ? String(targets[0].dropLast()) : targets[0]
            return releases.map { BatchJob(release: $0, target: "\(dir)/centos6-\($0).img") }
        }
        guard targets.count == releases.count else {
            throw BatchError.usage(
                "\(releases.count) release(s) (\(releases.joined(separator: ", "))) but \(targets.count) target(s); give one target per release, or one directory for image files"
            )
        }
        return zip(releases, targets).map { BatchJob(release: $0, target: $1) }
    }

    /// Splits `--targets a,b` (and repeated `--targets`) into paths.
    public static func splitTargets(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    /// Default parallelism: one job per core, at most one per 2 GiB of memory
    /// (chroot yum, dracut and the tmpfs yum cache), never more than there are jobs.
    public static func defaultJobs(cores: Int, memoryBytes: UInt64, count: Int) -> Int {
        let byMemory = max(1, Int(memoryBytes / (2 << 30)))
        return max(1, min(cores, byMemory, count))
    }

    /// The identity of a target: the keys of `TargetIdentity` (what it is,
    /// not how it is named: device numbers, the file's device and inode, the
    /// directory entry after symlinks). Two targets are one when a key is shared.
    public static func identity(_ target: TargetKind) -> [String] { TargetIdentity.keys(target) }

    /// The first pair of jobs sharing an identity key, as (first index, second index).
    public static func duplicate(identities: [[String]]) -> (Int, Int)? {
        var seen: [String: Int] = [:]
        for (index, keys) in identities.enumerated() {
            if let first = keys.lazy.compactMap({ seen[$0] }).first { return (first, index) }
            for key in keys where seen[key] == nil { seen[key] = index }
        }
        return nil
    }

    static func firstDuplicate(_ items: [String]) -> String? {
        var seen = Set<String>()
        for item in items { if !seen.insert(item).inserted { return item } }
        return nil
    }

    /// `--continue`: the jobs of the last batch that did not succeed, in their order.
    public static func retry(_ summary: BatchSummary) -> [BatchJob] {
        summary.results.filter { $0.result != InstallResult.ok }.map { BatchJob(release: $0.release, target: $0.target) }
    }

    /// `--continue`'s summary: the earlier rows, each re-run one replaced by its new result.
    public static func merge(_ earlier: [InstallResult], rerun: [InstallResult]) -> [InstallResult] {
        var pending = rerun
        return earlier.map { row in
            guard row.result != InstallResult.ok,
                let i = pending.firstIndex(where: { $0.release == row.release && $0.target == row.target })
            else { return row }
            return pending.remove(at: i)
        }
    }

    /// The printed mapping, one line per job.
    public static func renderMapping(_ jobs: [BatchJob], ena: [Bool]) -> String {
        let width = jobs.map(\.release.count).max() ?? 4
        return jobs.enumerated().map { index, job in
            "  " + job.release.padding(toLength: width, withPad: " ", startingAt: 0) + " -> " + job.target + (ena[index] ? "  (with ENA)" : "")
        }.joined(separator: "\n")
    }
}

/// A step line of a child install's stderr: `[  12.3s] [4/19] download: ...`.
public struct BatchProgress: Equatable, Sendable {
    public var elapsed: Double
    public var index: Int
    public var total: Int
    public var step: String

    public static func parse(_ line: String) -> BatchProgress? {
        // "[" spaces seconds "s] [" n "/" total "] " step ":"
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return nil }
        let secondsText = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
        guard secondsText.hasSuffix("s"), let elapsed = Double(secondsText.dropLast()) else { return nil }
        let rest = line[line.index(after: close)...].drop { $0 == " " }
        guard rest.hasPrefix("["), let close2 = rest.firstIndex(of: "]") else { return nil }
        let counts = rest[rest.index(after: rest.startIndex)..<close2].split(separator: "/")
        guard counts.count == 2, let index = Int(counts[0]), let total = Int(counts[1]) else { return nil }
        let after = rest[rest.index(after: close2)...].drop { $0 == " " }
        guard let colon = after.firstIndex(of: ":") else { return nil }
        let step = String(after[..<colon])
        guard !step.isEmpty, !step.contains(" ") else { return nil }
        return BatchProgress(elapsed: elapsed, index: index, total: total, step: step)
    }
}
