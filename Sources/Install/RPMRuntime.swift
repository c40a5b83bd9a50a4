import Foundation
import Host
import RPM

/// What the target's rpm needs to run in the scratch tools root (PackageSteps.bootstrap,
/// and `centos6-ami rpm runtime`): the package holding the rpm binary, the packages
/// holding rpm's configuration, and, round by round,
/// - the packages holding the shared objects those ELF files load (PT_INTERP and
///   DT_NEEDED, plus rpm's dlopen'ed plugins), and
/// - the packages holding the shared libraries a package taken declares in its
///   Requires (`libsoftokn3.so()(64bit)`): what it loads at run time with dlopen, which
///   no ELF file names. CentOS 6's rpm 4.8 computes every digest and checks every
///   signature through NSS, and NSS dlopens its crypto module, libsoftokn3.so
///   (nss-softokn), which dlopens libfreebl3.so (nss-softokn-freebl); only nss's
///   Requires name them. Without them rpm says `SHA1 MD5 NOT OK` and refuses every package.
///
/// A library requirement that only the package's own programs explain (sqlite's
/// `libreadline.so.6()(64bit)` is /usr/bin/sqlite3's) is not followed: rpm runs none of
/// them. The rest of the Requires closure (glibc-common, perl for rpm's build scripts,
/// coreutils) stays out: every package taken here is decompressed twice (here and by
/// rpm into the target), so only these.
public struct RPMRuntime: Sendable {
    /// One candidate package's file list and Requires (from its verified header).
    public struct Package: Sendable, Equatable {
        public var location: String
        public var name: String
        public var files: [String]
        /// Requirement names as the header lists them (`libsoftokn3.so()(64bit)`, `nss-softokn(x86-64)`, `/bin/sh`).
        public var requires: [String]
        /// name-version-release.arch, for messages (the name when not given).
        public var nevra: String
        /// Sonames the package provides (from `libfoo.so.1()(64bit)` Provides).
        public var providedSonames: Set<String>
        public init(location: String, name: String, files: [String], requires: [String] = [], nevra: String? = nil, provides: [String] = []) {
            self.location = location; self.name = name; self.files = files; self.requires = requires; self.nevra = nevra ?? name
            self.providedSonames = Set(provides.compactMap(RPMRuntime.soname(ofRequirement:)))
        }
    }

    public let packages: [Package]
    /// Library basename → (package location, path), for the first package that ships it in a lib directory.
    let libraries: [String: (location: String, path: String)]
    let byLocation: [String: Package]

    public init(packages: [Package]) {
        self.packages = packages
        var libraries: [String: (location: String, path: String)] = [:]
        var byLocation: [String: Package] = [:]
        var providing = Set<String>() // basenames whose owner so far also Provides them
        for package in packages {
            if byLocation[package.location] == nil { byLocation[package.location] = package }
            for path in package.files where Self.isLibraryPath(path) {
                let base = (path as NSString).lastPathComponent
                // The first package shipping it, unless a later one also Provides it as a library
                // and the first does not (a -devel symlink is not the library).
                let provides = package.providedSonames.contains(base)
                if libraries[base] == nil || (provides && !providing.contains(base)) {
                    libraries[base] = (package.location, path)
                    if provides { providing.insert(base) }
                }
            }
        }
        self.libraries = libraries
        self.byLocation = byLocation
    }

    /// A file in a directory the dynamic loader searches (`/lib64`, `/usr/lib/x86_64-linux-gnu`, ...).
    static func isLibraryPath(_ path: String) -> Bool {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.split(separator: "/").contains { $0.hasPrefix("lib") }
    }

    /// A shared object by its name (`libnsspem.so`, `libc.so.6`), as opposed to a program.
    static func isSharedObjectName(_ path: String) -> Bool { (path as NSString).lastPathComponent.contains(".so") }

    /// rpm's binary (`/bin/rpm` on CentOS 6, `/usr/bin/rpm` elsewhere).
    static func isRPMBinary(_ path: String) -> Bool { path == "/bin/rpm" || path == "/usr/bin/rpm" }
    /// rpm reads these at start (rpmrc, macros) and dlopens its plugins.
    static func isRPMConfiguration(_ path: String) -> Bool { path == "/usr/lib/rpm/rpmrc" || path == "/usr/lib/rpm/macros" }
    static func isRPMPlugin(_ path: String) -> Bool { path.contains("/rpm-plugins/") && path.hasSuffix(".so") }

    /// The soname a 64-bit shared-library requirement names: `libsoftokn3.so()(64bit)` and
    /// `libfreebl3.so(NSSRAWHASH_3.12.3)(64bit)` give `libsoftokn3.so` / `libfreebl3.so`;
    /// package names, capabilities and file requirements give nil.
    public static func soname(ofRequirement requirement: String) -> String? {
        guard requirement.hasSuffix("(64bit)"), let open = requirement.firstIndex(of: "(") else { return nil }
        let name = String(requirement[..<open])
        guard name.contains(".so"), !name.contains("/"), !name.contains(" ") else { return nil }
        return name
    }

    /// The library requirements of `package` to follow: its 64-bit soname Requires,
    /// less the libraries it ships itself and those that only its own programs need
    /// (`programNeeds` minus `libraryNeeds`: the DT_NEEDED of its programs and of its
    /// shared objects). Pure; one requirement per soname, in header order.
    public static func runtimeLoads(of package: Package, programNeeds: Set<String>, libraryNeeds: Set<String>) -> [String] {
        let shipped = Set(package.files.map { ($0 as NSString).lastPathComponent })
        var seen = Set<String>(), loads: [String] = []
        for requirement in package.requires {
            guard let soname = soname(ofRequirement: requirement), !shipped.contains(soname),
                !(programNeeds.contains(soname) && !libraryNeeds.contains(soname)),
                seen.insert(soname).inserted
            else { continue }
            loads.append(requirement)
        }
        return loads
    }

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

    /// The next round: for the ELF files just read (their needed names) and the library
    /// requirements of the packages just unpacked (`loads`: package location → requirements,
    /// from `runtimeLoads`), the packages not yet unpacked that hold them and the library
    /// paths to read next. Throws for a library no candidate package holds (rpm could not run).
    public func nextRound(needed: [String: [String]], loads: [String: [String]] = [:], unpacked: Set<String>, read: Set<String>) throws -> (
        locations: [String], elfFiles: [String]
    ) {
        var locations: [String] = [], files: [String] = []
        func take(_ owner: (location: String, path: String)) {
            if !unpacked.contains(owner.location) && !locations.contains(owner.location) { locations.append(owner.location) }
            if !read.contains(owner.path) && !files.contains(owner.path) { files.append(owner.path) }
        }
        for (file, names) in needed.sorted(by: { $0.key < $1.key }) {
            for name in names {
                let base = (name as NSString).lastPathComponent
                guard let owner = libraries[base] else { throw RPMRuntimeError.libraryNotInBootstrapSet(library: name, neededBy: file) }
                take(owner)
            }
        }
        for (location, requirements) in loads.sorted(by: { $0.key < $1.key }) {
            for requirement in requirements {
                guard let soname = Self.soname(ofRequirement: requirement), let owner = libraries[soname] else {
                    throw RPMRuntimeError.requiredLibraryMissing(requirement: requirement, package: byLocation[location]?.nevra ?? location)
                }
                take(owner)
            }
        }
        return (locations, files)
    }

    /// Lays the runtime down in `root`, round by round: `unpack` is given each round's
    /// package locations (it verifies and extracts them into `root`); the ELF files and
    /// the unpacked packages' own files are then read from `root`. Returns every location
    /// unpacked, in order. The one loop both the bootstrap and `rpm runtime` run.
    public func lay(into root: String, unpack: ([String]) throws -> Void) throws -> [String] {
        var (locations, elfFiles) = try firstRound()
        var unpacked: [String] = [], read = Set<String>()
        while !locations.isEmpty || !elfFiles.isEmpty {
            try unpack(locations)
            unpacked += locations
            var needed: [String: [String]] = [:]
            for file in elfFiles {
                needed[file] = ELFDependencies.of(file: root + Self.resolve(file, inRoot: root))
                read.insert(file)
            }
            var loads: [String: [String]] = [:]
            for location in locations {
                guard let package = byLocation[location] else { continue }
                let own = Self.ownNeeds(of: package, root: root)
                let requirements = Self.runtimeLoads(of: package, programNeeds: own.programs, libraryNeeds: own.libraries)
                if !requirements.isEmpty { loads[location] = requirements }
            }
            (locations, elfFiles) = try nextRound(needed: needed, loads: loads, unpacked: Set(unpacked), read: read)
        }
        return unpacked
    }

    /// The DT_NEEDED names of an unpacked package's own ELF files, split into those of
    /// its programs and those of its shared objects (symlinks are skipped: their
    /// targets are files of the package too).
    static func ownNeeds(of package: Package, root: String) -> (programs: Set<String>, libraries: Set<String>) {
        var programs = Set<String>(), libraries = Set<String>()
        for path in package.files {
            let directory = resolve((path as NSString).deletingLastPathComponent, inRoot: root)
            let full = root + (directory == "/" ? "" : directory) + "/" + (path as NSString).lastPathComponent
            var info = stat()
            guard lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFREG, ELFDependencies.isELF(file: full) else { continue }
            let names = ELFDependencies.of(file: full).map { ($0 as NSString).lastPathComponent }
            if isSharedObjectName(path) { libraries.formUnion(names) } else { programs.formUnion(names) }
        }
        return (programs, libraries)
    }
}

extension RPMRuntime.Package {
    /// A package's file list and Requires, from its header.
    public init(rpm: RPMFile, location: String) {
        self.init(
            location: location, name: rpm.name, files: rpm.fileNames, requires: rpm.requires.map(\.name), nevra: rpm.nvra,
            provides: rpm.provides.map(\.name))
    }
}

extension RPMRuntime {
    /// `path` inside `root` with every symlink on the way resolved inside `root` too
    /// (an absolute link such as `/lib64/ld-linux-x86-64.so.2 -> /lib/...` must not
    /// lead to the builder's own file): `ImageRoot.resolve`; after too many links, the
    /// path as given (it then names nothing the loader would find either).
    public static func resolve(_ path: String, inRoot root: String) -> String {
        ImageRoot.resolve(path, inRoot: root) ?? path
    }
}

public enum RPMRuntimeError: ToolError, Equatable {
    case noRPMBinary
    case libraryNotInBootstrapSet(library: String, neededBy: String)
    case requiredLibraryMissing(requirement: String, package: String)

    /// Each message is one sentence (its parenthesis says what it means for the install).
    public var failure: String {
        switch self {
        case .noRPMBinary: return "no bootstrap package holds /bin/rpm or /usr/bin/rpm"
        case let .libraryNotInBootstrapSet(library, file): return "'\(file)' needs '\(library)', which no candidate package holds (rpm could not run)"
        case let .requiredLibraryMissing(requirement, package):
            return
                "'\(package)' requires '\(requirement)' (a library it loads at run time, named only in its Requires), which no candidate package holds (rpm could not run)"
        }
    }
}

/// The dynamic dependencies of an ELF file: its interpreter (PT_INTERP) and the
/// DT_NEEDED names. Only what the loader itself reads; anything that is not a
/// 64-bit little-endian ELF (a script, a linker script named like a library) has none.
public enum ELFDependencies {
    /// Whether the file starts with the ELF magic (read without loading the whole file).
    public static func isELF(file path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data([0x7F, 0x45, 0x4C, 0x46])
    }

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
            let phoff = u64(0x20), let phentsize = u16(0x36), let phnum = u16(0x38), phentsize >= 56
        else { return [] }
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
            if tag == 1 { needed.append(value) } // DT_NEEDED
            if tag == 5 { strtab = value } // DT_STRTAB (an address)
            at += 16
        }
        // The string table's address, mapped to its file offset through the PT_LOAD that holds it.
        guard let strtab, let load = segments.first(where: { $0.type == 1 && $0.vaddr <= strtab && strtab < $0.vaddr + $0.filesz }) else { return names }
        let base = strtab - load.vaddr + load.offset
        names += needed.compactMap { string(Int(clamping: base + $0)) }
        return names
    }
}
