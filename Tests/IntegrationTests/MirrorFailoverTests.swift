import Foundation
import TestSupport
import Testing

/// Mirror failover end to end (install --stop-after download against the test
/// vault): a dead primary, and a primary that 404s one package. The install
/// succeeds and its log names the alternative that served what the primary
/// could not. Each run has its own download cache so packages really travel.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct MirrorFailoverIntegrationTests {
    struct Run {
        let dir: String
        var workDir: String { dir + "/work" }
        var log: String { dir + "/install.log" }
        func arguments(mirrors: [String]) -> [String] {
            ["install", "6.9", dir + "/t.img", "--gpg-key", TestVault.key, "--cache", dir + "/cache", "--log", log, "--stop-after", "download"]
                + mirrors.flatMap { ["--mirror", $0] }
        }
    }

    func install(_ name: String, mirrors: [String]) throws -> (Run, Integration.Output, String) {
        try TestVault.require()
        let run = Run(dir: try Integration.scratchDirectory(name))
        let out = try Integration.tool(run.arguments(mirrors: mirrors), environment: ["CENTOS6_AMI_WORK_DIR": run.workDir])
        let log = (try? String(contentsOfFile: run.log, encoding: .utf8)) ?? ""
        return (run, out, log)
    }

    /// A closed port as the primary: the metadata and every package come from
    /// the alternative, and the output says so.
    @Test func deadPrimaryGoodAlternative() throws {
        let alternative = try VaultServer()
        defer { alternative.stop() }
        let dead = "http://127.0.0.1:\(try freePort())"
        let (run, out, log) = try install("failover-dead", mirrors: [dead, alternative.mirror])
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        #expect(out.status == 0, "exit \(out.status): \(out.stderr)")
        let said = "mirror failover: the metadata of 6.9/os from the alternative \(alternative.mirror)/6.9/os/x86_64/ (\(dead) failed: "
        #expect(out.stderr.contains(said), "\(out.stderr)")
        #expect(log.contains(said))
        #expect(out.stderr.contains("packages: "), "the download ran")
        #expect(try alternative.stats().requests > 20, "the packages came from the alternative")
        try Integration.expectNothingLeft(run.dir, workDir: run.workDir)
    }

    /// Two servers over the same vault (so their repomd.xml agree), the primary
    /// 404ing bash: bash comes from the alternative, everything else from the primary.
    @Test func primary404sOnePackage() throws {
        let primary = try VaultServer()
        defer { primary.stop() }
        let alternative = try VaultServer()
        defer { alternative.stop() }
        try primary.control(#"{"faults": [{"path": "/6.9/os/x86_64/Packages/bash-*.rpm", "status": 404}]}"#)
        let (run, out, log) = try install("failover-404", mirrors: [primary.mirror, alternative.mirror])
        defer { try? FileManager.default.removeItem(atPath: run.dir) }
        #expect(out.status == 0, "exit \(out.status): \(out.stderr)")
        #expect(out.stderr.contains("packages fail over to \(alternative.mirror)/6.9/os/x86_64/"), "\(out.stderr)")
        #expect(out.stderr.contains("1 from an alternative mirror"), "\(out.stderr)")
        let line = log.split(separator: "\n").first { $0.contains("mirror failover: 'bash-") }.map(String.init) ?? ""
        #expect(line.contains("from the alternative \(alternative.mirror)/6.9/os/x86_64/Packages/bash-"), "\(line)")
        #expect(line.contains("\(primary.mirror)/6.9/os/x86_64/Packages/bash-") && line.contains("404"), "\(line)")
        // The alternative served bash (and its repomd.xml for the agreement check), nothing else.
        #expect(try alternative.stats().requests == 2)
        try Integration.expectNothingLeft(run.dir, workDir: run.workDir)
    }
}
