//! Input checks shared by the handlers: each returns a 422 that names the field and what is wrong.

use super::error::ApiError;

/// A required, trimmed, printable name of at most `max` characters.
pub fn name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(v.to_owned())
}

/// One of a fixed set of words.
pub fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<String, ApiError> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be one of {}; got {value:?}",
            allowed.join(", ")
        )))
    }
}

/// A GB/T 2260 region code: six digits.
pub fn region_code(field: &str, value: &str) -> Result<String, ApiError> {
    if value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be a six-digit GB/T 2260 code; got {value:?}"
        )))
    }
}

/// A camera's username and a password given in plaintext: at most 200 bytes each.
pub fn credentials(username: Option<&str>, password: Option<&str>) -> Result<(), ApiError> {
    if username.is_some_and(|u| u.len() > 200) || password.is_some_and(|p| p.len() > 200) {
        return Err(ApiError::invalid(
            "username and password are limited to 200 bytes",
        ));
    }
    Ok(())
}

/// The percent-decoded form of a URL's user or password.
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An RTSP URL split from any credentials written into it: (URL without credentials, username, password).
pub fn rtsp_url(
    field: &str,
    value: &str,
) -> Result<(url::Url, Option<String>, Option<String>), ApiError> {
    let mut u = url::Url::parse(value.trim())
        .map_err(|e| ApiError::invalid(format!("{field} is not a URL: {e}")))?;
    if u.scheme() != "rtsp" && u.scheme() != "rtsps" {
        return Err(ApiError::invalid(format!("{field} must be an rtsp:// URL")));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(format!("{field} has no host")));
    }
    let user = (!u.username().is_empty()).then(|| decode(u.username()));
    let pass = u.password().map(decode);
    // Credentials never stay in a stored URL: they would leak into every response and log line.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok((u, user, pass))
}

/// A URL template (`rtsp://user:pw@{host}:{port}/...`) split from any credentials written into it:
/// (template without credentials, username, password). Templates are stored and shown, so credentials
/// must not stay in them.
pub fn template_credentials(template: &str) -> (String, Option<String>, Option<String>) {
    let t = template.trim();
    let Some(scheme_end) = t.find("://").map(|i| i + 3) else {
        return (t.to_owned(), None, None);
    };
    let rest = &t[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (t.to_owned(), None, None);
    };
    let userinfo = &rest[..at];
    let (user, pass) = match userinfo.split_once(':') {
        Some((u, p)) => (decode(u), Some(decode(p))),
        None => (decode(userinfo), None),
    };
    let stripped = format!("{}{}", &t[..scheme_end], &rest[at + 1..]);
    (stripped, (!user.is_empty()).then_some(user), pass)
}

/// `scheme://host:port` of a URL (the port made explicit), what a stored password is bound to.
pub fn authority(u: &str) -> Option<String> {
    let u = url::Url::parse(u).ok()?;
    let port = u.port_or_known_default().unwrap_or(554);
    Some(format!(
        "{}://{}:{port}",
        u.scheme(),
        u.host_str()?.to_ascii_lowercase()
    ))
}

/// A stored camera password goes only where it went before: to the authorities (`scheme://host:port`)
/// of the camera's stored URLs. A URL elsewhere needs the password given again with it, or the server
/// would hand the stored secret to whoever listens at the new address.
pub fn stored_password_may_go(stored_urls: &[Option<&str>], to: &str) -> Result<(), ApiError> {
    let target = authority(to);
    if target.is_some() && stored_urls.iter().flatten().any(|u| authority(u) == target) {
        return Ok(());
    }
    Err(ApiError::invalid(
        "the camera's address changed: give its password again (a stored password is only sent to \
         the address it was stored for)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtsp_url_moves_credentials_out() {
        let (u, user, pass) = rtsp_url(
            "main_url",
            "rtsp://admin:p%40ss@10.0.0.5:554/Streaming/Channels/101",
        )
        .unwrap();
        assert_eq!(u.as_str(), "rtsp://10.0.0.5:554/Streaming/Channels/101");
        assert_eq!(user.as_deref(), Some("admin"));
        assert_eq!(pass.as_deref(), Some("p@ss"));
        assert!(rtsp_url("main_url", "http://x/").is_err());
        assert!(rtsp_url("main_url", "not a url").is_err());
    }

    #[test]
    fn templates_lose_their_credentials() {
        let (t, u, p) = template_credentials("rtsp://admin:p%40ss@{host}:{port}/ch{channel}");
        assert_eq!(t, "rtsp://{host}:{port}/ch{channel}");
        assert_eq!((u.as_deref(), p.as_deref()), (Some("admin"), Some("p@ss")));
        let (t, u, p) = template_credentials("rtsp://{host}:{port}/a@b/{channel}");
        assert_eq!(t, "rtsp://{host}:{port}/a@b/{channel}");
        assert_eq!((u, p), (None, None));
    }

    #[test]
    fn a_stored_password_stays_with_its_address() {
        let stored = [
            Some("rtsp://10.0.0.5/ch1"),
            Some("rtsp://10.0.0.6:8554/sub"),
        ];
        assert!(stored_password_may_go(&stored, "rtsp://10.0.0.5:554/ch2").is_ok());
        assert!(stored_password_may_go(&stored, "rtsp://10.0.0.6:8554/other").is_ok());
        assert!(stored_password_may_go(&stored, "rtsp://10.0.0.5:8554/ch1").is_err());
        assert!(stored_password_may_go(&stored, "rtsp://evil.example/ch1").is_err());
        assert!(stored_password_may_go(&stored, "rtsps://10.0.0.5/ch1").is_err());
        assert!(stored_password_may_go(&[None], "rtsp://10.0.0.5/ch1").is_err());
    }

    #[test]
    fn names_and_codes() {
        assert!(name("name", "  ", 10).is_err());
        assert!(name("name", "a\u{0}b", 10).is_err());
        assert_eq!(name("name", " 窗口A12 ", 10).unwrap(), "窗口A12");
        assert!(region_code("code", "36070").is_err());
        assert!(region_code("code", "360702").is_ok());
    }
}
