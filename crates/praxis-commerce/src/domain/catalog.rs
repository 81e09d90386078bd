//! The catalog's values: products, their variants (SKUs) and prices per currency; cart lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CommerceError;

/// The longest product name.
pub const MAX_PRODUCT_NAME: usize = 200;
/// The longest product description.
pub const MAX_DESCRIPTION: usize = 10_000;

/// Checks a product's or variant's display name: 1 to [`MAX_PRODUCT_NAME`] characters, no
/// control characters.
pub fn check_title(field: &str, value: &str) -> Result<(), CommerceError> {
    let n = value.chars().count();
    if n == 0 || n > MAX_PRODUCT_NAME || value.chars().any(char::is_control) {
        return Err(CommerceError::invalid(
            field,
            format!("must be 1 to {MAX_PRODUCT_NAME} characters without control characters"),
        ));
    }
    Ok(())
}

/// Checks a description: at most [`MAX_DESCRIPTION`] characters.
pub fn check_description(value: &str) -> Result<(), CommerceError> {
    if value.chars().count() > MAX_DESCRIPTION {
        return Err(CommerceError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

/// Checks an ISO 4217 currency code (three capital letters).
pub fn check_currency(value: &str) -> Result<(), CommerceError> {
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(CommerceError::invalid(
            "currency",
            "must be an ISO 4217 code: three capital letters",
        ));
    }
    Ok(())
}

/// A variant (a SKU) as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variant {
    /// The SKU.
    pub sku: String,
    /// Its name ("red, L").
    pub name: String,
    /// Its price per currency, in cents.
    pub prices: BTreeMap<String, i64>,
}

/// A product with its variants and prices: what a catalog read returns and its cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    /// Its id (UUIDv7).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Bumped by every change to it, its variants or their prices.
    pub version: i64,
    /// Its variants, by SKU.
    pub variants: Vec<Variant>,
}

/// One line of a cart as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartLine {
    /// The SKU.
    pub sku: String,
    /// How many.
    pub quantity: i64,
    /// Its current price in the cart's currency, when it has one.
    pub unit_cents: Option<i64>,
}
