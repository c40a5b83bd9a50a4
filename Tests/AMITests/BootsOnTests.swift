import Foundation
import Testing
@testable import AMI

@Suite struct BootsOnTests {
    @Test func theVerdictIsTaggedOnlyWhenItWasRead() {
        var options = RegisterOptions(aws: AWSContext(region: "ap-northeast-1"), buildID: "b1", toolVersion: "0.1.0")
        let plain = AMIRegistrar.tags(name: "n", release: "6.9", variant: .ena, options: options)
        #expect(!plain.contains { $0.Key == TagKey.bootsOn }, "a volume id: nothing read, nothing claimed")
        options.bootsOn = "xen,nitro"
        let tagged = AMIRegistrar.tags(name: "n", release: "6.9", variant: .ena, options: options)
        #expect(tagged.contains { $0.Key == "centos6-ami:boots-on" && $0.Value == "xen,nitro" })
    }

    @Test func recordsCarryTheVerdictAndOldFilesStillRead() throws {
        let record = AMIRecord(
            release: "6.9", region: "ap-northeast-1", variant: .ena, amiId: "ami-1", snapshotId: "snap-1", name: "n",
            date: "2026-12-05T00:00:00Z", buildId: "b", bootsOn: "xen,nitro")
        let data = try JSONEncoder().encode(record)
        #expect(try JSONDecoder().decode(AMIRecord.self, from: data) == record)
        #expect(record.tableEntry.nitro)
        var old = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        old["bootsOn"] = nil
        let decoded = try JSONDecoder().decode(AMIRecord.self, from: try JSONSerialization.data(withJSONObject: old))
        #expect(decoded.bootsOn == nil && !decoded.tableEntry.nitro)
    }

    @Test func nitroCapableIdsGetTheSecondFootnote() {
        let entries = [
            AMIEntry(release: "6.4", region: "r", variant: "plain", id: "ami-64", bootsOn: "xen"),
            AMIEntry(release: "6.9", region: "r", variant: "plain", id: "ami-69", bootsOn: "xen"),
            AMIEntry(release: "6.9", region: "r", variant: "ena", id: "ami-69e", bootsOn: "xen,nitro"),
            AMIEntry(release: "6.10", region: "r", variant: "ena", id: "ami-610e"),
        ]
        let lines = AMITable.markdown(entries).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("| CentOS 6.4  |  ami-64  |"))
        #expect(lines.contains("| CentOS 6.9  |  ami-69, ami-69e (*1) (*2) |"))
        #expect(lines.contains("| CentOS 6.10  |  ami-610e (*1) |"), "ENA on trust: no Nitro claim")
        #expect(Array(lines.suffix(3)) == ["", AMITable.footnote, AMITable.nitroFootnote])
        #expect(!AMITable.markdown([entries[0]]).contains("*2"))
    }
}
