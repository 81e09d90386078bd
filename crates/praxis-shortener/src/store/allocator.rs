//! Hands out generated codes from blocks of the shared sequence (see [`crate::domain::codes`]).

use tokio::sync::Mutex;

use praxis_infra::InfraError;

use crate::domain::codes::{Block, CodeFormat};
use crate::store::Store;

/// Allocates sequence numbers for generated codes, one database write per block.
#[derive(Debug)]
pub struct CodeAllocator {
    format: CodeFormat,
    block_size: u64,
    block: Mutex<Block>,
    store: Store,
}

impl CodeAllocator {
    /// An allocator that reserves `block_size` numbers at a time.
    pub fn new(store: Store, format: CodeFormat, block_size: u64) -> Self {
        Self {
            format,
            block_size: block_size.max(1),
            block: Mutex::new(Block::default()),
            store,
        }
    }

    /// `count` fresh sequence numbers (reserving new blocks as needed). Never call it while
    /// holding a write transaction: on SQLite the reservation would wait for that transaction.
    pub async fn take(&self, count: usize) -> Result<Vec<u64>, InfraError> {
        let mut out = Vec::with_capacity(count);
        let mut block = self.block.lock().await;
        while out.len() < count {
            match block.take() {
                Some(n) => out.push(n),
                None => {
                    let next = self.store.reserve_block(self.block_size).await?;
                    *block = Block::reserved(next, self.block_size);
                }
            }
        }
        Ok(out)
    }

    /// The code of a sequence number; an error once the code space is used up.
    pub fn code(&self, n: u64) -> Result<String, InfraError> {
        self.format.code(n).ok_or_else(|| {
            InfraError::Config(format!(
                "all {} generated codes are used: raise code_length",
                self.format.space()
            ))
        })
    }
}
