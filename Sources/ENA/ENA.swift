// The ENA module: the pure parts of building Amazon's ENA driver for
// a CentOS 6 kernel. Eligibility, the per-file pin check of the source tree,
// the kmod-ena spec and the kbuild/rpmbuild command lines. The steps that run
// them (build root, install into the target) live in Install/ENASteps.swift.
import Foundation
import Host
import Versions

public enum ENAError: Error, CustomStringConvertible, Equatable {
    case notEligible(release: String, version: String, reason: String)
    case source(String)
    case pinMismatch(source: String, problems: [PinProblem])
    case build(String)

    public var description: String {
        switch self {
        case let .notEligible(release, version, reason):
            return "ENA \(version) cannot be built for CentOS \(release): \(reason); install without --ena, or pick a release from 6.6 to 6.10"
        case let .source(text):
            return "ENA source: \(text)"
        case let .pinMismatch(source, problems):
            let shown = problems.prefix(20).map { "  " + $0.description }.joined(separator: "\n")
            let more = problems.count > 20 ? "\n  ... and \(problems.count - 20) more" : ""
            return "ENA source '\(source)' does not match the pinned sha256 list (\(problems.count) problem(s)); refusing to compile it (get the genuine release archive):\n\(shown)\(more)"
        case let .build(text):
            return "ENA build: \(text)"
        }
    }
}

/// Eligibility comes from versions.json alone: the refusal names its reason.
public enum ENAEligibility {
    public static func check(_ release: VersionsFile.Release, pin: VersionsFile.ENAPin) throws {
        guard release.ena.eligible else {
            throw ENAError.notEligible(release: release.release, version: pin.version, reason: release.ena.reason ?? "versions.json marks it not eligible")
        }
    }
}
