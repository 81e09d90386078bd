//! Email addresses as account names: trimmed, lowercased, checked for a plausible shape. No
//! attempt at full RFC 5321 validation: the address is an identifier here, and a confirmation
//! mail (not built yet) is the only real proof that it works.

/// Longest accepted address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest local part (before the `@`).
pub const MAX_LOCAL_LEN: usize = 64;

/// The normalized address (trimmed, lowercase), or what is wrong with it.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("is empty".into());
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("is longer than {MAX_EMAIL_LEN} bytes"));
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
    {
        return Err("contains spaces, control characters or one of < > , ; \"".into());
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("must look like name@example.com".into());
    };
    if local.is_empty() || local.len() > MAX_LOCAL_LEN || local.contains('@') {
        return Err(format!(
            "the part before @ must be 1 to {MAX_LOCAL_LEN} characters without another @"
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("the domain must look like example.com".into());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_accepts_plausible_addresses() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").as_deref(),
            Ok("alice@example.com")
        );
        assert!(normalize_email("a.b+tag@sub.example.co").is_ok());
        assert!(normalize_email("jürgen@bücher.de").is_ok());
    }

    #[test]
    fn rejects_what_cannot_be_an_address() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
            "a@@x.com",
            "<a@x.com>",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(normalize_email(&long).is_err());
        let huge = format!("a@{}.com", "b".repeat(260));
        assert!(normalize_email(&huge).is_err());
    }
}
