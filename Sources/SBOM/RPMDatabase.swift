import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// The rpm query both `install` (the image's own rpm, in the chroot) and `inspect`
/// (the builder's rpm on a private copy of the image's database) run, and its parser.
public enum RPMQuery {
    /// One package a line, tab-separated. Every tag exists in EL6's rpm 4.8 as in 4.18
    /// (SHA256HEADER does not: 4.8 would refuse the whole query).
    public static let format = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t%{VENDOR}\\t%{SHA1HEADER}\\n"

    /// Parses `rpm -qa --qf format`; `(none)` is absent. gpg-pubkey entries (imported keys,
    /// not packages) are left out. Lines of the old five-field form (name to arch) are read too.
    public static func parse(_ text: String) -> [SBOMPackage] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map { $0 == "(none)" ? nil : String($0) }
            guard f.count == 5 || f.count == 8, let name = f[0], name != "gpg-pubkey" else { return nil }
            func field(_ i: Int) -> String? { i < f.count ? f[i] : nil }
            return SBOMPackage(
                name: name, epoch: field(1).flatMap { Int($0) }, version: field(2) ?? "", release: field(3) ?? "",
                arch: field(4) ?? "", license: field(5), vendor: field(6), headerSHA1: field(7))
        }
    }
}

/// Why an image's rpm database could not be read.
public enum RPMDatabaseError: ToolError, Equatable {
    /// The image has no database directory (`path`), or its links lead out of the image.
    case noDirectory(path: String)
    /// The directory holds neither a sqlite nor a Berkeley DB database.
    case noDatabase(path: String)
    case cannotReadImageFile(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// The builder's rpm failed on the copy (`stderr`: the start of what it said).
    case rpmFailed(backend: String, stderr: String)
    case noPackages(backend: String)
    /// Neither the database nor /etc/redhat-release names the image's CentOS release.
    case unknownRelease(image: String)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .noDirectory(path):
            return ("the image has no directory \(path) (or its links lead nowhere inside it)", nil, "is it a CentOS image?")
        case let .noDatabase(path):
            return ("the image's \(path) holds no rpm database (neither rpmdb.sqlite nor Packages)", nil, "is it a CentOS image?")
        case let .cannotReadImageFile(path, reason):
            return ("cannot read the image's '\(path)'", reason, nil)
        case let .cannotWrite(path, reason):
            return ("cannot write '\(path)'", reason, nil)
        case let .rpmFailed(backend, stderr):
            return (
                "the builder's rpm could not read the image's rpm database (\(backend))", stderr,
                "install Debian's 'rpm' package (4.16 or later, with bdb_ro)"
            )
        case let .noPackages(backend):
            return ("the image's rpm database (\(backend)) lists no packages", nil, nil)
        case let .unknownRelease(image):
            return ("cannot tell the CentOS release of '\(image)'", "its rpm database has no centos-release package and /etc/redhat-release names none", nil)
        }
    }
}

/// Reads an image's rpm database without trusting the image: the directory is found
/// inside the image's root (a symlink is followed as the image would, never out of it:
/// `Host.ImageRoot`),
/// only its regular files are copied into a private directory of ours, and the
/// builder's rpm reads that copy. Debian's rpm 4.18 reads the sqlite database of rpm
/// 4.16+ and, read-only, the Berkeley DB `Packages` of EL6's rpm 4.8 (its `bdb_ro` backend).
public enum RPMDatabase {
    /// Where rpm keeps it in every CentOS 6 image.
    public static let path = "/var/lib/rpm"

    public enum Backend: String, Sendable {
        /// rpm 4.16 and later: `rpmdb.sqlite`.
        case sqlite
        /// Berkeley DB (rpm 4.8 of CentOS 6): `Packages`, read by rpm's read-only reader.
        case bdbReadOnly = "bdb_ro"
    }

    /// Which backend a database directory's files are: sqlite wins when both are present
    /// (rpm 4.16's conversion leaves the old `Packages` behind).
    public static func backend(files: [String]) -> Backend? {
        if files.contains("rpmdb.sqlite") { return .sqlite }
        if files.contains("Packages") { return .bdbReadOnly }
        return nil
    }

    /// The builder's rpm querying the database copied into `dbpath`: the backend is named,
    /// not guessed, and no configuration of the host's decides it.
    public static func query(dbpath: String, backend: Backend) -> Command {
        Command("rpm", ["--dbpath", dbpath, "--define", "_db_backend \(backend.rawValue)", "-qa", "--qf", RPMQuery.format])
    }

    /// Copies the regular files of the image's rpm database directory into `into` (which
    /// must exist, ours); anything else in it (a symlink, a device, a directory) is skipped,
    /// so nothing outside the image is read. Returns the backend its files are.
    public static func copy(root: String, into: String) throws -> Backend {
        // Host.ImageRoot: a symlink on the way (`/var/lib/rpm -> /etc`) resolves inside the image.
        var st = stat()
        guard let dir = ImageRoot.hostPath(path, in: root), lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw RPMDatabaseError.noDirectory(path: path)
        }
        var copied: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let file = dir + "/" + name
            guard lstat(file, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            try copyRegular(file, to: into + "/" + name)
            copied.append(name)
        }
        guard let backend = backend(files: copied) else {
            throw RPMDatabaseError.noDatabase(path: path)
        }
        return backend
    }

    /// Opens with O_NOFOLLOW: a file swapped for a symlink after the check is not followed.
    static func copyRegular(_ from: String, to: String) throws {
        let input = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw RPMDatabaseError.cannotReadImageFile(path: from, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let output = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw RPMDatabaseError.cannotWrite(path: to, reason: String(cString: strerror(errno))) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else { throw RPMDatabaseError.cannotReadImageFile(path: from, reason: String(cString: strerror(errno))) }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + done, n - done) }
                guard w > 0 else { throw RPMDatabaseError.cannotWrite(path: to, reason: String(cString: strerror(errno))) }
                done += w
            }
        }
    }

    /// Every package of the image mounted (or extracted) at `root`, read through a private
    /// copy of its database in a fresh directory (`Host.TemporaryDirectory`, recorded in
    /// `journal` so `cleanup --local` removes it after a kill), removed again.
    public static func packages(root: String, runner: CommandRunner, journal: RunJournal? = nil) throws -> [SBOMPackage] {
        let copyDir = try TemporaryDirectory.make("rpmdb")
        journal?.record(.scratch(copyDir))
        defer { TemporaryDirectory.remove(copyDir) }
        let backend = try copy(root: root, into: copyDir)
        let result = runner.run(query(dbpath: copyDir, backend: backend))
        guard result.status == 0 else {
            throw RPMDatabaseError.rpmFailed(
                backend: backend.rawValue,
                stderr: String(result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300)))
        }
        let packages = RPMQuery.parse(result.stdoutText)
        guard !packages.isEmpty else { throw RPMDatabaseError.noPackages(backend: backend.rawValue) }
        return packages
    }
}

/// Which CentOS release an image is, for its SBOM's purls (`distro=centos-6.9`).
public enum ImageRelease {
    /// From the rpm database: `centos-release-6-9.el6.12.3` is 6.9 (VERSION, then RELEASE's first number).
    public static func from(packages: [SBOMPackage]) -> String? {
        guard let package = packages.first(where: { $0.name == "centos-release" }),
            let minor = package.release.split(separator: ".").first, Int(minor) != nil, Int(package.version) != nil
        else { return nil }
        return "\(package.version).\(minor)"
    }

    /// From `/etc/redhat-release` (`CentOS release 6.9 (Final)`), read inside the image; only the number is kept.
    public static func from(root: String) -> String? {
        guard let text = ImageRoot.text("/etc/redhat-release", in: root, limit: 4096),
            let range = text.range(of: #"release [0-9]+\.[0-9]+"#, options: .regularExpression)
        else { return nil }
        return String(text[range].dropFirst("release ".count))
    }
}
