import Foundation
import Host
import Verdict
#if canImport(Glibc)
    import Glibc
#endif

/// Whether the initramfs the kernel's %posttrans built can stay, so an install runs
/// dracut once: it must hold every driver the dracut configuration asks for that the
/// kernel has as a module (built-in ones need no file), and no file it copied from the
/// image may have been written since (a later step changing a copied file would leave
/// the initramfs out of date). Files dracut generates itself (/init, the module
/// indexes under /lib/modules/KVER) are not copies.
enum InitramfsCheck {
    /// nil when the image can stay; else why it must be rebuilt. `image` is an absolute
    /// path inside `root`; every path is resolved inside `root`.
    static func rebuildReason(root: String, kernel: String, image: String) throws -> String? {
        var info = stat()
        guard let path = ImageRoot.hostPath(image, in: root), lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return "\(image) is missing" }
        guard let data = ImageRoot.contents(image, in: root, limit: BootVerdict.maxInitramfsBytes), let entries = try? BootVerdict.initramfsNames([UInt8](data))
        else {
            return "\(image) is not a readable initramfs"
        }
        let modules = Set(entries.compactMap { BootVerdict.moduleName(path: Substring($0)) })
        let builtin = BootVerdict.builtinDrivers(root: root, kernel: kernel)
        let missing = missingDrivers(configured: configuredDrivers(root: root), inInitramfs: modules, builtin: builtin)
        if !missing.isEmpty { return "it lacks \(missing.joined(separator: ", ")), which the dracut configuration adds" }
        let built = info.st_mtim
        for entry in entries where isCopy(entry, kernel: kernel) {
            var st = stat()
            guard let copy = ImageRoot.hostPath("/" + entry, in: root), lstat(copy, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            if isLater(st.st_ctim, than: built) { return "/\(entry), which it holds a copy of, changed after it was built" }
        }
        return nil
    }

    /// Drivers asked for (module names) that are neither in the initramfs nor built into the kernel. Pure.
    static func missingDrivers(configured: [String], inInitramfs modules: Set<String>, builtin: Set<String>) -> [String] {
        configured.filter { driver in
            let name = BootVerdict.moduleName(driver)
            return !modules.contains(name) && !builtin.contains(name)
        }
    }

    /// The `add_drivers+=" … "` / `add_drivers=" … "` words of /etc/dracut.conf and
    /// /etc/dracut.conf.d/*.conf, in the order dracut sources them.
    static func configuredDrivers(root: String) -> [String] {
        let files =
            ["/etc/dracut.conf"]
            + ImageRoot.list("/etc/dracut.conf.d", in: root)
            .filter { $0.hasSuffix(".conf") }.sorted().map { "/etc/dracut.conf.d/" + $0 }
        return files.flatMap { file -> [String] in
            addDrivers(ImageRoot.text(file, in: root, limit: 1 << 20) ?? "")
        }
    }

    /// Pure: the driver words of a dracut configuration file's add_drivers lines.
    static func addDrivers(_ text: String) -> [String] {
        text.split(separator: "\n").flatMap { raw -> [String] in
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("add_drivers"), let equals = line.firstIndex(of: "=") else { return [] }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard key == "add_drivers" || key == "add_drivers+" else { return [] }
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard let quote = value.first, quote == "\"" || quote == "'",
                let end = value.dropFirst().firstIndex(of: quote)
            else { return [] }
            return value[value.index(after: value.startIndex)..<end].split(separator: " ").map(String.init)
        }
    }

    /// An entry dracut copied from the image (not one it generates: /init, the module indexes).
    static func isCopy(_ entry: String, kernel: String) -> Bool {
        if entry == "init" { return false }
        let indexes = "lib/modules/\(kernel)/modules."
        return !entry.hasPrefix(indexes)
    }

    static func isLater(_ a: timespec, than b: timespec) -> Bool {
        a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec)
    }
}
