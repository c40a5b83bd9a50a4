import Foundation

/// What the target's rpm needs to run in the scratch tools root (PackageSteps.bootstrap):
/// the package holding the rpm binary, the packages holding rpm's configuration, and,
/// round by round, the packages holding the shared objects those ELF files load
/// (PT_INTERP and DT_NEEDED, plus rpm's dlopen'ed plugins). Package requires are a far
/// larger set (rpm's build scripts pull in perl, libarchive pulls in ICU): every package
/// taken here is decompressed twice (here and by rpm into the target), so only these.
public struct RPMRuntime: Sendable {
    /// One bootstrap package's file list (from its verified header).
    public struct Package: Sendable, Equatable {
        public var location: String
        public var name: String
        public var files: [String]
        public init(location: String, name: String, files: [String]) { self.location = location; self.name = name; self.files = files }
    }

    public let packages: [Package]
    /// Library basename → (package location, path), for the first package that ships it in a lib directory.
    let libraries: [String: (location: String, path: String)]

    public init(packages: [Package]) {
        self.packages = packages
        var libraries: [String: (location: String, path: String)] = [:]
        for package in packages {
            for path in package.files where Self.isLibraryPath(path) {
                let base = (path as NSString).lastPathComponent
                if libraries[base] == nil { libraries[base] = (package.location, path) }
            }
        }
        self.libraries = libraries
    }

    /// A file in a directory the dynamic loader searches (`/lib64`, `/usr/lib/x86_64-linux-gnu`, ...).
    static func isLibraryPath(_ path: String) -> Bool {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.split(separator: "/").contains { $0.hasPrefix("lib") }
    }

    /// rpm's binary (`/bin/rpm` on CentOS 6, `/usr/bin/rpm` elsewhere).
    static func isRPMBinary(_ path: String) -> Bool { path == "/bin/rpm" || path == "/usr/bin/rpm" }
    /// rpm reads these at start (rpmrc, macros) and dlopens its plugins.
    static func isRPMConfiguration(_ path: String) -> Bool { path == "/usr/lib/rpm/rpmrc" || path == "/usr/lib/rpm/macros" }
    static func isRPMPlugin(_ path: String) -> Bool { path.contains("/rpm-plugins/") && path.hasSuffix(".so") }

    /// The first round: `filesystem` (its directory layout, symlinks included, comes
    /// first), the rpm binary's package and rpm's configuration; and the ELF files to
    /// follow once they are unpacked. Throws when no package holds rpm.
    public func firstRound() throws -> (locations: [String], elfFiles: [String]) {
        guard let rpm = packages.first(where: { $0.files.contains(where: Self.isRPMBinary) }) else {
            throw RPMRuntimeError.noRPMBinary
        }
        var locations = packages.filter { $0.name == "filesystem" }.map(\.location)
        for package in packages where package.location == rpm.location || package.files.contains(where: Self.isRPMConfiguration) {
            if !locations.contains(package.location) { locations.append(package.location) }
        }
        let chosen = Set(locations)
        let elf = packages.filter { chosen.contains($0.location) }.flatMap { $0.files.filter { Self.isRPMBinary($0) || Self.isRPMPlugin($0) } }
        return (locations, elf)
    }

    /// The next round: for the ELF files just read (their needed names), the packages
    /// not yet unpacked that hold them and the library paths to read next.
    /// Throws for a needed library no bootstrap package holds (rpm could not run).
    public func nextRound(needed: [String: [String]], unpacked: Set<String>, read: Set<String>) throws -> (locations: [String], elfFiles: [String]) {
        var locations: [String] = [], files: [String] = []
        for (file, names) in needed.sorted(by: { $0.key < $1.key }) {
            for name in names {
                let base = (name as NSString).lastPathComponent
                guard let owner = libraries[base] else { throw RPMRuntimeError.libraryNotInBootstrapSet(library: name, neededBy: file) }
                if !unpacked.contains(owner.location) && !locations.contains(owner.location) { locations.append(owner.location) }
                if !read.contains(owner.path) && !files.contains(owner.path) { files.append(owner.path) }
            }
        }
        return (locations, files)
    }
}

extension RPMRuntime {
    /// `path` inside `root` with every symlink on the way resolved inside `root` too
    /// (an absolute link such as `/lib64/ld-linux-x86-64.so.2 -> /lib/...` must not
    /// lead to the builder's own file). Gives up after 40 links, as the kernel does.
    public static func resolve(_ path: String, inRoot root: String) -> String {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            if component == ".." { _ = resolved.popLast(); continue }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: root + candidate), links < 40 {
                links += 1
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
            } else {
                resolved.append(component)
            }
        }
        return "/" + resolved.joined(separator: "/")
    }
}

public enum RPMRuntimeError: Error, CustomStringConvertible, Equatable {
    case noRPMBinary
    case libraryNotInBootstrapSet(library: String, neededBy: String)

    public var description: String {
        switch self {
        case .noRPMBinary: return "no bootstrap package holds /bin/rpm or /usr/bin/rpm"
        case let .libraryNotInBootstrapSet(library, file): return "'\(file)' needs '\(library)', which no bootstrap package holds"
        }
    }
}

/// The dynamic dependencies of an ELF file: its interpreter (PT_INTERP) and the
/// DT_NEEDED names. Only what the loader itself reads; anything that is not a
/// 64-bit little-endian ELF (a script, a linker script named like a library) has none.
public enum ELFDependencies {
    public static func of(file path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return of(data)
    }

    public static func of(_ data: Data) -> [String] {
        let bytes = [UInt8](data)
        func u16(_ at: Int) -> Int? { at >= 0 && at + 2 <= bytes.count ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : nil }
        func u32(_ at: Int) -> Int? {
            guard at >= 0, at + 4 <= bytes.count else { return nil }
            return (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) }
        }
        func u64(_ at: Int) -> UInt64? {
            guard at >= 0, at + 8 <= bytes.count else { return nil }
            return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
        }
        func string(_ at: Int) -> String? {
            guard at >= 0, at < bytes.count, let end = bytes[at...].firstIndex(of: 0) else { return nil }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }
        // \x7fELF, ELFCLASS64, ELFDATA2LSB.
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46, bytes[4] == 2, bytes[5] == 1,
              let phoff = u64(0x20), let phentsize = u16(0x36), let phnum = u16(0x38), phentsize >= 56 else { return [] }
        struct Segment { var type: Int; var offset: UInt64; var vaddr: UInt64; var filesz: UInt64 }
        var segments: [Segment] = []
        for index in 0..<phnum {
            let at = Int(clamping: phoff) + index * phentsize
            guard let type = u32(at), let offset = u64(at + 8), let vaddr = u64(at + 16), let filesz = u64(at + 32) else { return [] }
            segments.append(Segment(type: type, offset: offset, vaddr: vaddr, filesz: filesz))
        }
        var names: [String] = []
        if let interp = segments.first(where: { $0.type == 3 }), let path = string(Int(clamping: interp.offset)) { names.append(path) }
        guard let dynamic = segments.first(where: { $0.type == 2 }) else { return names }
        var needed: [UInt64] = [], strtab: UInt64?
        var at = Int(clamping: dynamic.offset)
        let end = at + Int(clamping: dynamic.filesz)
        while at + 16 <= end, let tag = u64(at), let value = u64(at + 8), tag != 0 {
            if tag == 1 { needed.append(value) }        // DT_NEEDED
            if tag == 5 { strtab = value }              // DT_STRTAB (an address)
            at += 16
        }
        // The string table's address, mapped to its file offset through the PT_LOAD that holds it.
        guard let strtab, let load = segments.first(where: { $0.type == 1 && $0.vaddr <= strtab && strtab < $0.vaddr + $0.filesz }) else { return names }
        let base = strtab - load.vaddr + load.offset
        names += needed.compactMap { string(Int(clamping: base + $0)) }
        return names
    }
}
