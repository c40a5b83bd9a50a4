import Disk
import Foundation
import Host
import Install

/// inspect, boot-test and register read an image; one that an install is still
/// writing is refused, naming the install that holds it (its target lock).
enum BuildInProgress {
    struct Refusal: ToolError {
        var image: String
        var holder: String
        var failure: String { "'\(image)' is being built by a running install (\(holder))" }
        var remedy: String? { "wait for it to finish" }
    }

    /// Throws when a running install holds one of `image`'s target locks.
    static func refuse(_ image: String, lockDirectory: String = InstallOptions(release: "", target: "", mirror: "").lockDirectory) throws {
        guard let target = try? inspectTarget(image) else { return }
        for path in TargetIdentity.lockPaths(target, directory: lockDirectory) {
            if let holder = FileLock.holder(of: path) { throw Refusal(image: image, holder: holder) }
        }
    }
}
