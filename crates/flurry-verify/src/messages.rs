//! The signed messages (EIP-712) and the hashes they carry (`docs/verification.md`).

use alloy::primitives::{Address, B256, U256};
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolStruct};
use flurry_identity::{Identity, keccak256, recover_prehash_address};
use flurry_infer::commit::CHUNK;
use flurry_infer::sampler::SamplingParams;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

sol! {
    /// What the client asks for, signed by the client.
    #[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    struct JobRequest {
        bytes32 jobId;
        address client;
        address provider;
        bytes32 modelId;
        bytes32 promptTokensHash;
        uint32 nPrompt;
        uint32 temperature;
        uint32 topK;
        uint32 topP;
        uint32 minP;
        uint32 repeatPenalty;
        uint32 repeatLastN;
        uint32 maxTokens;
        bytes32 stopHash;
        bytes32 clientSeed;
        bytes32 auditCommit;
        uint256 priceIn;
        uint256 priceOut;
        uint64 deadline;
    }

    /// What the provider did, signed by the provider.
    #[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    struct Receipt {
        bytes32 requestDigest;
        bytes32 jobId;
        address provider;
        bytes32 modelId;
        bytes32 engineProfile;
        bytes32 seed;
        bytes32 promptTokensHash;
        uint32 nPrompt;
        bytes32 outputTokensHash;
        uint32 nOut;
        uint8 finishReason;
        bytes32 commitRoot;
        uint32 nChunks;
        uint64 tAccept;
        uint64 tFirst;
        uint64 tDone;
    }
}

/// The EIP-712 domain name.
pub const DOMAIN_NAME: &str = "Flurry";
/// The EIP-712 domain version.
pub const DOMAIN_VERSION: &str = "1";

/// The domain messages are signed under: the chain and the ProviderRegistry that can
/// slash on them (the zero address for jobs that never meet a chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The chain id.
    pub chain_id: u64,
    /// The ProviderRegistry's address.
    pub verifying_contract: Address,
}

impl Domain {
    /// The EIP-712 domain.
    pub fn eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(DOMAIN_NAME.into()),
            Some(DOMAIN_VERSION.into()),
            Some(U256::from(self.chain_id)),
            Some(self.verifying_contract),
            None,
        )
    }
}

/// Why generation ended, as a receipt says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The last output token is an end-of-generation token the sampler chose.
    Eos = 0,
    /// The output contains a stop string, first completed by its last token.
    Stop = 1,
    /// `n_out == max_tokens`.
    Length = 2,
}

impl Finish {
    /// From a receipt's byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Eos),
            1 => Some(Self::Stop),
            2 => Some(Self::Length),
            _ => None,
        }
    }
}

/// BLAKE3 of token ids as u32 little-endian.
pub fn tokens_hash(tokens: &[u32]) -> B256 {
    let mut h = blake3::Hasher::new();
    for t in tokens {
        h.update(&t.to_le_bytes());
    }
    B256::from(*h.finalize().as_bytes())
}

/// BLAKE3 of the stop strings, each as u32 LE byte length then UTF-8.
pub fn stop_hash(stop: &[String]) -> B256 {
    let mut h = blake3::Hasher::new();
    for s in stop {
        h.update(&(s.len() as u32).to_le_bytes());
        h.update(s.as_bytes());
    }
    B256::from(*h.finalize().as_bytes())
}

/// The engine profile hash: keccak256 of the determinism profile's name.
pub fn engine_profile() -> B256 {
    B256::from(keccak256(flurry_infer::DETERMINISM_PROFILE.as_bytes()))
}

/// The job's seed, as the receipt states it: keccak256("flurry/seed/v2" ‖ client seed).
/// It binds the receipt to the client's seed (the contract checks it).
pub fn derive_seed(client_seed: B256) -> B256 {
    let mut buf = b"flurry/seed/v2".to_vec();
    buf.extend_from_slice(client_seed.as_slice());
    B256::from(keccak256(&buf))
}

/// The sampler's 64-bit seed: the client seed's first 8 bytes, big-endian. The client
/// alone picks it, so the provider cannot bias the draw, and an API request's `seed`
/// gives the same answer with a receipt as without ([`client_seed_of`]).
pub fn sampler_seed(client_seed: B256) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&client_seed[..8]);
    u64::from_be_bytes(b)
}

/// The client seed for an API request's 64-bit `seed`: the seed, big-endian, then 24
/// zero bytes.
pub fn client_seed_of(seed: u64) -> B256 {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&seed.to_be_bytes());
    B256::from(b)
}

/// The chunks a job of `n_prompt` and `n_out` tokens has.
pub fn n_chunks(n_prompt: usize, n_out: usize) -> usize {
    n_prompt.div_ceil(CHUNK) + n_out.div_ceil(CHUNK)
}

/// The Merkle root over chunk hashes: BLAKE3 of `0x00 ‖ chunk` for a leaf, of
/// `0x01 ‖ left ‖ right` for a node; an odd last node moves up unchanged; the root of
/// no chunks is all zeroes.
pub fn merkle_root(chunks: &[[u8; 32]]) -> B256 {
    let mut level: Vec<[u8; 32]> = chunks
        .iter()
        .map(|c| {
            let mut h = blake3::Hasher::new();
            h.update(&[0]);
            h.update(c);
            *h.finalize().as_bytes()
        })
        .collect();
    if level.is_empty() {
        return B256::ZERO;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [l, r] => {
                    let mut h = blake3::Hasher::new();
                    h.update(&[1]);
                    h.update(l);
                    h.update(r);
                    *h.finalize().as_bytes()
                }
                [one] => *one,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    B256::from(level[0])
}

/// An f32 as the u32 of its bits (EIP-712 has no floats; the bits are exact).
pub fn f32_bits(v: f32) -> u32 {
    v.to_bits()
}

impl JobRequest {
    /// The sampling parameters the request asks for, seeded with the job's seed.
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            temperature: f32::from_bits(self.temperature),
            top_k: self.topK as usize,
            top_p: f32::from_bits(self.topP),
            min_p: f32::from_bits(self.minP),
            repeat_penalty: f32::from_bits(self.repeatPenalty),
            repeat_last_n: self.repeatLastN as usize,
            seed: sampler_seed(self.clientSeed),
        }
    }

    /// Sets the sampling fields from `p` (its seed is ignored: the job's is derived).
    pub fn set_sampling(&mut self, p: &SamplingParams) {
        self.temperature = f32_bits(p.temperature);
        self.topK = p.top_k.min(u32::MAX as usize) as u32;
        self.topP = f32_bits(p.top_p);
        self.minP = f32_bits(p.min_p);
        self.repeatPenalty = f32_bits(p.repeat_penalty);
        self.repeatLastN = p.repeat_last_n.min(u32::MAX as usize) as u32;
    }
}

/// The EIP-712 digest of `msg` under `domain`.
pub fn digest<T: SolStruct>(msg: &T, domain: &Domain) -> B256 {
    msg.eip712_signing_hash(&domain.eip712())
}

/// Signs `msg`'s EIP-712 digest with the node key (`r ‖ s ‖ v`).
pub fn sign<T: SolStruct>(msg: &T, domain: &Domain, key: &Identity) -> [u8; 65] {
    key.sign_prehash(&digest(msg, domain).0)
}

/// Whether `sig` over `msg` recovers to `signer`.
///
/// # Errors
/// [`Error::Signature`] when it does not parse or recovers to someone else.
pub fn check_signature<T: SolStruct>(
    msg: &T,
    domain: &Domain,
    sig: &[u8],
    signer: Address,
) -> Result<()> {
    let got = recover_prehash_address(&digest(msg, domain).0, sig)
        .map_err(|e| Error::Signature(e.to_string()))?;
    let got: Address = got
        .parse()
        .map_err(|_| Error::Signature(format!("recovered address {got} does not parse")))?;
    if got != signer {
        return Err(Error::Signature(format!(
            "signed by {got}, not by {signer}"
        )));
    }
    Ok(())
}
