//! OAuth 1.0a one-legged request signing, as WooCommerce checks it on plain http
//! (providers/woocommerce.md §2): the `oauth_*` parameters go in the query string, the base
//! string is `METHOD&enc(url)&enc(sorted enc(k)=enc(v) pairs)`, the key is `secret&`, and the
//! JSON body is not signed.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - . _ ~`.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `k=v&k=v`, RFC 3986-encoded, in the given order.
pub fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature base string of a request.
pub fn base_string(method: &str, url: &str, params: &[(String, String)]) -> String {
    let mut p: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    p.sort();
    let joined = p
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        enc(url),
        enc(&joined)
    )
}

/// HMAC-SHA1 of the base string with `secret&`, base64.
pub fn signature(base: &str, consumer_secret: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{consumer_secret}&").as_bytes())
        .expect("HMAC takes any key length");
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The query string of a signed request: `query` plus the `oauth_*` parameters, with a fresh
/// nonce and the current time.
pub fn signed_query(
    method: &str,
    url: &str,
    query: &[(String, String)],
    consumer_key: &str,
    consumer_secret: &str,
) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    sign(
        method,
        url,
        query,
        consumer_key,
        consumer_secret,
        &nonce,
        &ts,
    )
}

/// [`signed_query`] with a given nonce and timestamp.
pub fn sign(
    method: &str,
    url: &str,
    query: &[(String, String)],
    consumer_key: &str,
    consumer_secret: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut params: Vec<(String, String)> = query.to_vec();
    params.extend([
        ("oauth_consumer_key".to_owned(), consumer_key.to_owned()),
        ("oauth_nonce".to_owned(), nonce.to_owned()),
        ("oauth_signature_method".to_owned(), "HMAC-SHA1".to_owned()),
        ("oauth_timestamp".to_owned(), timestamp.to_owned()),
    ]);
    let sig = signature(&base_string(method, url, &params), consumer_secret);
    params.push(("oauth_signature".to_owned(), sig));
    encode_pairs(&params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986_encoding_differs_from_forms() {
        assert_eq!(enc("a b+c/~*"), "a%20b%2Bc%2F~%2A");
        assert_eq!(enc("é"), "%C3%A9");
    }

    /// The example of RFC 5849 §3.4.1.1 (its base string, which a verifier rebuilds the same way).
    #[test]
    fn base_string_sorts_and_double_encodes() {
        let params: Vec<(String, String)> = [
            ("b5", "=%3D"),
            ("a3", "a"),
            ("c@", ""),
            ("a2", "r b"),
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("c2", ""),
            ("a3", "2 q"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            base_string("post", "http://example.com/request", &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn signature_is_hmac_sha1_of_the_base_string() {
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog") is a published vector;
        // our key is `secret&`, so sign with secret "key" minus the ampersand is not possible:
        // check the vector through the same primitive instead.
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
        );
        let a = sign("GET", "http://x/y", &[], "ck", "cs", "n1", "1");
        let b = sign("GET", "http://x/y", &[], "ck", "cs", "n2", "1");
        assert_ne!(a, b, "the nonce is signed");
        assert!(a.contains("oauth_signature="));
    }
}
