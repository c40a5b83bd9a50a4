import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Host
import Versions

/// What one install reports for a batch (`install --result-json FILE`, and
/// one row of the batch summary).
public struct InstallResult: Codable, Equatable, Sendable {
    public static let ok = "ok"
    public static let failed = "failed"
    public static let interrupted = "interrupted"
    public static let notRun = "not-run"

    public var release: String
    public var target: String
    public var kernel: String
    /// kmod-ena was asked for (eligible releases with `--ena` only).
    public var ena: Bool
    /// ok, failed, interrupted or not-run.
    public var result: String
    public var seconds: Double
    /// Used bytes of the filesystem (only when the install got that far).
    public var bytesOnVolume: UInt64?
    public var log: String?
    public var error: String?
    /// Where the image boots: `xen,nitro`, `xen`, ... (BootVerdict.bootsOn), and why not elsewhere.
    public var bootsOn: String?
    public var bootReasons: [String]?

    public init(
        release: String, target: String, kernel: String, ena: Bool, result: String, seconds: Double,
        bytesOnVolume: UInt64? = nil, log: String? = nil, error: String? = nil, bootsOn: String? = nil, bootReasons: [String]? = nil
    ) {
        self.release = release; self.target = target; self.kernel = kernel; self.ena = ena; self.result = result
        self.seconds = seconds; self.bytesOnVolume = bytesOnVolume; self.log = log; self.error = error
        self.bootsOn = bootsOn; self.bootReasons = bootReasons
    }

    /// Writes the JSON atomically (a batch reads it after the child exits).
    public func write(to path: String) throws {
        do { try AtomicFile.write(BatchJSON.encode(self), to: path) } catch {
            throw BatchError.summaryNotWritable(path: path, reason: (error as? HostError)?.reason ?? (error as NSError).localizedDescription)
        }
    }

    public static func read(path: String) -> InstallResult? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(InstallResult.self, from: data)
    }
}

/// The batch's JSON file (`--summary`): the rows plus what `--continue` needs to run again.
public struct BatchSummary: Codable, Equatable, Sendable {
    public var schema = 1
    public var started: String
    public var seconds: Double
    public var jobs: Int
    /// The options passed to every install (mirror, key, cache, ...): `--continue` reuses them.
    public var installArguments: [String]
    public var results: [InstallResult]

    public init(started: String, seconds: Double, jobs: Int, installArguments: [String], results: [InstallResult]) {
        self.started = started; self.seconds = seconds; self.jobs = jobs; self.installArguments = installArguments; self.results = results
    }

    public var succeeded: Bool { !results.isEmpty && results.allSatisfy { $0.result == InstallResult.ok } }

    /// Writes the summary with every URL password redacted (`user:***@`), in the
    /// install arguments and in every row's error alike: the file outlives the
    /// run and is shared; `--continue` takes passwords again (`continueArguments`).
    public func write(to path: String) throws {
        do {
            let text = redactCredentials(String(decoding: try BatchJSON.encode(self), as: UTF8.self))
            try AtomicFile.write(Data(text.utf8), to: path)
        } catch {
            throw BatchError.summaryNotWritable(path: path, reason: (error as? HostError)?.reason ?? (error as NSError).localizedDescription)
        }
    }

    /// The environment variable `--continue` fills a redacted mirror password from.
    public static let passwordVariable = "CENTOS6_AMI_MIRROR_PASSWORD"

    /// `--continue`'s install arguments: `given` (this command line's) when
    /// there are any, else the summary's `saved` ones, whose URL passwords
    /// were redacted on writing: each `user:***@` gets `password` (from
    /// `CENTOS6_AMI_MIRROR_PASSWORD`) back; without it, an error saying how to give it.
    public static func continueArguments(saved: [String], given: [String], password: String?) throws -> [String] {
        guard given.isEmpty else { return given }
        return try saved.map { word in
            guard word.contains(":***@"), word.contains("://") else { return word }
            guard let password, !password.isEmpty else {
                throw BatchError.usage(
                    "the last batch's '\(word)' had a password, which the summary does not keep; set \(passwordVariable) to it, or give the install options again with --continue (the --mirror with its password)"
                )
            }
            // Percent-encoded as a URL's userinfo needs it (an '@' or ':' in the password).
            var allowed = CharacterSet.urlUserAllowed
            allowed.remove(charactersIn: ":@/")
            let encoded = password.addingPercentEncoding(withAllowedCharacters: allowed) ?? password
            return word.replacingOccurrences(of: ":***@", with: ":" + encoded + "@")
        }
    }

    /// Whether `path` can take the summary: its directory must let us make (and so
    /// rename over) a file, and `path` must not be a directory. Leaves nothing behind.
    public static func checkWritable(path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw BatchError.summaryNotWritable(path: path, reason: "it is a directory")
        }
        let probe = (path as NSString).deletingLastPathComponent + "/.\((path as NSString).lastPathComponent).check-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BatchError.summaryNotWritable(path: path, reason: String(cString: strerror(errno))) }
        close(fd)
        unlink(probe)
    }

    public static func read(path: String) throws -> BatchSummary {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatchError.noSummary(path: path, reason: BatchError.missingSummaryReason)
        }
        do { return try JSONDecoder().decode(BatchSummary.self, from: data) } catch {
            throw BatchError.noSummary(path: path, reason: "not a batch summary: \(JSONProblem(error))")
        }
    }

    /// The table printed at the end.
    public func renderTable() -> String {
        let header = ["RELEASE", "TARGET", "KERNEL", "ENA", "BOOTS ON", "RESULT", "TIME", "BYTES ON VOLUME", "LOG"]
        let rows = results.map { r in
            [
                r.release, r.target, r.kernel, r.ena ? "yes" : "no", r.bootsOn ?? "-", r.result,
                String(format: "%.1f s", r.seconds), r.bytesOnVolume.map { String($0) } ?? "-", r.log ?? "-",
            ]
        }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        var lines = [line(header)] + rows.map(line)
        for r in results where r.result != InstallResult.ok {
            lines.append("\(r.release) -> \(r.target): \(r.result)\(r.error.map { ": " + $0 } ?? "")")
        }
        let ok = results.filter { $0.result == InstallResult.ok }.count
        lines.append(String(format: "%d of %d installs succeeded in %.1f s (%d at a time)", ok, results.count, seconds, jobs))
        return lines.joined(separator: "\n")
    }
}

enum BatchJSON {
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value) + Data("\n".utf8)
    }
}
