//! Faults provable from signatures alone, slashed by the contract on a real chain (the
//! pinned anvil): the registry computes the same EIP-712 digests as this crate, a
//! provider that signs two results for one request loses its stake, and so does one
//! whose receipt contradicts its request; an honest receipt cannot be slashed.

mod common;

use std::path::PathBuf;

use alloy::sol_types::SolValue;
use flurry_chain::bindings::ProviderRegistry;
use flurry_chain::{Chain, DeployParams, LocalChain, find_anvil, parse_ether};
use flurry_infer::sampler::SamplingParams;
use flurry_verify::bundle::{Bundle, address_of};
use flurry_verify::messages::{Domain, Finish, digest, sign};

use common::*;

fn anvil_path() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    find_anvil(Some(&repo.join("contracts/node_modules/.bin/anvil"))).unwrap_or_else(|_| {
        panic!("anvil is needed for this test: run `make chain-deps`, or set FLURRY_ANVIL")
    })
}

fn on_chain_receipt(b: &Bundle) -> ProviderRegistry::Receipt {
    ProviderRegistry::Receipt::abi_decode(&b.receipt.abi_encode()).unwrap()
}

fn on_chain_request(b: &Bundle) -> ProviderRegistry::JobRequest {
    ProviderRegistry::JobRequest::abi_decode(&b.request.abi_encode()).unwrap()
}

/// Signs `b` again under `domain` (both messages).
fn under(mut b: Bundle, domain: Domain, p: &Parties) -> Bundle {
    b.domain = domain;
    b.request_signature = sign(&b.request, &domain, &p.client).to_vec().into();
    b.receipt.requestDigest = digest(&b.request, &domain);
    b.receipt_signature = sign(&b.receipt, &domain, &p.provider).to_vec().into();
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_faults_are_slashed_and_honest_receipts_are_not() {
    let anvil = LocalChain::spawn(&anvil_path(), None).unwrap();
    let p = Parties::new();
    let deployer = flurry_identity::Identity::generate().unwrap();
    let challenger = flurry_identity::Identity::generate().unwrap();
    let mut chain = Chain::connect(anvil.url(), &deployer).await.unwrap();
    for id in [&deployer, &p.provider, &challenger] {
        chain
            .dev_fund(id.address().parse().unwrap(), parse_ether("10").unwrap())
            .await
            .unwrap();
    }
    let contracts = chain.deploy(&DeployParams::default()).await.unwrap();
    let as_party = |id: &flurry_identity::Identity| {
        let (url, id) = (anvil.url().to_string(), id.clone());
        async move {
            Chain::connect(&url, &id)
                .await
                .unwrap()
                .with_contracts(contracts)
        }
    };
    let provider_chain = as_party(&p.provider).await;
    let challenger_chain = as_party(&challenger).await;
    let domain = Domain {
        chain_id: chain.chain_id(),
        verifying_contract: chain.registry_address().unwrap(),
    };

    // Real jobs on SmolLM2: an honest one, and the same request answered otherwise.
    let m = load(&model_path(SMOLLM2));
    let eng = engine(&m, 2);
    let ask = Ask::new(
        chat_tokens(&m, "Name three colours."),
        SamplingParams::greedy(),
        12,
    );
    let good = under(honest(&eng, &p, &m, &ask), domain, &p);
    flurry_verify::check::check_signed(&good).unwrap();

    // The contract's digests are this crate's, field for field.
    assert_eq!(
        chain
            .receipt_digest(&on_chain_receipt(&good))
            .await
            .unwrap(),
        digest(&good.receipt, &domain)
    );
    assert_eq!(
        chain
            .job_request_digest(&on_chain_request(&good))
            .await
            .unwrap(),
        digest(&good.request, &domain)
    );

    provider_chain
        .stake(parse_ether("1").unwrap())
        .await
        .unwrap();
    let staked = chain.stake_of(address_of(&p.provider)).await.unwrap();
    assert_eq!(staked, parse_ether("1").unwrap());

    // An honest receipt is consistent with its request: the contract refuses to slash.
    let e = challenger_chain
        .slash_inconsistent(
            &on_chain_request(&good),
            &on_chain_receipt(&good),
            &good.receipt_signature,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NotInconsistent"), "{e}");
    // Nor is the same receipt twice an equivocation.
    let sig = good.receipt_signature.to_vec();
    let e = challenger_chain
        .slash_equivocation(
            (&on_chain_receipt(&good), &sig),
            (&on_chain_receipt(&good), &sig),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NotEquivocation"), "{e}");
    assert_eq!(
        chain.stake_of(address_of(&p.provider)).await.unwrap(),
        staked
    );

    // Equivocation: a second receipt for the same request with other tokens.
    let mut other = good.clone();
    other.output_tokens[2] += 1;
    resign(&mut other, &p.provider, Finish::Length);
    let before = chain.balance(address_of(&challenger)).await.unwrap();
    let tx = challenger_chain
        .slash_equivocation(
            (&on_chain_receipt(&good), &good.receipt_signature),
            (&on_chain_receipt(&other), &other.receipt_signature),
        )
        .await
        .unwrap();
    assert_eq!(
        chain.stake_of(address_of(&p.provider)).await.unwrap(),
        alloy::primitives::U256::ZERO
    );
    let after = chain.balance(address_of(&challenger)).await.unwrap();
    assert!(after + tx.fee() > before, "the challenger is rewarded");
    // Only once per job.
    let e = challenger_chain
        .slash_equivocation(
            (&on_chain_receipt(&good), &good.receipt_signature),
            (&on_chain_receipt(&other), &other.receipt_signature),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("AlreadySlashed"), "{e}");

    // Inconsistency: a new job whose receipt claims another seed than the request's.
    provider_chain
        .stake(parse_ether("1").unwrap())
        .await
        .unwrap();
    let ask2 = Ask::new(
        chat_tokens(&m, "Name three animals."),
        SamplingParams::greedy(),
        8,
    );
    let mut bad = under(honest(&eng, &p, &m, &ask2), domain, &p);
    bad.receipt.seed = alloy::primitives::B256::repeat_byte(9);
    bad.receipt_signature = sign(&bad.receipt, &domain, &p.provider).to_vec().into();
    let f = flurry_verify::check::check_signed(&bad).unwrap_err();
    assert_eq!(f.check, "seed");
    challenger_chain
        .slash_inconsistent(
            &on_chain_request(&bad),
            &on_chain_receipt(&bad),
            &bad.receipt_signature,
        )
        .await
        .unwrap();
    assert_eq!(
        chain.stake_of(address_of(&p.provider)).await.unwrap(),
        alloy::primitives::U256::ZERO
    );
}
