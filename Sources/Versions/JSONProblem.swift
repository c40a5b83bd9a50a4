import Foundation

/// A JSON decoding failure said in words: where in the document (`releases[3].kernel`)
/// and what is wrong there, instead of Swift's `DecodingError` text. Every file we
/// read (versions, results, batch summary) reports through it.
public struct JSONProblem: Equatable, Sendable, CustomStringConvertible {
    /// The JSON path of the bad value; "(top level)" for the document itself.
    public var field: String
    /// What is wrong, lower-case: "is missing", "must be a string", "is not valid JSON (...)".
    public var problem: String

    public init(field: String, problem: String) { self.field = field; self.problem = problem }

    public var description: String {
        field == "(top level)" ? "the document \(problem)" : "field '\(field)' \(problem)"
    }

    /// Turns any error of `JSONDecoder` into a problem in words.
    public init(_ error: Error) {
        switch error {
        case let DecodingError.keyNotFound(key, context):
            self.init(field: JSONProblem.path(context.codingPath + [key]), problem: "is missing")
        case let DecodingError.typeMismatch(type, context):
            self.init(field: JSONProblem.path(context.codingPath), problem: "must be \(JSONProblem.kind(type))")
        case let DecodingError.valueNotFound(type, context):
            self.init(field: JSONProblem.path(context.codingPath), problem: "is null; it must be \(JSONProblem.kind(type))")
        case let DecodingError.dataCorrupted(context):
            if context.codingPath.isEmpty {
                // JSONSerialization's own words carry the line and column.
                let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                self.init(field: "(top level)", problem: "is not valid JSON" + (detail.map { " (\(JSONProblem.lowerFirst($0)))" } ?? ""))
            } else {
                self.init(field: JSONProblem.path(context.codingPath), problem: "has an invalid value (\(JSONProblem.lowerFirst(context.debugDescription)))")
            }
        default:
            self.init(field: "(top level)", problem: "cannot be read as JSON (\(error.localizedDescription))")
        }
    }

    /// `releases[3].kernel` from a coding path.
    public static func path(_ keys: [CodingKey]) -> String {
        var text = ""
        for key in keys {
            if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return text.isEmpty ? "(top level)" : text
    }

    /// The JSON kind a Swift type is decoded from, in words.
    static func kind(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name == "String" { return "a string" }
        if name == "Bool" { return "true or false" }
        if ["Int", "Int64", "Int32", "UInt64", "UInt32", "UInt", "Double", "Float"].contains(name) { return "a number" }
        if name.hasPrefix("Array") || name.hasPrefix("[") { return "a list" }
        return "an object"
    }

    static func lowerFirst(_ text: String) -> String {
        guard let first = text.first else { return text }
        let trimmed = text.hasSuffix(".") ? String(text.dropLast()) : text
        return first.lowercased() + trimmed.dropFirst()
    }
}
