import Foundation

/// Dates as this tool prints them: in UTC with the POSIX locale, whatever the builder's
/// time zone and language (log stamps, log file names, AMI names, signature times).
public enum UTCTime {
    /// `date` in `format`, a DateFormatter pattern such as `yyyy-MM-dd`.
    public static func string(_ date: Date, format: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter.string(from: date)
    }
}
