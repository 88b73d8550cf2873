//! Where the catalog's errors become HTTP answers ([`ApiError`]), by the
//! status rule of [`super::kit`]. Client errors carry `{"error": ..., "field"?: ...}`; a
//! 5xx carries an opaque error id and its detail goes to the log.

use super::kit::{self, ErrorClass};
use super::reply::ApiError;
use crate::Error;

/// The class of a catalog error, by the rule of [`kit`]: a document or
/// credential that does not authenticate is 401 (the class of its
/// [`policy::Error`]); one that authenticates but is signed by someone other
/// than the participant it names, or by a key or participant the registry
/// does not admit, is 403.
pub fn error_class(error: &Error) -> ErrorClass {
    match error {
        Error::Invalid { .. } => ErrorClass::BadInput,
        Error::Trust { source, .. } => kit::policy_class(source),
        Error::WrongSigner { .. }
        | Error::UnknownSigner { .. }
        | Error::NotRegistered(_)
        | Error::CredentialExpired(_) => ErrorClass::Forbidden,
        Error::NotFound { .. } => ErrorClass::NotFound,
        Error::Conflict(_) => ErrorClass::Conflict,
        Error::StoreOpen { .. }
        | Error::Storage(_)
        | Error::Corrupt { .. }
        | Error::Encode { .. }
        | Error::Config { .. }
        | Error::ConfigFile { .. }
        | Error::ConfigSyntax { .. }
        | Error::AuthorityKey { .. }
        | Error::Listen { .. }
        | Error::Server(_)
        | Error::Request { .. }
        | Error::Unreachable { .. }
        | Error::Timeout { .. }
        | Error::BadAnswer { .. }
        | Error::Refused { .. } => ErrorClass::Internal,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let class = error_class(&error);
        if class == ErrorClass::Internal {
            return Self::internal(&error);
        }
        let body = match &error {
            Error::Invalid { field, .. } => kit::error_body(error.to_string(), Some(field)),
            Error::Trust { source, .. } => kit::policy_error_body(error.to_string(), source),
            _ => kit::error_body(error.to_string(), None),
        };
        Self::new(class.status(), body)
    }
}
