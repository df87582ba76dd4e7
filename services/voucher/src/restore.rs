//! What `jetsaga replay` re-applies from the voucher service's own stream: the root events the
//! service emitted on its own (a voucher issued, a release or redemption a repair made) that its database lost. Reservations, releases
//! and redemptions come back by re-consuming its inputs.

use crate::repair::{self, Announce};
use crate::store::{self, NewVoucher};
use jetsaga_contracts::VoucherEvent;
use saga_kit::replay::Restore;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// The voucher service's [`Restore`].
#[derive(Debug, Clone, Copy)]
pub struct Restorer;

impl Restore for Restorer {
    type Event = VoucherEvent;

    async fn restore(
        &self,
        tx: &mut PgConnection,
        event: VoucherEvent,
        _ctx: &EventContext,
    ) -> Result<(), HandlerError> {
        match event {
            VoucherEvent::VoucherIssued(e) => {
                // An existing voucher of that code is this one, already there.
                store::insert(
                    tx,
                    &NewVoucher {
                        code: e.code,
                        customer_id: e.customer_id,
                        discount: e.discount,
                        expires_at: e.expires_at,
                    },
                )
                .await?;
                Ok(())
            }
            // A release or redemption a reconcile repair made.
            VoucherEvent::VoucherReleased(e) => {
                repair::release_cancelled(tx, e.order_id, Announce::AlreadyInStream)
                    .await
                    .map_err(|err| HandlerError::permanent(err.to_string()))?;
                Ok(())
            }
            VoucherEvent::VoucherRedeemed(e) => {
                repair::redeem_confirmed(tx, e.order_id, Announce::AlreadyInStream)
                    .await
                    .map_err(|err| HandlerError::permanent(err.to_string()))?;
                Ok(())
            }
            other => Err(HandlerError::permanent(format!(
                "{} is not a root event the voucher service restores",
                jetsaga_contracts::EventSet::ce_type(&other)
            ))),
        }
    }
}
