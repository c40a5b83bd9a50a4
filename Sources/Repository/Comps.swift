import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The comps (group) file: which packages `yum groupinstall` asks for.
public struct Comps: Sendable {
    public struct PackageRequest: Sendable, Equatable {
        public enum Kind: String, Sendable { case mandatory, `default`, optional, conditional }
        public var name: String
        public var type: Kind
        /// For conditional requests: installed only when this package is.
        public var requires: String?
    }
    public struct Group: Sendable {
        public var id: String
        /// The untranslated name.
        public var name: String
        public var packages: [PackageRequest]
        /// Mandatory + default: what `yum groupinstall` installs (with the default group_package_types).
        public var installedByDefault: [String] {
            packages.filter { $0.type == .mandatory || $0.type == .default }.map(\.name)
        }
    }
    public var groups: [Group]

    /// A group by id, case-insensitively, or by untranslated name ("core" / "Core").
    public func group(_ key: String) -> Group? {
        groups.first { $0.id.lowercased() == key.lowercased() } ?? groups.first { $0.name.lowercased() == key.lowercased() }
    }

    public static func parse(_ data: Data, name: String = "comps.xml") throws -> Comps {
        let delegate = CompsParser()
        try runParser(data, delegate: delegate, name: name, root: "comps")
        return Comps(groups: delegate.groups)
    }
}

final class CompsParser: NSObject, MetadataParserDelegate {
    var groups: [Comps.Group] = []
    var error: String?
    var sawRoot = false
    var closedRoot = false
    private var inGroup = false
    private var depth = 0
    private var id = "", name = ""
    private var packages: [Comps.PackageRequest] = []
    private var text = ""
    private var nameLang: String?
    private var reqType = Comps.PackageRequest.Kind.mandatory
    private var reqRequires: String?

    func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        text = ""
        switch element {
        case "comps": sawRoot = true
        case "group":
            inGroup = true; id = ""; name = ""; packages = []
        case "name": nameLang = attributes["xml:lang"]
        case "packagereq":
            // createrepo/yum treat a packagereq without type as mandatory.
            let raw = attributes["type"] ?? "mandatory"
            guard let kind = Comps.PackageRequest.Kind(rawValue: raw) else {
                fail(parser, "group '\(id)': unknown packagereq type '\(raw)'"); return
            }
            reqType = kind
            reqRequires = attributes["requires"]
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if element == "comps" { closedRoot = true }
        guard inGroup else { return }
        switch element {
        case "id": id = value
        case "name": if nameLang == nil { name = value }
        case "packagereq":
            packages.append(Comps.PackageRequest(name: value, type: reqType, requires: reqRequires))
        case "group":
            inGroup = false
            guard !id.isEmpty else { fail(parser, "a group without <id>"); return }
            groups.append(Comps.Group(id: id, name: name, packages: packages))
        default: break
        }
        text = ""
    }

    private func fail(_ parser: XMLParser, _ message: String) {
        if error == nil { error = message }
        parser.abortParsing()
    }
}
