import Foundation
import Host
import RPM
import Versions

/// Where an image boots on EC2, read from the built filesystem (never from the
/// versions table): for the default kernel of the image, which of the drivers
/// Xen and Nitro instances need are there at boot.
///
/// - Xen families (t2, m4, c4, r4, i3...): root disk through `xen-blkfront`
///   (in the initramfs or built in), network through `xen-netfront`.
/// - Nitro: the root EBS volume is NVMe (`nvme` in the initramfs or built in)
///   and the network is ENA (`ena` installed under /lib/modules/<kver>: CentOS 6
///   kernels have none of their own, kmod-ena brings it).
///
/// Built-in drivers count: `/lib/modules/<kver>/modules.builtin` where the
/// kernel ships it, else `CONFIG_…=y` in `/boot/config-<kver>`.
public struct BootVerdict: Codable, Equatable, Sendable {
    /// Where a driver was found.
    public enum Source: String, Codable, Sendable {
        case initramfs, builtin, installed, missing
    }

    /// The default kernel (`2.6.32-696.el6.x86_64`).
    public var kernel: String
    /// xen-blkfront, xen-netfront, nvme, ena -> where each is.
    public var drivers: [String: Source]
    public var xen: Bool
    public var nitro: Bool
    /// Why a platform is missing, one line each ("nitro: no nvme driver in 2.6.32-358.el6").
    public var reasons: [String]

    public static let driverNames = ["xen-blkfront", "xen-netfront", "nvme", "ena"]

    /// `xen,nitro`, `xen`, `nitro` or `none`: the tag and JSON value.
    public var bootsOn: String {
        let platforms = (xen ? ["xen"] : []) + (nitro ? ["nitro"] : [])
        return platforms.isEmpty ? "none" : platforms.joined(separator: ",")
    }

    /// "Xen and Nitro", "Xen only: <reason>", "Nitro only: <reason>", "nowhere: <reasons>".
    public var summary: String {
        let why = reasons.map { $0.replacingOccurrences(of: "xen: ", with: "").replacingOccurrences(of: "nitro: ", with: "") }.joined(separator: "; ")
        switch (xen, nitro) {
        case (true, true): return "Xen and Nitro"
        case (true, false): return "Xen only: " + why
        case (false, true): return "Nitro only: " + why
        case (false, false): return "nowhere on EC2: " + why
        }
    }

    public init(kernel: String, drivers: [String: Source], xen: Bool, nitro: Bool, reasons: [String]) {
        self.kernel = kernel
        self.drivers = drivers
        self.xen = xen
        self.nitro = nitro
        self.reasons = reasons
    }

    // MARK: computing it

    /// Why the verdict cannot be read: the image, or a file of it, is not what a built image holds.
    public enum Failure: ToolError, Equatable {
        /// The default kernel has no modules directory.
        case noModules(kernel: String, root: String)
        /// The initramfs is not a regular file inside the image, or is larger than one dracut makes.
        case initramfsUnreadable(path: String, limitMiB: Int)
        /// The initramfs's contents cannot be listed (`cause`: why).
        case initramfsCorrupt(path: String, cause: String)
        case noKernel(root: String)
        case notAnInitramfs
        case corruptCpioHeader(offset: Int)
        case corruptCpioArchive(offset: Int)
        case truncatedCpioName(offset: Int)
        case truncatedCpioData(name: String)
        /// What `inspect` was given does not exist.
        case targetMissing(path: String)
        case imageUnreadable(path: String)
        case noPartitionTable(image: String)

        public var failure: String { parts.failure }
        public var reason: String? { parts.reason }
        public var remedy: String? { parts.remedy }

        private var parts: (failure: String, reason: String?, remedy: String?) {
            switch self {
            case let .noModules(kernel, root):
                return ("the image's default kernel \(kernel) has no '/lib/modules/\(kernel)'", nil, "is '\(root)' a built image?")
            case let .initramfsUnreadable(path, limitMiB):
                // One sentence with its hint in parentheses, as the tests and users know it.
                return (
                    "cannot read the initramfs '\(path)' of the image as a regular file of at most \(limitMiB) MiB inside it (a larger one is not one dracut made",
                    nil,
                    "run as root, or rebuild it with dracut in the image)"
                )
            case let .initramfsCorrupt(path, cause):
                return ("the initramfs '\(path)' of the image", cause, "rebuild it with dracut in the image")
            case let .noKernel(root):
                return ("no kernel ('/boot/vmlinuz-*') in the image at '\(root)'", nil, "is it a built image?")
            case .notAnInitramfs:
                return ("not an initramfs (neither a newc cpio archive nor gzip-compressed)", nil, nil)
            case let .corruptCpioHeader(offset):
                return ("corrupt cpio header at offset \(offset)", nil, nil)
            case let .corruptCpioArchive(offset):
                return ("truncated or corrupt cpio archive at offset \(offset)", nil, nil)
            case let .truncatedCpioName(offset):
                return ("truncated cpio name at offset \(offset)", nil, nil)
            case let .truncatedCpioData(name):
                return ("truncated cpio data of '\(name)'", nil, nil)
            case let .targetMissing(path):
                return ("'\(path)' does not exist", nil, "give a built image file, a device or a mounted root directory")
            case let .imageUnreadable(path):
                return ("cannot read '\(path)'", nil, nil)
            case let .noPartitionTable(image):
                return ("'\(image)' has no msdos partition table with a first partition", nil, "is it a built image?")
            }
        }
    }

    /// The verdict for the image whose root filesystem is at `root` (read only).
    /// `enaHint` ends the ENA reason ("6.5 cannot have it", "build it with --ena").
    public static func compute(root: String, enaHint: String? = nil) throws -> BootVerdict {
        let boot = try defaultBootEntry(root: root)
        let kver = boot.kernel
        // Every path from the image (grub.conf names the kernel and initrd) is read inside its root.
        guard let modulesDir = ImageRoot.hostPath("/lib/modules/" + kver, in: root), FileManager.default.fileExists(atPath: modulesDir) else {
            throw Failure.noModules(kernel: kver, root: root)
        }
        let installed = installedModules(modulesDir)
        let builtin = builtinDrivers(root: root, kernel: kver)
        guard let initrd = ImageRoot.contents(boot.initrd, in: root, limit: maxInitramfsBytes) else {
            throw Failure.initramfsUnreadable(path: boot.initrd, limitMiB: maxInitramfsBytes >> 20)
        }
        let inInitramfs: Set<String>
        do { inInitramfs = try initramfsModules([UInt8](initrd)) } catch {
            throw Failure.initramfsCorrupt(path: boot.initrd, cause: "\(error)")
        }
        return verdict(kernel: kver, inInitramfs: inInitramfs, installed: installed, builtin: builtin, enaHint: enaHint)
    }

    /// The pure part: from the three module sets (names with `_`, as the kernel does).
    public static func verdict(kernel: String, inInitramfs: Set<String>, installed: Set<String>, builtin: Set<String>, enaHint: String? = nil) -> BootVerdict {
        var drivers: [String: Source] = [:]
        for name in driverNames {
            let n = moduleName(name)
            if builtin.contains(n) {
                drivers[name] = .builtin
            } else if inInitramfs.contains(n) {
                drivers[name] = .initramfs
            } else if installed.contains(n) {
                drivers[name] = .installed
            } else {
                drivers[name] = .missing
            }
        }
        let short = kernel.hasSuffix(".x86_64") ? String(kernel.dropLast(".x86_64".count)) : kernel
        var reasons: [String] = []
        func atBoot(_ name: String) -> Bool { drivers[name] == .builtin || drivers[name] == .initramfs }
        func bootReason(_ platform: String, _ name: String) -> String {
            drivers[name] == .installed
                ? "\(platform): \(name) is not in the initramfs of \(short) (add it to /etc/dracut.conf.d and rerun dracut)"
                : "\(platform): no \(name) driver in \(short)"
        }
        if !atBoot("xen-blkfront") { reasons.append(bootReason("xen", "xen-blkfront")) }
        if drivers["xen-netfront"] == .missing { reasons.append("xen: no network, no xen-netfront driver in \(short)") }
        if !atBoot("nvme") { reasons.append(bootReason("nitro", "nvme")) }
        if drivers["ena"] == .missing { reasons.append("nitro: no network, ENA not installed" + (enaHint.map { " (\($0))" } ?? "")) }
        let xen = atBoot("xen-blkfront") && drivers["xen-netfront"] != .missing
        let nitro = atBoot("nvme") && drivers["ena"] != .missing
        return BootVerdict(kernel: kernel, drivers: drivers, xen: xen, nitro: nitro, reasons: reasons)
    }

    /// How the ENA reason ends: the release cannot have it (versions.json), or the build was not asked for it.
    public static func enaHint(release: VersionsFile.Release, enaAsked: Bool) -> String {
        if !release.ena.eligible { return "\(release.release) cannot have it" }
        return enaAsked ? "kmod-ena is not in the image" : "build the image with --ena"
    }

    /// The release an image says it is (`CentOS release 6.9 (Final)` in /etc/redhat-release).
    public static func release(root: String) -> String? {
        guard let text = ImageRoot.text("/etc/redhat-release", in: root, limit: 4096),
            let range = text.range(of: #"release [0-9]+\.[0-9]+"#, options: .regularExpression)
        else { return nil }
        return String(text[range].dropFirst("release ".count))
    }

    public static func moduleName(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }

    /// `nvme` from `kernel/drivers/nvme/host/nvme.ko.xz`; nil for other files.
    public static func moduleName(path: Substring) -> String? {
        let base = path.split(separator: "/").last.map(String.init) ?? ""
        guard let range = base.range(of: ".ko"), base[range.upperBound...].isEmpty || base[range.upperBound...].hasPrefix(".") else { return nil }
        return moduleName(String(base[..<range.lowerBound]))
    }

    /// The default entry of grub.conf (or menu.lst): its kernel release and initrd path in the image.
    public static func defaultBootEntry(root: String) throws -> (kernel: String, initrd: String) {
        let candidates = ["/boot/grub/grub.conf", "/boot/grub/menu.lst"]
        for file in candidates {
            guard let text = ImageRoot.text(file, in: root, limit: 1 << 20) else { continue }
            if let entry = defaultEntry(grubConf: text) { return entry }
        }
        // No boot loader configuration: the only kernel in /boot.
        let kernels = ImageRoot.list("/boot", in: root)
            .filter { $0.hasPrefix("vmlinuz-") }.map { String($0.dropFirst("vmlinuz-".count)) }.sorted()
        guard let kver = kernels.last else { throw Failure.noKernel(root: root) }
        return (kver, "/boot/initramfs-\(kver).img")
    }

    /// grub-legacy: `default=N` picks the N-th `title`; its `kernel /boot/vmlinuz-KVER …` and `initrd` lines.
    public static func defaultEntry(grubConf: String) -> (kernel: String, initrd: String)? {
        var wanted = 0
        var entries: [(kernel: String?, initrd: String?)] = []
        for raw in grubConf.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "=" }).map(String.init)
            guard let first = words.first else { continue }
            switch first {
            case "default" where entries.isEmpty: wanted = Int(words.dropFirst().first ?? "0") ?? 0
            case "title": entries.append((nil, nil))
            case "kernel" where !entries.isEmpty && words.count > 1: entries[entries.count - 1].kernel = words[1]
            case "initrd" where !entries.isEmpty && words.count > 1: entries[entries.count - 1].initrd = words[1]
            default: break
            }
        }
        guard wanted < entries.count, let kernelPath = entries[wanted].kernel else { return nil }
        let name = (kernelPath as NSString).lastPathComponent
        guard name.hasPrefix("vmlinuz-") else { return nil }
        let kver = String(name.dropFirst("vmlinuz-".count))
        // grub paths are relative to the partition: with one root partition they are image paths.
        let initrd = entries[wanted].initrd ?? "/boot/initramfs-\(kver).img"
        return (kver, initrd.hasPrefix("/") ? initrd : "/" + initrd)
    }

    /// Module names (with `_`) of every `.ko*` file under `dir`.
    static func installedModules(_ dir: String) -> Set<String> {
        var names: Set<String> = []
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return names }
        while let path = walker.nextObject() as? String {
            if let n = moduleName(path: Substring(path)) { names.insert(n) }
        }
        return names
    }

    /// Whether `kernel` of the image at `root` has `driver` at all (a module or built in).
    public static func kernelHas(_ driver: String, root: String, kernel: String) -> Bool {
        let n = moduleName(driver)
        let installed = ImageRoot.hostPath("/lib/modules/" + kernel, in: root).map(installedModules) ?? []
        return installed.contains(n) || builtinDrivers(root: root, kernel: kernel).contains(n)
    }

    /// Config symbols of the drivers, for kernels without modules.builtin.
    static let configSymbols = [
        "xen-blkfront": "CONFIG_XEN_BLKDEV_FRONTEND", "xen-netfront": "CONFIG_XEN_NETDEV_FRONTEND",
        "nvme": "CONFIG_BLK_DEV_NVME", "ena": "CONFIG_ENA_ETHERNET",
    ]

    /// Drivers built into the kernel: modules.builtin if the kernel ships it, else `=y` in its config.
    public static func builtinDrivers(root: String, kernel: String) -> Set<String> {
        if let text = ImageRoot.text("/lib/modules/\(kernel)/modules.builtin", in: root) {
            return builtin(modulesBuiltin: text)
        }
        let config = ImageRoot.text("/boot/config-\(kernel)", in: root) ?? ""
        return builtin(config: config)
    }

    public static func builtin(modulesBuiltin text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { moduleName(path: $0) })
    }

    public static func builtin(config text: String) -> Set<String> {
        let set = Set(text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        return Set(configSymbols.filter { set.contains($0.value + "=y") }.map { moduleName($0.key) })
    }

    /// Module names of every `.ko*` entry in an initramfs: newc cpio archives,
    /// each plain or gzip-compressed, one after another (dracut's layout).
    public static func initramfsModules(_ data: [UInt8]) throws -> Set<String> {
        Set(try initramfsNames(data).compactMap { moduleName(path: Substring($0)) })
    }

    /// The most an initramfs may hold, compressed or not. A CentOS 6 dracut
    /// initramfs is some tens of MB unpacked; an image is untrusted input (it
    /// may have been booted, or be anyone's), so its initramfs is read in
    /// memory only up to this: a gzip bomb is refused, not obeyed.
    public static let maxInitramfsBytes = 512 << 20

    /// Every entry name of an initramfs (at most `limit` bytes once decompressed).
    public static func initramfsNames(_ data: [UInt8], limit: Int = maxInitramfsBytes) throws -> [String] {
        var names: [String] = []
        var bytes = data
        var offset = 0
        while offset < bytes.count {
            // zero padding between archives
            while offset < bytes.count && bytes[offset] == 0 { offset += 1 }
            guard offset < bytes.count else { break }
            if Gzip.isGzip(Array(bytes[offset..<min(offset + 2, bytes.count)])) {
                bytes = try Gzip.decompress(Array(bytes[offset...]), limit: limit)
                offset = 0
                continue
            }
            guard bytes.count - offset >= 110, let magic = String(bytes: bytes[offset..<(offset + 6)], encoding: .ascii),
                magic == "070701" || magic == "070702"
            else {
                if names.isEmpty { throw Failure.notAnInitramfs }
                break // another compression after the first archive: not used by CentOS 6's dracut
            }
            offset = try readArchive(bytes, from: offset, into: &names)
        }
        return names
    }

    /// One newc archive from `start` to its TRAILER!!!; returns the offset after it.
    static func readArchive(_ b: [UInt8], from start: Int, into names: inout [String]) throws -> Int {
        var p = start
        func hex(_ at: Int) throws -> Int {
            guard let s = String(bytes: b[at..<(at + 8)], encoding: .ascii), let v = Int(s, radix: 16) else {
                throw Failure.corruptCpioHeader(offset: at)
            }
            return v
        }
        while true {
            guard p + 110 <= b.count, let magic = String(bytes: b[p..<(p + 6)], encoding: .ascii), magic.hasPrefix("07070") else {
                throw Failure.corruptCpioArchive(offset: p)
            }
            let fileSize = try hex(p + 54), nameSize = try hex(p + 94)
            let nameStart = p + 110
            guard nameSize > 0, nameStart + nameSize <= b.count else { throw Failure.truncatedCpioName(offset: p) }
            let name = String(decoding: b[nameStart..<(nameStart + nameSize - 1)], as: UTF8.self)
            var dataStart = nameStart + nameSize
            dataStart = (dataStart + 3) & ~3
            p = (dataStart + fileSize + 3) & ~3
            if name == "TRAILER!!!" { return min(p, b.count) }
            guard p <= b.count + 3 else { throw Failure.truncatedCpioData(name: name) }
            names.append(name.hasPrefix("./") ? String(name.dropFirst(2)) : name)
        }
    }
}
