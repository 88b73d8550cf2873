//! Who is a data officer of a connector.
//!
//! The owner (admin token) always is. Otherwise a caller is the officer of
//! participant `P` when its membership credential, issued by the data
//! space's authority, has the role `data_officer` and names as subject `P`
//! itself or a sub-id of it, `P/NAME` (say `platform-north/officer`). The
//! authority issues such a credential with
//! `dataspace authority issue --participant P/NAME --attr role=data_officer`,
//! for the officer's own key; the officer signs request tokens with that key
//! like any participant. A `data_officer` credential of another participant,
//! or a credential of `P` with another role, is not enough.

use policy::credential::MembershipCredential;

/// The credential role of a data officer.
pub const OFFICER_ROLE: &str = "data_officer";

/// Whether `credential` makes its holder a data officer of `participant`.
pub fn is_officer_of(credential: &MembershipCredential, participant: &str) -> bool {
    if credential.attributes.role.as_deref() != Some(OFFICER_ROLE) || participant.is_empty() {
        return false;
    }
    match credential.sub.strip_prefix(participant) {
        Some("") => true,
        Some(rest) => rest.len() > 1 && rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::credential::Attributes;
    use policy::keys::KeyPair;

    fn credential(sub: &str, role: Option<&str>) -> MembershipCredential {
        MembershipCredential {
            iss: "authority".into(),
            sub: sub.into(),
            name: sub.into(),
            jwk: KeyPair::generate().unwrap().public_key(),
            attributes: Attributes {
                role: role.map(str::to_owned),
                ..Attributes::default()
            },
            iat: 0,
            exp: 1,
        }
    }

    #[test]
    fn the_role_and_the_subject_must_both_match() {
        let p = "platform-north";
        assert!(is_officer_of(
            &credential("platform-north/officer", Some(OFFICER_ROLE)),
            p
        ));
        assert!(is_officer_of(
            &credential("platform-north", Some(OFFICER_ROLE)),
            p
        ));
        assert!(!is_officer_of(
            &credential("platform-north/officer", Some("platform")),
            p
        ));
        assert!(!is_officer_of(
            &credential("platform-north/officer", None),
            p
        ));
        assert!(!is_officer_of(
            &credential("sme-south/officer", Some(OFFICER_ROLE)),
            p
        ));
        assert!(!is_officer_of(
            &credential("platform-northern", Some(OFFICER_ROLE)),
            p
        ));
        assert!(!is_officer_of(
            &credential("platform-north/", Some(OFFICER_ROLE)),
            p
        ));
        assert!(!is_officer_of(&credential("", Some(OFFICER_ROLE)), ""));
    }
}
