import Foundation
import Testing
@testable import CLI
import Versions

/// Careless and hostile input on the command line: one exit-code rule (64 = the
/// command line is wrong, 1 = the world is), messages in words, no secrets.
@Suite struct HostileInputCLITests {
    /// A scratch directory for one test; the test removes it (defer).
    func makeScratch() -> String {
        let dir = NSTemporaryDirectory() + "c6-cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func file(_ name: String, _ text: String, in scratch: String) -> String {
        let path = scratch + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test(arguments: [
        (["install", "6.99", "/dev/xvdb"], "unknown release '6.99'"),
        (["install", "six.nine", "/dev/xvdb"], "unknown release 'six.nine'"),
        (["install", "6.9", "/dev/xvdb", "--size", "1.5G"], "size '1.5G' is not a size"),
        (["install", "6.9", "/dev/xvdb", "--size", "99999999T"], "size '99999999T' is too big"),
        (["install", "6.9", "/dev/xvdb", "--gpg-key", "/nonexistent/key.asc"], "--gpg-key '/nonexistent/key.asc' is not a readable file"),
        (["install", "6.9", "/dev/xvdb", "--versions", "/nonexistent/v.json"], "--versions '/nonexistent/v.json' is not a readable file"),
        // --mirror may repeat (alternatives); --cache may not.
        (["install", "6.9", "/dev/xvdb", "--cache", "/a", "--cache", "/b"], "option '--cache' is given twice ('/a' and '/b')"),
        (["install", "6.9", "/dev/xvdb", "--size", "8G", "--size=9G"], "option '--size' is given twice"),
        (["install", "6.9", "/dev/xvdb", "--speed-time", "0"], "--speed-time needs a number of seconds"),
        (["batch", "6.99=/tmp/x.img"], "unknown release '6.99'"),
        (["register", "6.99", "vol-0123456789abcdef0"], "unknown release '6.99'"),
        (["table", "--from", "/nonexistent/results.json"], "--from '/nonexistent/results.json' is not a readable file"),
        (["versions", "--versions", "/nonexistent/v.json"], "--versions '/nonexistent/v.json' is not a readable file"),
    ])
    func theCommandLineIsWrong(_ args: [String], _ message: String) {
        let r = runCLI(args)
        #expect(r.code == 64, "\(args): \(r.err)")
        #expect(r.err.hasPrefix("error: " + message), "\(args): \(r.err)")
        #expect(r.err.contains("usage: centos6-ami \(args[0])"), "\(r.err)")
    }

    @Test func repeatableOptionsStayRepeatable() throws {
        let parsed = try parseArguments(
            ["--targets", "a", "--targets", "b", "--dry-run", "--dry-run"], flags: ["--dry-run"], options: ["--targets"],
            repeatable: ["--targets"], usage: "u")
        #expect(parsed.values["--targets"] == ["a", "b"] && parsed.has("--dry-run"))
    }

    @Test func decodingErrorsNameTheFileTheFieldAndTheProblem() {
        let scratch = makeScratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let cases: [(String, String, String)] = [
            ("v-type.json", #"{"schema": "x"}"#, "field 'schema' must be a number"),
            ("v-bad.json", "{not json", "the document is not valid JSON"),
        ]
        for (name, text, problem) in cases {
            let path = file(name, text, in: scratch)
            let r = runCLI(["versions", "--versions", path])
            #expect(r.code == 1)
            #expect(r.err == "error: versions file '\(path)': \(problem)", "\(r.err)")
        }
        let array = file("r-array.json", "[1]", in: scratch)
        let r = runCLI(["table", "--from", array])
        #expect(r.code == 1)
        #expect(r.err == "error: results file '\(array)': not a centos6-ami results file: the document must be an object", "\(r.err)")
        let missing = file("r-missing.json", #"{"amis": []}"#, in: scratch)
        #expect(runCLI(["table", "--from", missing]).err.contains("field 'schema' is missing"))
        for text in [runCLI(["table", "--from", array]).err, runCLI(["versions", "--versions", file("v3.json", "{}", in: scratch)]).err] {
            #expect(!text.contains("DecodingError") && !text.contains("CodingKeys"), "\(text)")
        }
    }

    @Test func rpmExtractNamesDIR() {
        let scratch = makeScratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let notADir = file("plain-file", "x", in: scratch)
        let r = runCLI(["rpm", "extract", "/nonexistent/a.rpm", notADir])
        #expect(r.code == 64)
        #expect(r.err.hasPrefix("error: DIR '\(notADir)' is not a directory"), "\(r.err)")
        let gone = runCLI(["rpm", "extract", "/nonexistent/a.rpm", scratch + "/no/such/dir"])
        #expect(gone.code == 64 && gone.err.contains("DIR '\(scratch)/no/such/dir' does not exist"), "\(gone.err)")
    }

    @Test func bootTestRefusesWhatIsNoImageBeforeQEMU() throws {
        let scratch = makeScratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let six = file("six-bytes.img", "abcdef", in: scratch)
        var r = runCLI(["boot-test", six, "--timeout", "1"])
        #expect(r.code == 1)
        #expect(
            r.err
                == "error: '\(six)' is not a disk image centos6-ami made: it is shorter than one 512-byte sector; give the image file or device 'centos6-ami install' wrote",
            "\(r.err)")
        r = runCLI(["boot-test", scratch, "--timeout", "1"])
        #expect(r.code == 1 && r.err.contains("it is a directory"), "\(r.err)")
        let zeros = scratch + "/zeros.img"
        FileManager.default.createFile(atPath: zeros, contents: Data(count: 4096))
        r = runCLI(["boot-test", zeros, "--timeout", "1"])
        #expect(r.code == 1 && r.err.contains("no MBR partition table"), "\(r.err)")
        // No QEMU console log was started for any of them.
        #expect(!FileManager.default.fileExists(atPath: six + ".console.log") && !FileManager.default.fileExists(atPath: zeros + ".console.log"))
    }

    @Test func passwordsInURLsAreNeverPrinted() {
        let r = runCLI(["install", "6.9", "/dev/xvdb", "--mirror", "ftp://user:s3cret@mirror.example/centos"])
        #expect(r.code == 64)
        #expect(r.err.contains("ftp://user:***@mirror.example/centos") && !r.err.contains("s3cret"), "\(r.err)")
    }
}
