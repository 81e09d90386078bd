//! praxis-http
