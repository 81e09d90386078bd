//! praxis-infra
