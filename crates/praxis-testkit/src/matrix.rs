//! The backend matrix: one async test body run on every backend.

use crate::backend::{Kind, TestBackend};

/// Generates one `#[tokio::test]` per case and backend: modules `sqlite` (embedded) and
/// `scaled`, each with one test named after the case.
///
/// `backend_matrix!(run, path::to::cases: [a, b])` calls `run(kind, path::to::cases::a)`;
/// without `run`, a case is called with the [`Kind`]. A runner is an
/// `async fn(Kind, impl AsyncFnOnce(..) -> R) -> R` that starts what the cases need (see
/// [`with_backend`]); a case may return `()` or `anyhow::Result<()>`. The cases' path is
/// resolved from inside the generated modules: write it from `crate`.
#[macro_export]
macro_rules! backend_matrix {
    ($run:path, $cases:path: [$($case:ident),* $(,)?]) => {
        $crate::backend_matrix!(@one sqlite, Embedded, $run, $cases, [$($case),*]);
        $crate::backend_matrix!(@one scaled, Scaled, $run, $cases, [$($case),*]);
    };
    ($cases:path: [$($case:ident),* $(,)?]) => {
        $crate::backend_matrix!($crate::matrix::with_kind, $cases: [$($case),*]);
    };
    (@one $module:ident, $kind:ident, $run:path, $cases:path, [$($case:ident),*]) => {
        mod $module {
            use $cases as cases;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::matrix::Outcome::check($run($crate::Kind::$kind, cases::$case).await);
                }
            )*
        }
    };
}

/// Runner of [`backend_matrix!`] for cases that take the [`Kind`].
pub async fn with_kind<R>(kind: Kind, case: impl AsyncFnOnce(Kind) -> R) -> R {
    case(kind).await
}

/// Runner of [`backend_matrix!`] for cases that take a fresh [`TestBackend`].
pub async fn with_backend<R>(kind: Kind, case: impl AsyncFnOnce(TestBackend) -> R) -> R {
    case(kind.start().await).await
}

/// What a case returns: nothing (it panics on failure) or an error that fails the test.
pub trait Outcome {
    /// Fails the test on an error.
    fn check(self);
}

impl Outcome for () {
    fn check(self) {}
}

impl Outcome for anyhow::Result<()> {
    #[track_caller]
    fn check(self) {
        if let Err(e) = self {
            panic!("{e:?}");
        }
    }
}
