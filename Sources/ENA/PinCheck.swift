import Foundation
import Host

/// One way a source tree differs from its pinned list.
public enum PinProblem: Equatable, Sendable, CustomStringConvertible {
    /// A pinned file is not in the tree.
    case missing(String)
    /// A file the pin does not list. Fatal: kbuild reads files nobody named
    /// (a `Kbuild` beside the Makefile takes precedence over it; a stray `.h`
    /// shadows a kernel header through `-I$(src)`), so an extra file can
    /// change what is compiled without touching any pinned file.
    case extra(String)
    case different(String, expected: String, actual: String)
    /// A symlink, device, fifo or socket: never compiled, whatever it points to.
    case notARegularFile(String)

    public var description: String {
        switch self {
        case let .missing(path): return "missing: '\(path)'"
        case let .extra(path): return "extra file (not in the pinned list): '\(path)'"
        case let .different(path, expected, actual): return "different: '\(path)' has sha256 \(actual), pinned \(expected)"
        case let .notARegularFile(path): return "not a regular file: '\(path)'"
        }
    }
}

/// The pin check: every file of the source directory against the sha256 list,
/// before anything is compiled. Hashing is the host's `sha256sum` (debug Swift
/// builds hash slowly); the comparison is pure.
public enum PinCheck {
    /// Pure: the problems, sorted by path (empty: the tree is exactly the pinned one).
    public static func problems(pinned: [String: String], actual: [String: String], nonRegular: [String] = []) -> [PinProblem] {
        var found: [(String, PinProblem)] = []
        let odd = Set(nonRegular)
        for path in odd { found.append((path, .notARegularFile(path))) }
        for (path, sum) in pinned where !odd.contains(path) {
            guard let have = actual[path] else { found.append((path, .missing(path))); continue }
            if have.lowercased() != sum.lowercased() { found.append((path, .different(path, expected: sum, actual: have))) }
        }
        for path in actual.keys where pinned[path] == nil && !odd.contains(path) { found.append((path, .extra(path))) }
        return found.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Every entry below `directory`, relative to it: regular files, and the
    /// rest (symlinks, devices...). Directories are walked, not listed; a
    /// symlinked directory is "the rest" and never followed.
    public static func listTree(_ directory: String) throws -> (files: [String], other: [String]) {
        let fm = FileManager.default
        var files: [String] = [], other: [String] = []
        func walk(_ relative: String) throws {
            let full = relative.isEmpty ? directory : directory + "/" + relative
            let names: [String]
            do { names = try fm.contentsOfDirectory(atPath: full) } catch {
                throw ENAError.cannotList(path: full, reason: error.localizedDescription)
            }
            for name in names.sorted() {
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(directory + "/" + path, &info) == 0 else { other.append(path); continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: try walk(path)
                case S_IFREG:
                    // sha256sum escapes such names; they have no business in a driver tree.
                    if path.contains("\n") || path.contains("\\") { other.append(path) } else { files.append(path) }
                default: other.append(path)
                }
            }
        }
        try walk("")
        return (files, other)
    }

    /// `sha256sum -z` over the files (absolute paths; -z: NUL-terminated records, no name escaping).
    public static func hashCommand(directory: String, files: [String]) -> Command {
        Command("sha256sum", ["-z", "--"] + files.map { directory + "/" + $0 })
    }

    /// Parses `sha256sum -z` output back into relative path -> sum.
    public static func parseHashes(_ output: Data, directory: String) -> [String: String] {
        var sums: [String: String] = [:]
        for record in output.split(separator: 0) {
            let text = String(decoding: record, as: UTF8.self)
            guard text.count > 66 else { continue }
            let sum = String(text.prefix(64))
            var path = String(text.dropFirst(66)) // "<64 hex>  path" or "<64 hex> *path"
            if path.hasPrefix(directory + "/") { path = String(path.dropFirst(directory.count + 1)) }
            sums[path] = sum
        }
        return sums
    }

    /// Hashes the source directories of the tree at `root` with `runner` and
    /// returns the problems against `pinned` (paths relative to `root`, as in
    /// versions.json). A directory that is missing leaves its pinned files
    /// missing; one reached through a symlink or a non-directory is itself a
    /// problem and is never entered.
    public static func check(root: String, directories: [String], pinned: [String: String], runner: CommandRunner) throws -> [PinProblem] {
        var files: [String] = [], other: [String] = []
        for directory in directories {
            if let odd = firstNonDirectory(root: root, directory: directory) {
                if odd.exists { other.append(odd.path) }
                continue
            }
            let tree = try listTree(root + "/" + directory)
            files += tree.files.map { directory + "/" + $0 }
            other += tree.other.map { directory + "/" + $0 }
        }
        var actual: [String: String] = [:]
        if !files.isEmpty {
            let result = try runner.checked(hashCommand(directory: root, files: files))
            actual = parseHashes(result.standardOutput, directory: root)
        }
        return problems(pinned: pinned, actual: actual, nonRegular: Array(Set(other)))
    }

    /// The first component of `directory` (below `root`) that is not a real
    /// directory: absent (`exists` false) or a symlink, file or device.
    static func firstNonDirectory(root: String, directory: String) -> (path: String, exists: Bool)? {
        var path = ""
        for component in directory.split(separator: "/") {
            path = path.isEmpty ? String(component) : path + "/" + component
            var info = stat()
            guard lstat(root + "/" + path, &info) == 0 else { return (path, false) }
            if info.st_mode & S_IFMT != S_IFDIR { return (path, true) }
        }
        return nil
    }

    /// Reads a `sha256sum` list ("<sum>  <path>" lines); `stripPrefix` (e.g.
    /// "kernel/linux/ena/") is removed from paths that carry it.
    public static func parseList(_ text: String, stripPrefix: String = "") -> [String: String] {
        var pins: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].count == 64 else { continue }
            var path = parts[1].trimmingCharacters(in: .whitespaces)
            if path.hasPrefix("*") { path.removeFirst() }
            if !stripPrefix.isEmpty, path.hasPrefix(stripPrefix) { path = String(path.dropFirst(stripPrefix.count)) }
            pins[path] = String(parts[0]).lowercased()
        }
        return pins
    }
}
