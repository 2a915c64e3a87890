//! `/flurry/market/1`: calls for proposals, bids and paid jobs between a buyer and a
//! seller, on one libp2p stream per exchange (`docs/market.md`).
//!
//! Frames are the ones of `/flurry/infer/1` (a 4-byte big-endian length, then JSON), each
//! bounded before it is read. The buyer's first frame is an [`Ask`]:
//!
//! - [`Ask::Cfp`]: a call for proposals for one ModelId. The seller answers one [`Reply`]
//!   (a [`Bid`] with fresh ticket parameters bound to the buyer, or an error) and both
//!   sides close.
//! - [`Ask::Job`]: the award. It carries the request and the tickets paid up front; the
//!   seller answers with the frames of `/flurry/infer/1` (`start`, `token`…, `done` or
//!   `error`) while the buyer sends [`Ask::Pay`] frames with more tickets as tokens
//!   arrive. The seller never sends a token the tickets received do not cover.

use flurry_chain::ticket::{SignedTicket, TicketParams};
use flurry_chain::{B256, U256};
use flurry_net::{ErrorCode, InferFrame, InferRequest};
use flurry_verify::messages::{Domain, JobRequest, Receipt};
use serde::{Deserialize, Serialize};

/// Bytes, as alloy's type (hex in JSON).
pub type Bytes = flurry_verify::Bytes;

/// The protocol name.
pub const MARKET_PROTOCOL: &str = "/flurry/market/1";
/// The message version this node speaks.
pub const JOB_VERSION: u32 = 1;
/// Largest first frame (a job carries a request of up to `/flurry/infer/1`'s bound, its
/// up-front tickets, and the signed request with its prompt tokens).
pub const MAX_ASK_BYTES: usize = flurry_net::infer::MAX_REQUEST_BYTES + 64 * 1024 + 768 * 1024;
/// Most prompt tokens a signed request may carry.
pub const MAX_PROMPT_TOKENS: usize = 65_536;
/// Largest frame a seller sends on a job (its receipt, with the output tokens and chunk
/// commitments, is the largest).
pub const MAX_JOB_FRAME_BYTES: usize = 1 << 20;
/// Largest payment frame.
pub const MAX_PAY_BYTES: usize = 64 * 1024;
/// Largest answer to a call for proposals.
pub const MAX_REPLY_BYTES: usize = 8 * 1024;
/// Most tickets in one frame.
pub const MAX_TICKETS_PER_FRAME: usize = 64;
/// Tokens one ticket pays for, at most (and at least 1).
pub const MAX_TOKENS_PER_TICKET: u32 = 4096;
/// Tokens one ticket pays for unless `[market] tokens_per_ticket` says otherwise.
pub const DEFAULT_TOKENS_PER_TICKET: u32 = 16;
/// How long a seller waits for a ticket, while a token waits for payment, before the
/// job ends (as long as a reader that stopped reading is waited for).
pub const DEFAULT_PAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a buyer sends.
// One value per stream, read once: boxing the award would only move it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Ask {
    /// A call for proposals.
    Cfp {
        /// [`JOB_VERSION`].
        v: u32,
        /// The ModelId wanted (64 hex digits).
        model_id: String,
    },
    /// The award: run this request, paid with these tickets up front.
    Job {
        /// [`JOB_VERSION`].
        v: u32,
        /// The ModelId bid for.
        model_id: String,
        /// The request (the seller sets the model to its own name for `model_id`).
        request: InferRequest,
        /// Tokens of the answer the buyer has already (from a provider that failed):
        /// the seller generates them again with the request's seed and sends only what
        /// follows. They are priced as prompt tokens.
        #[serde(default)]
        skip: u32,
        /// [`prefix_digest`] of those tokens: a seller whose regenerated tokens differ
        /// (another model, another engine) says so instead of continuing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Tickets paid up front.
        tickets: Vec<SignedTicket>,
        /// The request signed by the buyer, for a job with a receipt
        /// (`docs/verification.md`): the seller runs its prompt tokens with its sampling
        /// and seed, commits to the answer and signs a receipt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Box<SignedJob>>,
    },
    /// More tickets, on a job's stream.
    Pay {
        /// The tickets.
        tickets: Vec<SignedTicket>,
    },
}

/// A job request signed by the buyer (EIP-712, `docs/verification.md`), with what its
/// hashes stand for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedJob {
    /// The domain it is signed under: the chain and ProviderRegistry both sides use.
    pub domain: Domain,
    /// The request.
    pub request: JobRequest,
    /// The buyer's signature of its digest.
    pub signature: Bytes,
    /// The prompt's token ids (the request carries their hash).
    pub prompt_tokens: Vec<u32>,
    /// The stop strings (the request carries their hash).
    pub stop: Vec<String>,
}

/// A seller's bid: its terms for this buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bid {
    /// [`JOB_VERSION`].
    pub v: u32,
    /// The model's name on the seller.
    pub model: String,
    /// Its ModelId.
    pub model_id: String,
    /// The engine's determinism profile.
    pub profile: String,
    /// Generated tokens, wei per million (decimal).
    pub price_wei_per_mtok: String,
    /// Prompt tokens, wei per million (decimal).
    pub prompt_price_wei_per_mtok: String,
    /// Tokens each ticket pays for.
    pub tokens_per_ticket: u32,
    /// Ticket parameters bound to the buyer.
    pub params: TicketParams,
    /// Jobs running on the seller now.
    pub active_jobs: u32,
    /// Jobs it runs at once, at most.
    pub max_jobs: u32,
}

/// What a seller answers to a call for proposals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Its terms.
    Bid(Box<Bid>),
    /// It does not bid.
    Error {
        /// Why.
        code: ErrorCode,
        /// What to do about it.
        message: String,
    },
}

/// What a seller sends on a job's stream: the frames of `/flurry/infer/1`, and fresh
/// ticket parameters whenever the ones in use are about to be retired (a ticket won, so
/// its redemption will make their random value public) or were retired already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobFrame {
    /// Pay with these parameters from now on.
    Params {
        /// The new parameters, bound to the buyer.
        params: TicketParams,
        /// What the seller has credited the buyer so far, wei (tickets refused because
        /// their parameters were retired are not counted: the buyer pays them again).
        credit_wei: String,
    },
    /// See [`InferFrame::Start`].
    Start {
        /// The model that answers.
        model: String,
        /// Prompt length in tokens.
        prompt_tokens: u32,
    },
    /// See [`InferFrame::Token`].
    Token {
        /// The text.
        text: String,
    },
    /// The provider's signed receipt for a job with a signed request, sent just before
    /// `done`.
    Receipt {
        /// The receipt.
        receipt: Receipt,
        /// The provider's signature of its digest.
        signature: Bytes,
        /// The sampled token ids (with a final end-of-generation token when the receipt
        /// says `eos`).
        output_tokens: Vec<u32>,
        /// The chunk commitments the receipt's root is over.
        chunks: Vec<B256>,
    },
    /// See [`InferFrame::Done`].
    Done {
        /// `stop` or `length`.
        finish_reason: String,
        /// Tokens generated.
        completion_tokens: u32,
    },
    /// See [`InferFrame::Error`].
    Error {
        /// Why.
        code: ErrorCode,
        /// What to do about it.
        message: String,
    },
}

impl From<InferFrame> for JobFrame {
    fn from(f: InferFrame) -> Self {
        match f {
            InferFrame::Start {
                model,
                prompt_tokens,
            } => Self::Start {
                model,
                prompt_tokens,
            },
            InferFrame::Token { text } => Self::Token { text },
            InferFrame::Done {
                finish_reason,
                completion_tokens,
            } => Self::Done {
                finish_reason,
                completion_tokens,
            },
            InferFrame::Error { code, message } => Self::Error { code, message },
            // Circle receipts never come from a market job (the seller drops the ask).
            InferFrame::Receipt { .. } => Self::Error {
                code: ErrorCode::Internal,
                message: "a circle receipt has no place in a market job".into(),
            },
        }
    }
}

impl JobFrame {
    /// The frame of the answer, for all but [`JobFrame::Params`].
    pub fn into_infer(self) -> Option<InferFrame> {
        Some(match self {
            Self::Params { .. } | Self::Receipt { .. } => return None,
            Self::Start {
                model,
                prompt_tokens,
            } => InferFrame::Start {
                model,
                prompt_tokens,
            },
            Self::Token { text } => InferFrame::Token { text },
            Self::Done {
                finish_reason,
                completion_tokens,
            } => InferFrame::Done {
                finish_reason,
                completion_tokens,
            },
            Self::Error { code, message } => InferFrame::Error { code, message },
        })
    }
}

/// Prices in wei per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    /// Generated tokens.
    pub output: u128,
    /// Prompt tokens (and tokens generated again after a failover).
    pub prompt: u128,
}

const MTOK: u128 = 1_000_000;

impl Prices {
    /// What `prompt` prompt tokens and `generated` generated tokens cost, wei, rounded up.
    pub fn owed(&self, prompt: u64, generated: u64) -> U256 {
        let total = U256::from(prompt) * U256::from(self.prompt)
            + U256::from(generated) * U256::from(self.output);
        total.div_ceil(U256::from(MTOK))
    }

    /// The expected value of a ticket that pays for `tokens` generated tokens (at least
    /// 1 wei).
    pub fn ticket_value(&self, tokens: u32) -> U256 {
        (U256::from(self.output) * U256::from(tokens) / U256::from(MTOK)).max(U256::from(1u8))
    }
}

/// The prompt tokens a buyer pays for up front, estimated from the request's text (a
/// few bytes per token, plus the chat template's tokens). The seller counts the real
/// prompt once it is tokenized and waits for the difference when the estimate was low.
pub fn prompt_estimate(request: &InferRequest) -> u64 {
    let bytes: usize = request.messages.iter().map(|m| m.content.len()).sum();
    (bytes / 4 + 8 * request.messages.len() + 32) as u64
}

/// What the buyer pays before the seller starts: the estimated prompt, the tokens
/// generated again after a failover, and one ticket's worth of generated tokens.
pub fn upfront(prices: &Prices, request: &InferRequest, skip: u32, tokens_per_ticket: u32) -> U256 {
    prices.owed(
        prompt_estimate(request) + u64::from(skip),
        u64::from(tokens_per_ticket),
    )
}

/// The digest of an answer's first tokens (their texts, each length-prefixed): keccak-256
/// in hex.
pub fn prefix_digest<S: AsRef<str>>(texts: &[S]) -> String {
    let mut bytes = Vec::new();
    for t in texts {
        let t = t.as_ref().as_bytes();
        bytes.extend_from_slice(&(t.len() as u64).to_be_bytes());
        bytes.extend_from_slice(t);
    }
    flurry_chain::keccak256(&bytes).to_string()
}

/// Whether `s` is a ModelId (64 lowercase hex digits).
pub fn is_model_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_round_up_and_a_ticket_is_never_worthless() {
        let p = Prices {
            output: 2_000_000,
            prompt: 1_000_000,
        };
        assert_eq!(p.owed(0, 0), U256::ZERO);
        assert_eq!(p.owed(3, 5), U256::from(13u8));
        let tiny = Prices {
            output: 1,
            prompt: 1,
        };
        assert_eq!(tiny.owed(1, 0), U256::from(1u8));
        assert_eq!(tiny.ticket_value(16), U256::from(1u8));
        assert_eq!(p.ticket_value(16), U256::from(32u8));
        let huge = Prices {
            output: u128::MAX,
            prompt: u128::MAX,
        };
        assert!(huge.owed(u64::MAX, u64::MAX) > U256::from(u128::MAX));
    }

    #[test]
    fn the_upfront_payment_covers_the_prompt_and_one_ticket() {
        let p = Prices {
            output: MTOK,
            prompt: MTOK,
        };
        let mut r = InferRequest::new(vec![flurry_net::InferMessage {
            role: "user".into(),
            content: "x".repeat(400),
        }]);
        r.seed = Some(1);
        assert_eq!(upfront(&p, &r, 0, 16), U256::from(100 + 8 + 32 + 16u32));
        assert_eq!(
            upfront(&p, &r, 10, 16),
            U256::from(100 + 8 + 32 + 10 + 16u32)
        );
    }

    #[test]
    fn asks_round_trip_and_unknown_types_are_refused() {
        let a = Ask::Cfp {
            v: JOB_VERSION,
            model_id: "a".repeat(64),
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Ask>(&text).unwrap(), a);
        assert!(serde_json::from_str::<Ask>(r#"{"type":"steal","v":1}"#).is_err());
        assert!(is_model_id(&"0f".repeat(32)));
        assert!(!is_model_id(&"0F".repeat(32)) && !is_model_id("00"));
    }
}
