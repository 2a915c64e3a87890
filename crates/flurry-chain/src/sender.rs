//! Paying for jobs with tickets.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::utils::format_ether;
use alloy::primitives::{Address, B256, Bytes, U256};
use flurry_identity::Identity;

use crate::ticket::{Domain, SignedTicket, Ticket, TicketParams};
use crate::unix_now;

/// Most tickets one job may need; more means the recipient's ticket value is far below
/// the job's price (misconfigured parameters), and the sender refuses.
pub const MAX_TICKETS_PER_JOB: u64 = 1024;

/// What a sender is willing to sign, whatever the recipient asks for. The recipient
/// chooses the ticket terms, so without these a payee could ask for one ticket worth the
/// whole deposit that always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderLimits {
    /// Largest face value of one ticket, wei (`[chain] max_face_value_eth`): the most a
    /// single ticket can take from the deposit.
    pub max_face_value: U256,
    /// Largest expected value of one ticket, wei (`[chain] max_ticket_ev_eth`).
    pub max_ticket_ev: U256,
}

impl Default for SenderLimits {
    /// 0.05 ETH face value, 0.001 ETH expected value (the defaults of `[chain]`).
    fn default() -> Self {
        Self {
            max_face_value: U256::from(5u64) * U256::from(10u64).pow(U256::from(16)),
            max_ticket_ev: U256::from(10u64).pow(U256::from(15)),
        }
    }
}

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
    /// The parameters name a recipient other than the one the user meant to pay.
    #[error(
        "the ticket parameters name recipient {got}, but you meant to pay {expected}: refusing to sign tickets for someone else (check the URL, or pass the payee's address with --to)"
    )]
    WrongRecipient {
        /// The payee the user named.
        expected: Address,
        /// The recipient in the parameters.
        got: Address,
    },
    /// The parameters were issued to another sender.
    #[error(
        "the ticket parameters were issued to sender {got}, not to this node ({ours}): ask the recipient for parameters naming this node"
    )]
    NotOurParams {
        /// This node.
        ours: Address,
        /// The sender named in the parameters.
        got: Address,
    },
    /// The parameters have expired; ask the recipient for fresh ones.
    #[error("the recipient's ticket parameters expired at {0}; ask it for fresh ones")]
    Expired(u64),
    /// A ticket would be worth nothing.
    #[error("the recipient's tickets have zero expected value (face value or win probability 0)")]
    ZeroValue,
    /// One ticket could take more than the sender allows.
    #[error(
        "the recipient asks for tickets of face value {} ETH, above this node's limit of {} ETH ([chain] max_face_value_eth): refusing; raise the limit in flurry.toml only if you trust this payee",
        format_ether(*face_value), format_ether(*limit)
    )]
    FaceValueTooHigh {
        /// The face value asked for.
        face_value: U256,
        /// The sender's limit.
        limit: U256,
    },
    /// One ticket is worth more in expectation than the sender allows.
    #[error(
        "the recipient asks for tickets worth {} ETH each in expectation, above this node's limit of {} ETH ([chain] max_ticket_ev_eth): refusing; raise the limit in flurry.toml only if you trust this payee",
        format_ether(*ev), format_ether(*limit)
    )]
    TicketValueTooHigh {
        /// Expected value of one ticket.
        ev: U256,
        /// The sender's limit.
        limit: U256,
    },
    /// One ticket could take more than the whole deposit.
    #[error(
        "your ticket deposit ({} ETH) cannot cover one ticket of {} ETH: fund it with `flurry wallet deposit AMOUNT`",
        format_ether(*deposit), format_ether(*face_value)
    )]
    AboveDeposit {
        /// The ticket's face value.
        face_value: U256,
        /// The sender's deposit.
        deposit: U256,
    },
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
    limits: SenderLimits,
    nonces: Mutex<HashMap<B256, u64>>,
}

impl TicketSender {
    /// A sender paying on `domain` with `identity`'s escrow, within the default limits.
    pub fn new(identity: Identity, domain: Domain) -> Self {
        let address = Address::from(identity.address_bytes());
        Self {
            identity,
            address,
            domain,
            limits: SenderLimits::default(),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The same sender with other limits (from `[chain]`).
    pub fn with_limits(mut self, limits: SenderLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// One ticket for the recipient's parameters, carrying `aux_data` (e.g. a job id).
    /// `payee` is the address the user meant to pay; parameters naming anyone else are
    /// refused.
    pub fn ticket(
        &self,
        params: &TicketParams,
        payee: Address,
        aux_data: &[u8],
    ) -> Result<SignedTicket, SenderError> {
        self.check(params, payee)?;
        Ok(self.issue(params, aux_data))
    }

    /// Enough tickets to pay `job_value` wei in expectation to `payee`:
    /// `ceil(job_value / EV)`, where EV is one ticket's expected value.
    pub fn pay(
        &self,
        params: &TicketParams,
        payee: Address,
        job_value: U256,
        aux_data: &[u8],
    ) -> Result<Vec<SignedTicket>, SenderError> {
        self.check(params, payee)?;
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

    /// Refuses parameters whose single ticket could take more than the sender's
    /// `deposit` (what the broker pays winners from first). Call it with the deposit as
    /// last read from the chain, before [`pay`](Self::pay).
    pub fn check_deposit(&self, params: &TicketParams, deposit: U256) -> Result<(), SenderError> {
        if params.face_value > deposit {
            return Err(SenderError::AboveDeposit {
                face_value: params.face_value,
                deposit,
            });
        }
        Ok(())
    }

    /// Every rule the parameters must pass before anything is signed: this chain and
    /// broker, the payee the user named, issued to this sender, not expired, non-zero,
    /// and within [`SenderLimits`].
    pub fn check(&self, params: &TicketParams, payee: Address) -> Result<(), SenderError> {
        if params.domain != self.domain {
            return Err(SenderError::WrongDomain {
                theirs: params.domain.chain_id,
                their_broker: params.domain.broker,
                ours: self.domain.chain_id,
                our_broker: self.domain.broker,
            });
        }
        if params.recipient != payee {
            return Err(SenderError::WrongRecipient {
                expected: payee,
                got: params.recipient,
            });
        }
        if params.sender != self.address {
            return Err(SenderError::NotOurParams {
                ours: self.address,
                got: params.sender,
            });
        }
        if params.expiration_time <= unix_now() {
            return Err(SenderError::Expired(params.expiration_time));
        }
        if params.face_value.is_zero() || params.win_prob.is_zero() {
            return Err(SenderError::ZeroValue);
        }
        if params.face_value > self.limits.max_face_value {
            return Err(SenderError::FaceValueTooHigh {
                face_value: params.face_value,
                limit: self.limits.max_face_value,
            });
        }
        let ev = params.ticket_value();
        if ev > self.limits.max_ticket_ev {
            return Err(SenderError::TicketValueTooHigh {
                ev,
                limit: self.limits.max_ticket_ev,
            });
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
