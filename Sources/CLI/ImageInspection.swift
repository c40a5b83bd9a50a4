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
                throw AMIError.imageCheckFailed(image: image, check: check.name, reason: "\(error)")
            }
        }
    }

    /// A built image boots a kernel from /boot.
    static func requireKernel(root: String) throws {
        let kernels = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }
        guard !kernels.isEmpty else {
            throw AMIError.noKernelInImage
        }
    }

    /// `IMAGE.manifest.json` next to `IMAGE.img` (install writes it there).
    static func defaultManifestPath(image: String) -> String {
        let base = image.hasSuffix(".img") ? String(image.dropLast(4)) : image
        return base + ".manifest.json"
    }

    /// `IMAGE.spdx.json` next to `IMAGE.img` (install writes it there).
    static func defaultSBOMPath(image: String) -> String {
        (image.hasSuffix(".img") ? String(image.dropLast(4)) : image) + ".spdx.json"
    }
}
