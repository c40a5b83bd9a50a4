import Foundation

extension Mounts {
    /// A /proc file read to its end: procfs hands out about a page per read(),
    /// so a single read (String(contentsOfFile:)) can miss the rest.
    public static func procText(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }
}
