import Foundation
import Host

public enum InstallError: Error, CustomStringConvertible {
    /// A step's own check failed (the step's name is added by `StepFailed`).
    case failed(String)
    /// A step needs what an earlier one makes, and that step has not run.
    case notYetMade(String, by: String)
    /// A step failed because a filesystem is full (`filesystem` when we know which).
    case noSpace(filesystem: String?, detail: String)
    /// The download cache (`--cache`) cannot be written.
    case cacheNotWritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .failed(reason): return reason
        case let .notYetMade(what, step): return "no \(what) yet: the '\(step)' step makes it (a step list out of order)"
        case let .noSpace(filesystem, detail):
            return "no space left on \(filesystem.map { "'\($0)'" } ?? "a filesystem the install writes to"); free some space there (or put the image, the cache or the yum cache elsewhere) and run again (\(detail))"
        case let .cacheNotWritable(path, reason):
            return "the download cache --cache '\(path)' cannot be written: \(reason); name a writable directory with --cache"
        }
    }
}
