import Foundation
import Host

/// What can stop an install, each case naming its problem with its data; the
/// text is `Host.ToolError`'s (`failure: reason; remedy`). A step's name is
/// added by `StepFailed`.
public enum InstallError: ToolError {
    /// A step failed because a filesystem is full (`filesystem` when we know which).
    case noSpace(filesystem: String?, detail: String)
    /// The download cache (`--cache`) cannot be written.
    case cacheNotWritable(path: String, reason: String)
    /// `--gpg-key` is not an armored key (the chroot's `rpm --import` and yum's gpgkey= need one).
    case gpgKeyNotArmored(path: String)
    /// `losetup --show` printed something else than a loop device.
    case notALoopDevice(printed: String)
    /// An undo failed while a step unwound part of the cleanup stack (the stack's line for it).
    case undoFailed(String)
    /// The repository has no comps group file (`groupinstall Core` needs it).
    case noCompsGroupFile(repository: String)
    /// The repository has no package of the kernel the install pins (GA, or with --updates the updates kernel).
    case kernelMissing(package: String, updates: Bool, release: String)
    /// A package failed its checksum or signature check.
    case packageRejected(file: String, mirror: String, cause: any Error)
    /// After install-packages, the target's rpm database lacks the pinned kernel.
    case kernelNotInstalled(kernel: String, rpmOutput: String)
    /// After install-packages, the target holds postfix.
    case postfixInstalled
    /// A file the configure step edits was not installed by its package.
    case imageFileMissing(path: String)
    /// The image has no grub stage files to copy into /boot/grub.
    case noGrubStageFiles
    /// `grub --batch`'s `setup (hd0)` did not say it succeeded.
    case grubSetupFailed(output: String)
    /// The repository lacks a package the ENA build root needs (the resolver's line for it).
    case enaBuildRootPackageMissing(String)
    /// The repository has no kernel-devel of the pinned kernel.
    case kernelDevelMissing(package: String)
    /// The ENA build root is still there after its teardown.
    case buildRootNotRemoved(path: String)
    /// depmod in the target did not take kmod-ena's module for `ena`.
    case enaModuleNotPicked(modulesDep: [String])
    /// A tree to remove still has mounts below it.
    case stillMounted(path: String, mounts: [String])

    public var failure: String {
        switch self {
        case let .noSpace(filesystem, _): return "no space left on \(filesystem.map { "'\($0)'" } ?? "a filesystem the install writes to")"
        case let .cacheNotWritable(path, _): return "the download cache --cache '\(path)' cannot be written"
        case let .gpgKeyNotArmored(path): return "--gpg-key '\(path)' must be an armored public key (gpg --armor --export)"
        case let .notALoopDevice(printed): return "losetup printed '\(printed)' instead of a loop device"
        case let .undoFailed(undo): return undo
        case let .noCompsGroupFile(repository): return "repository '\(repository)' has no comps group file (yum groupinstall Core needs it)"
        case let .kernelMissing(package, updates, release):
            return "the repository has no '\(package)' (the \(updates ? "updates" : "GA") kernel for \(release))"
        case let .packageRejected(file, mirror, _): return "package '\(file)' from \(mirror)"
        case let .kernelNotInstalled(kernel, _): return "kernel-\(kernel) is not installed"
        case .postfixInstalled: return "postfix was installed despite --exclude=postfix"
        case let .imageFileMissing(path): return "'\(path)' is missing from the image (its package should have installed it)"
        case .noGrubStageFiles: return "no grub stage files under /usr/share/grub in the image (is the grub package installed?)"
        // grub's own lines follow on lines of their own.
        case let .grubSetupFailed(output): return "grub setup (hd0) did not succeed:\n" + output
        case .enaBuildRootPackageMissing: return "the repository lacks what the ENA build root needs"
        case let .kernelDevelMissing(package): return "the repository has no '\(package)' (the headers of the pinned kernel)"
        case let .buildRootNotRemoved(path): return "the build root '\(path)' could not be removed"
        case let .enaModuleNotPicked(lines): return "depmod in the target did not pick extra/ena/ena.ko for 'ena' (modules.dep: \(lines))"
        case let .stillMounted(path, mounts): return "'\(path)' still has mounts (\(mounts.joined(separator: ", ")))"
        }
    }

    public var reason: String? {
        switch self {
        case let .cacheNotWritable(_, reason): return reason
        case let .packageRejected(_, _, cause): return "\(cause)"
        case let .kernelNotInstalled(_, output): return output
        case let .enaBuildRootPackageMissing(missing): return missing
        default: return nil
        }
    }

    public var remedy: String? {
        switch self {
        case let .noSpace(_, detail):
            return "free some space there (or put the image, the cache or the yum cache elsewhere) and run again (\(detail))"
        case .cacheNotWritable: return "name a writable directory with --cache"
        case .buildRootNotRemoved: return "see the log"
        case .stillMounted: return "not removing it"
        default: return nil
        }
    }
}
