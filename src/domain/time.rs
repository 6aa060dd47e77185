//! Timestamps on the wire: UTC, six fractional digits, `Z`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// `2025-05-07T17:43:26.000000Z`
pub fn format_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Accepts `YYYY-MM-DD` (the end of that day, UTC), RFC 3339, or `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse_date_input(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(23, 59, 59).map(|n| Utc.from_utc_datetime(&n));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_only_means_end_of_day() {
        let t = parse_date_input("2030-01-31").unwrap();
        assert_eq!(format_ts(&t), "2030-01-31T23:59:59.000000Z");
    }

    #[test]
    fn rfc3339_is_converted_to_utc() {
        let t = parse_date_input("2030-01-31T10:00:00+02:00").unwrap();
        assert_eq!(format_ts(&t), "2030-01-31T08:00:00.000000Z");
        assert!(parse_date_input("31/01/2030").is_none());
        assert!(parse_date_input("2030-02-30").is_none());
    }
}
