//! praxis-kit
