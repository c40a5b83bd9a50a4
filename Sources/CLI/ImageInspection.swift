import AMI
import Foundation
import Host
#if canImport(Glibc)
import Glibc
#endif

/// Looks into a built image file read-only before `register` uploads it.
enum ImageInspection {
    /// One check of the image's root filesystem (mounted read-only at the path it gets); throws to refuse.
    typealias Check = (name: String, run: (_ root: String) throws -> Void)

    /// Every check an image file passes before any AWS call, in order. The image's hygiene
    /// gate (what a boot or a human left) and its boot verdict (xen/nitro) belong in this list.
    nonisolated(unsafe) static var checks: [Check] = [("kernel", requireKernel)]

    /// Runs `checks` on the mounted root; the first refusal names the image and the check.
    static func runChecks(root: String, image: String) throws {
        for check in checks {
            do { try check.run(root) } catch {
                throw AMIError.badTarget("image '\(image)' failed the '\(check.name)' check: \(error)")
            }
        }
    }

    /// A built image boots a kernel from /boot.
    static func requireKernel(root: String) throws {
        let kernels = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }
        guard !kernels.isEmpty else {
            throw AMIError.badTarget("no kernel ('boot/vmlinuz-*') in it; is it an image built by 'centos6-ami install'?")
        }
    }

    /// `IMAGE.manifest.json` next to `IMAGE.img` (install writes it there).
    static func defaultManifestPath(image: String) -> String {
        let base = image.hasSuffix(".img") ? String(image.dropLast(4)) : image
        return base + ".manifest.json"
    }

    /// Byte offset of the first partition in an msdos label (the layout install makes): the
    /// 0x55AA signature, then entry 1 at 446 with its start LBA (little-endian) at +8, in 512-byte sectors.
    static func firstPartitionOffset(mbr: [UInt8]) throws -> Int64 {
        guard mbr.count >= 512, mbr[510] == 0x55, mbr[511] == 0xAA else {
            throw AMIError.badTarget("no msdos partition table (not an image built by 'centos6-ami install'?)")
        }
        let lba = (0..<4).reduce(UInt32(0)) { $0 | UInt32(mbr[446 + 8 + $1]) << (8 * UInt32($1)) }
        let type = mbr[446 + 4]
        guard lba > 0, type != 0 else { throw AMIError.badTarget("partition 1 is empty in the partition table") }
        return Int64(lba) * 512
    }

    /// Runs `body` with the image's first partition mounted read-only (no journal replay: not
    /// one byte of the image changes) on a private directory; always unmounts.
    static func withRootMounted<T>(image: String, runner: any CommandRunner, _ body: (String) throws -> T) throws -> T {
        guard let handle = FileHandle(forReadingAtPath: image) else {
            throw AMIError.imageUnreadable(path: image, reason: "cannot open it")
        }
        let mbr = [UInt8]((try? handle.read(upToCount: 512)) ?? Data())
        try? handle.close()
        let offset: Int64
        do { offset = try firstPartitionOffset(mbr: mbr) } catch { throw AMIError.badTarget("image '\(image)': \(error)") }
        let dir = try RegisterCommand.makeTemporaryDirectory(prefix: "centos6-ami-image-check")
        defer { rmdir(dir) }
        // mount sets up a read-only loop device for the file itself and frees it at umount.
        try runner.checked(Command("mount", ["-o", "ro,noload,offset=\(offset)", "-t", "ext4", image, dir]))
        defer { _ = runner.run(Command("umount", [dir])) }
        return try body(dir)
    }
}
