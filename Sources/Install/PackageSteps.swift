import Disk
import Fetch
import Foundation
import Host
import RPM
import Repository
import Signature
import Templates
import Versions

/// The package half of the install: metadata, closure, downloads and
/// verification happen BEFORE the first write to the target; then the
/// verified bootstrap set is unpacked into it and the target's own rpm and
/// yum do the real install from a local mirror of verified files.
enum PackageSteps {
    /// Names a path inside the chroot that lives on the yum-cache mount (never on the volume).
    static let chrootWork = "/var/cache/yum/centos6-ami"
    static let repoID = "centos6-ami-os"
    static let updatesRepoID = "centos6-ami-updates"
    /// Seeds every CentOS 6 release (and the test vault) names; the other
    /// `BootstrapSet.seeds` are taken where the repository has them.
    static let requiredSeeds: Set<String> = ["yum", "rpm", "bash", "coreutils", "centos-release", "setup", "filesystem"]

    // MARK: before any write

    static let fetchMetadataStep = InstallStep("fetch-metadata", "repomd.xml, primary and comps of <mirror>/<release>/os/x86_64/, each checked against repomd")
    { try fetchMetadata($0) }
    static func fetchMetadata(_ ctx: InstallContext) throws {
        let fetcher = try ctx.makeFetcher()
        let mirrors = ctx.options.mirrors
        ctx.log.write(
            "metadata from \(ctx.options.mirror)" + (mirrors.count > 1 ? " (alternatives: \(ctx.options.alternativeMirrors.joined(separator: ", ")))" : ""))
        let log = ctx.log
        let repo = try ReleaseRepository.fetch(mirrors: mirrors, release: ctx.options.release, fetcher: fetcher, note: { log.say($0) })
        var updates: ReleaseRepository?
        if ctx.options.updates {
            updates = try ReleaseRepository.fetch(mirrors: mirrors, release: ctx.options.release, repo: "updates", fetcher: fetcher, note: { log.say($0) })
        }
        ctx.repositoriesIfMade = Repositories(os: repo, updates: updates)
        if mirrors.count > 1 {
            ctx.log.say(
                "metadata: revision \(repo.repomd.revision ?? "(none)") from \(repo.baseURL.absoluteString)"
                    + (repo.alternativeBaseURLs.isEmpty
                        ? "; no alternative mirror agrees with it"
                        : "; packages fail over to \(repo.alternativeBaseURLs.map(\.absoluteString).joined(separator: ", "))"))
        }
    }

    /// --updates: the newest kernel of the updates repository (`2.6.32-696.30.1.el6`), if it has one.
    static func updatesKernel(_ packages: [RepoPackage]) -> String? {
        packages.filter { $0.name == "kernel" }.max { $0.evr < $1.evr }.map { "\($0.evr.version)-\($0.evr.release)" }
    }

    static let resolveStep = InstallStep("resolve", "the bootstrap set (closure of yum, rpm, bash, coreutils, centos-release...) and the set yum will install")
    { try resolve($0) }
    static func resolve(_ ctx: InstallContext) throws {
        let repositories = try ctx.repositories
        let repo = repositories.os
        let updates = repositories.updates?.packages ?? []
        var release = ctx.release
        if let kernel = updatesKernel(updates) {
            ctx.log.say("--updates: kernel-\(kernel) from the updates repository instead of the GA kernel-\(release.kernel)")
            release.kernel = kernel
        }
        let resolver = Resolver(packages: repo.packages + updates)
        let present = Set(repo.packages.map(\.name))
        // The seeds every release names; optional helpers only where the repository has them.
        let seeds = BootstrapSet.seeds.filter { requiredSeeds.contains($0) || present.contains($0) }
        let bootstrap = try resolver.bootstrapClosure(seeds: seeds)
        guard let comps = repo.comps else {
            throw InstallError.noCompsGroupFile(repository: repo.baseURL.absoluteString)
        }
        let kernel = "kernel-" + release.kernel
        let install = try resolver.groupInstallSet(comps: comps, extra: [kernel] + ctx.extraPackages, exclude: ["postfix"])
        guard install.names.contains("kernel"),
            install.packages.contains(where: { $0.name == "kernel" && "\($0.evr.version)-\($0.evr.release)" == release.kernel })
        else {
            throw InstallError.kernelMissing(package: kernel, updates: ctx.options.updates, release: ctx.options.release)
        }
        let plan = PackagePlan(release: release, repositories: repositories, bootstrapSet: bootstrap.packages, installSet: install.packages)
        ctx.planIfMade = plan
        let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
        ctx.log.say(
            "bootstrap set: \(bootstrap.packages.count) packages (\(mb(bootstrap.downloadBytes))); install set: \(install.packages.count) packages (\(mb(install.downloadBytes)))"
        )
        ctx.note("bootstrap set (\(bootstrap.packages.count)): " + bootstrap.packages.map(\.nevra).joined(separator: " "))
        if !install.unresolved.isEmpty { ctx.log.write("install set: yum will resolve these itself: \(install.unresolved.joined(separator: "; "))") }
        try checkImageSpace(ctx, plan)
    }

    /// An image file's filesystem must hold what the install writes (the unpacked
    /// packages, not the sparse size), checked before anything is downloaded or written.
    static func checkImageSpace(_ ctx: InstallContext, _ plan: PackagePlan) throws {
        guard case let .imageFile(path, exists, _) = try ctx.target else { return }
        let installed = uniquePackages(plan.bootstrapSet + plan.installSet).reduce(UInt64(0)) { $0 + UInt64(max(0, $1.installedSize)) }
        let needed = Preflight.bytesWritten(installedBytes: installed)
        let holder = exists ? path : ((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
        guard let free = Preflight.freeSpace(at: holder) else { return }
        var st = stat()
        let allocated = exists && stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
        ctx.log.write(
            String(format: "space: the image needs about %.0f MB; '%@' has %.0f MB free", Double(needed) / 1e6, free.mountPoint, Double(free.bytes) / 1e6))
        if let error = Preflight.spaceError(imagePath: path, filesystem: free.mountPoint, freeBytes: free.bytes, needed: needed, alreadyAllocated: allocated) {
            throw error
        }
    }

    static let downloadStep = InstallStep("download", "every package into the verified, content-addressed cache on the builder (parallel, resumable)") {
        try download($0)
    }
    static func download(_ ctx: InstallContext) throws {
        let plan = try ctx.plan
        // With --ena, the build root's packages are fetched and verified with the rest.
        let all = uniquePackages(plan.bootstrapSet + plan.installSet + (ctx.options.ena ? try ctx.enaBuildSet : []))
        var downloads = Downloads(packages: all)
        try ctx.runner.perform(
            "download \(all.count) packages into \(ctx.options.cacheDirectory) (cache hits cost nothing), then verify each: \(plan.repository.baseURL.absoluteString)"
        ) {
            let fetcher = try ctx.makeFetcher()
            let paths = try fetcher.fetch(all.map { plan.source(of: $0).remoteFile($0) })
            for (package, path) in zip(all, paths) { downloads.cachedPaths[package.location] = path.path }
            let stats = fetcher.stats
            downloads.downloadedBytes = stats.downloadedBytes
            ctx.log.say(
                String(
                    format: "packages: %d downloaded (%.1f MB), %d from the cache", stats.downloadedFiles, Double(stats.downloadedBytes) / 1e6,
                    stats.cachedFiles)
                    + (stats.failovers > 0 ? ", \(stats.failovers) from an alternative mirror (each named in the log)" : ""))
        }
        ctx.downloadsIfMade = downloads
    }

    /// Every package's signature by the pinned key, before anything is unpacked
    /// (yum checks again inside, with gpgcheck=1).
    static let verifyPackagesStep = InstallStep("verify-packages", "each package's signature by the pinned key (gpgv), before anything is unpacked") {
        try verifyPackages($0)
    }
    static func verifyPackages(_ ctx: InstallContext) throws {
        let downloads = try ctx.downloads
        var verified = VerifiedPackages()
        try ctx.runner.perform(
            "verify the signature of each of the \(downloads.packages.count) packages with gpgv against key \(try ctx.pinnedKey().fingerprint)"
        ) {
            verified = try verifySignatures(ctx, downloads)
        }
        ctx.verifiedIfMade = verified
    }

    static func verifySignatures(_ ctx: InstallContext, _ downloads: Downloads) throws -> VerifiedPackages {
        let all = downloads.packages
        let verifier = SignatureVerifier(key: try ctx.pinnedKey(), log: ctx.log)
        let records = VerificationRecords(cacheRoot: URL(fileURLWithPath: ctx.options.cacheDirectory))
        struct Outcome: Sendable {
            var verified: [String: VerifiedRPM] = [:]
            var checkedNow = 0
            var keys: [String: String] = [:]
        }
        let shared = Locked(Outcome())
        try Parallel.forEach(all.count) { index in
            do {
                let path = downloads.cachedPaths[all[index].location] ?? ""
                let (token, ran) = try verifier.verifiedUsingRecords(try RPMFile(path: path), checksum: all[index].checksum, records: records)
                // The signature packet's issuer; the pinned key is the only one that can have verified it.
                let keyID = (token.report.packet.keyID ?? (try? ctx.pinnedKey().keyID) ?? "").lowercased()
                shared.withLock {
                    $0.verified[all[index].location] = token; $0.keys[all[index].location] = keyID; if ran { $0.checkedNow += 1 }
                }
            } catch {
                throw InstallError.packageRejected(file: all[index].fileName, mirror: ctx.options.mirror, cause: error)
            }
        }
        let (verified, checkedNow, keys) = shared.withLock { ($0.verified, $0.checkedNow, $0.keys) }
        // The exact file set, for the log reader (Benchmarks/install unpacks the same files).
        ctx.log.write("verified files (\(all.count)):\n" + all.map { downloads.cachedPaths[$0.location] ?? $0.location }.joined(separator: "\n"))
        ctx.log.say(
            "signatures: \(all.count) packages good (key \(try ctx.pinnedKey().fingerprint); \(checkedNow) checked by gpgv now, \(all.count - checkedNow) remembered from the cache, every file's checksum recomputed)"
        )
        return VerifiedPackages(byLocation: verified, signingKeys: keys)
    }

    static func uniquePackages(_ list: [RepoPackage]) -> [RepoPackage] {
        var seen = Set<String>()
        return list.filter { seen.insert($0.location).inserted }
    }

    // MARK: into the target

    /// The target's own rpm installs the bootstrap set into the target, every
    /// package once, with its scriptlets, and owns the rpm database from the
    /// first package. To run before the target has any rpm, our extractor lays
    /// down only what rpm needs to run (RPMRuntime: rpm, its configuration and the
    /// shared objects it loads) in a scratch root on the builder (a private tmpfs),
    /// off the volume; that rpm then works on the target with `--root` (as
    /// `yum --installroot` does), and the scratch root goes.
    /// Package payloads reach the volume once, written by rpm.
    static let bootstrapStep = InstallStep(
        "bootstrap", "unpack the verified bootstrap set; /proc, /sys, /dev in the target; rpm --initdb, import the key, register the set"
    ) { try bootstrap($0) }
    static func bootstrap(_ ctx: InstallContext) throws {
        // The target's local mirror offers its yum every package downloaded.
        try bootstrap(ctx, into: try ctx.mounted, mirroring: try ctx.downloads.packages)
    }

    /// The bootstrap of `tree` (the target, or the ENA build root) from the plan's verified
    /// bootstrap set; `packages` are what the tree's local mirror offers its yum.
    static func bootstrap(_ ctx: InstallContext, into tree: RootTree, mirroring packages: [RepoPackage]) throws {
        let runner = ctx.runner, plan = try ctx.plan
        try writeReleasever(ctx, root: tree.root)
        try Chroot.enter(ctx, tree)
        try makeLocalMirror(ctx, tree, packages: packages)
        // Its mount point next to the download cache (as the ENA build root), never on the volume.
        let tools = "\(ctx.options.cacheDirectory)/rpm-tools/\(tree.stamp)"
        let teardown = "tear down the rpm tools root \(tools)"
        let mounts = CleanupStack(log: ctx.log)
        try runner.checked(Command("mkdir", ["-p", "-m", "0755", tools]))
        tree.cleanup.push(teardown, manual: [Preparation.unmount(tools, .recursive).shellLine, "rmdir \(shellQuote(tools))"]) {
            let failures = mounts.unwind()
            if let first = failures.first { throw InstallError.undoFailed(first) }
            try ENASteps.removeTree(tools, runner: runner)
        }
        // In RAM: unpacking is quicker, and removing it is an unmount (deleting
        // thousands of files from the builder's disk cost ~2 s). The limit only
        // caps (tmpfs takes what is used): the whole bootstrap set's installed size.
        let installed = plan.bootstrapSet.reduce(0) { $0 + $1.installedSize }
        let size = max(256 << 20, installed)
        try runner.checked(Preparation.tmpfs("centos6-ami-rpm-tools", bytes: UInt64(size), at: tools))
        InstallSteps.pushUnmount(mounts, tools, runner: runner)
        try extractTools(ctx, into: tools)
        try mountToolsRoot(ctx, tools: tools, target: tree.root, mounts: mounts)
        let target = "/target"
        let rpm = { (arguments: [String]) in Command("rpm", ["--root", target] + arguments).inChroot(tools) }
        try runner.checked(rpm(["--initdb"]))
        try runner.checked(rpm(["--import", target + chrootWork + "/RPM-GPG-KEY"]))
        try runner.checked(rpm(["-i"] + plan.bootstrapSet.map { "\(target)\(chrootWork)/mirror/\($0.location)" }))
        tree.cleanup.unwindEntry(named: teardown)
    }

    /// Unpacks what rpm needs to run (RPMRuntime) into `tools`, round by round:
    /// `filesystem` first (its directory symlinks are in place for the rest), then
    /// rpm and its configuration, then the packages holding the libraries the
    /// unpacked ELF files need; each round's packages in parallel, one per core.
    static func extractTools(_ ctx: InstallContext, into tools: String) throws {
        try ctx.runner.perform(
            "unpack what rpm needs to run into \(tools) (our cpio extractor, in parallel): the packages holding rpm and its configuration, then round by round those holding the libraries their ELF files need (PT_INTERP, DT_NEEDED)"
        ) {
            try extractRuntime(ctx, into: tools)
        }
    }

    static func extractRuntime(_ ctx: InstallContext, into tools: String) throws {
        let verifier = SignatureVerifier(key: try ctx.pinnedKey(), log: ctx.log)
        let bootstrapSet = try ctx.plan.bootstrapSet, checked = try ctx.verified.byLocation, cachedPaths = try ctx.downloads.cachedPaths
        // Verified in verify-packages (checksum, then signature or its remembered result).
        @Sendable func verified(_ package: RepoPackage) throws -> VerifiedRPM {
            try checked[package.location] ?? verifier.verified(try RPMFile(path: cachedPaths[package.location] ?? ""))
        }
        var byLocation: [String: RepoPackage] = [:]
        for package in bootstrapSet where byLocation[package.location] == nil { byLocation[package.location] = package }
        let runtime = RPMRuntime(
            packages: try bootstrapSet.map {
                RPMRuntime.Package(rpm: try verified($0).rpm, location: $0.location)
            })
        let unpacked = try runtime.lay(into: tools) { locations in
            let round = locations.compactMap { byLocation[$0] }
            try extractInParallel(round.filter { $0.name == "filesystem" }, into: tools, log: ctx.log, verified: verified)
            try extractInParallel(round.filter { $0.name != "filesystem" }, into: tools, log: ctx.log, verified: verified)
        }
        let names = Set(unpacked)
        let taken = bootstrapSet.filter { names.contains($0.location) }.map(\.name)
        ctx.log.write("rpm's runtime: \(taken.count) of the \(bootstrapSet.count) bootstrap packages unpacked into \(tools): \(taken.joined(separator: " "))")
    }

    /// Unpacks verified packages into `tools`, one per core at a time.
    static func extractInParallel(
        _ packages: [RepoPackage], into tools: String, log: Log?,
        verified: @Sendable (RepoPackage) throws -> VerifiedRPM
    ) throws {
        try Parallel.forEach(packages.count) { index in try Payload.extract(try verified(packages[index]), into: tools, log: log) }
    }

    /// /proc and the tree's minimal /dev in the tools root, and the tree's
    /// whole mount tree (its /proc, /dev, yum cache, mirror) under `/target`.
    static func mountToolsRoot(_ ctx: InstallContext, tools: String, target root: String, mounts: CleanupStack) throws {
        let runner = ctx.runner, target = tools + "/target"
        try runner.checked(Command("mkdir", ["-p", tools + "/proc", tools + "/dev", target]))
        try runner.checked(Preparation.proc(at: tools + "/proc"))
        InstallSteps.pushUnmount(mounts, tools + "/proc", runner: runner)
        mounts.push("stop processes left in \(tools)") { runner.perform { Chroot.killProcesses(root: tools) } }
        try runner.checked(Preparation.bind(root + "/dev", at: tools + "/dev"))
        InstallSteps.pushUnmount(mounts, tools + "/dev", runner: runner)
        try runner.checked(Preparation.recursiveBind(root, at: target))
        // Unmounting the copy must not propagate back to the target's own mounts.
        try runner.checked(Preparation.makeRecursiveSlave(target))
        InstallSteps.pushUnmount(mounts, target, runner: runner, style: .recursive)
    }

    /// `/etc/yum/vars/releasever` pins the release from the start (yum 3.2.27+ reads it).
    static func writeReleasever(_ ctx: InstallContext, root: String) throws {
        try ctx.runner.checked(Command("mkdir", ["-p", root + "/etc/yum/vars"]))
        try ctx.write(releaseverFile(ctx.options.release), to: root + "/etc/yum/vars/releasever", mode: 0o644)
    }

    static func releaseverFile(_ release: String) -> String { release + "\n" }

    /// A local mirror for the chroot's yum: the release's repodata verbatim and
    /// hard links to the verified cached packages, on the cache's filesystem,
    /// bind-mounted read-only under the yum-cache mount. yum lists it first in
    /// baseurl and the upstream second, so a package we did not predict is
    /// fetched by yum itself (and checked by its gpgcheck).
    static func makeLocalMirror(_ ctx: InstallContext, _ tree: RootTree, packages: [RepoPackage]) throws {
        let plan = try ctx.plan, cachedPaths = try ctx.downloads.cachedPaths
        let repo = plan.repository
        let runner = ctx.runner
        let mirror = "\(ctx.options.cacheDirectory)/mirrors/\(tree.stamp)"
        let inside = tree.root + chrootWork
        try runner.checked(Command("mkdir", ["-p", mirror + "/repodata", inside + "/mirror"]))
        pushRemoveMirror(ctx, tree, mirror)
        try runner.perform("copy \(repo.keptMetadata.count) verified metadata files and hard-link \(packages.count) cached packages into \(mirror)") {
            try fillMirror(mirror, metadataOf: repo, packages: packages, cachedPaths: cachedPaths)
        }
        try runner.checked(Preparation.bind(mirror, at: inside + "/mirror", readOnly: true))
        InstallSteps.pushUnmount(tree.cleanup, inside + "/mirror", runner: runner)
        // A file:// upstream is not visible inside the chroot: bind it too.
        var upstream = ctx.chrootUpstream
        if let url = URL(string: ctx.options.mirror), url.isFileURL {
            let source = repo.baseURL.path
            try runner.checked(Command("mkdir", ["-p", inside + "/upstream"]))
            try runner.checked(Preparation.bind(source, at: inside + "/upstream", readOnly: true))
            InstallSteps.pushUnmount(tree.cleanup, inside + "/upstream", runner: runner)
            upstream = "file://\(chrootWork)/upstream/"
        }
        var updatesUpstream: String?
        if let updates = plan.updatesRepository {
            updatesUpstream = try makeUpdatesMirror(ctx, tree, updates, packages: packages, mirror: mirror + "-updates")
        }
        let keyText = try ctx.pinnedKeyArmored()
        try ctx.write(keyText, to: inside + "/RPM-GPG-KEY", mode: 0o644)
        try ctx.write(yumConfig(upstream: upstream, updatesUpstream: updatesUpstream), to: inside + "/yum.conf", mode: 0o644)
        try runner.checked(Command("mkdir", ["-p", inside + "/repos.d"]))
    }

    /// Removes a local mirror (hard links into the cache: the cached files stay) when the install ends.
    static func pushRemoveMirror(_ ctx: InstallContext, _ tree: RootTree, _ mirror: String) {
        let runner = ctx.runner
        tree.cleanup.push("remove local mirror \(mirror)", manual: ["rm -rf \(mirror)"]) {
            _ = runner.run(Command("rm", ["-rf", mirror]))
        }
    }

    /// A local mirror: the repository's verified metadata, copied, and the verified
    /// packages from the cache, hard-linked (copied across filesystems).
    static func fillMirror(_ mirror: String, metadataOf repo: ReleaseRepository, packages: [RepoPackage], cachedPaths: [String: String]) throws {
        func parentExists(_ path: String) throws {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        for file in repo.keptMetadata {
            let destination = mirror + "/" + file
            try parentExists(destination)
            try FileManager.default.copyItem(atPath: repo.metadataDirectory.path + "/" + file, toPath: destination)
        }
        for package in packages {
            let destination = mirror + "/" + package.location
            try parentExists(destination)
            guard let source = cachedPaths[package.location] else { continue }
            if link(source, destination) != 0 { try FileManager.default.copyItem(atPath: source, toPath: destination) }
        }
    }

    /// --updates: the updates repository's local mirror (its verified repodata and
    /// the verified packages resolved from it), bind-mounted read-only as
    /// `mirror-updates`; returns the upstream yum falls back to.
    static func makeUpdatesMirror(_ ctx: InstallContext, _ tree: RootTree, _ updates: ReleaseRepository, packages: [RepoPackage], mirror: String) throws
        -> String
    {
        let runner = ctx.runner, cachedPaths = try ctx.downloads.cachedPaths
        let inside = tree.root + chrootWork
        try runner.checked(Command("mkdir", ["-p", mirror + "/repodata", inside + "/mirror-updates"]))
        pushRemoveMirror(ctx, tree, mirror)
        let ours = packages.filter { p in updates.packages.contains { $0.location == p.location } }
        try runner.perform("copy \(updates.keptMetadata.count) verified updates metadata files and hard-link \(ours.count) cached packages into \(mirror)") {
            try fillMirror(mirror, metadataOf: updates, packages: ours, cachedPaths: cachedPaths)
        }
        try runner.checked(Preparation.bind(mirror, at: inside + "/mirror-updates", readOnly: true))
        InstallSteps.pushUnmount(tree.cleanup, inside + "/mirror-updates", runner: runner)
        if let url = URL(string: ctx.options.mirror), url.isFileURL {
            try runner.checked(Command("mkdir", ["-p", inside + "/upstream-updates"]))
            try runner.checked(Preparation.bind(updates.baseURL.path, at: inside + "/upstream-updates", readOnly: true))
            InstallSteps.pushUnmount(tree.cleanup, inside + "/upstream-updates", runner: runner)
            return "file://\(chrootWork)/upstream-updates/"
        }
        return ctx.chrootUpdatesUpstream
    }

    /// The chroot yum's own configuration, on the yum-cache mount: only our repo
    /// (and with --updates the updates repository), gpgcheck on with the pinned key, nothing kept.
    static func yumConfig(upstream: String, updatesUpstream: String? = nil) -> String {
        """
        [main]
        cachedir=/var/cache/yum/$basearch/$releasever
        keepcache=0
        debuglevel=2
        logfile=/var/log/yum.log
        exactarch=1
        obsoletes=1
        gpgcheck=1
        plugins=0
        installonly_limit=3
        reposdir=\(chrootWork)/repos.d

        [\(repoID)]
        name=CentOS $releasever os (centos6-ami: verified local mirror, then upstream)
        baseurl=file://\(chrootWork)/mirror/
                \(upstream)
        gpgcheck=1
        gpgkey=file://\(chrootWork)/RPM-GPG-KEY
        enabled=1

        """
            + (updatesUpstream.map { updates in
                """

                [\(updatesRepoID)]
                name=CentOS $releasever updates (centos6-ami: verified local mirror, then upstream)
                baseurl=file://\(chrootWork)/mirror-updates/
                        \(updates)
                gpgcheck=1
                gpgkey=file://\(chrootWork)/RPM-GPG-KEY
                enabled=1

                """
            } ?? "")
    }

    /// `install @core ...`: yum 3.2's `@group` form of install (its `_at_groupinstall`, the same
    /// group selection as `groupinstall`) lets one yum run, one depsolve and one rpm transaction
    /// install the group and the packages named beside it; `--exclude` applies to both.
    /// "core" is the group's id in CentOS 6's comps (its name is "Core").
    static func installArguments(kernel: String, extraPackages: [String]) -> [String] {
        ["install", "@core", "kernel-" + kernel] + extraPackages + ["--exclude=postfix"]
    }

    /// The chroot yum of `root` (the target, or the ENA build root) on its local mirror.
    static func yum(_ ctx: InstallContext, in root: String, _ arguments: [String]) throws -> Command {
        Command(
            "yum",
            [
                "-y", "-c", chrootWork + "/yum.conf", "--disablerepo=*",
                "--enablerepo=" + repoID + (try ctx.plan.updatesRepository == nil ? "" : "," + updatesRepoID),
                "--releasever=" + ctx.options.release,
            ] + arguments
        ).inChroot(root)
    }

    /// The target's own yum, in one transaction: Core without postfix, the pinned kernel, xfsprogs and grub.
    static let installPackagesStep = InstallStep(
        "install-packages", "the target's yum, one transaction: install @core, the pinned kernel, xfsprogs, grub (acpid, ntp) --exclude=postfix"
    ) { try installPackages($0) }
    static func installPackages(_ ctx: InstallContext) throws {
        let runner = ctx.runner, root = try ctx.root
        try writeDracutConfiguration(ctx)
        try runner.checked(yum(ctx, in: root, installArguments(kernel: try ctx.plan.kernel, extraPackages: ctx.extraPackages)))
        var installed = InstalledPackages()
        try runner.perform { installed.packages = try checkInstalled(ctx) }
        ctx.installedIfMade = installed
    }

    /// dracut's ec2.conf before the transaction: the kernel's %posttrans (new-kernel-pkg
    /// → dracut) then builds the initramfs with the EC2 drivers in it, and the
    /// initramfs step keeps that image instead of building a second one.
    static func writeDracutConfiguration(_ ctx: InstallContext) throws {
        var nvme = true
        try ctx.runner.perform("ec2.conf lists nvme only if the kernel-\(try ctx.plan.kernel) package ships an nvme module") {
            nvme = try kernelShipsModule("nvme", ctx)
        }
        let root = try ctx.root
        for file in dracutImageFiles(nvme: nvme) { try ConfigureSteps.apply(file, root: root, ctx: ctx) }
    }

    /// Whether the verified package of the kernel to install ships `/lib/modules/<kver>/…/NAME.ko[.xz|.gz]`
    /// (read from its header's file list: the kernel is not installed yet).
    static func kernelShipsModule(_ name: String, _ ctx: InstallContext) throws -> Bool {
        let plan = try ctx.plan
        let kernel = try plan.installSet.first { $0.name == "kernel" && "\($0.evr.version)-\($0.evr.release)" == plan.kernel }
            .made("kernel-\(plan.kernel) package", by: "resolve")
        let rpm = try ctx.verified.byLocation[kernel.location].made("verified kernel-\(plan.kernel)", by: "verify-packages").rpm
        return shipsModule(name, files: rpm.fileNames)
    }

    /// Pure: a module file of that name under a `/lib/modules/` tree (merged-/usr trees too).
    static func shipsModule(_ name: String, files: [String]) -> Bool {
        files.contains { path in
            guard path.contains("/lib/modules/") else { return false }
            let base = (path as NSString).lastPathComponent
            return ["", ".xz", ".gz"].contains { base == name + ".ko" + $0 }
        }
    }

    /// The target must now hold the pinned kernel and no postfix (reads its rpm database back, which it returns).
    static func checkInstalled(_ ctx: InstallContext) throws -> [InstalledPackage] {
        let runner = ctx.runner, root = try ctx.root, kernelVersion = try ctx.plan.kernel
        // The target must now hold the pinned kernel and no postfix.
        let kernel = runner.run(Command("rpm", ["-q", "kernel-" + kernelVersion]).inChroot(root))
        guard kernel.status == 0 else {
            throw InstallError.kernelNotInstalled(kernel: kernelVersion, rpmOutput: kernel.stdoutText)
        }
        let all = try runner.checked(Command("rpm", ["-qa", "--qf", InstalledPackage.queryFormat]).inChroot(root)).stdoutText
        let installed = InstalledPackage.parse(all)
        let names = installed.map(\.name)
        if names.contains("postfix") { throw InstallError.postfixInstalled }
        ctx.log.say("installed \(names.count) packages, kernel-\(kernelVersion)")
        return installed
    }
}
