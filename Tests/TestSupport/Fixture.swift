import Foundation
import Host

/// The rpm fixtures (Tests/TestSupport/Fixtures, see make-fixtures.sh there) and
/// small helpers the rpm, signature and repository tests share.
public enum Fixture {
    public static let dir: String = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
    public static func path(_ name: String) -> String { dir + "/" + name }
    public static let genuine = [
        (file: "libproxy-bin-0.3.0-4.el6_3.x86_64.header-only.rpm", name: "libproxy-bin", version: "0.3.0", release: "4.el6_3", size: 5764, fullSize: 8408),
        (file: "snappy-1.1.0-1.el6.x86_64.header-only.rpm", name: "snappy", version: "1.1.0", release: "1.el6", size: 6560, fullSize: 40116),
        (file: "libarchive-2.8.3-4.el6_2.x86_64.header-only.rpm", name: "libarchive", version: "2.8.3", release: "4.el6_2", size: 6940, fullSize: 129440),
    ]
    public static func genuinePath(_ file: String) -> String { path("el6-rpm-headers/" + file) }

    /// A fresh private directory, removed by the caller with `cleanup`.
    public static func temporaryDirectory() throws -> String {
        let dir = try TemporaryDirectory.make("rpmtests")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Copies a fixture to a temp file with `mutate` applied to its bytes.
    public static func mutatedCopy(_ name: String, in dir: String, _ mutate: (inout [UInt8]) -> Void) throws -> String {
        var bytes = [UInt8](FileManager.default.contents(atPath: path(name))!)
        mutate(&bytes)
        let out = dir + "/" + (name as NSString).lastPathComponent
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        return out
    }
}
