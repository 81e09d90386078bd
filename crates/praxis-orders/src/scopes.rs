//! Who may do what. A logged-in account places and reads its own orders without any scope;
//! an API key needs `orders:write`, acting as its owner. Status changes, the report and the
//! shards are the admin role's.

use praxis_http::auth::PrincipalKind;
use praxis_http::{Principal, Scope};

use crate::settings::ORDERS_WRITE;

/// Placing and reading my orders.
#[derive(Debug)]
pub struct Write;

impl Scope for Write {
    const NAME: &'static str = ORDERS_WRITE;

    fn granted(p: &Principal) -> bool {
        p.admin || p.kind == PrincipalKind::Account || p.has_scope(ORDERS_WRITE)
    }
}
