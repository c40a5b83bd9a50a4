import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Writes that can fail without taking the process down. Foundation's
/// `FileHandle.write(_: Data)` traps when the write fails (a full disk,
/// stderr on /dev/full, a terminal that went away), which would kill an
/// install between a mount and its unmount. These return the errno instead.
public enum Output {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var _stderrFailure: String?

    /// Writes every byte to `fd` (retrying short writes and EINTR); 0 or the errno.
    @discardableResult
    public static func write(_ fd: Int32, _ data: Data) -> Int32 {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int32 in
            guard var p = raw.baseAddress else { return 0 }
            var left = raw.count
            while left > 0 {
                let n = Glibc.write(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { return EIO }
                p += n
                left -= n
            }
            return 0
        }
    }

    /// A line (or text) for stderr. A failure is remembered, never fatal: the run carries on.
    public static func stderr(_ text: String) {
        let failure = write(2, Data(text.utf8))
        if failure != 0 {
            lock.withLock { if _stderrFailure == nil { _stderrFailure = String(cString: strerror(failure)) } }
        }
    }

    /// Why stderr could not be written (nil while it works), for the log.
    public static var stderrFailure: String? { lock.withLock { _stderrFailure } }
}
