import Foundation
import Host
import RPM

/// A package whose signature checked out against the pinned key. Only
/// `SignatureVerifier.verified(_:)` makes one, and only a `VerifiedRPM` can be
/// extracted: "nothing unverified is unpacked" is a property of the types.
public struct VerifiedRPM: Sendable {
    public let rpm: RPMFile
    public let report: VerificationReport
    fileprivate init(rpm: RPMFile, report: VerificationReport) { self.rpm = rpm; self.report = report }
    /// Only `verifiedUsingRecords`: a verification remembered for this very blob (VerificationRecords.swift).
    init(remembered rpm: RPMFile, report: VerificationReport) { self.rpm = rpm; self.report = report }
}

extension SignatureVerifier {
    /// Verifies header AND payload (a header-only file fails here) and returns the token extraction needs.
    public func verified(_ rpm: RPMFile) throws -> VerifiedRPM {
        let report = try verify(rpm, allowHeaderOnly: false)
        guard report.payloadVerified else { throw RPMError.payloadMissing(file: rpm.path, expected: rpm.signedSize ?? 0, available: rpm.fileSize) }
        return VerifiedRPM(rpm: rpm, report: report)
    }
}

public enum Payload {
    /// The host command that decompresses a payload with this PAYLOADCOMPRESSOR to stdout.
    public static func decompressor(_ compressor: String, file: String) throws -> Command {
        switch compressor {
        case "xz", "lzma": return Command("xz", ["-dc"]) // xz -d reads .lzma too (format auto-detected)
        case "gzip": return Command("gzip", ["-dc"])
        case "bzip2": return Command("bzip2", ["-dc"])
        case "zstd": return Command("zstd", ["-dc", "-q"])
        case "identity", "none", "": return Command("cat")
        default: throw RPMError.unsupportedPayload(file: file, reason: "compressor '\(compressor)'")
        }
    }

    /// Extracts a verified package's files into `root` (an existing directory).
    /// - Important: writes into ROOT, replacing files the package contains.
    @discardableResult
    public static func extract(_ package: VerifiedRPM, into root: String, options: ExtractOptions = ExtractOptions(), log: Log? = nil) throws -> ExtractReport {
        try extractUnverified(package.rpm, into: root, options: options, log: log)
    }

    /// The extraction itself, without the verification token (tests of the
    /// reader, and the integration comparison with rpm2cpio). Not public: every
    /// caller outside this module goes through `extract(_ VerifiedRPM...)`.
    static func extractUnverified(_ rpm: RPMFile, into root: String, options: ExtractOptions, log: Log?) throws -> ExtractReport {
        try rpm.checkPayloadPresent()
        guard rpm.payloadFormat == "cpio" else {
            throw RPMError.unsupportedPayload(file: rpm.path, reason: "format '\(rpm.payloadFormat)' (only cpio)")
        }
        let command = try decompressor(rpm.payloadCompressor, file: rpm.path)
        var report = ExtractReport()
        let outcome = try HostPipe.run(command, inputFile: rpm.path, offset: rpm.payloadOffset, log: log) { fd in
            let extractor = try CpioExtractor(root: root, input: fd, file: rpm.path, options: options)
            report = try extractor.extract()
        }
        guard outcome.status == 0 else {
            throw RPMError.tool(
                name: command.executable,
                reason:
                    "decompressing the payload of '\(rpm.path)' failed (exit \(outcome.status)): \(outcome.standardError.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        return report
    }
}
