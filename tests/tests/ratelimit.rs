//! The global rate gate against a real Redis: who is admitted, and when a job turned away
//! is told to come back.

use onboard_shared::config::RateLimits;
use onboard_shared::providers::{polyv, tencentcloud, Provider};
use onboard_shared::ratelimit::RedisGate;
use onboard_shared::redis_link::RedisLink;
use onboard_shared::ProviderError;
use onboard_tests::RedisServer;
use std::time::Duration;

async fn gate(redis: &RedisServer) -> RedisGate {
    let link = RedisLink::discover(&redis.url()).await.expect("redis url");
    let conn = link.shared().await.expect("connect");
    RedisGate::new(conn, RateLimits::default(), Duration::from_secs(1))
}

fn retry_after(result: Result<(), ProviderError>) -> Option<Duration> {
    match result {
        Ok(()) => None,
        Err(ProviderError::Throttled { retry_after, .. }) => Some(retry_after),
        Err(other) => panic!("expected admission or throttling, got {other:?}"),
    }
}

#[tokio::test]
async fn turned_away_jobs_return_before_their_turn_but_wait_out_a_cool_down() {
    let redis = RedisServer::start();
    let gate = gate(&redis).await;
    // CreateAccount is 5/s (a slot every 208 ms) and up to 1 s of wait is slept inline, so
    // of eight requests at once about five are admitted and the rest turned away.
    let results =
        futures::future::join_all((0..8).map(|_| gate.admit(tencentcloud::CREATE_ACCOUNT))).await;
    let turned_away: Vec<Duration> = results.into_iter().filter_map(retry_after).collect();
    assert!(
        (2..=4).contains(&turned_away.len()),
        "turned away: {turned_away:?}"
    );
    for wait in &turned_away {
        // Their turn is more than 1 s away; they come back half the inline wait sooner,
        // while the slots before theirs are still reserved.
        assert!(
            *wait > Duration::ZERO && *wait < Duration::from_millis(1_000),
            "retry after {wait:?}"
        );
    }

    // A provider's "slow down" is waited out in full.
    gate.cool_down(Provider::Polyv, Duration::from_secs(3))
        .await
        .expect("cool down");
    let wait = retry_after(gate.admit(polyv::ADD_CUSTOM_USER).await)
        .expect("a cooling-down provider admits nobody");
    assert!(wait > Duration::from_millis(2_500), "retry after {wait:?}");
}
