import Foundation
import SBOM

/// The SBOMs `install` writes next to the manifest (`IMAGE.spdx.json`, `IMAGE.cdx.json`):
/// the same packages, the rpm database's, with what the install alone knows added: each
/// package file's verified sha256 (the manifest's) and where kmod-ena was built from.
public enum BuildSBOM {
    /// `IMAGE.spdx.json` / `IMAGE.cdx.json` next to an image file (`.img` dropped), else next to the log.
    public static func path(imageFile: String?, logPath: String, format: SBOMFormat) -> String {
        BuildManifest.basePath(imageFile: imageFile, logPath: logPath) + format.fileSuffix
    }

    /// The image's name in the SBOMs: the file name the paths start with (`c69`).
    public static func imageName(imageFile: String?, logPath: String) -> String {
        (BuildManifest.basePath(imageFile: imageFile, logPath: logPath) as NSString).lastPathComponent
    }

    /// The SBOM input of a build (pure): `installed` is the rpm database as the install read
    /// it, `manifest` gives each package file's sha256, `kmodENA` the package built here.
    public static func input(
        imageName: String, manifest: BuildManifest, installed: [InstalledPackage], kmodENA: (source: BuiltSource, rpmSHA256: String?)?,
        created: Date, serial: UUID
    ) -> SBOMInput {
        var sha256: [String: String] = [:]
        for package in manifest.packages { sha256[package.nevra] = package.sha256 }
        let packages = installed.map { p -> SBOMPackage in
            var package = SBOMPackage(
                name: p.name, epoch: p.epoch == 0 ? nil : p.epoch, version: p.version, release: p.release, arch: p.arch,
                license: p.license, vendor: p.vendor, headerSHA1: p.headerSHA1, fileSHA256: sha256[p.nevra] ?? nil)
            if p.name == "kmod-ena", let kmod = kmodENA {
                package.builtHere = kmod.source
                package.fileSHA256 = kmod.rpmSHA256
            }
            return package
        }
        return SBOMInput(
            imageName: imageName, release: manifest.release, kernel: manifest.kernel, toolVersion: manifest.toolVersion,
            created: created, serial: serial, packages: packages)
    }
}

extension InstallContext {
    /// This build's SBOM input (after a successful pipeline and its manifest).
    public func sbomInput(imageName: String, manifest: BuildManifest, created: Date = Date(), serial: UUID = UUID()) throws -> SBOMInput {
        let pin = versions.ena
        let kmod =
            try enaInstalled
            ? (
                source: BuiltSource(name: "amzn-drivers ena_linux", version: pin.version, url: pin.url, archiveSHA256: try enaSource.archiveSHA256),
                rpmSHA256: try enaInstall.rpmSHA256
            )
            : nil
        return BuildSBOM.input(imageName: imageName, manifest: manifest, installed: try imagePackages, kmodENA: kmod, created: created, serial: serial)
    }
}
