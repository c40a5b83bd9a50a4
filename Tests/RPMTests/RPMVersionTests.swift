@testable import RPM
@testable import Signature
import TestSupport
import Testing

@Suite struct RPMVersionTests {
    /// rpm's own test table (tests/rpmvercmp.at).
    static let table: [(String, String, Int)] = [
        ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1), ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1), ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1), ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1), ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1), ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0), ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0), ("20101121", "20101122", -1), ("20101122", "20101121", 1),
        ("2_0", "2_0", 0), ("2.0", "2_0", 0), ("2_0", "2.0", 0),
        ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0),
        ("+a", "+a", 0), ("+a", "_a", 0), ("_a", "+a", 0), ("+_", "+_", 0), ("_+", "+_", 0), ("_+", "_+", 0),
        ("+", "_", 0), ("_", "+", 0),
        ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1), ("1.0~rc1", "1.0~rc1~git123", 1),
        ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1), ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1), ("1.0^git2", "1.0^git1", 1), ("1.0^git1", "1.01", -1), ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0), ("1.0^20160101", "1.0.1", -1), ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0), ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0), ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0), ("1.0^git1", "1.0^git1~pre", 1), ("1.0^git1~pre", "1.0^git1", -1),
        ("1b.fc17", "1b.fc17", 0), ("1b.fc17", "1.fc17", -1), ("1.fc17", "1b.fc17", 1),
        ("1g.fc17", "1g.fc17", 0), ("1g.fc17", "1.fc17", 1), ("1.fc17", "1g.fc17", -1),
        // CentOS 6 kernels and releases.
        ("2.6.32-696.el6", "2.6.32-754.el6", -1), ("696.el6", "71.el6", 1), ("48.el6_8", "48.el6", 1),
    ]

    @Test func rpmvercmpTable() {
        for (a, b, want) in RPMVersionTests.table {
            #expect(rpmvercmp(a, b) == want, "rpmvercmp(\(a), \(b))")
        }
    }

    @Test func evrOrdering() {
        #expect(EVR(epoch: 1, version: "1.0", release: "1") > EVR(epoch: 0, version: "9.9", release: "9"))
        #expect(EVR(parsing: "2:1.2-3.el6") == EVR(epoch: 2, version: "1.2", release: "3.el6"))
        #expect(EVR(parsing: "1.2") == EVR(epoch: 0, version: "1.2", release: ""))
        // A requirement without release matches any release of that version.
        #expect(EVR.compare(EVR(parsing: "1.2"), EVR(parsing: "1.2-9")) == 0)
        #expect(EVR(parsing: "0.9.8e-20.el6") < EVR(parsing: "1.0.1e-15.el6"))
    }

    @Test func versionRanges() {
        let ge = Dependency.greater | Dependency.equal, eq = Dependency.equal, lt = Dependency.less
        func ok(_ pf: Int, _ p: String?, _ rf: Int, _ r: String?) -> Bool {
            rangesOverlap(provideFlags: pf, provideEVR: p.map(EVR.init(parsing:)), requireFlags: rf, requireEVR: r.map(EVR.init(parsing:)))
        }
        #expect(ok(eq, "1.2-3", ge, "1.0"))
        #expect(!ok(eq, "0.9-3", ge, "1.0"))
        #expect(ok(eq, "1.0-1", eq, "1.0"))
        #expect(!ok(eq, "1.0-1", lt, "1.0"))
        #expect(ok(0, nil, ge, "5")) // unversioned provide satisfies anything
        #expect(ok(eq, "1", 0, nil)) // unversioned require is satisfied by anything
        #expect(ok(ge, "2", lt, "3"))
        #expect(!ok(lt, "2", ge, "3"))
        #expect(ok(eq, "1:1.0-1", ge, "1:0.5"))
        #expect(!ok(eq, "0:1.0-1", ge, "1:0.5"))
    }
}
