import Foundation
import Host

/// Command lines of the build inside the scratch build root. Every command
/// runs under `env -i` with a fixed PATH, so nothing of the builder's
/// environment (CC, CFLAGS, MAKEFLAGS, ARCH...) reaches the build root's gcc.
public enum KBuild {
    public static let path = "/usr/sbin:/usr/bin:/sbin:/bin"

    /// The kernel-devel tree of `kernelRelease` inside the build root.
    public static func kernelDevelDirectory(_ kernelRelease: String) -> String { "/usr/src/kernels/\(kernelRelease)" }

    static func clean(_ arguments: [String]) -> Command {
        Command("env", ["-i", "PATH=\(path)", "HOME=/root", "LC_ALL=C"] + arguments)
    }

    /// The ENA Makefile's own interface: `BUILD_KERNEL` names the kernel and
    /// `KERNEL_BUILD_DIR` its build tree, so `uname -r` (the builder's kernel) is never asked.
    public static func make(sourceDirectory: String, kernelRelease: String, jobs: Int = 2) -> Command {
        clean([
            "make", "-C", sourceDirectory, "-j\(max(1, jobs))",
            "BUILD_KERNEL=\(kernelRelease)", "KERNEL_BUILD_DIR=\(kernelDevelDirectory(kernelRelease))",
        ])
    }

    /// The rpmbuild directories under `topdir`.
    public static func rpmTree(_ topdir: String) -> [String] {
        ["BUILD", "BUILDROOT", "RPMS", "SOURCES", "SPECS", "SRPMS"].map { topdir + "/" + $0 }
    }

    public static func rpmbuild(spec: String, topdir: String) -> Command {
        clean(["rpmbuild", "-bb", "--define", "_topdir \(topdir)", spec])
    }

    /// `vermagic=` of a module's .modinfo section.
    public static func vermagic(ofModule data: Data) -> String? { modinfo("vermagic", ofModule: data) }

    /// One `KEY=value` of a module's .modinfo section (what `modinfo -F KEY`
    /// prints): the strings are NUL-separated, and a key counts only at a string start.
    public static func modinfo(_ field: String, ofModule data: Data) -> String? {
        let key = Array((field + "=").utf8)
        let bytes = [UInt8](data)
        guard bytes.count > key.count else { return nil }
        var i = 0
        while i + key.count <= bytes.count {
            if bytes[i] == key[0], (i == 0 || bytes[i - 1] == 0), Array(bytes[i..<(i + key.count)]) == key {
                var end = i + key.count
                while end < bytes.count, bytes[end] != 0 { end += 1 }
                return String(decoding: bytes[(i + key.count)..<end], as: UTF8.self)
            }
            i += 1
        }
        return nil
    }

    /// Whether a module's `version=` is the pinned release: amzn-drivers'
    /// ena_netdev.h builds DRV_MODULE_GENERATION as "<major>.<minor>.<subminor>g"
    /// (the "g" marks the GitHub release), so 2.9.1's module says "2.9.1g".
    public static func isPinnedVersion(_ moduleVersion: String, pinned: String) -> Bool {
        moduleVersion == pinned || moduleVersion == pinned + "g"
    }

    /// `UTS_RELEASE` of a kernel tree's utsrelease.h: the release a module built against it carries.
    public static func utsRelease(header text: String) -> String? {
        for line in text.split(separator: "\n") where line.contains("UTS_RELEASE") {
            let parts = line.split(separator: "\"")
            if parts.count >= 2 { return String(parts[1]) }
        }
        return nil
    }

    /// Where kernel trees keep utsrelease.h (2.6.33+ / 2.6.32).
    public static let utsReleaseHeaders = ["include/generated/utsrelease.h", "include/linux/utsrelease.h"]

    /// The kernel release a vermagic starts with.
    public static func release(ofVermagic vermagic: String) -> String {
        String(vermagic.split(separator: " ").first ?? "")
    }
}
