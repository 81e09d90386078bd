//! Who may do what. The catalog is public to read; its writes and the inventory are the admin
//! role's. A logged-in account buys for itself without any scope; an API key needs
//! `commerce:buy`, acting as its owner.

use praxis_http::auth::PrincipalKind;
use praxis_http::{Principal, Scope};

use crate::settings::COMMERCE_BUY;

/// The cart, checkout and orders: any account, an API key with `commerce:buy`, or the admin
/// (buying as itself).
#[derive(Debug)]
pub struct Buy;

impl Scope for Buy {
    const NAME: &'static str = COMMERCE_BUY;

    fn granted(p: &Principal) -> bool {
        p.admin || p.kind == PrincipalKind::Account || p.has_scope(COMMERCE_BUY)
    }
}
