//! Pure logic of the file storage: the tus protocol's headers, byte ranges, signed URLs,
//! content sniffing and digests, and the records.

pub mod describe;
pub mod digest;
pub mod model;
pub mod range;
pub mod signed;
pub mod sniff;
pub mod tus;
