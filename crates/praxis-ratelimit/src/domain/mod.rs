//! Pure rules of the decision service: the limit file's format, its validation and the
//! matching of descriptors to limits ([`limits`]). No I/O beyond reading the file it is given.

pub mod limits;
