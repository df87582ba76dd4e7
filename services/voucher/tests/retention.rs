//! A running service trims the kit's tables in the background: the rows of messages its streams no
//! longer hold go, the others stay, and `/metrics` counts what went.

mod common;

use common::{order_created, TestService};
use jetsaga_contracts::CustomerId;
use jetsaga_testkit::wait_until;
use std::time::Duration;

#[tokio::test]
async fn a_running_service_trims_the_rows_its_streams_no_longer_need() -> anyhow::Result<()> {
    let svc = TestService::start_trimming_every(Duration::from_millis(200)).await?;
    let customer = CustomerId::new_random();
    svc.deliver(order_created(customer, None, 100)).await?;
    svc.deliver(order_created(customer, None, 200)).await?;
    svc.wait_published(2).await?;
    // A trim runs, and finds nothing old enough: every message is in its stream.
    wait_until(
        "a trim that found nothing",
        Duration::from_secs(20),
        || async {
            svc.metrics()
                .await
                .is_ok_and(|m| m.contains("jetsaga_rows_trimmed_total{table=\"kit_inbox\"} 0"))
        },
    )
    .await?;
    assert_eq!(svc.count("kit_inbox").await?, 2);
    assert_eq!(svc.count("kit_outbox").await?, 2);

    // The first order's rows, as if written 40 days ago: the streams keep events 30.
    sqlx::query(
        "UPDATE kit_inbox SET received_at = now() - interval '40 days'
         WHERE event_id = (SELECT event_id FROM kit_inbox ORDER BY received_at LIMIT 1)",
    )
    .execute(svc.db.pool())
    .await?;
    sqlx::query(
        "UPDATE kit_outbox SET created_at = now() - interval '40 days',
             published_at = now() - interval '40 days'
         WHERE id = (SELECT min(id) FROM kit_outbox)",
    )
    .execute(svc.db.pool())
    .await?;
    wait_until("the old rows trimmed", Duration::from_secs(20), || async {
        matches!(
            (svc.count("kit_inbox").await, svc.count("kit_outbox").await),
            (Ok(1), Ok(1))
        )
    })
    .await?;
    for table in ["kit_inbox", "kit_outbox"] {
        assert_eq!(
            svc.metric(&format!("jetsaga_rows_trimmed_total{{table=\"{table}\"}}"))
                .await?,
            1,
            "{table}"
        );
    }
    svc.stop().await
}

#[tokio::test]
async fn a_service_keeps_its_rows_as_long_as_the_dlq_keeps_its_dead_letter_copies(
) -> anyhow::Result<()> {
    let svc = TestService::start_trimming_every(Duration::from_millis(200)).await?;
    // Its own stream and its input keep events a week; the DLQ keeps them 30 days.
    for name in ["VOUCHERS", "ORDERS"] {
        let mut config = svc.js.get_stream(name).await?.cached_info().config.clone();
        config.max_age = Duration::from_secs(7 * 24 * 3600);
        svc.js.update_stream(config).await?;
    }
    // A dead letter's copy published to the DLQ 20 days ago, and an event 40 days ago.
    sqlx::query(
        "INSERT INTO kit_outbox
             (event_id, subject, order_key, ce_type, headers, payload, created_at, published_at)
         SELECT gen_random_uuid(), subject, 'k', 't', '{}', '\\x00',
                now() - make_interval(days => age), now() - make_interval(days => age)
         FROM (VALUES ('dlq.voucher.voucher-on-orders', 20),
                      ('vouchers.reserved.' || gen_random_uuid(), 40)) AS r (subject, age)",
    )
    .execute(svc.db.pool())
    .await?;
    wait_until(
        "the 40-day-old event trimmed",
        Duration::from_secs(20),
        || async {
            svc.count("kit_outbox WHERE subject LIKE 'vouchers.%'")
                .await
                .is_ok_and(|n| n == 0)
        },
    )
    .await?;
    assert_eq!(
        svc.count("kit_outbox WHERE subject LIKE 'dlq.%'").await?,
        1,
        "the DLQ still holds the copy: its row stays"
    );
    svc.stop().await
}
