import Foundation
import RPM

/// What the bootstrap installs with our own extractor before the target's
/// rpm and yum take over.
public enum BootstrapSet {
    /// The seed names. yum, rpm and the release package are what the later
    /// `yum groupinstall` needs; bash and coreutils give the target a shell
    /// and the basic commands. The rest is what rpm's and the bootstrap
    /// packages' scriptlets call (useradd/groupadd from shadow-utils,
    /// /sbin/ldconfig from glibc, chkconfig, install-info from info, sed,
    /// grep, gawk, findutils, util-linux-ng's mount tools and /sbin/nologin);
    /// setup (/etc/passwd, /etc/group) and filesystem (the directory tree)
    /// come first in every CentOS install.
    /// Most are pulled in by requirements anyway; naming them makes the
    /// intent explicit and the set stable across releases 6.0–6.10, which all
    /// ship these names.
    public static let seeds = [
        "yum", "centos-release", "rpm", "bash", "coreutils", "setup", "filesystem",
        "glibc", "shadow-utils", "chkconfig", "info", "sed", "grep", "gawk", "findutils", "util-linux-ng",
    ]
}

/// The outcome of a closure computation.
public struct Resolution: Sendable {
    /// The chosen packages, sorted by name.
    public var packages: [RepoPackage]
    /// Why each package is there: "seed", or "requirer: requirement".
    public var reasons: [String: String]
    /// Requirements nobody provides, as "requirer: requirement" (sorted).
    public var unresolved: [String]
    public var names: [String] { packages.map(\.name) }
    /// Sum of package sizes (download bytes).
    public var downloadBytes: Int { packages.reduce(0) { $0 + $1.packageSize } }
}

/// Dependency closure over primary.xml's requires/provides, including the
/// file provides primary lists (`/bin/sh`).
///
/// Choosing among several providers (documented, deterministic; yum's own
/// choice is richer but the bootstrap only needs a consistent, complete set
/// and yum still decides the real install):
/// 1. a provider already chosen satisfies the requirement;
/// 2. one package per name: a name chosen once is never chosen again in
///    another version or arch;
/// 3. architecture: x86_64 and noarch first, then i686, i586, i386; other
///    arches (src, other machines) are never chosen;
/// 4. per name the newest EVR (rpmvercmp) among the acceptable arch rank;
/// 5. among names: best arch rank, then the name equal to the requirement,
///    then the shortest name, then alphabetical.
/// Requirements on `rpmlib(...)` are features of rpm itself and skipped.
/// Nothing is guessed: requirements without any provider are collected and
/// reported together ("requirer: requirement").
public struct Resolver: Sendable {
    public let packages: [RepoPackage]
    private var byName: [String: [Int]] = [:]
    private var providers: [String: [(Int, RepoDependency)]] = [:]
    private var fileOwners: [String: [Int]] = [:]

    public init(packages: [RepoPackage]) {
        self.packages = packages
        for (i, p) in packages.enumerated() where Resolver.archRank(p.arch) != nil {
            byName[p.name, default: []].append(i)
            for dep in p.provides { providers[dep.name, default: []].append((i, dep)) }
            for f in p.files { fileOwners[f, default: []].append(i) }
        }
    }

    /// 0 for x86_64/noarch, higher is worse, nil = never.
    static func archRank(_ arch: String) -> Int? {
        switch arch {
        case "x86_64", "noarch": return 0
        case "i686": return 1
        case "i586": return 2
        case "i486", "i386": return 3
        default: return nil
        }
    }

    /// Packages that satisfy `req`, ignoring `excluded` names.
    func candidates(_ req: RepoDependency, excluded: Set<String>) -> [Int] {
        var out = Set<Int>()
        for (i, provide) in providers[req.name] ?? [] where !excluded.contains(packages[i].name) {
            if rangesOverlap(provideFlags: provide.flags, provideEVR: provide.evr, requireFlags: req.flags, requireEVR: req.evr) {
                out.insert(i)
            }
        }
        // The package's own name is an implicit provide "name = epoch:version-release".
        for i in byName[req.name] ?? [] where !excluded.contains(packages[i].name) {
            if rangesOverlap(provideFlags: Dependency.equal, provideEVR: packages[i].evr, requireFlags: req.flags, requireEVR: req.evr) {
                out.insert(i)
            }
        }
        if req.name.hasPrefix("/") {
            for i in fileOwners[req.name] ?? [] where !excluded.contains(packages[i].name) { out.insert(i) }
        }
        return Array(out)
    }

    /// The best of several candidates by the rules above.
    func best(_ candidates: [Int], for requirement: String) -> Int? {
        candidates.min { a, b in
            let pa = packages[a], pb = packages[b]
            let ra = Resolver.archRank(pa.arch)!, rb = Resolver.archRank(pb.arch)!
            if ra != rb { return ra < rb }
            if pa.name == pb.name {
                let c = EVR.compare(pa.evr, pb.evr)
                if c != 0 { return c > 0 }
                return pa.location < pb.location
            }
            let ea = pa.name == requirement, eb = pb.name == requirement
            if ea != eb { return ea }
            if pa.name.count != pb.name.count { return pa.name.count < pb.name.count }
            return pa.name < pb.name
        }
    }

    /// A seed: a package name, or name-version-release / name-version (e.g. "kernel-2.6.32-696.el6").
    func seedCandidates(_ seed: String, excluded: Set<String>) -> [Int] {
        if let exact = byName[seed], !excluded.contains(seed) { return exact }
        return packages.indices.filter { i in
            let p = packages[i]
            guard Resolver.archRank(p.arch) != nil, !excluded.contains(p.name), seed.hasPrefix(p.name + "-") else { return false }
            return seed == "\(p.name)-\(p.evr.version)-\(p.evr.release)" || seed == "\(p.name)-\(p.evr.version)"
                || seed == "\(p.name)-\(p.evr.version)-\(p.evr.release).\(p.arch)"
        }
    }

    /// The closure of `seeds` over requires. Never throws: unresolved requirements are in the result.
    public func resolve(seeds: [String], exclude: Set<String> = []) -> Resolution {
        var chosen: [Int] = []
        var chosenSet = Set<Int>()
        var chosenName: [String: Int] = [:]
        var reasons: [String: String] = [:]
        var unresolved = Set<String>()
        var queue: [Int] = []
        var satisfied: [RepoDependency: Bool] = [:]

        func take(_ i: Int, reason: String) {
            guard !chosenSet.contains(i) else { return }
            chosenSet.insert(i)
            chosenName[packages[i].name] = i
            chosen.append(i)
            reasons[packages[i].name] = reason
            queue.append(i)
        }

        for seed in seeds {
            let found = seedCandidates(seed, excluded: exclude)
            if let existing = found.first(where: { chosenSet.contains($0) }) { _ = existing; continue }
            guard let pick = best(found.filter { chosenName[packages[$0].name] == nil }, for: seed) else {
                unresolved.insert("(seed): \(seed)")
                continue
            }
            take(pick, reason: "seed")
        }
        while let i = queue.popLast() {
            let p = packages[i]
            for req in p.requires {
                if req.name.hasPrefix("rpmlib(") { continue }
                if satisfied[req] == true { continue }
                let found = candidates(req, excluded: exclude)
                if found.contains(where: { chosenSet.contains($0) }) { satisfied[req] = true; continue }
                let open = found.filter { chosenName[packages[$0].name] == nil }
                guard let pick = best(open, for: req.name) else {
                    let note = found.isEmpty ? "" : " (only other versions of already chosen packages provide it)"
                    unresolved.insert("\(p.nevra): \(req)\(note)")
                    continue
                }
                take(pick, reason: "\(p.name): \(req)")
                satisfied[req] = true
            }
        }
        let result = chosen.map { packages[$0] }.sorted { $0.name < $1.name }
        return Resolution(packages: result, reasons: reasons, unresolved: unresolved.sorted())
    }

    /// The bootstrap set: closure of `seeds`; throws `RepositoryError.unresolved` listing every gap.
    public func bootstrapClosure(seeds: [String] = BootstrapSet.seeds, exclude: Set<String> = []) throws -> Resolution {
        let r = resolve(seeds: seeds, exclude: exclude)
        guard r.unresolved.isEmpty else { throw RepositoryError.unresolved(r.unresolved) }
        return r
    }

    /// "The set yum will ask for", for prefetching: the closure of a comps group's
    /// mandatory+default packages (minus `exclude`, as `--exclude=postfix`) plus
    /// `extra` names ("kernel-2.6.32-696.el6", "xfsprogs", "grub"), with the
    /// group's conditional packages whose condition is met. Gaps are returned,
    /// not thrown: yum decides the real install and fetches what we missed.
    public func groupInstallSet(comps: Comps, group: String = "core", extra: [String] = [], exclude: Set<String> = ["postfix"]) throws -> Resolution {
        guard let g = comps.group(group) else {
            throw RepositoryError.metadata(file: "comps", reason: "no group '\(group)' (groups: \(comps.groups.map(\.id).joined(separator: ", ")))")
        }
        let seeds = g.installedByDefault.filter { !exclude.contains($0) && byName[$0] != nil } + extra
        var r = resolve(seeds: seeds, exclude: exclude)
        let conditional = g.packages.filter {
            $0.type == .conditional && !exclude.contains($0.name) && byName[$0.name] != nil && $0.requires.map { r.reasons[$0] != nil } == true
        }
        if !conditional.isEmpty {
            r = resolve(seeds: seeds + conditional.map(\.name), exclude: exclude)
        }
        return r
    }
}
