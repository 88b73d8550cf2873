//! The parts of an HTTP error layer that the catalog and the connector
//! share, so that both services answer the same error the same way: the
//! status of each [`policy::Error`], the JSON error bodies, the message of a
//! refused JSON body and the `Connection: close` after an oversized one.
//!
//! The status rule, by [`ErrorClass`]:
//!
//! | class | status | for |
//! |---|---|---|
//! | [`ErrorClass::BadInput`] | 400 | input that is malformed or breaks a rule of its form |
//! | [`ErrorClass::Unauthenticated`] | 401 | a signature, token or credential that does not authenticate (it does not verify, names an unknown key or issuer, is outside its validity, replayed, or meant for someone else) |
//! | [`ErrorClass::Forbidden`] | 403 | an authenticated document or caller that the rules refuse (signed by the wrong participant, not registered, a usage policy's refusal) |
//! | [`ErrorClass::NotFound`] | 404 | what was asked for does not exist |
//! | [`ErrorClass::Conflict`] | 409 | the request conflicts with the current state |
//! | [`ErrorClass::Internal`] | 500 | the service's own failure; the body carries an opaque error id, the detail goes to the log |
//!
//! Classes are chosen on error variants only, never on message text.

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// What kind of failure an error is, for a client; [`ErrorClass::status`]
/// is its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Malformed input, or input that breaks a rule of its form: 400.
    BadInput,
    /// A signature, token or credential that does not authenticate: 401.
    Unauthenticated,
    /// Authenticated, but refused by the rules: 403.
    Forbidden,
    /// Not there: 404.
    NotFound,
    /// In conflict with the current state: 409.
    Conflict,
    /// The service's own failure: 500.
    Internal,
}

impl ErrorClass {
    /// The HTTP status of the class.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadInput => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The class of an error of the trust core.
///
/// [`policy::Error::Key`] and [`policy::Error::Io`] are the service's own
/// key material and files, so [`ErrorClass::Internal`]: a key that a
/// client sends arrives inside a document or credential, and one that does
/// not parse fails the decoding of that document, as
/// [`policy::Error::Malformed`].
pub fn policy_class(error: &policy::Error) -> ErrorClass {
    use policy::Error as P;
    match error {
        P::Malformed { .. }
        | P::AlgorithmNone
        | P::AlgorithmNotAllowed { .. }
        | P::InvalidPolicy { .. } => ErrorClass::BadInput,
        P::BadSignature { .. }
        | P::UntrustedIssuer { .. }
        | P::UnknownKeyId { .. }
        | P::Expired { .. }
        | P::NotYetValid { .. }
        | P::LifetimeTooLong { .. }
        | P::WrongAudience { .. }
        | P::Replayed { .. }
        | P::IssuerMismatch { .. }
        | P::SignerMismatch { .. } => ErrorClass::Unauthenticated,
        P::Refused(_) => ErrorClass::Forbidden,
        P::Key(_) | P::Io { .. } => ErrorClass::Internal,
    }
}

/// The HTTP status of an error of the trust core (see [`policy_class`]).
pub fn policy_status(error: &policy::Error) -> StatusCode {
    policy_class(error).status()
}

/// The body of a client error: `{"error": message}`, with `"field"` (a
/// JSON path or a parameter name) when one part of the request is at fault.
pub fn error_body(message: impl Into<String>, field: Option<&str>) -> Value {
    let mut body = json!({ "error": message.into() });
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    body
}

/// The body of a client error caused by `error`: [`error_body`] with
/// `message`, the `"field"` of an invalid usage policy and the `"rule"` (its
/// id) of a usage policy's refusal.
pub fn policy_error_body(message: impl Into<String>, error: &policy::Error) -> Value {
    match error {
        policy::Error::InvalidPolicy { field, .. } => error_body(message, Some(field)),
        policy::Error::Refused(refusal) => refusal_body(message, refusal),
        _ => error_body(message, None),
    }
}

/// The body of a usage policy's refusal: [`error_body`] with `message` and
/// the `"rule"` (its id).
pub fn refusal_body(message: impl Into<String>, refusal: &policy::enforce::Refusal) -> Value {
    let mut body = error_body(message, None);
    body["rule"] = json!(refusal.rule.id());
    body
}

/// The body of a 500: `{"error": "internal error", "error_id": id}`; the
/// detail belongs in the log under the same id.
pub fn internal_error_body(error_id: &str) -> Value {
    json!({ "error": "internal error", "error_id": error_id })
}

/// The message for a JSON body that axum refused: over the body limit
/// (status 413), unreadable, or not the expected JSON. The status to answer
/// with is the rejection's own (`rejection.status()`), the field `body`.
pub fn json_rejection_message(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the limit".to_owned()
        }
        JsonRejection::BytesRejection(_) => "the request body could not be read".to_owned(),
        other => format!("invalid request body: {}", other.body_text()),
    }
}

/// A response layer (`axum::middleware::map_response`) for a router with a
/// body limit: a request whose body was refused as too large (413) was not
/// read to its end, so the connection cannot carry another request. The
/// answer says so (`Connection: close`); otherwise a pooling client may
/// send its next request on a connection the server is closing.
pub async fn close_after_oversized_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn malformed() -> policy::Error {
        policy::Error::malformed("request token", "not three segments")
    }

    #[test]
    fn each_kind_of_trust_failure_has_the_status_a_client_expects() {
        let cases = [
            (malformed(), 400),
            (policy::Error::AlgorithmNone, 400),
            (
                policy::Error::AlgorithmNotAllowed {
                    alg: "HS256".into(),
                },
                400,
            ),
            (policy::Error::invalid_policy("purposes", "is empty"), 400),
            (policy::Error::BadSignature { what: "offer" }, 401),
            (
                policy::Error::UntrustedIssuer {
                    authority: "authority".into(),
                },
                401,
            ),
            (policy::Error::UnknownKeyId { kid: "k1".into() }, 401),
            (
                policy::Error::Expired {
                    what: "credential",
                    at: 0,
                },
                401,
            ),
            (
                policy::Error::NotYetValid {
                    what: "credential",
                    at: 0,
                },
                401,
            ),
            (
                policy::Error::LifetimeTooLong {
                    seconds: 9_000,
                    max: 300,
                },
                401,
            ),
            (
                policy::Error::WrongAudience {
                    expected: "a".into(),
                    found: "b".into(),
                },
                401,
            ),
            (policy::Error::Replayed { jti: "j".into() }, 401),
            (
                policy::Error::IssuerMismatch {
                    token: "a".into(),
                    credential: "b".into(),
                },
                401,
            ),
            (
                policy::Error::SignerMismatch {
                    claimed: "a".into(),
                    signer: "b".into(),
                },
                401,
            ),
            (policy::Error::key("cannot draw random bytes"), 500),
            (
                policy::Error::Io {
                    path: "key.jwk".into(),
                    source: std::io::Error::other("gone"),
                },
                500,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(policy_status(&error).as_u16(), status, "{error}");
        }
    }

    #[test]
    fn classes_map_to_their_statuses() {
        let statuses = [
            ErrorClass::BadInput,
            ErrorClass::Unauthenticated,
            ErrorClass::Forbidden,
            ErrorClass::NotFound,
            ErrorClass::Conflict,
            ErrorClass::Internal,
        ]
        .map(|class| class.status().as_u16());
        assert_eq!(statuses, [400, 401, 403, 404, 409, 500]);
    }

    #[test]
    fn bodies_carry_the_message_and_what_names_the_fault() {
        assert_eq!(
            error_body("no such endpoint", None),
            json!({"error": "no such endpoint"})
        );
        assert_eq!(
            error_body("invalid `limit`", Some("limit")),
            json!({"error": "invalid `limit`", "field": "limit"})
        );
        let invalid = policy::Error::invalid_policy("purposes", "is empty");
        assert_eq!(
            policy_error_body("bad policy", &invalid),
            json!({"error": "bad policy", "field": "purposes"})
        );
        let refused = policy::Error::Refused(policy::enforce::Refusal::new(
            policy::enforce::Rule::DeniedColumn,
            "column `name` is denied",
        ));
        assert_eq!(
            policy_error_body("refused", &refused),
            json!({"error": "refused", "rule": policy::enforce::Rule::DeniedColumn.id()})
        );
        assert_eq!(policy_status(&refused), StatusCode::FORBIDDEN);
        assert_eq!(
            policy_error_body("bad token", &malformed()),
            json!({"error": "bad token"})
        );
        assert_eq!(
            internal_error_body("1f-2"),
            json!({"error": "internal error", "error_id": "1f-2"})
        );
    }

    #[tokio::test]
    async fn only_an_oversized_body_closes_the_connection() {
        let answer = |status: StatusCode| {
            let mut response = Response::new(axum::body::Body::empty());
            *response.status_mut() = status;
            close_after_oversized_body(response)
        };
        let closed = answer(StatusCode::PAYLOAD_TOO_LARGE).await;
        assert_eq!(closed.headers()[header::CONNECTION], "close");
        let kept = answer(StatusCode::BAD_REQUEST).await;
        assert!(kept.headers().get(header::CONNECTION).is_none());
    }
}
