// The ENA module: the pure parts of building Amazon's ENA driver for
// a CentOS 6 kernel. Eligibility, the per-file pin check of the source tree,
// the kmod-ena spec and the kbuild/rpmbuild command lines. The steps that run
// them (build root, install into the target) live in Install/ENASteps.swift.
import Foundation
import Host
import Versions

public enum ENAError: ToolError, Equatable {
    case notEligible(release: String, version: String, reason: String)
    /// `--ena-source` names nothing.
    case sourceMissing(path: String)
    /// A source directory lacks one of the directories the build reads (`needed`).
    case sourceIncomplete(directory: String, absent: String, needed: [String])
    case buildDirectoryThroughSymlink(String)
    case noBuildDirectory(String)
    case cannotList(path: String, reason: String)
    case pinMismatch(source: String, problems: [PinProblem])
    /// The build root's kernel-devel package left no kernel tree.
    case kernelTreeMissing(kernel: String, directory: String)
    case noModule(name: String)
    case noVermagic(module: String)
    case noUTSRelease(kernelTree: String)
    case vermagicMismatch(vermagic: String, kernelRelease: String)
    case versionMismatch(built: String, pinned: String)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .notEligible(release, version, reason):
            return ("ENA \(version) cannot be built for CentOS \(release)", reason, "install without --ena, or pick a release from 6.6 to 6.10")
        case let .sourceMissing(path):
            return ("ENA source: '\(path)' does not exist (give the ena_linux release .tar.gz or an extracted amzn-drivers directory)", nil, nil)
        case let .sourceIncomplete(directory, absent, needed):
            return (
                "ENA source: '\(directory)' has no '\(absent)' directory (the ENA build reads \(needed.joined(separator: " and ")))", nil,
                "give the top of an amzn-drivers tree, or the release .tar.gz"
            )
        case let .buildDirectoryThroughSymlink(directory):
            return ("ENA source: '\(directory)' is reached through a symlink in the source", nil, "refusing it")
        case let .noBuildDirectory(directory):
            return ("ENA source: no '\(directory)' directory in the source (expected an amzn-drivers tree or release archive)", nil, nil)
        case let .cannotList(path, reason):
            return ("ENA source: cannot list '\(path)'", reason, nil)
        case let .pinMismatch(source, problems):
            // The problems are a block of lines below the failure.
            let shown = problems.prefix(20).map { "  " + $0.description }.joined(separator: "\n")
            let more = problems.count > 20 ? "\n  ... and \(problems.count - 20) more" : ""
            return (
                "ENA source '\(source)' does not match the pinned sha256 list (\(problems.count) problem(s)); refusing to compile it (get the genuine release archive)",
                "\n\(shown)\(more)", nil
            )
        case let .kernelTreeMissing(kernel, directory):
            return ("ENA build: kernel-devel-\(kernel) did not install '\(directory)' in the build root", nil, nil)
        case let .noModule(name):
            return ("ENA build: kbuild made no '\(name)' (the Makefile must build a module named ena)", nil, nil)
        case let .noVermagic(module):
            return ("ENA build: '\(module)' has no vermagic", nil, nil)
        case let .noUTSRelease(kernelTree):
            return ("ENA build: no utsrelease.h in '\(kernelTree)'", nil, nil)
        case let .vermagicMismatch(vermagic, kernelRelease):
            return ("ENA build: ena.ko's vermagic '\(vermagic)' does not match the kernel tree's release '\(kernelRelease)'", nil, nil)
        case let .versionMismatch(built, pinned):
            return ("ENA build: ena.ko says version '\(built)', but versions.json pins ENA \(pinned)", nil, nil)
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
