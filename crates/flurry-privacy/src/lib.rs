//! The privacy router's scrubber: what a prompt may carry when it leaves the node.
//!
//! Three layers find personal data, all local and deterministic:
//! 1. [`patterns`]: e-mail addresses, phone numbers, IBANs (mod 97), payment cards
//!    (Luhn), Chinese resident ids (ISO 7064 check digit and a real birth date), IP
//!    addresses, crypto addresses (EIP-55-agnostic hex, bech32 shape, base58check) and
//!    URLs that carry secrets;
//! 2. [`EntityList`]: the owner's own entities, learned from the private memory (mail
//!    headers and signatures, contact and address notes, account numbers, project names)
//!    and matched across case, accents, partial names and Chinese forms of address;
//! 3. [`names`]: cues that name strangers (titles, a known given name before a surname,
//!    a Chinese surname before a form of address).
//!
//! [`Scrubber::scrub`] turns each entity into a consistent placeholder (`<PERSON_1>`), and
//! [`Scrubbed::restore`] (or [`Restorer`] for a stream) puts the originals back into the
//! answer before the owner sees it. [`policy`] decides what may leave for which
//! destination.

mod entities;
mod fold;
pub mod names;
pub mod patterns;
pub mod policy;
mod scrub;

pub use entities::{EntityList, MAX_ENTITIES};
pub use policy::{Decision, Destination, Override, PolicySource, Rule, decide};
pub use scrub::{Found, Restorer, Scrubbed, Scrubber};

use serde::Serialize;

/// Compiles one of the crate's built-in patterns (a bad one is a bug, caught by the
/// first test that touches it).
fn re(s: &str) -> regex::Regex {
    regex::Regex::new(s).expect("a valid built-in pattern")
}

/// What kind of personal data a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// A person's name.
    Person,
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A street or postal address.
    Address,
    /// An IBAN.
    Iban,
    /// A payment card number.
    Card,
    /// A Chinese resident identity number.
    CnId,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A crypto address.
    Crypto,
    /// A URL that carries a secret.
    Url,
    /// An account, customer, policy, membership or passport number.
    Id,
    /// One of the owner's private projects.
    Project,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Kind; 12] = [
        Kind::Person,
        Kind::Email,
        Kind::Phone,
        Kind::Address,
        Kind::Iban,
        Kind::Card,
        Kind::CnId,
        Kind::Ip,
        Kind::Crypto,
        Kind::Url,
        Kind::Id,
        Kind::Project,
    ];

    /// The name used in placeholders and reports (`PERSON`, `CN_ID`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "PERSON",
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Address => "ADDRESS",
            Kind::Iban => "IBAN",
            Kind::Card => "CARD",
            Kind::CnId => "CN_ID",
            Kind::Ip => "IP",
            Kind::Crypto => "CRYPTO",
            Kind::Url => "URL",
            Kind::Id => "ID",
            Kind::Project => "PROJECT",
        }
    }

    /// The kind named `s` (as [`Kind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which layer found a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A pattern, with its checksum where it has one.
    Pattern,
    /// The owner's entity list.
    Memory,
    /// A name cue.
    Cue,
}

/// A piece of personal data in a text: `text[start..end]` (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// What it is.
    pub kind: Kind,
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
    /// Which layer found it.
    pub source: Source,
}

/// Limits and failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is larger than the scrubber takes.
    #[error("the text is {size} bytes; the scrubber takes at most {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// The largest text [`Scrubber::scrub`] takes (a long prompt is tens of KiB).
pub const MAX_TEXT_BYTES: usize = 4 << 20;
