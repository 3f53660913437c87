//! The one place that decides what of a URL may be shown or stored: every message,
//! listing, log line and record that holds a URL (remotes, endpoints, webhooks,
//! errors of the HTTP and object-store clients) goes through [`url`] or [`text`].
//!
//! Hidden: the userinfo (`user:password@`, or a lone `token@`) and the value of every
//! query or fragment parameter whose name looks like a secret (`token`, `key`,
//! `secret`, `signature`, `sig`, `password`, `X-Amz-*`, `access_token`, ...). A value
//! that is only `${NAME}` references (expanded from the environment when a webhook
//! is sent) is a reference, not a secret, and is kept, so the listing says where the
//! secret comes from. Secrets in a URL's path (a token as a path segment) cannot be
//! told from names: docs/security.md says to write them as `${NAME}`.

/// What a hidden part is replaced by.
pub const MASK: &str = "***";

/// Whether `s` is one or more `${NAME}` references and nothing else.
pub fn is_reference(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix("${") else {
            return false;
        };
        let Some(end) = after.find('}') else {
            return false;
        };
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return false;
        }
        rest = &after[end + 1..];
    }
    true
}

/// Whether a query parameter of this name carries a secret.
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const WHOLE: [&str; 8] = ["sig", "pwd", "pass", "code", "auth", "jwt", "otp", "hmac"];
    const PART: [&str; 10] = [
        "cookie",
        "token",
        "secret",
        "passw",
        "signature",
        "credential",
        "key",
        "session",
        "authorization",
        "private",
    ];
    n.starts_with("x-amz-")
        || n.starts_with("x-goog-")
        || WHOLE.contains(&n.as_str())
        || PART.iter().any(|p| n.contains(p))
}

/// Whether a userinfo (`user`, `user:password`) may be shown: only when its secret
/// part is a `${NAME}` reference (a lone name is often a token, so it must be one too).
fn userinfo_is_safe(info: &str) -> bool {
    match info.split_once(':') {
        Some((user, pass)) => is_reference(pass) && (user.is_empty() || !user.contains('@')),
        None => is_reference(info),
    }
}

/// `k=v&k2=v2` with the values of secret-looking names masked.
fn redact_params(params: &str, out: &mut String) {
    for (i, pair) in params.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, v)) if is_secret_param(k) && !v.is_empty() && !is_reference(v) => {
                out.push_str(k);
                out.push('=');
                out.push_str(MASK);
            }
            // A URL as a parameter (`?next=https://u:p@h`) is a URL like any other.
            Some((k, v)) if v.contains("://") => {
                out.push_str(k);
                out.push('=');
                out.push_str(&url(v));
            }
            _ => out.push_str(pair),
        }
    }
}

/// A URL safe to print or store: userinfo and secret-looking query and fragment
/// parameters replaced by `***` (unless they are `${NAME}` references). Text that is
/// not a URL comes back unchanged.
pub fn url(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let start = scheme_end + 3;
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..start]);
    let rest = &s[start..];
    // The authority ends at the first '/', '?' or '#'; its userinfo at the last '@'.
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    match authority.rsplit_once('@') {
        Some((info, host)) if !userinfo_is_safe(info) => {
            out.push_str(MASK);
            out.push('@');
            out.push_str(host);
        }
        _ => out.push_str(authority),
    }
    let tail = &rest[auth_end..];
    let (before_frag, frag) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    match before_frag.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            redact_params(query, &mut out);
        }
        None => out.push_str(before_frag),
    }
    if let Some(f) = frag {
        out.push('#');
        redact_params(f, &mut out);
    }
    out
}

/// Whether [`url`] would hide anything in `s`.
pub fn has_secrets(s: &str) -> bool {
    url(s) != s
}

/// Free text (an error message from a client library, say) with every URL in it
/// passed through [`url`]. A URL runs from its `scheme://` to the next blank,
/// quote, angle bracket or closing parenthesis (messages put URLs in parentheses).
pub fn text(s: &str) -> String {
    if !s.contains("://") {
        return s.to_string();
    }
    let is_scheme = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
    let is_end = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')');
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(i) = s[search..].find("://") {
        let sep = search + i;
        let mut begin = sep;
        while begin > done && is_scheme(bytes[begin - 1]) {
            begin -= 1;
        }
        let end = s[sep..].find(is_end).map_or(s.len(), |e| sep + e);
        if begin == sep {
            // No scheme before "://": not a URL; look further.
            search = sep + 3;
            continue;
        }
        out.push_str(&s[done..begin]);
        out.push_str(&url(&s[begin..end]));
        done = end;
        search = end.max(sep + 3);
    }
    out.push_str(&s[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_userinfo() {
        assert_eq!(url("https://u:secret@host/x"), "https://***@host/x");
        assert_eq!(url("https://token@host"), "https://***@host");
        assert_eq!(url("s3://KEY:SECRET@bucket/p"), "s3://***@bucket/p");
        assert_eq!(url("s3://bucket/p"), "s3://bucket/p");
        assert_eq!(url("http://a@b:c@host/x"), "http://***@host/x");
        // The '@' of a path is not userinfo.
        assert_eq!(url("http://host/a@b"), "http://host/a@b");
        assert_eq!(url("/plain/path"), "/plain/path");
    }

    #[test]
    fn keeps_references() {
        assert_eq!(
            url("https://user:${HOOK_PASS}@host/x"),
            "https://user:${HOOK_PASS}@host/x"
        );
        assert_eq!(url("https://${TOKEN}@host/x"), "https://${TOKEN}@host/x");
        assert_eq!(
            url("https://h/x?token=${T}&a=1"),
            "https://h/x?token=${T}&a=1"
        );
        assert_eq!(url("https://u:pre${P}@h"), "https://***@h");
    }

    #[test]
    fn hides_secret_parameters() {
        assert_eq!(
            url("https://h/x?a=1&token=abc&X-Amz-Signature=f00&sig=s#access_token=t"),
            "https://h/x?a=1&token=***&X-Amz-Signature=***&sig=***#access_token=***"
        );
        assert_eq!(url("https://h/x?api_key=k&q"), "https://h/x?api_key=***&q");
        assert_eq!(url("https://h/?password="), "https://h/?password=");
        assert_eq!(
            url("https://h/?next=https://u:p@x/y"),
            "https://h/?next=https://***@x/y"
        );
    }

    #[test]
    fn hides_urls_inside_text() {
        assert_eq!(
            text("error sending request for url (http://u:pw@127.0.0.1:9/hook?token=x): refused"),
            "error sending request for url (http://***@127.0.0.1:9/hook?token=***): refused"
        );
        assert_eq!(
            text("a 'https://k:s@h/p' and \"s3://k:s@b\""),
            "a 'https://***@h/p' and \"s3://***@b\""
        );
        assert_eq!(text("no url :// here"), "no url :// here");
        assert_eq!(text("plain"), "plain");
    }
}
