//! Verification of publications and withdrawals, before anything is stored.
//!
//! A description is accepted only if its JWS, every offer in it and every
//! policy embedded in an offer verify, all with the provider's registered
//! key; the offers and policies name the same provider and dataset; the
//! fields are well formed; and no listed column is denied (by its class, or
//! by every offer's policy).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use policy::contract::Offer;
use policy::document::{DocumentKind, SignedDocument};
use policy::jws::decode_header;
use policy::keys::PublicKey;
use policy::model::{ColumnClass, UsagePolicy};

use crate::model::{
    DatasetDescription, DatasetRecord, OfferRecord, Participant, PublishedDataset, StoredDataset,
    Unpublish,
};
use crate::{Error, Result};

/// Longest dataset id, in characters.
pub const MAX_ID_CHARS: usize = 200;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest free-text description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// Most keywords per dataset.
pub const MAX_KEYWORDS: usize = 64;
/// Longest keyword, sector, column name or type, in characters.
pub const MAX_TERM_CHARS: usize = 100;
/// Most columns per dataset.
pub const MAX_COLUMNS: usize = 1_000;
/// Most offers per dataset.
pub const MAX_OFFERS: usize = 64;
/// Longest endpoint URL, in characters.
pub const MAX_URL_CHARS: usize = 2_048;

/// The key in the header of `jws` (a signed document), read without
/// verifying anything but the header's form: a cheap first filter before
/// any signature work.
pub fn claimed_signer(jws: &str, what: &'static str) -> Result<PublicKey> {
    let header = decode_header(jws.trim(), what).map_err(|e| Error::trust(what, e))?;
    header.jwk.ok_or_else(|| {
        Error::trust(
            what,
            policy::Error::malformed(what, "the header has no `jwk`"),
        )
    })
}

/// Verifies a signed description `jws`. `provider_of` returns the registered
/// (and still valid) participant with a given id. On success, returns what
/// the catalog stores; nothing is stored here.
pub fn verify_publication(
    jws: &str,
    provider_of: impl Fn(&str) -> Result<Participant>,
    now: DateTime<Utc>,
) -> Result<StoredDataset> {
    let doc: SignedDocument<DatasetDescription> =
        SignedDocument::verify(jws.trim(), DocumentKind::DatasetDescription, None)
            .map_err(|e| Error::trust("dataset description", e))?;
    let description = doc.payload();
    require_text("provider", &description.provider, MAX_ID_CHARS)?;
    let provider = provider_of(&description.provider)?;
    if doc.signer() != provider.public_key {
        return Err(Error::WrongSigner {
            what: "dataset description".into(),
            claimed: description.provider.clone(),
        });
    }
    validate_description(description)?;
    let offers = description
        .offers
        .iter()
        .enumerate()
        .map(|(i, offer)| verify_offer(i, offer, description, &provider))
        .collect::<Result<Vec<_>>>()?;
    check_offer_ids(&offers)?;
    check_columns_visible(description, &offers)?;
    Ok(StoredDataset {
        record: record_of(description, offers, now, provider.key_id),
        signed: jws.trim().to_owned(),
    })
}

/// Verifies a signed withdrawal `jws` of dataset `id` of `provider`.
pub fn verify_unpublish(
    jws: &str,
    provider: &str,
    id: &str,
    provider_of: impl Fn(&str) -> Result<Participant>,
) -> Result<Unpublish> {
    let doc: SignedDocument<Unpublish> =
        SignedDocument::verify(jws.trim(), DocumentKind::DatasetWithdrawal, None)
            .map_err(|e| Error::trust("unpublish request", e))?;
    let request = doc.payload();
    if request.provider != provider {
        return Err(Error::invalid(
            "provider",
            format!("the request is for provider `{}`", request.provider),
        ));
    }
    if request.dataset != id {
        return Err(Error::invalid(
            "dataset",
            format!("the request is for dataset `{}`", request.dataset),
        ));
    }
    let participant = provider_of(provider)?;
    if doc.signer() != participant.public_key {
        return Err(Error::WrongSigner {
            what: "unpublish request".into(),
            claimed: provider.to_owned(),
        });
    }
    Ok(doc.into_payload())
}

impl PublishedDataset {
    /// Verifies the provider's JWS (and every embedded offer and policy) and
    /// returns it, if the record's signer key id signed it and it describes
    /// the record's provider, dataset and version.
    ///
    /// Defined here rather than beside the type in [`crate::model`], so that
    /// the model depends on nothing and verification on the model only.
    pub fn verify(&self) -> Result<SignedDocument<DatasetDescription>> {
        let doc: SignedDocument<DatasetDescription> =
            SignedDocument::verify(&self.signed, DocumentKind::DatasetDescription, None)
                .map_err(|e| Error::trust("dataset description", e))?;
        let record = &self.dataset;
        let description = doc.payload();
        if doc.signer().key_id() != record.signer_key_id
            || description.provider != record.provider
            || description.id != record.id
            || description.version != record.version
        {
            return Err(Error::WrongSigner {
                what: "dataset description".into(),
                claimed: record.provider.clone(),
            });
        }
        Ok(doc)
    }
}

fn validate_description(d: &DatasetDescription) -> Result<()> {
    require_text("id", &d.id, MAX_ID_CHARS)?;
    if d.id.contains('/') {
        return Err(Error::invalid("id", "must not contain `/`"));
    }
    if d.version == 0 {
        return Err(Error::invalid("version", "must be at least 1"));
    }
    require_text("title", &d.title, MAX_TITLE_CHARS)?;
    if d.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if d.keywords.len() > MAX_KEYWORDS {
        return Err(Error::invalid(
            "keywords",
            format!("lists more than {MAX_KEYWORDS}"),
        ));
    }
    for (i, keyword) in d.keywords.iter().enumerate() {
        require_text(&format!("keywords[{i}]"), keyword, MAX_TERM_CHARS)?;
    }
    if let Some(sector) = &d.sector {
        require_text("sector", sector, MAX_TERM_CHARS)?;
    }
    validate_columns(d)?;
    require_text("endpoint", &d.endpoint, MAX_URL_CHARS)?;
    require_url("endpoint", &d.endpoint)?;
    if d.offers.is_empty() || d.offers.len() > MAX_OFFERS {
        return Err(Error::invalid(
            "offers",
            format!("must list 1 to {MAX_OFFERS} signed offers"),
        ));
    }
    Ok(())
}

fn validate_columns(d: &DatasetDescription) -> Result<()> {
    if d.columns.len() > MAX_COLUMNS {
        return Err(Error::invalid(
            "columns",
            format!("lists more than {MAX_COLUMNS}"),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, column) in d.columns.iter().enumerate() {
        require_text(&format!("columns[{i}].name"), &column.name, MAX_TERM_CHARS)?;
        require_text(
            &format!("columns[{i}].type"),
            &column.data_type,
            MAX_TERM_CHARS,
        )?;
        if column.class == ColumnClass::Denied {
            return Err(Error::invalid(
                format!("columns[{i}].class"),
                format!(
                    "column `{}` is denied; denied columns must not be listed",
                    column.name
                ),
            ));
        }
        if !names.insert(column.name.as_str()) {
            return Err(Error::invalid(
                format!("columns[{i}].name"),
                format!("`{}` is listed twice", column.name),
            ));
        }
    }
    Ok(())
}

/// Checks one signed offer and its embedded policy against the description.
fn verify_offer(
    i: usize,
    offer: &SignedDocument<Offer>,
    description: &DatasetDescription,
    provider: &Participant,
) -> Result<OfferRecord> {
    let field = format!("offers[{i}]");
    let what = format!("offer at `{field}`");
    let payload = offer.payload();
    if offer.kind() != DocumentKind::Offer {
        return Err(Error::invalid(
            &field,
            format!("is a signed {}, not an offer", offer.kind()),
        ));
    }
    if offer.signer() != provider.public_key || payload.provider != description.provider {
        return Err(Error::WrongSigner {
            what,
            claimed: description.provider.clone(),
        });
    }
    require_text(&format!("{field}.id"), &payload.id, MAX_ID_CHARS)?;
    if payload.dataset != description.id {
        return Err(Error::invalid(
            format!("{field}.dataset"),
            format!(
                "is `{}`, not the described dataset `{}`",
                payload.dataset, description.id
            ),
        ));
    }
    require_url(&format!("{field}.endpoint"), &payload.endpoint)?;
    let policy = verify_offer_policy(&field, &payload.policy, description, provider)?;
    Ok(OfferRecord {
        id: payload.id.clone(),
        issued_at: payload.issued_at,
        endpoint: payload.endpoint.clone(),
        policy_hash: payload.policy.content_hash().to_owned(),
        policy,
    })
}

fn verify_offer_policy(
    field: &str,
    signed: &SignedDocument<UsagePolicy>,
    description: &DatasetDescription,
    provider: &Participant,
) -> Result<UsagePolicy> {
    let field = format!("{field}.policy");
    let policy = signed.payload();
    if signed.kind() != DocumentKind::UsagePolicy {
        return Err(Error::invalid(
            &field,
            format!("is a signed {}, not a usage policy", signed.kind()),
        ));
    }
    if signed.signer() != provider.public_key || policy.issuer != description.provider {
        return Err(Error::WrongSigner {
            what: format!("usage policy at `{field}`"),
            claimed: description.provider.clone(),
        });
    }
    if policy.target.dataset != description.id {
        return Err(Error::invalid(
            format!("{field}.target.dataset"),
            format!(
                "is `{}`, not the described dataset `{}`",
                policy.target.dataset, description.id
            ),
        ));
    }
    policy.validate().map_err(|e| match e {
        policy::Error::InvalidPolicy {
            field: inner,
            reason,
        } => Error::invalid(format!("{field}.{inner}"), reason),
        other => Error::trust(format!("usage policy at `{field}`"), other),
    })?;
    Ok(policy.clone())
}

fn check_offer_ids(offers: &[OfferRecord]) -> Result<()> {
    let mut ids = BTreeSet::new();
    for (i, offer) in offers.iter().enumerate() {
        if !ids.insert(offer.id.as_str()) {
            return Err(Error::invalid(
                format!("offers[{i}].id"),
                format!("offer `{}` is listed twice", offer.id),
            ));
        }
    }
    Ok(())
}

/// A listed column must be readable under at least one offer's policy:
/// otherwise the description would reveal a column every policy denies.
fn check_columns_visible(d: &DatasetDescription, offers: &[OfferRecord]) -> Result<()> {
    for (i, column) in d.columns.iter().enumerate() {
        let visible = offers
            .iter()
            .any(|offer| offer.policy.class_of(&column.name) != ColumnClass::Denied);
        if !visible {
            return Err(Error::invalid(
                format!("columns[{i}].name"),
                format!(
                    "column `{}` is denied by every offer's policy; it must not be listed",
                    column.name
                ),
            ));
        }
    }
    Ok(())
}

fn record_of(
    d: &DatasetDescription,
    offers: Vec<OfferRecord>,
    now: DateTime<Utc>,
    signer_key_id: String,
) -> DatasetRecord {
    DatasetRecord {
        provider: d.provider.clone(),
        id: d.id.clone(),
        version: d.version,
        title: d.title.clone(),
        description: d.description.clone(),
        keywords: d.keywords.clone(),
        sector: d.sector.clone(),
        columns: d.columns.clone(),
        row_count: d.row_count,
        updated_at: d.updated_at,
        endpoint: d.endpoint.clone(),
        offers,
        published_at: now,
        signer_key_id,
    }
}

/// Checks the text field `field`: non-empty after trimming, no control
/// characters, at most `max` characters; the refusal names `field`.
pub fn require_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn require_url(field: &str, value: &str) -> Result<()> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && value.chars().count() <= MAX_URL_CHARS
                && !value.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(Error::invalid(
            field,
            format!("`{value}` is not an `http://` or `https://` URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ColumnDescription;
    use crate::registry::verify_registration;
    use crate::sample::{SampleProvider, column};
    use policy::credential::Authority;
    use policy::keys::KeyPair;
    use policy::model::Access;

    struct Fixture {
        provider: SampleProvider,
        participant: Participant,
    }

    fn fixture() -> Fixture {
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let provider = SampleProvider::new("platform-north").unwrap();
        let now = Utc::now().timestamp();
        let credential = authority.issue(&provider.membership(), now, 3600).unwrap();
        let participant = verify_registration(&credential, &authority.trusted(), now, 60).unwrap();
        Fixture {
            provider,
            participant,
        }
    }

    impl Fixture {
        fn description(&self) -> DatasetDescription {
            self.provider
                .description("telemetry", "Spindle telemetry", &["spindle"])
                .unwrap()
        }

        fn verify(&self, jws: &str) -> Result<StoredDataset> {
            let participant = self.participant.clone();
            verify_publication(
                jws,
                move |id| match id == participant.id {
                    true => Ok(participant.clone()),
                    false => Err(Error::NotRegistered(id.to_owned())),
                },
                Utc::now(),
            )
        }

        fn verify_description(&self, description: DatasetDescription) -> Result<StoredDataset> {
            self.verify(self.provider.sign(description).unwrap().jws())
        }
    }

    fn invalid_field(result: Result<StoredDataset>) -> String {
        match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_description_signed_throughout_by_the_provider() {
        let f = fixture();
        let description = f.description();
        let policy_hash = description.offers[0]
            .payload()
            .policy
            .content_hash()
            .to_owned();
        let stored = f.verify_description(description).unwrap();
        let record = &stored.record;
        assert_eq!(
            (record.provider.as_str(), record.id.as_str(), record.version),
            ("platform-north", "telemetry", 1)
        );
        assert_eq!(record.offers.len(), 1);
        assert_eq!(record.offers[0].policy_hash, policy_hash);
        assert_eq!(record.offers[0].policy.access, Access::Aggregate);
        assert_eq!(record.signer_key_id, f.provider.key.public_key().key_id());
        let published = PublishedDataset {
            dataset: stored.record.clone(),
            signed: stored.signed.clone(),
        };
        assert_eq!(
            published.verify().unwrap().payload().title,
            "Spindle telemetry"
        );
    }

    #[test]
    fn refuses_listed_denied_columns() {
        let f = fixture();
        let mut description = f.description();
        description
            .columns
            .push(column("operator_name", "Utf8", ColumnClass::Denied));
        assert_eq!(
            invalid_field(f.verify_description(description)),
            "columns[3].class"
        );
        let mut description = f.description();
        description
            .columns
            .push(column("operator_name", "Utf8", ColumnClass::Dimension));
        assert_eq!(
            invalid_field(f.verify_description(description)),
            "columns[3].name"
        );
        let mut description = f.description();
        description
            .columns
            .push(column("plant", "Utf8", ColumnClass::Dimension));
        assert_eq!(
            invalid_field(f.verify_description(description)),
            "columns[3].name"
        );
    }

    #[test]
    fn refuses_malformed_fields_naming_them() {
        let f = fixture();
        type Change = fn(&mut DatasetDescription);
        let cases: [(&str, Change); 7] = [
            ("id", |d| d.id = "a/b".into()),
            ("version", |d| d.version = 0),
            ("title", |d| d.title = " ".into()),
            ("keywords[0]", |d| d.keywords = vec!["bad\u{7}".into()]),
            ("endpoint", |d| d.endpoint = "ftp://x".into()),
            ("offers", |d| d.offers.clear()),
            ("columns[0].type", |d| {
                d.columns[0] = ColumnDescription {
                    data_type: String::new(),
                    ..d.columns[0].clone()
                }
            }),
        ];
        for (field, change) in cases {
            let mut description = f.description();
            change(&mut description);
            assert_eq!(invalid_field(f.verify_description(description)), field);
        }
    }

    #[test]
    fn refuses_offers_and_policies_of_someone_else() {
        let f = fixture();
        let other = SampleProvider {
            id: f.provider.id.clone(),
            ..SampleProvider::new("x").unwrap()
        };
        let mut description = f.description();
        let policy = other.policy("telemetry", &["audit"], Access::Rows);
        description
            .offers
            .push(other.offer("foreign", policy).unwrap());
        let err = f.verify_description(description).unwrap_err();
        assert!(
            matches!(err, Error::WrongSigner { ref what, .. } if what.contains("offers[1]")),
            "{err}"
        );

        let mut description = f.description();
        let mut policy = f.provider.policy("telemetry", &["audit"], Access::Rows);
        policy.issuer = "platform-south".into();
        description
            .offers
            .push(f.provider.offer("wrong-issuer", policy).unwrap());
        let err = f.verify_description(description).unwrap_err();
        assert!(
            matches!(err, Error::WrongSigner { ref what, .. } if what.contains("offers[1].policy")),
            "{err}"
        );

        let mut description = f.description();
        let policy = f.provider.policy("other-table", &["audit"], Access::Rows);
        description
            .offers
            .push(f.provider.offer("other", policy).unwrap());
        assert_eq!(
            invalid_field(f.verify_description(description)),
            "offers[1].dataset"
        );
    }

    #[test]
    fn refuses_a_description_signed_by_another_key() {
        let f = fixture();
        let impostor = SampleProvider {
            id: f.provider.id.clone(),
            ..SampleProvider::new("x").unwrap()
        };
        let jws = impostor.sign(f.description()).unwrap();
        let err = f.verify(jws.jws()).unwrap_err();
        assert!(matches!(err, Error::WrongSigner { .. }), "{err}");
    }

    #[test]
    fn refuses_other_kinds_and_non_jws() {
        let f = fixture();
        let as_offer =
            SignedDocument::sign(f.description(), DocumentKind::Offer, &f.provider.key).unwrap();
        assert!(matches!(f.verify(as_offer.jws()), Err(Error::Trust { .. })));
        let withdrawal = f.provider.unpublish("telemetry", 1).unwrap();
        assert!(matches!(
            f.verify(withdrawal.jws()),
            Err(Error::Trust { .. })
        ));
        let plain = serde_json::to_string(&f.description()).unwrap();
        assert!(matches!(f.verify(&plain), Err(Error::Trust { .. })));
        let signed = f.provider.sign(f.description()).unwrap();
        let participant = f.participant.clone();
        let lookup = move |_: &str| Ok(participant.clone());
        let err =
            verify_unpublish(signed.jws(), "platform-north", "telemetry", &lookup).unwrap_err();
        assert!(matches!(err, Error::Trust { .. }), "{err}");
        // A withdrawal's content signed under the description's `typ` is
        // not a withdrawal.
        let request = Unpublish::new("platform-north", "telemetry", 1, Utc::now());
        let mistyped =
            SignedDocument::sign(request, DocumentKind::DatasetDescription, &f.provider.key)
                .unwrap();
        let err =
            verify_unpublish(mistyped.jws(), "platform-north", "telemetry", &lookup).unwrap_err();
        assert!(matches!(err, Error::Trust { .. }), "{err}");
    }

    #[test]
    fn verifies_a_withdrawal_for_its_dataset_only() {
        let f = fixture();
        let request = f.provider.unpublish("telemetry", 3).unwrap();
        let participant = f.participant.clone();
        let lookup = move |_: &str| Ok(participant.clone());
        let verified =
            verify_unpublish(request.jws(), "platform-north", "telemetry", &lookup).unwrap();
        assert_eq!(verified.version, 3);
        let err = verify_unpublish(request.jws(), "platform-north", "other", &lookup).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "dataset"),
            "{err}"
        );
        let impostor = SampleProvider {
            id: f.provider.id.clone(),
            ..SampleProvider::new("x").unwrap()
        };
        let forged = impostor.unpublish("telemetry", 3).unwrap();
        let err =
            verify_unpublish(forged.jws(), "platform-north", "telemetry", &lookup).unwrap_err();
        assert!(matches!(err, Error::WrongSigner { .. }), "{err}");
    }
}
