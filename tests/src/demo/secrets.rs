//! The secrets check: none of the secrets the demo knows (or the shape of Salesforce tokens)
//! may appear in callsync's log or in the report.

use sf_sim::Org;

/// A named secret value to look for.
pub(crate) struct Secret {
    pub(crate) name: &'static str,
    pub(crate) value: String,
}

/// The places each secret was found in: `(secret name, where)`. Empty: none leaked.
pub(crate) fn find(
    secrets: &[Secret],
    org: &Org,
    places: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut patterns: Vec<(String, String)> = secrets
        .iter()
        .filter(|s| s.value.len() >= 8)
        .map(|s| (s.name.to_owned(), s.value.clone()))
        .collect();
    // Salesforce access tokens start with the org id's 15-char form and `!`; sf-sim's refresh
    // tokens with `5Aep861`. callsync never saw them in the demo's hands, so look for the shape.
    let org15: String = org.org_id().chars().take(15).collect();
    patterns.push(("Salesforce access token".into(), format!("{org15}!")));
    patterns.push(("Salesforce refresh token".into(), "5Aep861".into()));
    let mut found = Vec::new();
    for (name, value) in &patterns {
        for (place, text) in places {
            if text.contains(value.as_str()) {
                found.push((name.clone(), (*place).to_owned()));
            }
        }
    }
    found
}
