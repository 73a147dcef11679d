//! POLYV request signing: MD5 over `appSecret + k1v1k2v2... + appSecret`, uppercase hex.

use md5::{Digest, Md5};

/// The concatenation that is wrapped in the secret: every parameter but `sign` with a
/// non-empty value, sorted by name (bytes), as `namevalue` with no separators.
pub fn concatenate<'a>(params: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .filter(|(k, _)| *k != "sign")
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    pairs.iter().map(|(k, v)| format!("{k}{v}")).collect()
}

/// `UPPERCASE(hex(MD5(app_secret + concatenated + app_secret)))`.
pub fn sign(app_secret: &str, concatenated: &str) -> String {
    let digest = Md5::digest(format!("{app_secret}{concatenated}{app_secret}").as_bytes());
    hex::encode_upper(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_vector() {
        let params = [
            ("appId", Some("g4rqgmmjuo")),
            ("timestamp", Some("1660270926732")),
            ("channelIds", Some("2477096,2272655")),
            ("startDay", Some("2022-05-20")),
            ("endDay", Some("2022-06-18")),
            ("page", None),
            ("size", None),
        ];
        let s = concatenate(params);
        assert_eq!(
            s,
            "appIdg4rqgmmjuochannelIds2477096,2272655endDay2022-06-18startDay2022-05-20timestamp1660270926732"
        );
        assert_eq!(
            sign("fsq2k5weced1h8vui657xtdva66whf0g", &s),
            "0D2BDA2FD04D93A2B8832B91FD973C4D"
        );
    }

    #[test]
    fn empty_values_and_sign_are_left_out() {
        let s = concatenate([("b", Some("2")), ("a", Some("")), ("sign", Some("x"))]);
        assert_eq!(s, "b2");
    }
}
