//! praxis-shortener
