import Disk
import ENA
import Fetch
import Foundation
import Host
import Repository
import Versions

/// What the ENA steps hand to each other.
struct ENAState {
    /// Ours on the builder (under the download cache, never on the target):
    /// `source/` (the fetched tree), `root/` (the build root), the built RPM.
    var scratch: String?
    /// The top of the pin-checked tree under `scratch/source` (it holds
    /// `kernel/linux/ena` and `kernel/linux/common/ena_com`).
    var sourceTree: String?
    /// gcc, make, rpm-build, kernel-devel-<kernel> and their closure.
    var buildSet: [RepoPackage] = []
    /// The built (or, with --ena-share, reused) kmod-ena package in `scratch`.
    var rpmPath: String?
    /// Read from the built module (nil in a dry run).
    var vermagic: String?
    /// sha256 of the source archive (`--ena-source FILE` or the download); nil for a tree. For the SBOMs.
    var sourceArchiveSHA256: String?
    /// sha256 of the kmod-ena package file installed into the target. For the SBOMs.
    var rpmSHA256: String?
    var buildRootSeconds = 0.0
    var kbuildSeconds = 0.0
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
    static func kernelRelease(_ ctx: InstallContext) -> String { ctx.release.kernel + ".x86_64" }

    // MARK: ena-source (before metadata is fetched, before any write)

    static let sourceStep = InstallStep("ena-source", "--ena: eligibility from versions.json; the ENA source extracted on the builder and checked file by file against the pin") { try source($0) }
    static func source(_ ctx: InstallContext) throws {
        let pin = ctx.versions.ena, runner = ctx.runner
        try ENAEligibility.check(ctx.release, pin: pin)
        let source = try ENASource.from(option: ctx.options.enaSource, pinnedURL: pin.url)
        if case let .directory(dir) = source, let absent = pin.sourceDirectories.first(where: { !isDirectory(dir + "/" + $0) }) {
            throw ENAError.source("'\(dir)' has no '\(absent)' directory (the ENA build reads \(pin.sourceDirectories.joined(separator: " and ")); give the top of an amzn-drivers tree, or the release .tar.gz)")
        }
        let scratch = "\(ctx.options.cacheDirectory)/ena-build/\(ctx.options.release)-\(ctx.filesystemUUID.prefix(8))"
        ctx.enaState.scratch = scratch
        try runner.checked(Command("mkdir", ["-p", (scratch as NSString).deletingLastPathComponent]))
        try runner.checked(Command("mkdir", ["-m", "0700", scratch]))
        ctx.cleanup.push("remove ENA scratch \(scratch)", manual: ["rm -rf \(shellQuote(scratch))"]) {
            try removeTree(scratch, runner: runner)
        }
        for command in source.fetchCommands(scratch: scratch, directories: pin.sourceDirectories,
                                            lowSpeedLimit: ctx.options.lowSpeedLimit, lowSpeedTime: Int(ctx.options.lowSpeedTime.rounded(.up))) { try runner.checked(command) }
        let directories = pin.sourceDirectories.joined(separator: " and ")
        // Reads back: where the archive's tree is.
        let tree = runner.isDryRun ? "\(scratch)/source" : try ENASource.locateTree(scratch: scratch, buildDirectory: pin.buildDirectory)
        try runner.perform("check every file of \(directories) under \(tree) against the \(pin.files.count) sha256 sums of versions.json (ENA \(pin.version)); any missing, extra or different file is fatal") {
            let problems = try PinCheck.check(root: tree, directories: pin.sourceDirectories, pinned: pin.files, runner: runner)
            guard problems.isEmpty else { throw ENAError.pinMismatch(source: source.description, problems: problems) }
            ctx.log.say("ENA \(pin.version) source: all \(pin.files.count) files of \(directories) match versions.json (\(source.description))")
        }
        ctx.enaState.sourceTree = tree
        // The SBOMs name the archive kmod-ena was built from by its sha256 (a tree has none).
        let archive: String?
        switch source {
        case let .archive(path): archive = path
        case .download: archive = scratch + "/ena.tar.gz"
        case .directory: archive = nil
        }
        if let archive, !runner.isDryRun { ctx.enaState.sourceArchiveSHA256 = try Checksum.of(file: archive, kind: .sha256).hex }
    }

    // MARK: ena-resolve (the build root's packages join the verified download)

    static let resolveStep = InstallStep("ena-resolve", "--ena: gcc, make, rpm-build and kernel-devel-<kernel> for the build root (downloaded and verified with the rest)") { try resolve($0) }
    static func resolve(_ ctx: InstallContext) throws {
        let repo = try ctx.made(ctx.repository, "repository metadata", by: "fetch-metadata")
        let devel = "kernel-devel-" + ctx.release.kernel
        // --updates: the updates kernel's kernel-devel comes from the updates repository.
        let resolution = Resolver(packages: repo.packages + (ctx.updatesRepository?.packages ?? [])).resolve(seeds: buildTools + [devel])
        if let missing = resolution.unresolved.first(where: { $0.hasPrefix("(seed)") }) {
            throw InstallError.enaBuildRootPackageMissing(missing)
        }
        guard resolution.packages.contains(where: { $0.name == "kernel-devel" && "\($0.evr.version)-\($0.evr.release)" == ctx.release.kernel }) else {
            throw InstallError.kernelDevelMissing(package: devel)
        }
        if !resolution.unresolved.isEmpty { ctx.log.write("ena build set: yum will resolve these itself: \(resolution.unresolved.joined(separator: "; "))") }
        ctx.enaState.buildSet = resolution.packages
        // Downloaded and signature-checked by the next two steps together with the rest.
        ctx.installSet = PackageSteps.uniquePackages(ctx.installSet + resolution.packages)
        ctx.log.say("ENA build set: \(resolution.packages.count) packages (\(buildTools.joined(separator: ", ")), \(devel) and their closure)")
    }

    // MARK: ena-build (a scratch build root on the builder)

    static let buildStep = InstallStep("ena-build", "--ena: scratch build root on the builder, kbuild against kernel-devel, kmod-ena RPM; build root removed") { try build($0) }
    static func build(_ ctx: InstallContext) throws {
        if let share = ctx.options.enaShareDirectory { try buildShared(ctx, share: share) } else { try buildInBuildRoot(ctx) }
    }

    static func rpmName(_ ctx: InstallContext) -> String { "kmod-ena-\(ctx.versions.ena.version)-1.x86_64.rpm" }

    /// `--ena-share DIR` (batch): the first install of a release builds kmod-ena
    /// and leaves it in DIR; every other install of that release and pin waits
    /// for it under a lock and reuses it, so a batch makes one build root per release.
    static func buildShared(_ ctx: InstallContext, share: String) throws {
        let runner = ctx.runner, pin = ctx.versions.ena
        let lines = pin.files.keys.sorted().map { "\(pin.files[$0]!)  \($0)\n" }.joined() + "kernel \(ctx.release.kernel)\n"
        // Reads back: sha256sum's output.
        let digest = runner.isDryRun ? "PIN" : String(try runner.checked(Command("sha256sum", ["-"], standardInput: Data(lines.utf8))).stdoutText.prefix(16))
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
            do { lock = try FileLock.acquire(dir + "/lock", holderDescription: "centos6-ami install \(ctx.options.release) \(ctx.options.target): ENA build") } catch HostError.lockHeld {
                // Unbounded: the holder is building kmod-ena, which takes minutes; but say who it is.
                if !said, Date().timeIntervalSince(waitStart) >= FileLock.noticeAfter {
                    said = true
                    ctx.log.say("ENA: waiting for the build lock '\(dir)/lock', held by \(FileLock.describeHolders(of: dir + "/lock")), to reuse its kmod-ena")
                }
                usleep(250_000)
            }
        }
        defer { lock?.release() }
        let mine = try scratch(ctx) + "/" + rpmName(ctx)
        if FileManager.default.fileExists(atPath: shared) {
            try runner.checked(Command("cp", [shared, mine]))
            ctx.enaState.rpmPath = mine
            ctx.log.say("ENA: reusing kmod-ena built by another install of this batch (\(shared)); no build root")
            return
        }
        try buildInBuildRoot(ctx)
        try runner.checked(Command("cp", [try builtRPM(ctx), shared + ".part"]))
        try runner.checked(Command("mv", ["-f", shared + ".part", shared]))
    }

    static func buildInBuildRoot(_ ctx: InstallContext) throws {
        let runner = ctx.runner, pin = ctx.versions.ena, kver = kernelRelease(ctx)
        let started = Date()
        // The build root is a second install context over the same options,
        // repository and verified cache: the same bootstrap, chroot mounts and
        // chroot yum as the target, with its own cleanup stack that one entry
        // of ours unwinds (unmounts first, then the tree goes).
        let sub = try InstallContext(options: ctx.options, versions: ctx.versions, runner: runner, log: ctx.log,
                                     filesystemUUID: "ena-" + ctx.filesystemUUID, workDir: try scratch(ctx))
        sub.repository = ctx.repository
        sub.updatesRepository = ctx.updatesRepository
        sub.release = ctx.release
        sub.bootstrapSet = ctx.bootstrapSet
        sub.installSet = ctx.enaState.buildSet
        sub.cachedPaths = ctx.cachedPaths
        sub.verifiedPackages = ctx.verifiedPackages
        let root = sub.root
        let teardown = "tear down the ENA build root \(root)"
        // For 'cleanup --local' after a kill: what runs in the build root, and its mounts.
        ctx.journal?.record(.root(root))
        ctx.journal?.record(.mount(root))
        try runner.checked(Command("mkdir", ["-m", "0755", root]))
        ctx.cleanup.push(teardown, manual: [Preparation.unmount(root, .recursive).shellLine, "rm -rf \(shellQuote(root))"]) {
            let failures = sub.cleanup.unwind()
            if let first = failures.first { throw InstallError.undoFailed(first) }
            try removeTree(root, runner: runner)
        }
        ctx.log.say("ENA build root: \(root)")
        try PackageSteps.bootstrap(sub)
        try runner.checked(PackageSteps.yum(sub, ["install"] + buildTools + ["kernel-devel-" + ctx.release.kernel]))
        let rootReady = Date()
        ctx.enaState.buildRootSeconds = rootReady.timeIntervalSince(started)

        // The verified directories, and nothing else of the tree, copied in at
        // their relative paths (the Makefile reaches ../common/ena_com) and
        // checked again right before they are compiled.
        let tree = work + "/src", src = tree + "/" + pin.buildDirectory
        let sourceTree = try ctx.made(ctx.enaState.sourceTree, "checked ENA source", by: "ena-source")
        for command in ENASource.copyCommands(from: sourceTree, to: root + tree, directories: pin.sourceDirectories) {
            try runner.checked(command)
        }
        try runner.perform {
            let problems = try PinCheck.check(root: root + tree, directories: pin.sourceDirectories, pinned: pin.files, runner: runner)
            guard problems.isEmpty else { throw ENAError.pinMismatch(source: root + tree, problems: problems) }
            guard isDirectory(root + KBuild.kernelDevelDirectory(kver)) else {
                throw ENAError.build("kernel-devel-\(ctx.release.kernel) did not install '\(KBuild.kernelDevelDirectory(kver))' in the build root")
            }
        }
        try runner.checked(KBuild.make(sourceDirectory: src, kernelRelease: kver).inChroot(root))
        let built = Date()
        ctx.enaState.kbuildSeconds = built.timeIntervalSince(rootReady)
        try runner.perform {
            ctx.enaState.vermagic = try checkVermagic(module: root + src + "/ena.ko", kernelTree: root + KBuild.kernelDevelDirectory(kver))
            try checkModuleVersion(module: root + src + "/ena.ko", pinned: pin.version)
        }

        // Our own spec, built by the build root's rpmbuild.
        let spec = KmodSpec(version: pin.version, kernelRelease: kver, kernelVersion: ctx.release.kernel, builtModule: src + "/ena.ko")
        let topdir = work + "/rpmbuild"
        try runner.checked(Command("mkdir", ["-p"] + KBuild.rpmTree(root + topdir)))
        try ctx.write(spec.render(), to: root + work + "/kmod-ena.spec", mode: 0o644)
        try runner.checked(KBuild.rpmbuild(spec: work + "/kmod-ena.spec", topdir: topdir).inChroot(root))
        let rpm = try scratch(ctx) + "/" + rpmName(ctx)
        try runner.checked(Command("cp", [root + topdir + "/RPMS/x86_64/" + rpmName(ctx), rpm]))
        ctx.enaState.rpmPath = rpm

        // Done with the build root: unmount and remove it now (the RPM stays in the scratch dir).
        ctx.cleanup.unwindEntry(named: teardown)
        try runner.perform {
            if FileManager.default.fileExists(atPath: root) { throw InstallError.buildRootNotRemoved(path: root) }
        }
        ctx.log.say(String(format: "ENA %@ built for %@: build root %.1f s, kbuild %.1f s, total %.1f s (vermagic '%@')",
                           pin.version, kver, ctx.enaState.buildRootSeconds, ctx.enaState.kbuildSeconds,
                           Date().timeIntervalSince(started), ctx.enaState.vermagic ?? ""))
    }

    /// The module's vermagic must name the release of the tree it was built
    /// against (for the test vault: the Debian release inside kernel-devel).
    static func checkVermagic(module: String, kernelTree: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: module) else {
            throw ENAError.build("kbuild made no '\((module as NSString).lastPathComponent)' (the Makefile must build a module named ena)")
        }
        guard let vermagic = KBuild.vermagic(ofModule: data) else { throw ENAError.build("'\(module)' has no vermagic") }
        let uts = KBuild.utsReleaseHeaders.lazy.compactMap { try? String(contentsOfFile: kernelTree + "/" + $0, encoding: .utf8) }
            .compactMap(KBuild.utsRelease(header:)).first
        guard let uts else { throw ENAError.build("no utsrelease.h in '\(kernelTree)'") }
        guard KBuild.release(ofVermagic: vermagic) == uts else {
            throw ENAError.build("ena.ko's vermagic '\(vermagic)' does not match the kernel tree's release '\(uts)'")
        }
        return vermagic
    }

    /// The module must say it is the pinned release (`modinfo -F version`):
    /// a tree that builds another version is not the one we pinned.
    static func checkModuleVersion(module: String, pinned: String) throws {
        let data = FileManager.default.contents(atPath: module) ?? Data()
        let version = KBuild.modinfo("version", ofModule: data) ?? "(none)"
        guard KBuild.isPinnedVersion(version, pinned: pinned) else {
            throw ENAError.build("ena.ko says version '\(version)', but versions.json pins ENA \(pinned)")
        }
    }

    // MARK: ena-install (the target's own rpm)

    static let installStep = InstallStep("ena-install", "--ena: the target's rpm installs kmod-ena (depmod); the kernel line gets net.ifnames=0") { try install($0) }
    static func install(_ ctx: InstallContext) throws {
        let runner = ctx.runner, root = ctx.root, kver = kernelRelease(ctx)
        let rpm = try builtRPM(ctx)
        // On the yum-cache mount: the package file never lands on the volume.
        let inside = PackageSteps.chrootWork + "/" + (rpm as NSString).lastPathComponent
        try runner.checked(Command("cp", [rpm, root + inside]))
        if !runner.isDryRun { ctx.enaState.rpmSHA256 = try Checksum.of(file: rpm, kind: .sha256).hex }
        try runner.checked(Command("rpm", ["-K", "--nosignature", inside]).inChroot(root))
        try runner.checked(Command("rpm", ["-ivh", inside]).inChroot(root))
        try runner.checked(Command("rm", ["-f", root + inside]))
        try runner.perform {
            let kmod = try runner.checked(Command("rpm", ["-q", "--qf", InstalledPackage.queryFormat, "kmod-ena"]).inChroot(root))
            ctx.installedPackages += InstalledPackage.parse(kmod.stdoutText)
            let dep = (try? String(contentsOfFile: "\(root)/lib/modules/\(kver)/modules.dep", encoding: .utf8)) ?? ""
            let enaLines = dep.split(separator: "\n").filter { $0.hasPrefix("ena.ko:") || $0.contains("/ena.ko:") }
            guard enaLines.count == 1, enaLines[0].hasPrefix("extra/ena/ena.ko:") || enaLines[0].hasPrefix("/lib/modules/\(kver)/extra/ena/ena.ko:") else {
                throw InstallError.enaModuleNotPicked(modulesDep: enaLines.map(String.init))
            }
        }
        ctx.enaInstalled = true
        ctx.log.say("kmod-ena installed in the target (/lib/modules/\(kver)/extra/ena/ena.ko); the kernel line gets net.ifnames=0")
    }

    // MARK: helpers

    static func scratch(_ ctx: InstallContext) throws -> String { try ctx.made(ctx.enaState.scratch, "ENA scratch directory", by: "ena-source") }
    static func builtRPM(_ ctx: InstallContext) throws -> String { try ctx.made(ctx.enaState.rpmPath, "kmod-ena package", by: "ena-build") }

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
