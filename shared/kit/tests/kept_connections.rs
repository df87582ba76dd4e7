//! A consumer keeps the connection of a transaction that ended cleanly and starts its next one on
//! it; a kept connection the database cut costs one try, never a message.

mod common;

use async_nats::jetstream::consumer::{pull, Consumer as Durable};
use common::{next_message, order_created, Harness, Participant};
use saga_kit::kept::Kept;
use saga_kit::{Consumer, Disposition};
use std::sync::Arc;

/// A stand-in consumer keeping up to two connections, two events waiting for it, and the first
/// applied: its connection is kept.
struct FirstApplied {
    h: Harness,
    kept: Kept,
    runner: Consumer<Participant>,
    pull: Durable<pull::Config>,
}

async fn first_applied() -> anyhow::Result<FirstApplied> {
    let h = Harness::start().await?;
    for sku in ["SKU-1", "SKU-2"] {
        h.commit_event(&order_created(sku)).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    let kept = Kept::new(2);
    let runner = h
        .consumer(Arc::new(Participant::default()))
        .with_kept(kept.clone());
    let pull = runner.ensure().await?;
    let first = next_message(&pull).await?;
    assert_eq!(runner.process(&first).await, Disposition::Applied);
    runner.settle(&first, &Disposition::Applied).await;
    assert_eq!(kept.len(), 1, "the first transaction's connection is kept");
    Ok(FirstApplied {
        h,
        kept,
        runner,
        pull,
    })
}

/// The backend of the connection `kept` holds, which stays kept.
async fn kept_backend(h: &Harness, kept: &Kept) -> anyhow::Result<i32> {
    assert_eq!(kept.len(), 1, "one connection is kept");
    let mut conn = kept.take(h.db.pool()).await?;
    let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await?;
    kept.keep(conn);
    Ok(pid)
}

#[tokio::test]
async fn a_consumer_starts_each_transaction_on_the_connection_its_last_one_ended_on(
) -> anyhow::Result<()> {
    let FirstApplied {
        h,
        kept,
        runner,
        pull,
    } = first_applied().await?;
    let backend = kept_backend(&h, &kept).await?;

    let second = next_message(&pull).await?;
    assert_eq!(runner.process(&second).await, Disposition::Applied);
    runner.settle(&second, &Disposition::Applied).await;
    assert_eq!(
        kept_backend(&h, &kept).await?,
        backend,
        "the second transaction ran on the first one's connection"
    );
    assert_eq!(h.effects().await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_kept_connection_the_database_cut_costs_one_try_and_no_message() -> anyhow::Result<()> {
    let FirstApplied {
        h,
        kept,
        runner,
        pull,
    } = first_applied().await?;
    // A failover: every connection to the database but the harness's is cut, the kept one among them.
    assert!(
        h.cut_connections().await? >= 1,
        "the kept connection was cut"
    );

    let second = next_message(&pull).await?;
    assert_eq!(
        runner.process(&second).await,
        Disposition::Unavailable,
        "the try on the cut connection finds the database unavailable, and counts nothing"
    );
    assert!(kept.is_empty(), "the cut connection is not kept again");
    assert_eq!(runner.process(&second).await, Disposition::Applied);
    runner.settle(&second, &Disposition::Applied).await;
    assert_eq!(h.effects().await?.len(), 2);
    assert!(h.dead_letters().await?.is_empty());
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM kit_delivery_failures")
        .fetch_one(h.db.pool())
        .await?;
    assert_eq!(failures, 0, "the unavailable try counted no failure");
    Ok(())
}
