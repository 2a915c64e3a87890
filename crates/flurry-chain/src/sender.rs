//! Paying for jobs with tickets.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::{Address, B256, Bytes, U256};
use flurry_identity::Identity;

use crate::ticket::{Domain, SignedTicket, Ticket, TicketParams};
use crate::unix_now;

/// Most tickets one job may need; more means the recipient's ticket value is far below
/// the job's price (misconfigured parameters), and the sender refuses.
pub const MAX_TICKETS_PER_JOB: u64 = 1024;

/// Why the sender will not pay with the given parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    /// The recipient's parameters are for another chain or broker.
    #[error(
        "the recipient's tickets are for chain {theirs} / broker {their_broker}, this node pays on chain {ours} / broker {our_broker}"
    )]
    WrongDomain {
        /// Their chain id.
        theirs: u64,
        /// Their broker.
        their_broker: Address,
        /// Our chain id.
        ours: u64,
        /// Our broker.
        our_broker: Address,
    },
    /// The parameters have expired; ask the recipient for fresh ones.
    #[error("the recipient's ticket parameters expired at {0}; ask it for fresh ones")]
    Expired(u64),
    /// A ticket would be worth nothing.
    #[error("the recipient's tickets have zero expected value (face value or win probability 0)")]
    ZeroValue,
    /// The job needs too many tickets.
    #[error(
        "the job needs {needed} tickets at the recipient's ticket value (limit {MAX_TICKETS_PER_JOB}); its parameters are too small for this price"
    )]
    TooManyTickets {
        /// Tickets needed.
        needed: U256,
    },
}

/// Creates signed tickets from the node's key. Nonces are counted per recipient
/// commitment (`recipient_rand_hash`), which is fresh for every set of parameters, so a
/// ticket is never issued twice.
#[derive(Debug)]
pub struct TicketSender {
    identity: Identity,
    address: Address,
    domain: Domain,
    nonces: Mutex<HashMap<B256, u64>>,
}

impl TicketSender {
    /// A sender paying on `domain` with `identity`'s escrow.
    pub fn new(identity: Identity, domain: Domain) -> Self {
        let address = Address::from(identity.address_bytes());
        Self {
            identity,
            address,
            domain,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// One ticket for the recipient's parameters, carrying `aux_data` (e.g. a job id).
    pub fn ticket(
        &self,
        params: &TicketParams,
        aux_data: &[u8],
    ) -> Result<SignedTicket, SenderError> {
        self.check(params)?;
        Ok(self.issue(params, aux_data))
    }

    /// Enough tickets to pay `job_value` wei in expectation: `ceil(job_value / EV)`,
    /// where EV is one ticket's expected value.
    pub fn pay(
        &self,
        params: &TicketParams,
        job_value: U256,
        aux_data: &[u8],
    ) -> Result<Vec<SignedTicket>, SenderError> {
        self.check(params)?;
        let ev = params.ticket_value();
        if ev.is_zero() {
            return Err(SenderError::ZeroValue);
        }
        let needed = job_value.div_ceil(ev);
        if needed > U256::from(MAX_TICKETS_PER_JOB) {
            return Err(SenderError::TooManyTickets { needed });
        }
        let n = needed.to::<u64>();
        Ok((0..n).map(|_| self.issue(params, aux_data)).collect())
    }

    fn check(&self, params: &TicketParams) -> Result<(), SenderError> {
        if params.domain != self.domain {
            return Err(SenderError::WrongDomain {
                theirs: params.domain.chain_id,
                their_broker: params.domain.broker,
                ours: self.domain.chain_id,
                our_broker: self.domain.broker,
            });
        }
        if params.expiration_time <= unix_now() {
            return Err(SenderError::Expired(params.expiration_time));
        }
        if params.face_value.is_zero() || params.win_prob.is_zero() {
            return Err(SenderError::ZeroValue);
        }
        Ok(())
    }

    fn issue(&self, params: &TicketParams, aux_data: &[u8]) -> SignedTicket {
        let nonce = {
            let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
            let n = nonces.entry(params.recipient_rand_hash).or_insert(0);
            *n += 1;
            *n
        };
        Ticket {
            recipient: params.recipient,
            sender: self.address,
            face_value: params.face_value,
            win_prob: params.win_prob,
            sender_nonce: U256::from(nonce),
            expiration_time: params.expiration_time,
            recipient_rand_hash: params.recipient_rand_hash,
            aux_data: Bytes::copy_from_slice(aux_data),
        }
        .sign(&self.identity, &self.domain)
    }
}
