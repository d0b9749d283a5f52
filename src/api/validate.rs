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
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let user = (!u.username().is_empty()).then(|| decode(u.username()));
    let pass = u.password().map(decode);
    // Credentials never stay in a stored URL: they would leak into every response and log line.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok((u, user, pass))
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
    fn names_and_codes() {
        assert!(name("name", "  ", 10).is_err());
        assert!(name("name", "a\u{0}b", 10).is_err());
        assert_eq!(name("name", " 窗口A12 ", 10).unwrap(), "窗口A12");
        assert!(region_code("code", "36070").is_err());
        assert!(region_code("code", "360702").is_ok());
    }
}
