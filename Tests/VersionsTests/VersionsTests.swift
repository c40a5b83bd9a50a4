import Foundation
import Testing
@testable import Versions

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func shippedJSON() throws -> [String: Any] {
    let data = try Data(contentsOf: repoRoot.appendingPathComponent("versions.json"))
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
}

/// Re-encodes a mutated copy of the shipped file and returns the load error's text.
func loadError(_ mutate: (inout [String: Any]) -> Void) throws -> String {
    var json = try shippedJSON()
    mutate(&json)
    let data = try JSONSerialization.data(withJSONObject: json)
    do {
        _ = try VersionsFile.decode(data)
        return "(no error)"
    } catch {
        return "\(error)"
    }
}

func mutateRelease(_ index: Int, _ change: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
    { json in
        var releases = json["releases"] as! [[String: Any]]
        change(&releases[index])
        json["releases"] = releases
    }
}

@Suite struct VersionsFileTests {
    @Test func embeddedCopyIsTheRepositoryFile() throws {
        let file = try String(contentsOf: repoRoot.appendingPathComponent("versions.json"), encoding: .utf8)
        #expect(embeddedVersionsJSON == file, "run scripts/embed-data.sh after editing versions.json")
    }

    @Test func shippedTableHasElevenReleasesWithGAKernels() throws {
        let v = try VersionsFile.embedded()
        #expect(v.releaseNames == ["6.0", "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "6.7", "6.8", "6.9", "6.10"])
        let kernels = ["71", "131.0.15", "220", "279", "358", "431", "504", "573", "642", "696", "754"].map { "2.6.32-\($0).el6" }
        #expect(v.releases.map(\.kernel) == kernels)
        #expect(v.releases.filter(\.ena.eligible).map(\.release) == ["6.6", "6.7", "6.8", "6.9", "6.10"])
        for r in v.releases where !r.ena.eligible { #expect((r.ena.reason ?? "").contains(r.release == "6.5" ? "net/busy_poll.h" : "linux/kconfig.h")) }
        #expect(v.mirrors.download == "https://archive.kernel.org/centos-vault")
        #expect(v.mirrors.image == "http://archive.kernel.org/centos-vault")
        #expect(v.ena.version == "2.9.1" && v.ena.files.count == 24)
        #expect(v.release("6.9")?.amis.map(\.id) == ["ami-04b471c820e90bbcc", "ami-00e938eee68482e28"])
    }

    @Test func enaPinMatchesTheChecksumList() throws {
        // The pinned list is data/ena_linux_2.9.1-kernel-linux-ena.sha256, copied from the reference.
        let text = try String(contentsOf: repoRoot.appendingPathComponent("data/ena_linux_2.9.1-kernel-linux-ena.sha256"), encoding: .utf8)
        var expected: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            expected[String(parts[1].dropFirst("kernel/linux/ena/".count))] = String(parts[0])
        }
        #expect(try VersionsFile.embedded().ena.files == expected)
    }

    @Test func unknownReleaseListsTheValidOnes() throws {
        let v = try VersionsFile.embedded()
        #expect(throws: VersionsError.unknownRelease("6.11", valid: v.releaseNames)) { try v.require("6.11") }
        #expect("\(VersionsError.unknownRelease("7.0", valid: ["6.0", "6.1"]))" == "unknown release '7.0'; valid releases: 6.0, 6.1")
    }

    @Test(arguments: [
        ("schema", "schema"),
        ("missing mirrors", "mirrors"),
        ("mirror scheme", "mirrors.download"),
        ("image mirror", "mirrors.image"),
        ("ena url", "ena.url"),
        ("ena version", "ena.version"),
        ("ena files empty", "ena.files"),
        ("ena file sum", "ena.files[\"Makefile\"]"),
        ("ena file path", "ena.files[\"../x\"]"),
        ("empty releases", "releases"),
        ("release name", "releases[0].release"),
        ("duplicate release", "releases[1].release"),
        ("kernel", "releases[9].kernel"),
        ("kernel type", "releases[9].kernel"),
        ("missing kernel", "releases[2].kernel"),
        ("reason missing", "releases[0].ena.reason"),
        ("reason on eligible", "releases[6].ena.reason"),
        ("ami id", "releases[6].amis[1].id"),
        ("ami variant", "releases[6].amis[0].variant"),
        ("ami region", "releases[6].amis[0].region"),
        ("ena ami on ineligible", "releases[0].amis[1].variant"),
    ])
    func validationNamesTheBadField(_ mutation: String, _ field: String) throws {
        let message = try loadError { json in
            switch mutation {
            case "schema": json["schema"] = 2
            case "missing mirrors": json.removeValue(forKey: "mirrors")
            case "mirror scheme": var m = json["mirrors"] as! [String: Any]; m["download"] = "ftp://x"; json["mirrors"] = m
            case "image mirror": var m = json["mirrors"] as! [String: Any]; m["image"] = "not a url"; json["mirrors"] = m
            case "ena url": var e = json["ena"] as! [String: Any]; e["url"] = "http://github.com/x.tgz"; json["ena"] = e
            case "ena version": var e = json["ena"] as! [String: Any]; e["version"] = "2.9"; json["ena"] = e
            case "ena files empty": var e = json["ena"] as! [String: Any]; e["files"] = [String: String](); json["ena"] = e
            case "ena file sum": var e = json["ena"] as! [String: Any]; var f = e["files"] as! [String: String]; f["Makefile"] = "abc"; e["files"] = f; json["ena"] = e
            case "ena file path": var e = json["ena"] as! [String: Any]; var f = e["files"] as! [String: String]; f["../x"] = String(repeating: "a", count: 64); e["files"] = f; json["ena"] = e
            case "empty releases": json["releases"] = [Any]()
            case "release name": mutateRelease(0) { $0["release"] = "7.0" }(&json)
            case "duplicate release": mutateRelease(1) { $0["release"] = "6.0" }(&json)
            case "kernel": mutateRelease(9) { $0["kernel"] = "3.10.0-123.el7" }(&json)
            case "kernel type": mutateRelease(9) { $0["kernel"] = 696 }(&json)
            case "missing kernel": mutateRelease(2) { $0.removeValue(forKey: "kernel") }(&json)
            case "reason missing": mutateRelease(0) { $0["ena"] = ["eligible": false] }(&json)
            case "reason on eligible": mutateRelease(6) { $0["ena"] = ["eligible": true, "reason": "x"] }(&json)
            case "ami id": mutateRelease(6) { var a = $0["amis"] as! [[String: Any]]; a[1]["id"] = "ami-XYZ"; $0["amis"] = a }(&json)
            case "ami variant": mutateRelease(6) { var a = $0["amis"] as! [[String: Any]]; a[0]["variant"] = "fast"; $0["amis"] = a }(&json)
            case "ami region": mutateRelease(6) { var a = $0["amis"] as! [[String: Any]]; a[0]["region"] = "tokyo"; $0["amis"] = a }(&json)
            case "ena ami on ineligible": mutateRelease(0) { var a = $0["amis"] as! [[String: Any]]; a.append(["region": "ap-northeast-1", "variant": "ena", "id": "ami-0123456789abcdef0"]); $0["amis"] = a }(&json)
            default: Issue.record("unknown mutation \(mutation)")
            }
        }
        #expect(message.contains("field '\(field)'"), "\(mutation): \(message)")
    }

    @Test func notJSONIsAClearError() {
        #expect(throws: VersionsError.self) { try VersionsFile.decode(Data("{".utf8)) }
        #expect(throws: VersionsError.unreadable(path: "/nonexistent/v.json", reason: "no such file or not readable")) {
            try VersionsFile.load(path: "/nonexistent/v.json")
        }
    }
}
