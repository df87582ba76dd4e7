//! The saga barrier against real PostgreSQL: null compensation, hanging steps and duplicate effects.

use jetsaga_contracts::EventId;
use jetsaga_testkit::TestDb;
use saga_kit::barrier::{self, Gate, Restored};

async fn db() -> anyhow::Result<TestDb> {
    let db = TestDb::create("barrier").await?;
    saga_kit::migrate::migrate(db.pool(), None).await?;
    Ok(db)
}

#[tokio::test]
async fn forward_then_compensate_proceeds_both_once() -> anyhow::Result<()> {
    let db = db().await?;
    let mut c = db.pool().acquire().await?;
    let id = EventId::new_random;
    assert_eq!(
        barrier::forward(&mut c, "o1", "charge", id()).await?,
        Gate::Proceed
    );
    assert_eq!(
        barrier::forward(&mut c, "o1", "charge", id()).await?,
        Gate::Duplicate
    );
    assert_eq!(
        barrier::compensate(&mut c, "o1", "charge", id()).await?,
        Gate::Proceed
    );
    assert_eq!(
        barrier::compensate(&mut c, "o1", "charge", id()).await?,
        Gate::Duplicate
    );
    Ok(())
}

#[tokio::test]
async fn compensation_before_forward_is_null_and_the_late_forward_step_hangs() -> anyhow::Result<()>
{
    let db = db().await?;
    let mut c = db.pool().acquire().await?;
    let id = EventId::new_random;
    assert_eq!(
        barrier::compensate(&mut c, "o2", "charge", id()).await?,
        Gate::NullCompensation
    );
    assert_eq!(
        barrier::forward(&mut c, "o2", "charge", id()).await?,
        Gate::Hanging
    );
    // Another saga's branch is untouched.
    assert_eq!(
        barrier::forward(&mut c, "o3", "charge", id()).await?,
        Gate::Proceed
    );
    Ok(())
}

#[tokio::test]
async fn racing_forward_and_compensation_let_exactly_one_order_win() -> anyhow::Result<()> {
    let db = db().await?;
    for i in 0..20 {
        let saga = format!("race-{i}");
        let (mut a, mut b) = (db.pool().begin().await?, db.pool().begin().await?);
        let (fwd, comp) = tokio::join!(
            async {
                let g = barrier::forward(&mut a, &saga, "hold", EventId::new_random()).await;
                a.commit().await.map(|_| g)
            },
            async {
                let g = barrier::compensate(&mut b, &saga, "hold", EventId::new_random()).await;
                b.commit().await.map(|_| g)
            }
        );
        let (fwd, comp) = (fwd??, comp??);
        // Either the forward step ran and is compensated, or neither has an effect.
        assert!(
            matches!(
                (fwd, comp),
                (Gate::Proceed, Gate::Proceed) | (Gate::Hanging, Gate::NullCompensation)
            ),
            "{fwd:?} {comp:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_restored_step_meets_later_steps_as_the_original_did() -> anyhow::Result<()> {
    let db = db().await?;
    let mut c = db.pool().acquire().await?;
    let id = EventId::new_random;

    // A forward step restored from its fact: the same step again is a duplicate.
    barrier::restore(&mut c, "r1", "hold", Restored::Forward, id()).await?;
    barrier::restore(&mut c, "r1", "hold", Restored::Forward, id()).await?;
    assert_eq!(
        barrier::forward(&mut c, "r1", "hold", id()).await?,
        Gate::Duplicate
    );

    // A compensation restored from its fact: a late forward step hangs, a second compensation
    // is a duplicate.
    barrier::restore(&mut c, "r2", "hold", Restored::Compensation, id()).await?;
    assert_eq!(
        barrier::forward(&mut c, "r2", "hold", id()).await?,
        Gate::Hanging
    );
    assert_eq!(
        barrier::compensate(&mut c, "r2", "hold", id()).await?,
        Gate::Duplicate
    );
    Ok(())
}
