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
        #expect(v.release("6.9")?.updatesKernel == "2.6.32-696.30.1.el6" && v.release("6.10")?.updatesKernel == "2.6.32-754.35.1.el6")
        #expect(v.releases.filter(\.ena.eligible).map(\.release) == ["6.6", "6.7", "6.8", "6.9", "6.10"])
        for r in v.releases where !r.ena.eligible { #expect((r.ena.reason ?? "").contains(r.release == "6.5" ? "net/busy_poll.h" : "linux/kconfig.h")) }
        #expect(v.mirrors.download == "https://archive.kernel.org/centos-vault")
        #expect(v.mirrors.image == "http://archive.kernel.org/centos-vault")
        #expect(v.ena.version == "2.9.1" && v.ena.files.count == 32)
        #expect(v.ena.files(in: "kernel/linux/ena").count == 24 && v.ena.files(in: "kernel/linux/common/ena_com").count == 8)
        #expect(v.release("6.9")?.amis.map(\.id) == ["ami-04b471c820e90bbcc", "ami-00e938eee68482e28"])
    }

    @Test func enaPinMatchesTheChecksumLists() throws {
        // The pinned list is the two lists in data/ (kernel/linux/ena and kernel/linux/common/ena_com), keyed by path from the tree root.
        var expected: [String: String] = [:]
        for list in ["data/ena_linux_2.9.1-kernel-linux-ena.sha256", "data/ena_linux_2.9.1-kernel-linux-common-ena_com.sha256"] {
            for line in try String(contentsOf: repoRoot.appendingPathComponent(list), encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                expected[String(parts[1])] = String(parts[0])
            }
        }
        #expect(expected.count == 32)
        #expect(try VersionsFile.embedded().ena.files == expected)
    }

    /// A schema 1 file (the pin of kernel/linux/ena alone) fails on its schema, with the hint.
    @Test func aSchema1FileIsRefusedByItsSchema() throws {
        let message = try loadError { json in
            json["schema"] = 1
            var e = json["ena"] as! [String: Any]
            e.removeValue(forKey: "buildDirectory"); e.removeValue(forKey: "sourceDirectories"); e["sourceDirectory"] = "kernel/linux/ena"
            json["ena"] = e
        }
        #expect(message.contains("field 'schema' is 1; this tool reads schema 2 (schema 1 pinned only kernel/linux/ena"), "\(message)")
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
        ("ena file sum", "ena.files[\"kernel/linux/ena/Makefile\"]"),
        ("ena file path", "ena.files[\"../x\"]"),
        ("ena file outside the directories", "ena.files[\"kernel/linux/rpm/Makefile\"]"),
        ("ena directories empty", "ena.sourceDirectories"),
        ("ena directory absolute", "ena.sourceDirectories[1]"),
        ("ena directory without files", "ena.sourceDirectories[2]"),
        ("ena build directory", "ena.buildDirectory"),
        ("ena makefile unpinned", "ena.files"),
        ("empty releases", "releases"),
        ("release name", "releases[0].release"),
        ("duplicate release", "releases[1].release"),
        ("kernel", "releases[9].kernel"),
        ("kernel type", "releases[9].kernel"),
        ("missing kernel", "releases[2].kernel"),
        ("updates kernel of another release", "releases[9].updatesKernel"),
        ("updates kernel not an update", "releases[9].updatesKernel"),
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
            case "schema": json["schema"] = 3
            case "missing mirrors": json.removeValue(forKey: "mirrors")
            case "mirror scheme": var m = json["mirrors"] as! [String: Any]; m["download"] = "ftp://x"; json["mirrors"] = m
            case "image mirror": var m = json["mirrors"] as! [String: Any]; m["image"] = "not a url"; json["mirrors"] = m
            case "ena url": var e = json["ena"] as! [String: Any]; e["url"] = "http://github.com/x.tgz"; json["ena"] = e
            case "ena version": var e = json["ena"] as! [String: Any]; e["version"] = "2.9"; json["ena"] = e
            case "ena files empty": var e = json["ena"] as! [String: Any]; e["files"] = [String: String](); json["ena"] = e
            case "ena file sum":
                var e = json["ena"] as! [String: Any]; var f = e["files"] as! [String: String]; f["kernel/linux/ena/Makefile"] = "abc"; e["files"] = f;
                json["ena"] = e
            case "ena file outside the directories":
                var e = json["ena"] as! [String: Any]; var f = e["files"] as! [String: String];
                f["kernel/linux/rpm/Makefile"] = String(repeating: "a", count: 64); e["files"] = f; json["ena"] = e
            case "ena directories empty": var e = json["ena"] as! [String: Any]; e["sourceDirectories"] = [String](); json["ena"] = e
            case "ena directory absolute":
                var e = json["ena"] as! [String: Any]; e["sourceDirectories"] = ["kernel/linux/ena", "/kernel/linux/common/ena_com"]; json["ena"] = e
            case "ena directory without files":
                var e = json["ena"] as! [String: Any]; e["sourceDirectories"] = ["kernel/linux/ena", "kernel/linux/common/ena_com", "kernel/linux/rpm"];
                json["ena"] = e
            case "ena build directory": var e = json["ena"] as! [String: Any]; e["buildDirectory"] = "kernel/linux/common"; json["ena"] = e
            case "ena makefile unpinned":
                var e = json["ena"] as! [String: Any]; var f = e["files"] as! [String: String]; f.removeValue(forKey: "kernel/linux/ena/Makefile");
                e["files"] = f; json["ena"] = e
            case "ena file path":
                var e = json["ena"] as! [String: Any]; var f = e["files"] as! [String: String]; f["../x"] = String(repeating: "a", count: 64); e["files"] = f;
                json["ena"] = e
            case "empty releases": json["releases"] = [Any]()
            case "release name": mutateRelease(0) { $0["release"] = "7.0" }(&json)
            case "duplicate release": mutateRelease(1) { $0["release"] = "6.0" }(&json)
            case "kernel": mutateRelease(9) { $0["kernel"] = "3.10.0-123.el7" }(&json)
            case "kernel type": mutateRelease(9) { $0["kernel"] = 696 }(&json)
            case "missing kernel": mutateRelease(2) { $0.removeValue(forKey: "kernel") }(&json)
            case "updates kernel of another release": mutateRelease(9) { $0["updatesKernel"] = "2.6.32-754.35.1.el6" }(&json)
            case "updates kernel not an update": mutateRelease(9) { $0["updatesKernel"] = "2.6.32-696.el6" }(&json)
            case "reason missing": mutateRelease(0) { $0["ena"] = ["eligible": false] }(&json)
            case "reason on eligible": mutateRelease(6) { $0["ena"] = ["eligible": true, "reason": "x"] }(&json)
            case "ami id":
                mutateRelease(6) {
                    var a = $0["amis"] as! [[String: Any]]; a[1]["id"] = "ami-XYZ"; $0["amis"] = a
                }(&json)
            case "ami variant":
                mutateRelease(6) {
                    var a = $0["amis"] as! [[String: Any]]; a[0]["variant"] = "fast"; $0["amis"] = a
                }(&json)
            case "ami region":
                mutateRelease(6) {
                    var a = $0["amis"] as! [[String: Any]]; a[0]["region"] = "tokyo"; $0["amis"] = a
                }(&json)
            case "ena ami on ineligible":
                mutateRelease(0) {
                    var a = $0["amis"] as! [[String: Any]]; a.append(["region": "ap-northeast-1", "variant": "ena", "id": "ami-0123456789abcdef0"]);
                    $0["amis"] = a
                }(&json)
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
