//! Input rules: account ids, client message ids, titles, bodies, and the key of a direct pair.

/// Longest account id accepted (identity's ids are far shorter; other issuers' subjects vary).
pub const ACCOUNT_MAX: usize = 128;
/// Longest client message id.
pub const CLIENT_ID_MAX: usize = 64;
/// Longest group title, in characters.
pub const TITLE_MAX: usize = 200;

/// Checks an account id: 1 to [`ACCOUNT_MAX`] bytes, no whitespace or control characters.
pub fn check_account(account: &str) -> Result<(), String> {
    if account.is_empty() || account.len() > ACCOUNT_MAX {
        return Err(format!(
            "must be an account id of 1 to {ACCOUNT_MAX} bytes, got {}",
            account.len()
        ));
    }
    if account.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    Ok(())
}

/// Checks a client message id: 1 to [`CLIENT_ID_MAX`] of `[A-Za-z0-9._:-]`.
pub fn check_client_id(id: &str) -> Result<(), String> {
    check_token(id, CLIENT_ID_MAX, " (a UUID works)")
}

/// Checks a client-chosen id: 1 to `max` of `[A-Za-z0-9._:-]`; `hint` ends the message.
pub fn check_token(id: &str, max: usize, hint: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {max} of A-Z a-z 0-9 . _ : -{hint}, got {} bytes",
            id.len()
        ))
    }
}

/// Checks a message body: not blank, at most `max_bytes` bytes of UTF-8.
pub fn check_body(body: &str, max_bytes: usize) -> Result<(), String> {
    if body.len() > max_bytes {
        return Err(format!(
            "must be at most {max_bytes} bytes (the max_message_bytes setting), got {}",
            body.len()
        ));
    }
    if body.trim().is_empty() {
        return Err("must not be empty or only spaces".to_owned());
    }
    Ok(())
}

/// Checks a group title: 1 to [`TITLE_MAX`] characters, not blank, no control characters.
pub fn check_title(title: &str) -> Result<(), String> {
    let chars = title.chars().count();
    if title.trim().is_empty() || chars > TITLE_MAX {
        return Err(format!(
            "must be 1 to {TITLE_MAX} characters (not only spaces), got {chars}"
        ));
    }
    if title.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// The unique key of the direct conversation of two accounts: both ids, sorted, joined by a
/// newline (which no account id contains).
pub fn direct_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}\n{b}")
    } else {
        format!("{b}\n{a}")
    }
}

/// The other account of a direct key, seen from `me`.
pub fn peer_of(direct_key: &str, me: &str) -> Option<String> {
    let (a, b) = direct_key.split_once('\n')?;
    Some(if a == me { b } else { a }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_key_is_the_same_both_ways_and_gives_the_peer() {
        assert_eq!(direct_key("bob", "alice"), direct_key("alice", "bob"));
        let key = direct_key("bob", "alice");
        assert_eq!(peer_of(&key, "alice").as_deref(), Some("bob"));
        assert_eq!(peer_of(&key, "bob").as_deref(), Some("alice"));
    }

    #[test]
    fn inputs_are_checked_with_reasons() {
        assert!(check_account("acc_1").is_ok());
        assert!(check_account("").is_err());
        assert!(check_account("a b").is_err());
        assert!(check_account(&"x".repeat(ACCOUNT_MAX + 1)).is_err());
        assert!(check_client_id("0190f2a4-7c1e-7000-8000-000000000000").is_ok());
        assert!(check_client_id("bad id").is_err());
        assert!(check_client_id("").is_err());
        assert!(check_body("hi", 10).is_ok());
        assert!(check_body("   ", 10).is_err());
        assert!(check_body("ééééééé", 10).is_err(), "limit counts bytes");
        assert!(check_title("Team").is_ok());
        assert!(check_title("a\u{7}").is_err());
    }
}
