//! Offers: a registered dataset under a usage policy signed by the provider,
//! validated against the dataset's schema.

use policy::contract::Offer;
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::KeyPair;
use policy::model::UsagePolicy;

use crate::store::{Store, get_json, put_json, scan_json};
use crate::{Error, Result};

const TREE: &str = "offers";

/// Offers in a [`Store`].
pub struct Offers<'a> {
    store: &'a dyn Store,
}

impl<'a> Offers<'a> {
    /// The offers in `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// The offer `id`.
    pub fn get(&self, id: &str) -> Result<SignedDocument<Offer>> {
        get_json(self.store, TREE, id)?.ok_or_else(|| Error::NotFound {
            what: "offer",
            id: id.to_owned(),
        })
    }

    /// Saves an offer.
    pub fn save(&self, offer: &SignedDocument<Offer>) -> Result<()> {
        put_json(self.store, TREE, &offer.payload().id, offer)
    }

    /// Every offer.
    pub fn list(&self) -> Result<Vec<SignedDocument<Offer>>> {
        scan_json(self.store, TREE)
    }

    /// Removes the offer `id`.
    pub fn remove(&self, id: &str) -> Result<()> {
        self.get(id)?;
        self.store.remove(TREE, id.as_bytes())
    }
}

/// Signs `policy` and an offer of it at `endpoint`. The policy's issuer must
/// be `provider`, its dataset `dataset`.
pub fn sign_offer(
    id: &str,
    provider: &str,
    dataset: &str,
    policy: UsagePolicy,
    endpoint: &str,
    key: &KeyPair,
    now: i64,
) -> Result<SignedDocument<Offer>> {
    if policy.issuer != provider {
        return Err(Error::Invalid {
            field: "issuer".into(),
            reason: format!(
                "the policy names `{}` as issuer, but this connector is `{provider}`",
                policy.issuer
            ),
        });
    }
    if policy.dataset() != dataset {
        return Err(Error::Invalid {
            field: "target.dataset".into(),
            reason: format!("the policy governs `{}`, not `{dataset}`", policy.dataset()),
        });
    }
    let signed_policy = SignedDocument::sign(policy, DocumentKind::UsagePolicy, key)?;
    let offer = Offer {
        id: id.to_owned(),
        provider: provider.to_owned(),
        dataset: dataset.to_owned(),
        policy: signed_policy,
        endpoint: endpoint.to_owned(),
        issued_at: now,
    };
    Ok(SignedDocument::sign(offer, DocumentKind::Offer, key)?)
}
