//! A buyer lists only sellers whose stake, read from a real chain (the pinned anvil with
//! the contracts deployed), reaches the registry's minimum; a seller without it cannot
//! sell, and an offer it signs anyway is listed only with `all`, marked unstaked.

use std::path::PathBuf;
use std::sync::Arc;

use flurry_chain::{Chain, DeployParams, LocalChain, find_anvil, parse_ether};
use flurry_identity::Identity;
use flurry_market::{Error, Market, Offer, Sale, offer::OFFER_VERSION, unix_now};
use flurry_net::{Net, NetConfig};

fn anvil_path() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    find_anvil(Some(&repo.join("contracts/node_modules/.bin/anvil"))).unwrap_or_else(|_| {
        panic!("anvil is needed for this test: run `make chain-deps`, or set FLURRY_ANVIL")
    })
}

fn sale(price: u128) -> Sale {
    Sale {
        model: "m".into(),
        model_id: "ab".repeat(32),
        profile: "flurry-det-1".into(),
        price_wei_per_mtok: price,
        prompt_price_wei_per_mtok: price,
        max_jobs: 1,
    }
}

fn offer_of(id: &Identity, price: u128) -> Vec<u8> {
    let now = unix_now();
    Offer {
        v: OFFER_VERSION,
        peer_id: id.peer_id(),
        address: id.address(),
        model: "m".into(),
        model_id: "ab".repeat(32),
        profile: "flurry-det-1".into(),
        price_wei_per_mtok: price.to_string(),
        prompt_price_wei_per_mtok: price.to_string(),
        max_jobs: 1,
        expires: now + 60,
        seq: now * 1000,
    }
    .sign(id)
    .to_bytes()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staked_sellers_are_listed_and_may_sell() {
    let anvil = LocalChain::spawn(&anvil_path(), None).unwrap();
    let (deployer, staked, unstaked, buyer) = (
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
    );
    let mut chain = Chain::connect(anvil.url(), &deployer).await.unwrap();
    for id in [&deployer, &staked, &unstaked, &buyer] {
        chain
            .dev_fund(id.address().parse().unwrap(), parse_ether("10").unwrap())
            .await
            .unwrap();
    }
    let contracts = chain.deploy(&DeployParams::default()).await.unwrap();
    let connect = |id: &Identity| {
        let url = anvil.url().to_string();
        let id = id.clone();
        async move {
            Chain::connect(&url, &id)
                .await
                .unwrap()
                .with_contracts(contracts)
        }
    };
    let staked_chain = connect(&staked).await;
    // Below the minimum (0.1 ETH by default) is not enough.
    staked_chain
        .stake(parse_ether("0.05").unwrap())
        .await
        .unwrap();
    let unstaked_chain = connect(&unstaked).await;
    let net = |id: &Identity| {
        let key = id.to_libp2p_keypair().unwrap();
        async move {
            Net::start_with_keypair(
                key,
                NetConfig {
                    listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                    mdns: false,
                    ..NetConfig::default()
                },
            )
            .await
            .unwrap()
            .0
        }
    };
    let seller = Market::new(
        Arc::new(staked.clone()),
        net(&staked).await,
        Some(staked_chain.clone()),
    );
    let err = seller.sell(sale(5)).await.unwrap_err();
    assert!(matches!(err, Error::NotStaked { .. }), "{err}");
    assert!(err.to_string().contains("flurry market stake"), "{err}");
    staked_chain
        .stake(parse_ether("0.05").unwrap())
        .await
        .unwrap();
    let published = seller.sell(sale(5)).await.unwrap();
    // Status shows the offer as published, and stopping withdraws it.
    assert_eq!(seller.status().selling, vec![published]);
    let cheat = Market::new(
        Arc::new(unstaked.clone()),
        net(&unstaked).await,
        Some(unstaked_chain),
    );
    assert!(matches!(
        cheat.sell(sale(1)).await.unwrap_err(),
        Error::NotStaked { .. }
    ));

    let market = Market::new(
        Arc::new(buyer.clone()),
        net(&buyer).await,
        Some(connect(&buyer).await),
    );
    // Both offers heard (the unstaked one signed by its key, bypassing its own check).
    market.on_gossip(Some(&staked.peer_id()), &offer_of(&staked, 5));
    market.on_gossip(Some(&unstaked.peer_id()), &offer_of(&unstaked, 1));
    let listed = market.offers(None, false).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].offer.peer_id, staked.peer_id());
    assert_eq!(listed[0].stake_wei, parse_ether("0.1").unwrap().to_string());
    assert!(listed[0].staked);
    let all = market.offers(None, true).await.unwrap();
    assert_eq!(all.len(), 2);
    // Cheapest first, and marked.
    assert_eq!(all[0].offer.peer_id, unstaked.peer_id());
    assert!(!all[0].staked && all[0].stake_wei == "0");
    assert_eq!(market.status().heard, 2);
    assert_eq!(seller.stop(Some("m")), vec!["m".to_string()]);
    assert!(seller.status().selling.is_empty());
    assert!(seller.stop(None).is_empty());

    // Without a chain nothing can be checked, and the buyer says so.
    let blind = Market::new(Arc::new(buyer.clone()), net(&buyer).await, None);
    assert!(matches!(
        blind.offers(None, false).await.unwrap_err(),
        Error::NoChain
    ));
}

#[test]
fn sales_survive_in_their_file_and_a_broken_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("flurry-sales-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("market.json");
    assert!(flurry_market::load_sales(&f).unwrap().is_empty());
    flurry_market::save_sales(&f, &[sale(5), sale(7)]).unwrap();
    assert_eq!(
        flurry_market::load_sales(&f).unwrap(),
        vec![sale(5), sale(7)]
    );
    std::fs::write(&f, b"{not json").unwrap();
    let e = flurry_market::load_sales(&f).unwrap_err();
    assert!(e.0.contains("fix or delete it"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The jobs file (`market-jobs.json`): what it holds is listed after a restart; a file
/// that does not parse (a crash mid-write is prevented by the atomic write, but a hand
/// edit is not) is set aside, never lost, and the list starts empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_kept_in_their_file_and_a_broken_file_is_set_aside() {
    let dir = std::env::temp_dir().join(format!("flurry-jobs-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let id = Identity::generate().unwrap();
    let net = Net::start_with_keypair(
        id.to_libp2p_keypair().unwrap(),
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            ..NetConfig::default()
        },
    )
    .await
    .unwrap()
    .0;
    let file = dir.join("market-jobs.json");
    let record = |id: &str| {
        serde_json::json!({"id": id, "role": "bought", "peer": "p", "model": "", "model_id": "ab",
            "tokens": 3, "paid_wei": "7", "owed_wei": "", "upfront_wei": "", "started": 1,
            "status": "done", "failovers": 0})
    };
    std::fs::write(
        &file,
        serde_json::to_vec(&vec![record("a"), record("b")]).unwrap(),
    )
    .unwrap();
    let m = Market::new(Arc::new(id.clone()), net.clone(), None);
    m.set_jobs_file(file.clone());
    let ids: Vec<String> = m.jobs().into_iter().map(|j| j.id).collect();
    assert_eq!(ids, ["a", "b"]);

    std::fs::write(&file, b"[{not json").unwrap();
    let m = Market::new(Arc::new(id), net, None);
    m.set_jobs_file(file.clone());
    assert!(m.jobs().is_empty());
    assert_eq!(
        std::fs::read(file.with_extension("json.broken")).unwrap(),
        b"[{not json"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
