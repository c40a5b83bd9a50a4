import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// The download cache on the builder (never on the target volume),
/// content-addressed by the checksum the repository metadata gives:
///
///     <root>/blobs/sha256/<hex>            verified files, read-only (0444)
///     <root>/blobs/sha1/<hex>              (old repos' `sha` checksums)
///     <root>/blobs/<kind>/.<hex>.partial   a download in progress or interrupted (resumable)
///     <root>/locks/<kind>-<hex>.lock       per-blob flock(2) lock files (never deleted)
///     <root>/metadata/<release>-<mirror>/  per-release metadata, for the pipeline's use
///
/// Why it is safe to share between threads, processes and batch jobs:
/// - a blob appears only by rename(2) of a complete, verified, fsynced temp
///   file in the same directory, so nobody ever sees a torn blob;
/// - writers of one blob serialise on its lock file with flock(2), which
///   excludes other processes and other open descriptions in this process
///   alike (so two threads also exclude each other); the kernel drops the lock
///   if the holder dies, so there are no stale locks;
/// - a waiter re-checks for the blob after taking the lock, so two jobs that
///   need the same package at the same moment download it once.
/// Because blobs are verified before they are admitted, a hit needs only a size check.
public final class DownloadCache: Sendable {
    public let root: URL
    /// How long to wait for a blob's lock another process holds before giving up
    /// (`FileLock.waitForLock`): a stuck holder must not hang every other install.
    public let lockWait: TimeInterval
    /// Told once per wait, after a few seconds, which lock and which process holds it.
    public let lockNotice: (@Sendable (String) -> Void)?

    /// Opens (creating if needed) the cache at `root`. `lockWait` defaults to
    /// `CENTOS6_AMI_LOCK_WAIT` (seconds; `FileLock.defaultWait` when unset).
    public init(
        root: URL, lockWait: TimeInterval? = nil, lockNotice: (@Sendable (String) -> Void)? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        self.root = root.standardizedFileURL
        self.lockWait = try lockWait ?? FileLock.waitLimit(environment: environment).get()
        self.lockNotice = lockNotice
        for dir in ["blobs/sha256", "blobs/sha1", "locks", "metadata"] {
            let path = self.root.appendingPathComponent(dir).path
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw FetchError.io(path: path, reason: "cannot create the download cache directory (\(error.localizedDescription))")
            }
        }
    }

    /// Where the verified blob for `checksum` lives (whether or not it is there yet).
    public func path(for checksum: Checksum) -> URL {
        root.appendingPathComponent("blobs/\(checksum.kind.rawValue)/\(checksum.hex)")
    }

    /// The resumable partial download of `checksum` (only touched under its lock).
    func partialPath(for checksum: Checksum) -> URL {
        root.appendingPathComponent("blobs/\(checksum.kind.rawValue)/.\(checksum.hex).partial")
    }

    func lockPath(for checksum: Checksum) -> String {
        root.appendingPathComponent("locks/\(checksum.kind.rawValue)-\(checksum.hex).lock").path
    }

    /// True when the verified blob is present (and has `size` bytes, when given).
    public func contains(_ checksum: Checksum, size: Int64? = nil) -> Bool {
        var st = stat()
        guard stat(path(for: checksum).path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        return size == nil || Int64(st.st_size) == size
    }

    /// A directory for one release's metadata from one mirror (created), e.g.
    /// `metadata/6.9-3f2a9c1d0b4e`. The mirror is part of the key because the
    /// test vault and the real vault both have a "6.9".
    public func metadataDirectory(release: String, mirror: URL) throws -> URL {
        let key = Checksum.of(Data(mirror.absoluteString.utf8), kind: .sha256).hex.prefix(12)
        let safeRelease = release.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }
        let dir = root.appendingPathComponent("metadata/\(safeRelease)-\(key)")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw FetchError.io(path: dir.path, reason: "cannot create (\(error.localizedDescription))")
        }
        return dir
    }

    /// Runs `body` holding the per-blob lock of `checksum`. Waits for another
    /// holder (another thread, process or batch job) by polling a non-blocking
    /// flock every 50 ms so that SIGINT is noticed while waiting; says after a
    /// few seconds who holds it and gives up after `lockWait` (FileLock.swift).
    public func withLock<T>(_ checksum: Checksum, _ body: () throws -> T) throws -> T {
        let path = lockPath(for: checksum)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FetchError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try FileLock.waitForLock(fd: fd, path: path, timeout: lockWait, notice: lockNotice)
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// The blob's lock if nobody holds it now (a descriptor to pass to `unlock`), else nil.
    func tryLock(_ checksum: Checksum) -> Int32? {
        let fd = open(lockPath(for: checksum), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { close(fd); return nil }
        return fd
    }

    func unlock(_ fd: Int32) {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Moves a complete, verified temp file into place as the blob of `checksum`:
    /// fsync the file, make it read-only, rename(2) in the same directory. The
    /// directory is not fsynced per file (on a busy disk that second flush cost
    /// as much as the first): after a crash a blob's name may be missing, never
    /// its content, and a missing blob is only downloaded again. Callers hold the blob's lock.
    @discardableResult
    func admit(_ temp: URL, as checksum: Checksum) throws -> URL {
        let target = path(for: checksum)
        let fd = open(temp.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FetchError.io(path: temp.path, reason: String(cString: strerror(errno))) }
        let synced = fsync(fd) == 0
        let syncError = errno
        close(fd)
        guard synced else { throw FetchError.io(path: temp.path, reason: "fsync failed: \(String(cString: strerror(syncError)))") }
        chmod(temp.path, 0o444)
        guard rename(temp.path, target.path) == 0 else {
            throw FetchError.io(path: target.path, reason: "cannot move the verified file into the cache: \(String(cString: strerror(errno)))")
        }
        return target
    }

    /// Stores bytes already in memory (e.g. metadata fetched elsewhere) after checking them.
    @discardableResult
    public func store(_ data: Data, as checksum: Checksum) throws -> URL {
        let actual = Checksum.of(data, kind: checksum.kind)
        guard actual == checksum else {
            throw FetchError.checksumMismatch(
                url: "(memory)", file: path(for: checksum).lastPathComponent, expected: checksum.description, actual: actual.description)
        }
        return try withLock(checksum) {
            if contains(checksum, size: Int64(data.count)) { return path(for: checksum) }
            let temp = partialPath(for: checksum)
            do { try data.write(to: temp) } catch { throw FetchError.io(path: temp.path, reason: error.localizedDescription) }
            return try admit(temp, as: checksum)
        }
    }

    /// Every partial download left by interrupted runs (they are resumed on the next fetch).
    public func partialFiles() -> [URL] {
        Checksum.Kind.allCases.flatMap { kind -> [URL] in
            let dir = root.appendingPathComponent("blobs/\(kind.rawValue)")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { $0.hasPrefix(".") && $0.hasSuffix(".partial") }.map { dir.appendingPathComponent($0) }
        }
    }
}
