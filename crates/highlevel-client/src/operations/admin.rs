//! Which operations administer the sub-account or the app itself rather than work in it.

/// HighLevel families whose calls administer the sub-account or the app itself rather than work in it: the
/// app's install and the wallet (`marketplace`), SaaS plans, snapshots, the agency (`companies`), users and
/// their roles, the location's own settings, custom menus and phone numbers. A proxy in front of HighLevel
/// should open them to an admin of the location or agency (or a service) only; every other family is work in
/// the location, which HighLevel's own UI opens to its users (contacts, calendars, opportunities…).
/// `path` is HighLevel's path (`/users/abc` or `users/abc`).
pub fn needs_admin(method: &str, path: &str) -> bool {
    let family = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match family {
        "marketplace" | "saas" | "saas-api" | "snapshots" | "companies" => true,
        "users" | "locations" | "custom-menus" | "phone-system" => method != "GET",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::needs_admin;

    #[test]
    fn administering_families_need_an_admin_and_work_does_not() {
        assert!(needs_admin("GET", "/marketplace/app/a/installations"));
        assert!(needs_admin("POST", "snapshots/share/link"));
        assert!(needs_admin("PUT", "/users/u1"));
        assert!(!needs_admin("GET", "/users/u1"));
        assert!(needs_admin("PUT", "/locations/L1"));
        assert!(!needs_admin("GET", "/locations/L1"));
        assert!(!needs_admin("POST", "/contacts/"));
        assert!(!needs_admin("DELETE", "/opportunities/o1"));
    }
}
