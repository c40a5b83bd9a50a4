import Disk
import ENA
import Fetch
import Foundation
import Host
import Repository
import Versions

/// ena-source: the pin-checked ENA source on the builder.
struct ENASourceTree {
    /// Ours on the builder (under the download cache, never on the target):
    /// `source/` (the fetched tree), `root/` (the build root), the built RPM.
    var scratch: String
    /// The top of the pin-checked tree under `scratch/source` (it holds
    /// `kernel/linux/ena` and `kernel/linux/common/ena_com`).
    var tree: String
    /// sha256 of the source archive (`--ena-source FILE` or the download); nil for a tree or in a dry run. For the SBOMs.
    var archiveSHA256: String?
}

/// ena-build: the built (or, with --ena-share, reused) kmod-ena package in the scratch directory.
struct BuiltKmod {
    var rpmPath: String
}

/// ena-install: kmod-ena in the target.
struct InstalledKmod {
    /// Its entry in the target's rpm database (empty in a dry run).
    var packages: [InstalledPackage] = []
    /// sha256 of the package file installed (nil in a dry run). For the SBOMs.
    var rpmSHA256: String?
}

/// ENA for 6.6-6.10 (`--ena`). Everything up to a built, checked kmod-ena RPM
/// happens BEFORE the first write to the target (a compile error leaves the
/// target untouched); the target only ever sees the package, installed by
/// its own rpm after install-packages.
enum ENASteps {
    static let buildTools = ["gcc", "make", "rpm-build"]
    /// Inside the build root: the source copy, the spec and rpmbuild's tree.
    static let work = "/usr/src/centos6-ami-ena"
    /// Only in an install with `--ena` (`InstallSteps.steps(for:)`).
    static let steps = [sourceStep, resolveStep, buildStep, installStep]

    /// The kernel's modules directory name: `2.6.32-696.el6.x86_64`.
    static func kernelRelease(_ ctx: InstallContext) throws -> String { try ctx.plan.kernel + ".x86_64" }

    // MARK: ena-source (before metadata is fetched, before any write)

    static let sourceStep = InstallStep(
        "ena-source", "--ena: eligibility from versions.json; the ENA source extracted on the builder and checked file by file against the pin"
    ) { try source($0) }
    static func source(_ ctx: InstallContext) throws {
        let pin = ctx.versions.ena, runner = ctx.runner
        try ENAEligibility.check(ctx.release, pin: pin)
        let source = try ENASource.from(option: ctx.options.enaSource, pinnedURL: pin.url)
        if case let .directory(dir) = source, let absent = pin.sourceDirectories.first(where: { !isDirectory(dir + "/" + $0) }) {
            throw ENAError.sourceIncomplete(directory: dir, absent: absent, needed: pin.sourceDirectories)
        }
        let scratch = "\(ctx.options.cacheDirectory)/ena-build/\(ctx.stamp())"
        try runner.checked(Command("mkdir", ["-p", (scratch as NSString).deletingLastPathComponent]))
        try runner.checked(Command("mkdir", ["-m", "0700", scratch]))
        ctx.cleanup.push("remove ENA scratch \(scratch)", manual: ["rm -rf \(shellQuote(scratch))"]) {
            try removeTree(scratch, runner: runner)
        }
        for command in source.fetchCommands(
            scratch: scratch, directories: pin.sourceDirectories,
            lowSpeedLimit: ctx.options.lowSpeedLimit, lowSpeedTime: Int(ctx.options.lowSpeedTime.rounded(.up)))
        { try runner.checked(command) }
        let directories = pin.sourceDirectories.joined(separator: " and ")
        // Reads back: where the archive's tree is.
        let tree = runner.isDryRun ? "\(scratch)/source" : try ENASource.locateTree(scratch: scratch, buildDirectory: pin.buildDirectory)
        try runner.perform(
            "check every file of \(directories) under \(tree) against the \(pin.files.count) sha256 sums of versions.json (ENA \(pin.version)); any missing, extra or different file is fatal"
        ) {
            let problems = try PinCheck.check(root: tree, directories: pin.sourceDirectories, pinned: pin.files, runner: runner)
            guard problems.isEmpty else { throw ENAError.pinMismatch(source: source.description, problems: problems) }
            ctx.log.say("ENA \(pin.version) source: all \(pin.files.count) files of \(directories) match versions.json (\(source.description))")
        }
        // The SBOMs name the archive kmod-ena was built from by its sha256 (a tree has none).
        let archive: String?
        switch source {
        case let .archive(path): archive = path
        case .download: archive = scratch + "/ena.tar.gz"
        case .directory: archive = nil
        }
        // Reads back: the archive's bytes.
        let archiveSHA256 = try archive.flatMap { runner.isDryRun ? nil : try Checksum.of(file: $0, kind: .sha256).hex }
        ctx.enaSourceIfMade = ENASourceTree(scratch: scratch, tree: tree, archiveSHA256: archiveSHA256)
    }

    // MARK: ena-resolve (the build root's packages join the verified download)

    static let resolveStep = InstallStep(
        "ena-resolve", "--ena: gcc, make, rpm-build and kernel-devel-<kernel> for the build root (downloaded and verified with the rest)"
    ) { try resolve($0) }
    static func resolve(_ ctx: InstallContext) throws {
        let plan = try ctx.plan
        let devel = "kernel-devel-" + plan.kernel
        // --updates: the updates kernel's kernel-devel comes from the updates repository.
        let resolution = Resolver(packages: plan.repository.packages + (plan.updatesRepository?.packages ?? [])).resolve(seeds: buildTools + [devel])
        if let missing = resolution.unresolved.first(where: { $0.hasPrefix("(seed)") }) {
            throw InstallError.enaBuildRootPackageMissing(missing)
        }
        guard resolution.packages.contains(where: { $0.name == "kernel-devel" && "\($0.evr.version)-\($0.evr.release)" == plan.kernel }) else {
            throw InstallError.kernelDevelMissing(package: devel)
        }
        if !resolution.unresolved.isEmpty { ctx.log.write("ena build set: yum will resolve these itself: \(resolution.unresolved.joined(separator: "; "))") }
        // Downloaded and signature-checked by the next two steps together with the rest.
        ctx.enaBuildSetIfMade = resolution.packages
        ctx.log.say("ENA build set: \(resolution.packages.count) packages (\(buildTools.joined(separator: ", ")), \(devel) and their closure)")
    }

    // MARK: ena-build (a scratch build root on the builder)

    static let buildStep = InstallStep("ena-build", "--ena: scratch build root on the builder, kbuild against kernel-devel, kmod-ena RPM; build root removed") {
        try build($0)
    }
    static func build(_ ctx: InstallContext) throws {
        if let share = ctx.options.enaShareDirectory { try buildShared(ctx, share: share) } else { try buildInBuildRoot(ctx) }
    }

    static func rpmName(_ ctx: InstallContext) -> String { "kmod-ena-\(ctx.versions.ena.version)-1.x86_64.rpm" }

    /// `--ena-share DIR` (batch): the first install of a release builds kmod-ena
    /// and leaves it in DIR; every other install of that release and pin waits
    /// for it under a lock and reuses it, so a batch makes one build root per release.
    static func buildShared(_ ctx: InstallContext, share: String) throws {
        let runner = ctx.runner, pin = ctx.versions.ena
        let lines = pin.files.keys.sorted().map { "\(pin.files[$0]!)  \($0)\n" }.joined() + "kernel \(try ctx.plan.kernel)\n"
        // In-process (no tool for bytes in memory); the plan shows a placeholder as before.
        let digest = runner.isDryRun ? "PIN" : String(Checksum.of(Data(lines.utf8), kind: .sha256).hex.prefix(16))
        let dir = "\(share)/\(ctx.options.release)-\(pin.version)-\(digest)", shared = dir + "/" + rpmName(ctx)
        // Waiting on another install's build is the real run's alone.
        if runner.isDryRun {
            ctx.note("reuse \(shared) when another install of this batch built it (waiting on \(dir)/lock), else build it below and leave it there")
            try buildInBuildRoot(ctx)
            return
        }
        try runner.checked(Command("mkdir", ["-p", dir]))
        var lock: FileLock?
        let waitStart = Date()
        var said = false
        while lock == nil {
            try Interruption.shared.check()
            do {
                lock = try FileLock.acquire(dir + "/lock", holderDescription: "centos6-ami install \(ctx.options.release) \(ctx.options.target): ENA build")
            } catch HostError.lockHeld {
                // Unbounded: the holder is building kmod-ena, which takes minutes; but say who it is.
                if !said, Date().timeIntervalSince(waitStart) >= FileLock.noticeAfter {
                    said = true
                    ctx.log.say("ENA: waiting for the build lock '\(dir)/lock', held by \(FileLock.describeHolders(of: dir + "/lock")), to reuse its kmod-ena")
                }
                usleep(250_000)
            }
        }
        defer { lock?.release() }
        let mine = try ctx.enaSource.scratch + "/" + rpmName(ctx)
        if FileManager.default.fileExists(atPath: shared) {
            try runner.checked(Command("cp", [shared, mine]))
            ctx.kmodIfMade = BuiltKmod(rpmPath: mine)
            ctx.log.say("ENA: reusing kmod-ena built by another install of this batch (\(shared)); no build root")
            return
        }
        try buildInBuildRoot(ctx)
        try runner.checked(Command("cp", [try ctx.kmod.rpmPath, shared + ".part"]))
        try runner.checked(Command("mv", ["-f", shared + ".part", shared]))
    }

    static func buildInBuildRoot(_ ctx: InstallContext) throws {
        let runner = ctx.runner, pin = ctx.versions.ena, kver = try kernelRelease(ctx), kernel = try ctx.plan.kernel
        let source = try ctx.enaSource
        let started = Date()
        // The build root is a second tree bootstrapped from the same plan,
        // downloads and verified packages as the target: the same bootstrap,
        // chroot mounts and chroot yum, with its own cleanup stack that one
        // entry of ours unwinds (unmounts first, then the tree goes).
        let buildRoot = RootTree(root: source.scratch + "/root", workDir: source.scratch, cleanup: CleanupStack(log: ctx.log), stamp: ctx.stamp(tag: "ena-"))
        let root = buildRoot.root
        let teardown = "tear down the ENA build root \(root)"
        // For 'cleanup --local' after a kill: what runs in the build root, and its mounts.
        ctx.journal?.record(.root(root))
        ctx.journal?.record(.mount(root))
        try runner.checked(Command("mkdir", ["-m", "0755", root]))
        ctx.cleanup.push(teardown, manual: [Preparation.unmount(root, .recursive).shellLine, "rm -rf \(shellQuote(root))"]) {
            let failures = buildRoot.cleanup.unwind()
            if let first = failures.first { throw InstallError.undoFailed(first) }
            try removeTree(root, runner: runner)
        }
        ctx.log.say("ENA build root: \(root)")
        // Its local mirror offers what its yum installs: the bootstrap set and the build set.
        let plan = try ctx.plan
        try PackageSteps.bootstrap(ctx, into: buildRoot, mirroring: PackageSteps.uniquePackages(plan.bootstrapSet + (try ctx.enaBuildSet)))
        try runner.checked(PackageSteps.yum(ctx, in: root, ["install"] + buildTools + ["kernel-devel-" + kernel]))
        let rootReady = Date()
        let buildRootSeconds = rootReady.timeIntervalSince(started)

        // The verified directories, and nothing else of the tree, copied in at
        // their relative paths (the Makefile reaches ../common/ena_com) and
        // checked again right before they are compiled.
        let tree = work + "/src", src = tree + "/" + pin.buildDirectory
        for command in ENASource.copyCommands(from: source.tree, to: root + tree, directories: pin.sourceDirectories) {
            try runner.checked(command)
        }
        try runner.perform {
            let problems = try PinCheck.check(root: root + tree, directories: pin.sourceDirectories, pinned: pin.files, runner: runner)
            guard problems.isEmpty else { throw ENAError.pinMismatch(source: root + tree, problems: problems) }
            guard isDirectory(root + KBuild.kernelDevelDirectory(kver)) else {
                throw ENAError.kernelTreeMissing(kernel: kernel, directory: KBuild.kernelDevelDirectory(kver))
            }
        }
        try runner.checked(KBuild.make(sourceDirectory: src, kernelRelease: kver).inChroot(root))
        let built = Date()
        let kbuildSeconds = built.timeIntervalSince(rootReady)
        // Read from the built module (none in a dry run).
        var vermagic: String?
        try runner.perform {
            vermagic = try checkVermagic(module: root + src + "/ena.ko", kernelTree: root + KBuild.kernelDevelDirectory(kver))
            try checkModuleVersion(module: root + src + "/ena.ko", pinned: pin.version)
        }

        // Our own spec, built by the build root's rpmbuild.
        let spec = KmodSpec(version: pin.version, kernelRelease: kver, kernelVersion: kernel, builtModule: src + "/ena.ko")
        let topdir = work + "/rpmbuild"
        try runner.checked(Command("mkdir", ["-p"] + KBuild.rpmTree(root + topdir)))
        try ctx.write(spec.render(), to: root + work + "/kmod-ena.spec", mode: 0o644)
        try runner.checked(KBuild.rpmbuild(spec: work + "/kmod-ena.spec", topdir: topdir).inChroot(root))
        let rpm = source.scratch + "/" + rpmName(ctx)
        try runner.checked(Command("cp", [root + topdir + "/RPMS/x86_64/" + rpmName(ctx), rpm]))
        ctx.kmodIfMade = BuiltKmod(rpmPath: rpm)

        // Done with the build root: unmount and remove it now (the RPM stays in the scratch dir).
        ctx.cleanup.unwindEntry(named: teardown)
        try runner.perform {
            if FileManager.default.fileExists(atPath: root) { throw InstallError.buildRootNotRemoved(path: root) }
        }
        ctx.log.say(
            String(
                format: "ENA %@ built for %@: build root %.1f s, kbuild %.1f s, total %.1f s (vermagic '%@')",
                pin.version, kver, buildRootSeconds, kbuildSeconds,
                Date().timeIntervalSince(started), vermagic ?? ""))
    }

    /// The module's vermagic must name the release of the tree it was built
    /// against (for the test vault: the Debian release inside kernel-devel).
    static func checkVermagic(module: String, kernelTree: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: module) else {
            throw ENAError.noModule(name: (module as NSString).lastPathComponent)
        }
        guard let vermagic = KBuild.vermagic(ofModule: data) else { throw ENAError.noVermagic(module: module) }
        let uts = KBuild.utsReleaseHeaders.lazy.compactMap { try? String(contentsOfFile: kernelTree + "/" + $0, encoding: .utf8) }
            .compactMap(KBuild.utsRelease(header:)).first
        guard let uts else { throw ENAError.noUTSRelease(kernelTree: kernelTree) }
        guard KBuild.release(ofVermagic: vermagic) == uts else {
            throw ENAError.vermagicMismatch(vermagic: vermagic, kernelRelease: uts)
        }
        return vermagic
    }

    /// The module must say it is the pinned release (`modinfo -F version`):
    /// a tree that builds another version is not the one we pinned.
    static func checkModuleVersion(module: String, pinned: String) throws {
        let data = FileManager.default.contents(atPath: module) ?? Data()
        let version = KBuild.modinfo("version", ofModule: data) ?? "(none)"
        guard KBuild.isPinnedVersion(version, pinned: pinned) else {
            throw ENAError.versionMismatch(built: version, pinned: pinned)
        }
    }

    // MARK: ena-install (the target's own rpm)

    static let installStep = InstallStep("ena-install", "--ena: the target's rpm installs kmod-ena (depmod); the kernel line gets net.ifnames=0") {
        try install($0)
    }
    static func install(_ ctx: InstallContext) throws {
        let runner = ctx.runner, root = try ctx.root, kver = try kernelRelease(ctx)
        let rpm = try ctx.kmod.rpmPath
        var installed = InstalledKmod()
        // On the yum-cache mount: the package file never lands on the volume.
        let inside = PackageSteps.chrootWork + "/" + (rpm as NSString).lastPathComponent
        try runner.checked(Command("cp", [rpm, root + inside]))
        if !runner.isDryRun { installed.rpmSHA256 = try Checksum.of(file: rpm, kind: .sha256).hex }
        try runner.checked(Command("rpm", ["-K", "--nosignature", inside]).inChroot(root))
        try runner.checked(Command("rpm", ["-ivh", inside]).inChroot(root))
        try runner.checked(Command("rm", ["-f", root + inside]))
        try runner.perform {
            let kmod = try runner.checked(Command("rpm", ["-q", "--qf", InstalledPackage.queryFormat, "kmod-ena"]).inChroot(root))
            installed.packages = InstalledPackage.parse(kmod.stdoutText)
            let dep = (try? String(contentsOfFile: "\(root)/lib/modules/\(kver)/modules.dep", encoding: .utf8)) ?? ""
            let enaLines = dep.split(separator: "\n").filter { $0.hasPrefix("ena.ko:") || $0.contains("/ena.ko:") }
            guard enaLines.count == 1, enaLines[0].hasPrefix("extra/ena/ena.ko:") || enaLines[0].hasPrefix("/lib/modules/\(kver)/extra/ena/ena.ko:") else {
                throw InstallError.enaModuleNotPicked(modulesDep: enaLines.map(String.init))
            }
        }
        ctx.enaInstallIfMade = installed
        ctx.log.say("kmod-ena installed in the target (/lib/modules/\(kver)/extra/ena/ena.ko); the kernel line gets net.ifnames=0")
    }

    // MARK: helpers

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// `rm -rf`, but never while anything is mounted below the tree.
    /// - Important: deletes `path` and everything under it.
    static func removeTree(_ path: String, runner: CommandRunner) throws {
        // Reads back: what is mounted below it.
        if runner.isDryRun { _ = runner.run(Command("rm", ["-rf", path])); return }
        guard FileManager.default.fileExists(atPath: path) else { return }
        let mounted = Mounts.current().map(\.mountPoint).filter { $0 == path || $0.hasPrefix(path + "/") }
        guard mounted.isEmpty else {
            throw InstallError.stillMounted(path: path, mounts: mounted)
        }
        try runner.checked(Command("rm", ["-rf", "--one-file-system", path]))
    }
}
